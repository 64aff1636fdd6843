//! The command line, run as a user would: the built binary, real files.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot set up should fail loudly"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const REPO_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");

#[test]
fn hash_password_prints_an_argon2id_hash_of_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let phc = stdout(&out);
    let hash = portcullis::token::PasswordHash::parse(phc.trim()).unwrap();
    assert!(phc.starts_with("$argon2id$"));
    assert!(
        hash.verify(b"correct horse"),
        "the trailing newline is not part of the password"
    );
    assert!(!hash.verify(b"correct horse\n"));
}

#[test]
fn token_sign_mints_a_token_that_inspect_verifies() {
    let token = stdout(&portcullis(&[
        "token",
        "sign",
        "--config",
        REPO_CONFIG,
        "--sub",
        "bob",
        "--claim",
        "role=editor",
        "--claim",
        "n=5",
        "--ttl",
        "10m",
    ]));
    let token = token.trim();
    let report = stdout(&portcullis(&[
        "token",
        "inspect",
        "--config",
        REPO_CONFIG,
        token,
    ]));
    assert!(report.contains("\"sub\": \"bob\""), "{report}");
    assert!(report.contains("\"role\": \"editor\""), "{report}");
    assert!(report.contains("\"n\": 5"), "{report}");
    assert!(report.contains("\"typ\": \"at+jwt\""), "{report}");
    assert!(report.contains("expires in 10m"), "{report}");
    assert!(report.contains(": valid"), "{report}");

    // A token signed with another key is shown, and said not to verify.
    let (head, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let report = stdout(&portcullis(&[
        "token",
        "inspect",
        "--config",
        REPO_CONFIG,
        &forged,
    ]));
    assert!(report.contains("INVALID"), "{report}");
}

#[test]
fn token_sign_refuses_registered_claims() {
    let out = portcullis(&[
        "token",
        "sign",
        "--config",
        REPO_CONFIG,
        "--sub",
        "bob",
        "--claim",
        "exp=1",
    ]);
    assert!(!out.status.success());
}

fn config_with_key(dir: &Path, alg: &str, private_key: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[jwt]\nsigning_key = \"k\"\n[[jwt.keys]]\nkid = \"k\"\nalgorithm = \"{alg}\"\nprivate_key = \"file:{}\"\n",
            private_key.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn generated_keys_work_in_a_config() {
    for alg in ["ES256", "EdDSA"] {
        let dir = temp_dir(alg);
        let out = portcullis(&[
            "keys",
            "generate",
            "--alg",
            alg,
            "--kid",
            "k",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let printed = stdout(&out);
        assert!(printed.contains("[[jwt.keys]]"), "{printed}");
        let private = dir.join("k.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the private key is readable by its owner only");
        }
        let config = config_with_key(&dir, alg, &private);
        let config = config.to_str().unwrap();
        let token = stdout(&portcullis(&[
            "token", "sign", "--config", config, "--sub", "svc",
        ]));
        let report = stdout(&portcullis(&[
            "token",
            "inspect",
            "--config",
            config,
            token.trim(),
        ]));
        assert!(report.contains(&format!("\"alg\": \"{alg}\"")), "{report}");
        assert!(report.contains(": valid"), "{report}");
        // Never overwrite an existing key.
        let again = portcullis(&[
            "keys",
            "generate",
            "--alg",
            alg,
            "--kid",
            "k",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(!again.status.success());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
