//! Verification through the cache, plus revocation: what the guard and the revocation
//! endpoint share.

use std::fmt;
use std::sync::Arc;

use super::{Claims, RevocationError, RevocationStore, TokenCache, Verifier, VerifyError};

/// Verifies tokens once per token (the [`TokenCache`]) and knows which were revoked.
///
/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    cache: TokenCache,
    revocations: Arc<dyn RevocationStore>,
}

/// Why a token could not be revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeError {
    /// The token does not verify (a forged token revokes nothing).
    Invalid(VerifyError),
    /// The token has no `jti`, so it cannot be named in the deny list.
    NoJti,
    /// The store failed.
    Store(RevocationError),
}

impl fmt::Display for RevokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => f.write_str(e.description()),
            Self::NoJti => f.write_str("the token has no jti"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RevokeError {}

impl Authenticator {
    /// Combines a verifier, its cache and the revocation store.
    pub fn new(
        verifier: Verifier,
        cache: TokenCache,
        revocations: Arc<dyn RevocationStore>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                verifier,
                cache,
                revocations,
            }),
        }
    }

    /// Verifies `token` at `now` (unix seconds): a cache hit re-checks the time only;
    /// a miss checks the signature and claims and caches the result on success.
    /// Revocation is not checked here (see [`Authenticator::revocations`]): the store
    /// may need I/O, which the caller decides how to wait for.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Claims>, VerifyError> {
        let inner = &*self.inner;
        inner
            .cache
            .get_or_verify(token, now, || inner.verifier.verify(token, now))
    }

    /// [`Authenticator::verify`] for a token that [`Authenticator::cached`] just found
    /// missing: checks the signature and claims and caches the result on success,
    /// without looking the token up a second time.
    pub fn verify_uncached(&self, token: &str, now: i64) -> Result<Arc<Claims>, VerifyError> {
        let inner = &*self.inner;
        inner
            .cache
            .verify_and_cache(token, now, || inner.verifier.verify(token, now))
    }

    /// The claims of `token` if it is in the cache, its time re-checked at `now`;
    /// `None` if it is not (see [`TokenCache::get`]). Revocation is not checked.
    pub fn cached(&self, token: &str, now: i64) -> Option<Result<Arc<Claims>, VerifyError>> {
        self.inner.cache.get(token, now)
    }

    /// The deny list of revoked `jti`s.
    pub fn revocations(&self) -> &Arc<dyn RevocationStore> {
        &self.inner.revocations
    }

    /// The cache of verified tokens.
    pub fn cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// The verifier behind the cache.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// Puts a valid token's `jti` on the deny list until its `exp`, and evicts the token
    /// from this instance's cache.
    pub async fn revoke(&self, token: &str, now: i64) -> Result<(), RevokeError> {
        let claims = self.verify(token, now).map_err(RevokeError::Invalid)?;
        let jti = claims.jti.as_deref().ok_or(RevokeError::NoJti)?;
        self.inner
            .revocations
            .revoke(jti, claims.exp)
            .await
            .map_err(RevokeError::Store)?;
        self.inner.cache.invalidate(token);
        Ok(())
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Issuer, KeySet, MemoryRevocationStore, TokenRequest, Validation};
    use super::*;

    fn setup() -> (Issuer, Authenticator) {
        let keys = KeySet::new(vec![super::super::test_support::a1_spec("k")], Some("k")).unwrap();
        let issuer = Issuer::new(keys.clone(), "iss".into(), "aud".into()).unwrap();
        let verifier = Verifier::new(keys, Validation::new("iss", "aud"));
        let auth = Authenticator::new(
            verifier,
            TokenCache::new(100, Duration::from_secs(60)),
            Arc::new(MemoryRevocationStore::new(100)),
        );
        (issuer, auth)
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[tokio::test]
    async fn revoking_puts_the_jti_on_the_deny_list_and_evicts_the_token() {
        let (issuer, auth) = setup();
        let request = TokenRequest {
            subject: "alice".into(),
            ttl: Duration::from_secs(60),
            ..TokenRequest::default()
        };
        let token = issuer.issue(request, now()).unwrap().token;
        let claims = auth.verify(&token, now()).unwrap();
        assert_eq!(auth.cache().stats().misses, 1);
        auth.revoke(&token, now()).await.unwrap();
        let jti = claims.jti.as_deref().unwrap();
        assert!(auth.revocations().is_revoked(jti).await);
        auth.verify(&token, now()).unwrap();
        assert_eq!(
            auth.cache().stats().misses,
            2,
            "the token was evicted from the cache"
        );
    }

    #[tokio::test]
    async fn a_forged_token_revokes_nothing() {
        let (_, auth) = setup();
        let err = auth.revoke("a.b.c", now()).await.unwrap_err();
        assert!(matches!(err, RevokeError::Invalid(_)));
        assert!(auth.revocations().is_empty());
    }
}
