//! The reverse proxy: a pooled upstream client, header hygiene, streaming, upgrades.
//!
//! [`Proxy`] is a leaf service: it forwards each request to its [`Upstream`] through a
//! shared [`UpstreamClient`] pool and streams the answer back. Errors become the
//! gateway's JSON errors: 502 when the upstream is unreachable or broken, 504 when it
//! is slow, 400 when the client's own body is broken.
//!
//! ```
//! use http::{Request, StatusCode};
//! use portcullis::Body;
//! use portcullis::proxy::{Proxy, Upstream, UpstreamClient};
//! use std::time::Duration;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Nothing listens on this port: the proxy answers 502 with a JSON error naming the route.
//! let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
//! let upstream = Upstream::parse(&format!("http://{closed}/v1")).unwrap();
//! let proxy = Proxy::new(UpstreamClient::default(), upstream)
//!     .with_route_name("/api")
//!     .with_strip_prefix("/api")
//!     .with_timeout(Duration::from_secs(15));
//! let res = proxy.oneshot(Request::get("/api/users").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
//! # }
//! ```

mod client;
mod h1;
mod headers;
mod layer;
mod service;
mod upgrade;
mod upstream;

pub use client::{ClientSettings, UpstreamClient};
pub use headers::{conflicting_framing, strip_hop_by_hop};
pub use layer::{HopByHop, HopByHopLayer, HygieneFuture};
pub use service::{Proxy, ResponseFuture};
pub use upstream::{InvalidUpstream, Upstream};
