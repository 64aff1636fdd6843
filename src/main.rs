//! The `portcullis` command: serve the gateway, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: a proxy allocates and frees small buffers on every
/// request, and glibc's allocator was a measured share of a one-thread proxy's CPU.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
        Command::HashPassword => hash_password(),
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
