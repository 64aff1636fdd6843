//! Configuration errors, black-box: `portcullis check-config` on bad files exits
//! non-zero and names the key and the line; on the repository's `config.toml` it
//! succeeds and prints the routes. The same files through `Config::parse` and
//! `Gateway::from_config` give the same key and line.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test that cannot set up should fail loudly"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use portcullis::{Config, Gateway};

/// A file of its own in the temporary directory, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "portcullis-config-test-{}-{n}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn portcullis(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs `check-config` on `text`; asserts it fails, that stderr names the key and
/// `file:line`, and that the library reports the same key and line.
fn refused(text: &str, key: &str, line: usize) {
    let file = TempConfig::new(text);
    let out = portcullis(&["check-config"], &file.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert!(
        stderr.contains(key),
        "stderr does not name `{key}`: {stderr}"
    );
    let at = format!("{}:{line}", file.0.display());
    assert!(stderr.contains(&at), "stderr does not name {at}: {stderr}");

    let error = match Config::parse(text, "t.toml") {
        Err(e) => e,
        Ok(config) => match Gateway::from_config(&config, &HashMap::<String, String>::new()) {
            Err(e) => e,
            Ok(_) => panic!("the library accepted:\n{text}"),
        },
    };
    assert_eq!(error.key, key, "{error}");
    assert_eq!(error.line, Some(line), "{error}");
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    refused(
        "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n",
        "server.bogus",
        3,
    );
    refused(
        "[log]\nlevel = \"info\"\n\n[[routes]]\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"public\"\nstrip_prefx = true\n",
        "routes[0].strip_prefx",
        8,
    );
}

#[test]
fn a_bad_duration_is_named_with_its_line() {
    refused(
        "[server]\nshutdown_grace = \"ten\"\n",
        "server.shutdown_grace",
        2,
    );
    refused(
        "[[routes]]\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"public\"\ntimeout = \"1 fortnight\"\n",
        "routes[0].timeout",
        5,
    );
    refused(
        "[proxy]\n\nconnect_timeout = 5\n",
        "proxy.connect_timeout",
        3,
    );
}

#[test]
fn the_upstream_connection_cap_is_read_and_a_bad_one_is_named() {
    let config = Config::parse("[proxy]\nmax_connections_per_host = 64\n", "t.toml").unwrap();
    assert_eq!(config.proxy.max_connections_per_host, 64);
    let default = Config::parse("", "t.toml").unwrap();
    assert_eq!(default.proxy.max_connections_per_host, 1024);
    refused(
        "[proxy]\nmax_connections_per_host = -1\n",
        "proxy.max_connections_per_host",
        2,
    );
}

#[test]
fn a_bad_listen_address_is_named_with_its_line() {
    refused("[server]\n\nlisten = \"nowhere\"\n", "server.listen", 3);
    refused(
        "[server]\nlisten = \"127.0.0.1:99999\"\n",
        "server.listen",
        2,
    );
}

#[test]
fn an_https_upstream_is_named_with_its_line() {
    refused(
        "[[routes]]\npath = \"/a\"\nupstream = \"https://example.com\"\nauth = \"public\"\n",
        "routes[0].upstream",
        3,
    );
}

#[test]
fn a_bad_upstream_url_is_named_with_its_line() {
    for (url, line) in [
        ("not a url", 5),
        ("127.0.0.1:3000", 5),
        ("http://127.0.0.1:3000/?q=1", 5),
        ("http://user:pw@127.0.0.1:3000", 5),
    ] {
        refused(
            &format!(
                "[[routes]]\npath = \"/ok\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"public\"\n\n[[routes]]\npath = \"/a\"\n\nupstream = \"{url}\"\nauth = \"public\"\n"
            ),
            "routes[1].upstream",
            line + 4,
        );
    }
}

#[test]
fn a_bad_route_path_is_named_with_its_line() {
    refused(
        "[[routes]]\npath = \"api\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"public\"\n",
        "routes[0].path",
        2,
    );
    refused(
        "[[routes]]\npath = \"/a/../b\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"public\"\n",
        "routes[0].path",
        2,
    );
}

#[test]
fn check_config_on_the_repository_config_succeeds_and_prints_the_routes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let out = portcullis(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains("listen: 127.0.0.1:8080"), "{stdout}");
    assert!(stdout.contains("/api -> http://127.0.0.1:3000"), "{stdout}");
    assert!(stdout.contains("strip_prefix"), "{stdout}");
    assert!(
        stdout.contains("/public -> http://127.0.0.1:3000"),
        "{stdout}"
    );
    assert!(stdout.contains("GET /healthz"), "{stdout}");
}

#[test]
fn check_config_reads_portcullis_config_when_no_flag_is_given() {
    let file = TempConfig::new(
        "[[routes]]\npath = \"/from-env\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"public\"\n",
    );
    // The variable is set on the child only; this process's environment is untouched.
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("check-config")
        .env("PORTCULLIS_CONFIG", &file.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("/from-env -> http://127.0.0.1:1"),
        "{stdout}"
    );
}

#[test]
fn a_missing_config_file_is_an_error_naming_the_file() {
    let path = std::env::temp_dir().join(format!(
        "portcullis-config-test-{}-missing.toml",
        std::process::id()
    ));
    let out = portcullis(&["check-config"], &path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}
