//! The `portcullis` command: serve the gateway, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: a proxy allocates and frees small buffers on every
/// request, and glibc's allocator was a measured share of a one-thread proxy's CPU.
/// Built with `no_thp`: mimalloc otherwise asks for transparent huge pages, which make
/// every 2 MiB region it touches resident (10,000 idle connections: 247 MiB with them,
/// 157 MiB without) and bought no CPU per request in paired runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use portcullis::config::{LogFormatConfig, ProcessSecrets};
use portcullis::log::LogFormat;
use portcullis::{Config, Gateway};

/// A Koa-style API gateway: JWT issuance and verification in front of proxied APIs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "PORTCULLIS_CONFIG",
        default_value = "config.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Validate the configuration and print the effective routes.
    CheckConfig,
    /// Read a password from stdin (no echo on a terminal) and print its argon2id hash.
    HashPassword,
    /// Mint or look inside tokens, for local development.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Private-key identities: make a key, or trade a signed challenge for a token.
    #[command(subcommand)]
    Identity(IdentityCommand),
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Write a new Ed25519 private key (mode 0600) and print its identity.
    New {
        /// The key file to write (PKCS#8 PEM; never overwritten).
        #[arg(long, default_value = "identity.key")]
        out: PathBuf,
        /// Write the raw 32-byte seed instead of PEM.
        #[arg(long)]
        raw: bool,
    },
    /// Ask the gateway for a challenge, sign it with the key, and print the token.
    Token {
        /// The gateway's base URL, such as `http://127.0.0.1:8080`.
        #[arg(long)]
        gateway: String,
        /// The key file (PKCS#8 PEM, or the 32-byte seed raw or in base64url).
        #[arg(long)]
        key: PathBuf,
        /// The token endpoint's path on the gateway (`token.path`).
        #[arg(long, default_value = "/token")]
        token_path: String,
        /// The scope to ask for, space-separated (default: all the identity may get).
        #[arg(long)]
        scope: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token with the configured signing key.
    Sign {
        /// The subject (`sub`).
        #[arg(long)]
        sub: String,
        /// An extra claim, `name=value` (the value is JSON if it parses, else a string).
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// The scope, space-separated.
        #[arg(long)]
        scope: Option<String>,
        /// The lifetime, such as `15m` or `1h` (default: `jwt.ttl`).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// Print a token's header and claims; say whether it verifies with the config's keys.
    Inspect {
        /// The token.
        token: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new PEM key pair (`<kid>.key` and `<kid>.pub`) for `[[jwt.keys]]`.
    Generate {
        /// ES256, ES384, EdDSA or RS256.
        #[arg(long)]
        alg: String,
        /// The directory to write to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The key id, used in the file names (default: the algorithm, lower-cased).
        #[arg(long)]
        kid: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
        Command::HashPassword => hash_password(),
        Command::Token(TokenCommand::Sign {
            sub,
            claims,
            scope,
            ttl,
        }) => sign(&cli.config, sub, &claims, scope, ttl),
        Command::Token(TokenCommand::Inspect { token }) => inspect(&cli.config, &token),
        Command::Keys(KeysCommand::Generate { alg, out, kid }) => generate_keys(&alg, &out, kid),
        Command::Identity(IdentityCommand::New { out, raw }) => new_identity(&out, raw),
        Command::Identity(IdentityCommand::Token {
            gateway,
            key,
            token_path,
            scope,
        }) => identity_token(&gateway, &key, &token_path, scope.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn load(path: &std::path::Path) -> Result<(Config, Gateway), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let gateway = Gateway::from_config(&config, &ProcessSecrets).map_err(|e| e.to_string())?;
    Ok((config, gateway))
}

fn check_config(path: &std::path::Path) -> Result<(), String> {
    let (config, gateway) = load(path)?;
    println!("{}: OK", path.display());
    println!("listen: {}", config.server.listen);
    if let Some(echo) = &config.echo {
        println!("echo upstream: {}", echo.listen);
    }
    println!("routes:");
    for line in gateway.summary() {
        println!("  {line}");
    }
    Ok(())
}

fn serve(path: &std::path::Path) -> Result<(), String> {
    let (config, gateway) = load(path)?;
    let format = match config.log.format {
        LogFormatConfig::Pretty => LogFormat::Pretty,
        LogFormatConfig::Json => LogFormat::Json,
    };
    portcullis::log::init(&config.log.level, format).map_err(|e| format!("log.level: {e}"))?;

    // One worker runs on a current-thread runtime: no work-stealing, and no cross-thread
    // wake-ups between the reactor and the worker, which otherwise cost more than the
    // request itself on a one-core proxy.
    let mut runtime = if config.server.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all();
    if config.server.workers > 1 {
        runtime.worker_threads(config.server.workers);
    }
    let runtime = runtime
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| {
                format!(
                    "server.listen: cannot listen on {}: {e}",
                    config.server.listen
                )
            })?;
        gateway
            .serve(listener, portcullis::server::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

fn hash_password() -> Result<(), String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        let password = read_without_echo().map_err(|e| format!("cannot read the password: {e}"))?;
        eprintln!();
        password
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        return Err("the password is empty".to_owned());
    }
    let phc = portcullis::token::hash_password(password.as_bytes()).map_err(|e| e.to_string())?;
    println!("{phc}");
    Ok(())
}

/// Reads a line from the terminal with echo turned off (`stty -echo`), restoring it after.
fn read_without_echo() -> std::io::Result<String> {
    use std::io::BufRead;
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    let echo_off = stty("-echo").is_ok_and(|s| s.success());
    let mut line = String::new();
    let result = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        let _ = stty("echo");
    }
    result.map(|_| line.trim_end_matches(['\n', '\r']).to_owned())
}

fn auth(path: &std::path::Path) -> Result<(Config, portcullis::gateway::AuthParts), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let auth = portcullis::gateway::auth_parts(&config, &ProcessSecrets)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no [[jwt.keys]] is configured", path.display()))?;
    Ok((config, auth))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn sign(
    path: &std::path::Path,
    sub: String,
    claims: &[String],
    scope: Option<String>,
    ttl: Option<std::time::Duration>,
) -> Result<(), String> {
    let (config, auth) = auth(path)?;
    let issuer = auth
        .issuer
        .ok_or_else(|| "jwt.signing_key is not set: no key to sign with".to_owned())?;
    let mut extra = serde_json::Map::new();
    for claim in claims {
        let (name, value) = claim
            .split_once('=')
            .ok_or_else(|| format!("--claim {claim:?}: expected NAME=VALUE"))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        extra.insert(name.to_owned(), value);
    }
    portcullis::jwt::check_extra_claims(&extra).map_err(|e| e.to_string())?;
    let request = portcullis::jwt::TokenRequest {
        subject: sub,
        ttl: ttl.unwrap_or(config.jwt.ttl.into()),
        scope,
        client_id: None,
        extra,
    };
    let issued = issuer
        .issue(request, unix_now())
        .map_err(|e| e.to_string())?;
    println!("{}", issued.token);
    Ok(())
}

fn inspect(path: &std::path::Path, token: &str) -> Result<(), String> {
    use base64::Engine;
    let decode = |segment: &str| -> Result<serde_json::Value, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| "a segment is not base64url".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "a segment is not JSON".to_owned())
    };
    let mut segments = token.trim().split('.');
    let (Some(header), Some(payload), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err("not a compact JWS (three dot-separated segments)".to_owned());
    };
    let header = decode(header)?;
    let claims = decode(payload)?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    println!("header:\n{}", pretty(&header));
    println!("claims:\n{}", pretty(&claims));
    let now = unix_now();
    for name in ["iat", "nbf", "exp"] {
        if let Some(t) = claims.get(name).and_then(serde_json::Value::as_i64) {
            let when = u64::try_from(t)
                .ok()
                .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_else(|| "out of range".to_owned());
            let relative = if name == "exp" {
                let left = t.saturating_sub(now);
                if left > 0 {
                    format!(
                        " (expires in {})",
                        humantime::format_duration(std::time::Duration::from_secs(left as u64))
                    )
                } else {
                    format!(
                        " (expired {} ago)",
                        humantime::format_duration(std::time::Duration::from_secs(
                            now.saturating_sub(t) as u64
                        ))
                    )
                }
            } else {
                String::new()
            };
            println!("{name}: {when}{relative}");
        }
    }
    match auth(path) {
        Ok((_, auth)) => match auth.authenticator.verifier().verify(token.trim(), now) {
            Ok(_) => println!("verification with {}: valid", path.display()),
            Err(e) => println!(
                "verification with {}: INVALID: {}",
                path.display(),
                e.description()
            ),
        },
        Err(e) => println!("not verified ({e})"),
    }
    Ok(())
}

