//! [`JwtGuard`]: the per-request check. Synchronous on the hot path: a cache hit or a
//! signature check, then the inner service's own future, with no allocation of ours.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower::Service;

use super::AuthMode;
use super::bearer::{Credentials, extract, is_b64token};
use super::layer::GuardState;
use crate::clock;
use crate::context::Claims;
use crate::error::{Error, ErrorOr};

/// The service of [`JwtGuardLayer`](super::JwtGuardLayer).
#[derive(Clone)]
pub struct JwtGuard<S> {
    pub(super) inner: S,
    pub(super) state: Arc<GuardState>,
}

/// The response future of [`JwtGuard`]: the inner future, or the refusal (and, only
/// with a networked revocation store, a boxed wait for its answer).
pub type ResponseFuture<F, R> = ErrorOr<F, R>;

impl<S, B, ResBody> Service<Request<B>> for JwtGuard<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let state = &*self.state;
        // Identity headers are the gateway's to set, on every route, guarded or not.
        state.claim_headers.strip(req.headers_mut());
        if state.mode == AuthMode::Public {
            return ErrorOr::future(self.inner.call(req));
        }

        // RFC 6750 §2.3 tokens in the URL are never read (RFC 9700 §4.3.2), and one sent
        // there too must not reach the upstream: with a header token it is two methods
        // at once (§3.1 invalid_request); on an optional route it is refused rather than
        // passed on without claims.
        let url_token = req.uri().query().is_some_and(has_url_token);
        let credentials = extract(req.headers(), state.cookie.as_deref());
        if url_token && (credentials != Credentials::None || state.mode == AuthMode::Optional) {
            return ErrorOr::error(Error::MalformedCredentials {
                realm: state.realm.clone(),
                description: "Access tokens are not accepted in the URL",
            });
        }
        let verified = match credentials {
            Credentials::Token(token) => {
                let now = clock::unix_now();
                match state.authenticator.cached(token, now) {
                    Some(verified) => verified,
                    // The syntax check is for tokens the cache does not hold (bearer.rs).
                    None if !is_b64token(token.as_bytes()) => {
                        return ErrorOr::error(malformed(state));
                    }
                    None => state.authenticator.verify_uncached(token, now),
                }
            }
            Credentials::None if state.mode == AuthMode::Optional => {
                return ErrorOr::future(self.inner.call(req));
            }
            Credentials::None => {
                return ErrorOr::error(Error::MissingToken {
                    realm: state.realm.clone(),
                });
            }
            Credentials::Malformed => return ErrorOr::error(malformed(state)),
        };
        let claims = match verified {
            Ok(claims) => claims,
            Err(e) => {
                tracing::debug!(reason = e.description(), "token refused");
                return ErrorOr::error(invalid_token(state, e.description()));
            }
        };

        // The revocation list: skipped while empty; the in-memory store answers at once,
        // a networked one is awaited before the request goes on.
        let revocations = state.authenticator.revocations();
        if let (false, Some(jti)) = (revocations.is_empty(), claims.jti.as_deref()) {
            match revocations.is_revoked(jti).now() {
                Some(true) => return ErrorOr::error(invalid_token(state, REVOKED)),
                Some(false) => {}
                None => {
                    let clone = self.inner.clone();
                    let inner = std::mem::replace(&mut self.inner, clone);
                    let state = self.state.clone();
                    return ErrorOr::boxed(Box::pin(async move {
                        let store = state.authenticator.revocations();
                        let revoked = match &claims.jti {
                            Some(jti) => store.is_revoked(jti).await,
                            None => false,
                        };
                        if revoked {
                            return Ok(invalid_token(&state, REVOKED).into_response());
                        }
                        match admit(&state, req, claims) {
                            Ok(req) => tower::ServiceExt::oneshot(inner, req).await,
                            Err(error) => Ok(error.into_response()),
                        }
                    }));
                }
            }
        }
        match admit(state, req, claims) {
            Ok(req) => ErrorOr::future(self.inner.call(req)),
            Err(error) => ErrorOr::error(error),
        }
    }
}

const REVOKED: &str = "The access token was revoked";

/// Whether the query has an `access_token` parameter.
fn has_url_token(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("access_token"))
}

/// Bearer credentials that are not `"Bearer" 1*SP b64token`, or two of them (RFC 6750
/// §3.1 invalid_request).
fn malformed(state: &GuardState) -> Error {
    Error::MalformedCredentials {
        realm: state.realm.clone(),
        description: "The Authorization header is not a single bearer token",
    }
}

fn invalid_token(state: &GuardState, description: &'static str) -> Error {
    Error::InvalidToken {
        realm: state.realm.clone(),
        description,
    }
}

/// The checks after authentication: the route's requirements (on every request), then
/// the claim headers, the token's removal, and the claims as an extension.
fn admit<B>(
    state: &GuardState,
    mut req: Request<B>,
    claims: Arc<Claims>,
) -> Result<Request<B>, Error> {
    if !state.requirements.allows(&claims) {
        return Err(Error::InsufficientScope {
            realm: state.realm.clone(),
            scope: state.requirements.scope_hint.clone(),
        });
    }
    if state
        .claim_headers
        .apply(&claims, req.headers_mut())
        .is_err()
    {
        return Err(invalid_token(
            state,
            "The access token has a claim that cannot be forwarded",
        ));
    }
    if !state.forward_token {
        req.headers_mut().remove(AUTHORIZATION);
    }
    req.extensions_mut().insert(claims);
    Ok(req)
}
