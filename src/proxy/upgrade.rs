//! HTTP/1.1 `Upgrade` tunnels (WebSocket), spliced byte for byte once both sides agree.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::client::Upgraded;

/// Once the client's connection is upgraded too, copies bytes both ways until either
/// side closes, starting with what the upstream sent right after its `101`. Runs as
/// its own task: a tunnel outlives the request future that set it up. It holds the
/// upstream connection's slot while it lasts.
pub(super) fn spawn_tunnel(client: OnUpgrade, upstream: Upgraded, route: std::sync::Arc<str>) {
    tokio::spawn(async move {
        let Upgraded {
            io: mut upstream,
            read_ahead,
            slot: _slot,
        } = upstream;
        let mut client = match client.await {
            Ok(client) => TokioIo::new(client),
            Err(e) => {
                tracing::warn!(%route, error = %e, "upgrade failed");
                return;
            }
        };
        if let Err(e) = client.write_all(&read_ahead).await {
            tracing::debug!(%route, error = %e, "tunnel ended with an error");
            return;
        }
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(%route, up, down, "tunnel closed"),
            Err(e) => tracing::debug!(%route, error = %e, "tunnel ended with an error"),
        }
    });
}
