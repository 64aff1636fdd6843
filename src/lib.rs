//! portcullis: a Koa-style, middleware-oriented API gateway on hyper and tower.
//!
//! A stack of tower layers logs each request, routes it by path prefix and proxies it
//! to an upstream, streaming bodies both ways. Each piece is a public building block
//! that any tower or axum service can reuse; [`Gateway`] assembles them from a
//! [`Config`] in the one order that the gateway uses (see `gateway.rs`).
//!
//! ```no_run
//! use portcullis::{Config, Gateway, config::ProcessSecrets};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load("config.toml".as_ref())?;
//! let gateway = Gateway::from_config(&config, &ProcessSecrets)?;
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! gateway.serve(listener, portcullis::server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

pub mod body;
pub mod config;
pub mod context;
pub mod echo;
pub mod error;
pub mod gateway;
pub mod guard;
pub mod jwt;
pub mod log;
pub mod middleware;
pub mod panic;
pub mod proxy;
pub mod request_id;
pub mod router;
pub mod server;
pub mod token;

mod body_type;
mod clock;
mod http1;
mod ready;
mod urlencoded;

pub use body::BodyParserLayer;
pub use body_type::{Body, BoxError};
pub use config::Config;
pub use context::{Claims, ClientAddr, ParsedBody, RequestId, RouteInfo};
pub use error::Error;
pub use gateway::{Gateway, GatewayService};
pub use guard::JwtGuardLayer;
pub use proxy::Proxy;
