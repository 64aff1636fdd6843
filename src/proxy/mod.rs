//! The reverse proxy: a pooled upstream client, header hygiene, streaming, upgrades.
//!
//! [`Proxy`] is a leaf service: it forwards each request to its [`Upstream`] through a
//! shared [`UpstreamClient`] pool and streams the answer back. Errors become the
//! gateway's JSON errors: 502 when the upstream is unreachable or broken, 504 when it
//! is slow, 400 when the client's own body is broken.
//!
//! ```
//! use portcullis::proxy::{Proxy, Upstream, UpstreamClient};
//! use std::time::Duration;
//!
//! let upstream = Upstream::parse("http://127.0.0.1:3000/v1").unwrap();
//! let proxy = Proxy::new(UpstreamClient::default(), upstream)
//!     .with_strip_prefix("/api")
//!     .with_timeout(Duration::from_secs(15));
//! # let _ = proxy;
//! ```

mod client;
mod headers;
mod layer;
mod service;
mod upgrade;
mod upstream;

pub use client::{ClientSettings, UpstreamClient};
pub use headers::{conflicting_framing, set_forwarded, strip_hop_by_hop};
pub use layer::{HopByHop, HopByHopLayer, HygieneFuture};
pub use service::{Proxy, ResponseFuture};
pub use upstream::{InvalidUpstream, Upstream};
