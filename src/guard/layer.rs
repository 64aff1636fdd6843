//! [`JwtGuardLayer`]: how a route authenticates, and what it does with the claims.

use std::sync::Arc;

use tower::Layer;

use super::forward::ClaimHeaders;
use super::requirements::Requirements;
use super::service::JwtGuard;
use super::{AuthMode, Authenticator};

/// Verifies bearer JWTs in front of a service (RFC 6750), through the validated-token
/// cache, and passes the verified [`Claims`](crate::Claims) on as a request extension
/// (Koa's `ctx.state.user`) and, if configured, as upstream headers.
///
/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct JwtGuardLayer {
    pub(super) state: Arc<GuardState>,
}

#[derive(Clone)]
pub(super) struct GuardState {
    pub(super) authenticator: Authenticator,
    pub(super) mode: AuthMode,
    pub(super) realm: Arc<str>,
    pub(super) requirements: Requirements,
    pub(super) claim_headers: ClaimHeaders,
    pub(super) forward_token: bool,
    pub(super) cookie: Option<String>,
}

impl JwtGuardLayer {
    /// A guard that requires a valid token, with realm `portcullis`, no requirement,
    /// no claim forwarded, and `Authorization` removed before the inner service.
    pub fn new(authenticator: Authenticator) -> Self {
        Self {
            state: Arc::new(GuardState {
                authenticator,
                mode: AuthMode::Required,
                realm: "portcullis".into(),
                requirements: Requirements::new(),
                claim_headers: ClaimHeaders::new(),
                forward_token: false,
                cookie: None,
            }),
        }
    }

    fn update(mut self, f: impl FnOnce(&mut GuardState)) -> Self {
        f(Arc::make_mut(&mut self.state));
        self
    }

    /// Required (the default), optional (no token passes, a bad one does not), or
    /// public (only strips identity headers).
    pub fn with_mode(self, mode: AuthMode) -> Self {
        self.update(|s| s.mode = mode)
    }

    /// The `realm` of `WWW-Authenticate` challenges.
    pub fn with_realm(self, realm: impl Into<Arc<str>>) -> Self {
        let realm = realm.into();
        self.update(|s| s.realm = realm)
    }

    /// What a token must grant (403 `insufficient_scope` otherwise).
    pub fn with_requirements(self, requirements: Requirements) -> Self {
        self.update(|s| s.requirements = requirements)
    }

    /// Which claims become upstream headers.
    pub fn with_claim_headers(self, headers: ClaimHeaders) -> Self {
        self.update(|s| s.claim_headers = headers)
    }

    /// Keep `Authorization` for the inner service (off: it is removed).
    pub fn with_forward_token(self, forward: bool) -> Self {
        self.update(|s| s.forward_token = forward)
    }

    /// Also read the token from this cookie (for browser clients), after the header.
    pub fn with_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.update(|s| s.cookie = Some(name))
    }
}

impl<S> Layer<S> for JwtGuardLayer {
    type Service = JwtGuard<S>;

    fn layer(&self, inner: S) -> JwtGuard<S> {
        JwtGuard {
            inner,
            state: self.state.clone(),
        }
    }
}
