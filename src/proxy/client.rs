//! The pooled HTTP client that talks to upstreams.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body_type::Body;

/// How the gateway connects to upstreams.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientSettings {
    /// Give up connecting after this long (the legacy client has no default: forever).
    pub connect_timeout: Duration,
    /// Close pooled connections idle this long. Keep it under the upstream's own
    /// keep-alive (Node: 5 s, nginx: 75 s), or a request races the upstream's close.
    pub pool_idle_timeout: Duration,
    /// The most idle connections kept per upstream.
    pub pool_max_idle_per_host: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(4),
            pool_max_idle_per_host: 512,
        }
    }
}

/// A keep-alive connection pool to upstreams, shared by every route.
///
/// Cheap to clone: the pool is shared.
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    pub(super) inner: Client<HttpConnector, Body>,
}

impl UpstreamClient {
    /// Builds the pool. Needs a Tokio runtime when requests are sent.
    pub fn new(settings: &ClientSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            // The proxy sets Host itself (the upstream's, or the client's with preserve_host).
            .set_host(false)
            .build(connector);
        Self { inner }
    }
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new(&ClientSettings::default())
    }
}
