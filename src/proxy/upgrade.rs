//! HTTP/1.1 `Upgrade` tunnels (WebSocket), spliced byte for byte once both sides agree.

use std::sync::Arc;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::Upgraded;
use crate::context::OnUpgrade;

/// The client side of an upgrade: from the gateway's HTTP/1 server, or from hyper's
/// (when the layers are embedded in a hyper or axum server).
#[derive(Debug)]
pub(super) enum ClientUpgrade {
    Gateway(OnUpgrade),
    Hyper(hyper::upgrade::OnUpgrade),
}

impl ClientUpgrade {
    /// The request's claim on its connection, if the server that read it gave one.
    pub(super) fn take(extensions: &mut http::Extensions) -> Option<Self> {
        if let Some(on_upgrade) = extensions.remove::<OnUpgrade>() {
            return Some(Self::Gateway(on_upgrade));
        }
        extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .map(Self::Hyper)
    }
}

/// Once the client's connection is upgraded too, copies bytes both ways until either
/// side closes, starting with what each side sent right after its head. Runs as its own
/// task: a tunnel outlives the request future that set it up. It holds the upstream
/// connection's slot while it lasts.
pub(super) fn spawn_tunnel(client: ClientUpgrade, upstream: Upgraded, route: Arc<str>) {
    tokio::spawn(async move {
        let Upgraded {
            io: upstream,
            read_ahead,
            slot: _slot,
        } = upstream;
        let ended = match client {
            ClientUpgrade::Gateway(on_upgrade) => match on_upgrade.await {
                Ok(client) => {
                    let sides = (client.io, client.read_ahead);
                    tunnel(sides, (upstream, read_ahead)).await
                }
                Err(e) => Err(e.into()),
            },
            ClientUpgrade::Hyper(on_upgrade) => match on_upgrade.await {
                Ok(client) => {
                    tunnel((TokioIo::new(client), Bytes::new()), (upstream, read_ahead)).await
                }
                Err(e) => Err(e.into()),
            },
        };
        match ended {
            Ok((up, down)) => tracing::debug!(%route, up, down, "tunnel closed"),
            Err(e) => tracing::debug!(%route, error = %e, "tunnel ended with an error"),
        }
    });
}

/// Each side with the bytes it sent after its head, already read.
async fn tunnel<C>(
    (mut client, client_ahead): (C, Bytes),
    (mut upstream, upstream_ahead): (TcpStream, Bytes),
) -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    upstream.write_all(&client_ahead).await?;
    client.write_all(&upstream_ahead).await?;
    Ok(tokio::io::copy_bidirectional(&mut client, &mut upstream).await?)
}
