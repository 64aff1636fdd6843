//! HTTP/1.1 `Upgrade` tunnels (WebSocket), spliced byte for byte once both sides agree.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::client::Slot;

/// Once the client's and the upstream's connections are both upgraded, copies bytes
/// both ways until either side closes. Runs as its own task: a tunnel outlives the
/// request future that set it up. It holds the upstream connection's `slot` while it
/// lasts.
pub(super) fn spawn_tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    route: std::sync::Arc<str>,
    slot: Slot,
) {
    tokio::spawn(async move {
        let _slot = slot;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(%route, error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(%route, up, down, "tunnel closed"),
            Err(e) => tracing::debug!(%route, error = %e, "tunnel ended with an error"),
        }
    });
}
