//! The `portcullis` command: serve the gateway, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
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

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if config.server.workers > 0 {
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
