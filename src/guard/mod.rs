//! `JwtGuardLayer`: bearer JWT verification in front of a service, RFC 6750 style.
//!
//! For each request the guard:
//! 1. removes every client copy of the identity headers it sets (in any spelling),
//! 2. reads the token from `Authorization: Bearer` (or a configured cookie; never the
//!    query string),
//! 3. validates it through the cache ([`Authenticator`]): a signature is checked once
//!    per token, and a cached token still has its `exp`/`nbf` re-checked and its `jti`
//!    looked up in the revocation list,
//! 4. checks the route's [`Requirements`] (every request: authorisation is never cached),
//! 5. sets the configured claim headers ([`ClaimHeaders`]), drops `Authorization`
//!    unless told to forward it, and puts the [`Claims`] in the request
//!    extensions, Koa's `ctx.state.user`.
//!
//! | what | answer (RFC 6750 §3) |
//! |---|---|
//! | no token, or another scheme | 401, `WWW-Authenticate: Bearer realm="..."` |
//! | malformed `Authorization`, two of them | 400, `error="invalid_request"` |
//! | bad, expired, revoked token | 401, `error="invalid_token"` (expired says "The access token expired") |
//! | role or scope missing | 403, `error="insufficient_scope"` |
//!
//! Nothing reaches the inner service on any refusal.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use http::{Request, Response, StatusCode};
//! use portcullis::jwt::*;
//! use portcullis::{Body, Claims, JwtGuardLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = KeyMaterial::Secret(b"an-hs256-secret-of-32-bytes-or-more".to_vec());
//! let keys = KeySet::new(vec![KeySpec { kid: "k".into(), algorithm: Algorithm::HS256, material: secret }], Some("k"))?;
//! let auth = Authenticator::new(
//!     Verifier::new(keys.clone(), Validation::new("me", "api")),
//!     TokenCache::new(1000, Duration::from_secs(3600)),
//!     Arc::new(MemoryRevocationStore::new(1000)),
//! );
//! let svc = ServiceBuilder::new().layer(JwtGuardLayer::new(auth)).service(service_fn(|req: Request<Body>| async move {
//!     let sub = req.extensions().get::<Arc<Claims>>().map(|c| c.sub.clone()).unwrap_or_default();
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::from(sub)))
//! }));
//!
//! let res = svc.clone().oneshot(Request::get("/").body(Body::empty())?).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//!
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
//! let request = TokenRequest { subject: "alice".into(), ttl: Duration::from_secs(60), ..Default::default() };
//! let token = Issuer::new(keys, "me".into(), "api".into())?.issue(request, now)?.token;
//! let req = Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty())?;
//! assert_eq!(svc.oneshot(req).await?.status(), StatusCode::OK);
//! # Ok(()) }
//! ```

mod bearer;
mod forward;
mod layer;
mod requirements;
mod service;

use std::borrow::Cow;

use serde_json::Value;

pub use crate::jwt::Authenticator;
pub use forward::ClaimHeaders;
pub use layer::JwtGuardLayer;
pub use requirements::Requirements;
pub use service::{JwtGuard, ResponseFuture};

use crate::context::Claims;

/// How a route treats tokens (`auth` in config.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// A valid token is required.
    #[default]
    Required,
    /// No token passes without claims; a token that is present must be valid.
    Optional,
    /// No check; identity headers are still stripped.
    Public,
}

/// A claim's value by name, registered claims included.
fn claim<'a>(claims: &'a Claims, name: &str) -> Option<Cow<'a, Value>> {
    claims.get(name)
}