fn generate_keys(alg: &str, out: &std::path::Path, kid: Option<String>) -> Result<(), String> {
    let algorithm: portcullis::jwt::Algorithm = alg
        .parse()
        .map_err(|_| format!("--alg {alg}: use ES256, ES384, EdDSA or RS256"))?;
    let key = portcullis::jwt::generate_key(algorithm).map_err(|e| e.to_string())?;
    let kid = kid.unwrap_or_else(|| algorithm.as_str().to_ascii_lowercase());
    let private = out.join(format!("{kid}.key"));
    let public = out.join(format!("{kid}.pub"));
    for path in [&private, &public] {
        if path.exists() {
            return Err(format!("{} exists; not overwriting it", path.display()));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    write_private(&private, key.private_pem.as_bytes())
        .map_err(|e| format!("{}: {e}", private.display()))?;
    std::fs::write(&public, key.public_pem.as_bytes())
        .map_err(|e| format!("{}: {e}", public.display()))?;
    println!("wrote {} and {}", private.display(), public.display());
    println!(
        "\n[[jwt.keys]]\nkid = \"{kid}\"\nalgorithm = \"{}\"\nprivate_key = \"file:{}\"",
        algorithm.as_str(),
        private.display()
    );
    Ok(())
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

fn new_identity(out: &std::path::Path, raw: bool) -> Result<(), String> {
    use base64::Engine;
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let bytes = if raw {
        seed.to_vec()
    } else {
        portcullis::token::identity::encode_private_key(&seed).into_bytes()
    };
    write_private(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    eprintln!("wrote {} (keep it secret)", out.display());
    println!(
        "{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public.as_bytes())
    );
    Ok(())
}

/// The challenge flow of `examples/identity_client.rs`, printing only the token.
fn identity_token(
    gateway: &str,
    key: &std::path::Path,
    token_path: &str,
    scope: Option<&str>,
) -> Result<(), String> {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let seed = portcullis::token::identity::decode_private_key(&bytes)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let id = b64.encode(key.verifying_key().as_bytes());
    let base = gateway.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(format!("--gateway {gateway}: use an http:// URL"));
    }
    let token_url = format!("{base}/{}", token_path.trim_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let challenge = http_json(
            http::Request::get(format!("{token_url}/challenge?id={id}")),
            "",
        )
        .await?["challenge"]
            .as_str()
            .map(str::to_owned)
            .ok_or("the gateway sent no challenge")?;
        let signature = b64.encode(key.sign(challenge.as_bytes()).to_bytes());
        let mut form = format!(
            "grant_type={}&id={id}&challenge={challenge}&signature={signature}",
            portcullis::token::CHALLENGE_GRANT_TYPE
        );
        if let Some(scope) = scope {
            // Scope tokens are printable ASCII: escape what a form value cannot hold.
            let escaped: String = scope
                .bytes()
                .map(|b| match b {
                    b' ' => "+".to_owned(),
                    b'&' | b'=' | b'+' | b'%' | b'#' => format!("%{b:02X}"),
                    _ => char::from(b).to_string(),
                })
                .collect();
            form.push_str(&format!("&scope={escaped}"));
        }
        let request = http::Request::post(&token_url).header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        let token = http_json(request, &form).await?["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or("the gateway sent no token")?;
        println!("{token}");
        Ok(())
    })
}

/// Sends a request with `body` and returns its JSON answer, or the gateway's error.
async fn http_json(
    request: http::request::Builder,
    body: &str,
) -> Result<serde_json::Value, String> {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = request
        .body(Full::from(body.to_owned()))
        .map_err(|e| format!("bad URL: {e}"))?;
    let uri = request.uri().clone();
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(30), client.request(request))
            .await
            .map_err(|_| format!("{uri}: no answer in 30 s"))?
            .map_err(|e| format!("{uri}: {e}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{uri}: {e}"))?
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{uri}: {status} {json}"));
    }
    Ok(json)
}
