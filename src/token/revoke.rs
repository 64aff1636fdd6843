//! `POST /token/revoke` (RFC 7009): a token's `jti` goes on the deny list until it
//! expires, and the token leaves the cache.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response, StatusCode};
use tower::Service;

use crate::body_type::Body;
use crate::context::ParsedBody;
use crate::error::{Error, OAuthError, OAuthErrorKind, no_store_json};
use crate::jwt::{Authenticator, RevokeError};

/// Revokes the access token given as the `token` parameter.
///
/// Authentication is the token itself: only whoever holds a valid token can revoke it,
/// which is what a logout needs. As RFC 7009 §2.2 says, an invalid or unknown token is
/// answered 200 too (there is nothing left to revoke), so the endpoint tells a prober
/// nothing. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RevokeEndpoint {
    authenticator: Authenticator,
}

impl RevokeEndpoint {
    /// Revokes through `authenticator`'s store and cache.
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

impl Service<Request<Body>> for RevokeEndpoint {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let token = match req.extensions().get::<ParsedBody>() {
                Some(ParsedBody::Json(v)) => {
                    v.get("token").and_then(|t| t.as_str()).map(str::to_owned)
                }
                Some(body) => body.form_field("token").map(str::to_owned),
                None => None,
            };
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                let error = OAuthError::new(
                    OAuthErrorKind::InvalidRequest,
                    "The token parameter is required",
                );
                return Ok(Error::from(error).into_response());
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            match authenticator.revoke(&token, now).await {
                Ok(()) => tracing::info!("token revoked"),
                Err(RevokeError::Store(e)) => {
                    tracing::error!(error = %e, "revocation store failed");
                    return Ok(Error::Internal.into_response());
                }
                Err(e) => tracing::debug!(reason = %e, "nothing to revoke"),
            }
            Ok(no_store_json(StatusCode::OK, b"{}".to_vec()))
        })
    }
}
