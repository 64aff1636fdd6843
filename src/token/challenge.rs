//! Ed25519 challenge-response: a user proves they hold an identity's private key by
//! signing a challenge, and gets a token with `sub` = the identity.
//!
//! # The flow
//!
//! 1. `GET /token/challenge?id=<identity>` (the identity is the base64url, no padding,
//!    of a 32-byte Ed25519 public key) answers `{"challenge": "...", "expires_in": 120}`.
//! 2. The client signs the challenge string exactly as received (its ASCII bytes) with
//!    any Ed25519 library.
//! 3. `POST /token` with `grant_type=urn:portcullis:params:oauth:grant-type:ed25519-challenge`
//!    (or the short alias `challenge`), `id`, `challenge` and `signature` (base64url of
//!    the 64-byte signature) answers a token, once per challenge.
//!
//! # Wire format of a challenge
//!
//! ```text
//! portcullis-challenge.v1.<ID>.<EXP>.<NONCE>.<TAG>
//!
//! ID    base64url of the 32-byte public key                        43 characters
//! EXP   base64url of the expiry, unix seconds, 8 bytes big-endian  11 characters
//! NONCE base64url of 32 random bytes (OS CSPRNG)                   43 characters
//! TAG   base64url of HMAC-SHA256(secret, the text before ".<TAG>") 43 characters
//! ```
//!
//! base64url is RFC 4648 §5 without padding, and only the canonical spelling is
//! accepted; a challenge is always 167 characters. The fixed prefix separates domains:
//! a signature over a challenge is useless as a signature of anything else, and nothing
//! else a key signs can pass for a challenge.
//!
//! Challenges are stateless: any gateway holding the same secret checks one without a
//! lookup, so nothing is stored per challenge and a flood of requests costs no memory.
//! What is stored is the nonce of each *redeemed* challenge, in a [`ReplayGuard`],
//! until the challenge expires: that is what makes a challenge work once.
//!
//! # What the grant checks, in order
//!
//! Malformed parameters (an identity or signature that is not base64url of 32 or 64
//! bytes) are `invalid_request`. Then, each an `invalid_grant`: the identity must be a
//! canonical, not small-order key; the challenge's MAC must verify (constant time); it
//! must name the same identity; it must not have expired (`now >= exp` is expired); the
//! signature must pass strict verification (no `S ≥ L`, no small-order or
//! non-canonical `R`); the policy must grant the identity a token; and only then is the
//! nonce consumed, so a forged signature cannot burn a victim's challenge.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, StatusCode};
use serde::Serialize;
use tower::Service;

use super::identity::{Identity, IdentityGrant, IdentityPolicy, InvalidIdentity};
use super::limit::RateLimit;
use super::replay::{MemoryReplayGuard, ReplayGuard};
use crate::body_type::Body;
use crate::clock;
use crate::context::ClientAddr;
use crate::error::{Error, OAuthError, OAuthErrorKind, no_store_json};

/// The domain-separation prefix every challenge starts with.
pub const CHALLENGE_PREFIX: &str = "portcullis-challenge.v1.";

/// The grant type of the challenge grant (`challenge` is accepted as an alias).
pub const CHALLENGE_GRANT_TYPE: &str = "urn:portcullis:params:oauth:grant-type:ed25519-challenge";

/// The shortest MAC secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

const ID_LEN: usize = 43;
const EXP_LEN: usize = 11;
const NONCE_LEN: usize = 43;
const TAG_LEN: usize = 43;
const CHALLENGE_LEN: usize =
    CHALLENGE_PREFIX.len() + ID_LEN + 1 + EXP_LEN + 1 + NONCE_LEN + 1 + TAG_LEN;

/// Issues and checks challenges: the MAC key and the lifetime.
#[derive(Clone)]
pub struct Challenges {
    key: hmac::Key,
    ttl: Duration,
}

/// A fresh challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The string the client signs.
    pub text: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A challenge that passed its checks: what the replay guard needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedChallenge {
    /// The random nonce, which identifies the challenge.
    pub nonce: [u8; 32],
    /// Its expiry, unix seconds.
    pub expires_at: i64,
}

/// Why a challenge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeError {
    /// Not a challenge of this format.
    Malformed,
    /// The MAC does not verify: forged, tampered, or from another secret.
    BadMac,
    /// Issued for another identity.
    OtherIdentity,
    /// Expired.
    Expired,
}

/// The MAC secret is shorter than [`MIN_SECRET_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortSecret;

/// `GET {token.path}/challenge?id=<identity>`: hands out challenges.
///
/// An unknown identity gets a challenge too, so the endpoint tells nothing about who is
/// enrolled (the refusal shows only at the token endpoint). Rate-limited per client
/// address when given a [`RateLimit`]. Cheap to clone.
#[derive(Clone)]
pub struct ChallengeEndpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    challenges: Challenges,
    limit: Option<Arc<dyn RateLimit>>,
}

/// The challenge grant of the token endpoint: challenges, the identity policy and the
/// replay guard. Cheap to clone.
#[derive(Clone)]
pub struct ChallengeGrant {
    challenges: Challenges,
    policy: Arc<IdentityPolicy>,
    replay: Arc<dyn ReplayGuard>,
}

#[derive(Serialize)]
struct ChallengeResponse<'a> {
    challenge: &'a str,
    expires_in: u64,
}

// === impl Challenges ===

impl Challenges {
    /// Challenges MACed with `secret` (at least 32 bytes), valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, ShortSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ShortSecret);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ttl,
        })
    }

    /// 32 random bytes, for a secret that only this process will know.
    pub fn random_secret() -> Result<[u8; 32], getrandom::Error> {
        let mut secret = [0; 32];
        getrandom::fill(&mut secret)?;
        Ok(secret)
    }

    /// How long a challenge is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new challenge for `identity`, expiring `ttl` after `now` (unix seconds).
    pub fn issue(&self, identity: &Identity, now: i64) -> Result<Challenge, getrandom::Error> {
        let mut nonce = [0; 32];
        getrandom::fill(&mut nonce)?;
        let ttl = self.ttl.as_secs().max(1);
        let exp = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        Ok(Challenge {
            text: self.compose(identity.as_bytes(), exp, &nonce),
            expires_in: ttl,
        })
    }

    fn compose(&self, id: &[u8; 32], exp: i64, nonce: &[u8; 32]) -> String {
        let mut text = String::with_capacity(CHALLENGE_LEN);
        text.push_str(CHALLENGE_PREFIX);
        URL_SAFE_NO_PAD.encode_string(id, &mut text);
        text.push('.');
        URL_SAFE_NO_PAD.encode_string(exp.to_be_bytes(), &mut text);
        text.push('.');
        URL_SAFE_NO_PAD.encode_string(nonce, &mut text);
        let tag = hmac::sign(&self.key, text.as_bytes());
        text.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut text);
        text
    }

    /// Checks that `text` is a challenge of ours, for `identity`, unexpired at `now`.
    pub fn check(
        &self,
        text: &str,
        identity: &Identity,
        now: i64,
    ) -> Result<CheckedChallenge, ChallengeError> {
        use ChallengeError::*;
        if text.len() != CHALLENGE_LEN {
            return Err(Malformed);
        }
        let (signed, tag) = text.rsplit_once('.').ok_or(Malformed)?;
        let fields = signed.strip_prefix(CHALLENGE_PREFIX).ok_or(Malformed)?;
        let mut parts = fields.split('.');
        let (Some(id), Some(exp), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Malformed);
        };
        let tag: [u8; 32] = decode(tag)?;
        hmac::verify(&self.key, signed.as_bytes(), &tag).map_err(|_| BadMac)?;
        let id: [u8; 32] = decode(id)?;
        let exp = i64::from_be_bytes(decode(exp)?);
        let nonce: [u8; 32] = decode(nonce)?;
        if id != *identity.as_bytes() {
            return Err(OtherIdentity);
        }
        if now >= exp {
            return Err(Expired);
        }
        Ok(CheckedChallenge {
            nonce,
            expires_at: exp,
        })
    }
}

/// Canonical base64url of exactly `N` bytes.
fn decode<const N: usize>(text: &str) -> Result<[u8; N], ChallengeError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(ChallengeError::Malformed)
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "not a challenge",
            Self::BadMac => "the challenge's MAC does not verify",
            Self::OtherIdentity => "the challenge was issued for another identity",
            Self::Expired => "the challenge expired",
        })
    }
}

impl std::error::Error for ChallengeError {}

impl std::fmt::Display for ShortSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the challenge secret must be at least {MIN_SECRET_LEN} bytes"
        )
    }
}

impl std::error::Error for ShortSecret {}

// === impl ChallengeEndpoint ===

impl ChallengeEndpoint {
    /// Hands out `challenges`, without a rate limit.
    pub fn new(challenges: Challenges) -> Self {
        Self {
            inner: Arc::new(EndpointInner {
                challenges,
                limit: None,
            }),
        }
    }

    /// Rate-limits requests per client address (429 with `Retry-After` beyond).
    pub fn with_rate_limit(self, limit: Arc<dyn RateLimit>) -> Self {
        Self {
            inner: Arc::new(EndpointInner {
                challenges: self.inner.challenges.clone(),
                limit: Some(limit),
            }),
        }
    }
}

impl EndpointInner {
    fn answer(&self, client: Option<IpAddr>, query: Option<&str>) -> Result<Response<Body>, Error> {
        if let (Some(limit), Some(ip)) = (&self.limit, client) {
            if let Err(wait) = limit.check(ip) {
                return Err(Error::TooManyRequests {
                    retry_after: wait.as_secs().max(1),
                });
            }
        }
        let mut ids = query
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.strip_prefix("id="));
        let (Some(id), None) = (ids.next(), ids.next()) else {
            return Err(invalid_request(
                "Exactly one id parameter (an Ed25519 public key) is required",
            ));
        };
        let identity = Identity::parse(id).map_err(|_| {
            invalid_request("The id must be the base64url of a valid Ed25519 public key")
        })?;
        let challenge = self
            .challenges
            .issue(&identity, clock::unix_now())
            .map_err(|e| {
                tracing::error!(error = %e, "no randomness for a challenge");
                Error::Internal
            })?;
        let body = ChallengeResponse {
            challenge: &challenge.text,
            expires_in: challenge.expires_in,
        };
        let json = serde_json::to_vec(&body).map_err(|_| Error::Internal)?;
        Ok(no_store_json(StatusCode::OK, json))
    }
}

impl<B> Service<Request<B>> for ChallengeEndpoint {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let client = req.extensions().get::<ClientAddr>().map(|a| a.0.ip());
        let response = self
            .inner
            .answer(client, req.uri().query())
            .unwrap_or_else(Error::into_response);
        std::future::ready(Ok(response))
    }
}

// === impl ChallengeGrant ===

impl ChallengeGrant {
    /// The grant for `policy`'s identities, with an in-memory replay guard.
    pub fn new(challenges: Challenges, policy: IdentityPolicy) -> Self {
        Self {
            challenges,
            policy: Arc::new(policy),
            replay: Arc::new(MemoryReplayGuard::new()),
        }
    }

    /// Remembers used challenges in `replay` (shared between instances, say) instead.
    pub fn with_replay_guard(mut self, replay: Arc<dyn ReplayGuard>) -> Self {
        self.replay = replay;
        self
    }

    /// Checks the grant's parameters and consumes the challenge: the identity and what
    /// its token carries.
    pub(crate) fn redeem<'a>(
        &'a self,
        id: Option<&'a str>,
        challenge: Option<&'a str>,
        signature: Option<&'a str>,
        accept: impl FnOnce(&IdentityGrant) -> Result<(), Error> + Send + 'a,
    ) -> impl Future<Output = Result<(Identity, IdentityGrant), Error>> + Send + 'a {
        // `accept` (the scope check) runs before the nonce is consumed, so a request
        // that will be refused anyway does not burn the challenge.
        let checked = self
            .check(id, challenge, signature, clock::unix_now())
            .and_then(|(identity, checked, grant)| {
                accept(&grant)?;
                Ok((identity, checked, grant))
            });
        async move {
            let (identity, checked, grant) = checked?;
            match self
                .replay
                .consume(&checked.nonce, checked.expires_at)
                .await
            {
                Ok(true) => Ok((identity, grant)),
                Ok(false) => {
                    tracing::info!(%identity, "challenge replayed");
                    Err(invalid_grant("The challenge was already used"))
                }
                Err(e) => {
                    tracing::error!(error = %e, "replay guard failed");
                    Err(Error::Internal)
                }
            }
        }
    }

    /// Everything but the replay check.
    fn check(
        &self,
        id: Option<&str>,
        challenge: Option<&str>,
        signature: Option<&str>,
        now: i64,
    ) -> Result<(Identity, CheckedChallenge, IdentityGrant), Error> {
        let (Some(id), Some(challenge), Some(signature)) = (id, challenge, signature) else {
            return Err(invalid_request(
                "The id, challenge and signature parameters are required",
            ));
        };
        let signature: [u8; 64] = (signature.len() == 86)
            .then(|| URL_SAFE_NO_PAD.decode(signature).ok())
            .flatten()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid_request("The signature must be the base64url of 64 bytes"))?;
        let identity = Identity::parse(id).map_err(|e| match e {
            InvalidIdentity::Malformed => {
                invalid_request("The id must be the base64url of a 32-byte Ed25519 public key")
            }
            _ => invalid_grant("The identity is not a valid Ed25519 public key"),
        })?;
        let checked = self
            .challenges
            .check(challenge, &identity, now)
            .map_err(|e| {
                tracing::info!(%identity, reason = %e, "challenge refused");
                match e {
                    ChallengeError::Expired => invalid_grant("The challenge expired"),
                    _ => invalid_grant("The challenge or its signature is invalid"),
                }
            })?;
        if !identity.verify(challenge.as_bytes(), &signature) {
            tracing::info!(%identity, "challenge signature refused");
            return Err(invalid_grant("The challenge or its signature is invalid"));
        }
        let Some(grant) = self.policy.grant(&identity) else {
            tracing::info!(%identity, "identity not on the allow-list");
            return Err(invalid_grant("This identity may not get a token"));
        };
        Ok((identity, checked, grant.clone()))
    }
}

impl std::fmt::Debug for ChallengeGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeGrant")
            .field("challenges", &self.challenges)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn invalid_request(description: &'static str) -> Error {
    OAuthError::new(OAuthErrorKind::InvalidRequest, description).into()
}

fn invalid_grant(description: &'static str) -> Error {
    OAuthError::new(OAuthErrorKind::InvalidGrant, description).into()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn challenges() -> Challenges {
        Challenges::new(SECRET, Duration::from_secs(120)).unwrap()
    }

    fn user(seed: u8) -> (SigningKey, Identity) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let id = Identity::from_bytes(&key.verifying_key().to_bytes()).unwrap();
        (key, id)
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn the_format_is_prefix_id_exp_nonce_tag() {
        let (_, id) = user(1);
        let c = challenges().issue(&id, NOW).unwrap();
        assert_eq!(c.expires_in, 120);
        assert_eq!(c.text.len(), CHALLENGE_LEN);
        assert_eq!(CHALLENGE_LEN, 167);
        let rest = c.text.strip_prefix("portcullis-challenge.v1.").unwrap();
        let parts: Vec<&str> = rest.split('.').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], id.to_string());
        assert_eq!(parts[1], b64(&(NOW + 120).to_be_bytes()));
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 32);
        let signed = c.text.rsplit_once('.').unwrap().0;
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, SECRET),
            signed.as_bytes(),
        );
        assert_eq!(
            parts[3],
            b64(tag.as_ref()),
            "HMAC-SHA256 of the text before it"
        );
        let checked = challenges().check(&c.text, &id, NOW).unwrap();
        assert_eq!(checked.expires_at, NOW + 120);
        assert_eq!(b64(&checked.nonce), parts[2]);
    }

    #[test]
    fn nonces_are_random_and_distinct() {
        let (_, id) = user(1);
        let c = challenges();
        let set: std::collections::HashSet<String> =
            (0..2000).map(|_| c.issue(&id, NOW).unwrap().text).collect();
        assert_eq!(set.len(), 2000);
    }

    #[test]
    fn expiry_is_exclusive_at_the_boundary() {
        let (_, id) = user(1);
        let text = challenges().issue(&id, NOW).unwrap().text;
        assert!(challenges().check(&text, &id, NOW + 119).is_ok());
        assert_eq!(
            challenges().check(&text, &id, NOW + 120),
            Err(ChallengeError::Expired)
        );
    }

    #[test]
    fn another_identity_another_secret_or_a_tampered_field_is_refused() {
        let (_, a) = user(1);
        let (_, b) = user(2);
        let text = challenges().issue(&a, NOW).unwrap().text;
        assert_eq!(
            challenges().check(&text, &b, NOW),
            Err(ChallengeError::OtherIdentity)
        );
        let other = Challenges::new(&[7; 32], Duration::from_secs(120)).unwrap();
        assert_eq!(other.check(&text, &a, NOW), Err(ChallengeError::BadMac));
        // Re-pointing the challenge at b, or pushing its expiry, breaks the MAC.
        let swapped = text.replace(&a.to_string(), &b.to_string());
        assert_eq!(
            challenges().check(&swapped, &b, NOW),
            Err(ChallengeError::BadMac)
        );
        let mut bytes = text.clone().into_bytes();
        let exp_at = CHALLENGE_PREFIX.len() + ID_LEN + 1 + 5;
        bytes[exp_at] = if bytes[exp_at] == b'A' { b'B' } else { b'A' };
        let later = String::from_utf8(bytes).unwrap();
        assert_eq!(
            challenges().check(&later, &a, NOW),
            Err(ChallengeError::BadMac)
        );
        for bad in [
            "",
            &text[1..],
            &format!("{text}A"),
            &text.replacen("v1", "v2", 1),
        ] {
            assert!(challenges().check(bad, &a, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert!(Challenges::new(&[1; 31], Duration::from_secs(1)).is_err());
    }

    fn grant(policy: IdentityPolicy) -> ChallengeGrant {
        ChallengeGrant::new(challenges(), policy)
    }

    fn code(e: Error) -> &'static str {
        e.code()
    }

    #[test]
    fn the_grant_checks_signature_then_policy_then_replay() {
        let (key, id) = user(1);
        let g = grant(IdentityPolicy::open(IdentityGrant::default()));
        let text = g.challenges.issue(&id, NOW).unwrap().text;
        let sig = b64(&key.sign(text.as_bytes()).to_bytes());
        let idt = id.to_string();
        let check = |sig: &str| g.check(Some(&idt), Some(&text), Some(sig), NOW);
        assert!(check(&sig).is_ok());
        let (other_key, _) = user(2);
        let wrong = b64(&other_key.sign(text.as_bytes()).to_bytes());
        assert_eq!(code(check(&wrong).unwrap_err()), "invalid_grant");
        assert_eq!(code(check(&sig[1..]).unwrap_err()), "invalid_request");
        assert_eq!(
            code(check(&format!("{sig}A")).unwrap_err()),
            "invalid_request"
        );
        assert_eq!(
            code(
                g.check(Some("!"), Some(&text), Some(&sig), NOW)
                    .unwrap_err()
            ),
            "invalid_request"
        );
        assert_eq!(
            code(g.check(Some(&idt), None, Some(&sig), NOW).unwrap_err()),
            "invalid_request"
        );
        let closed = grant(IdentityPolicy::allowlist());
        let text2 = closed.challenges.issue(&id, NOW).unwrap().text;
        let sig2 = b64(&key.sign(text2.as_bytes()).to_bytes());
        assert_eq!(
            code(
                closed
                    .check(Some(&idt), Some(&text2), Some(&sig2), NOW)
                    .unwrap_err()
            ),
            "invalid_grant"
        );
    }

    #[test]
    fn a_garbage_signature_does_not_burn_the_challenge() {
        let (key, id) = user(1);
        let g = grant(IdentityPolicy::open(IdentityGrant::default()));
        let text = g.challenges.issue(&id, clock::unix_now()).unwrap().text;
        let idt = id.to_string();
        let garbage = b64(&[0x11; 64]);
        let run = |sig: String| {
            let g = g.clone();
            let (idt, text) = (idt.clone(), text.clone());
            futures_util::FutureExt::now_or_never(async move {
                g.redeem(Some(&idt), Some(&text), Some(&sig), |_| Ok(()))
                    .await
            })
            .unwrap()
        };
        assert!(run(garbage).is_err());
        let good = b64(&key.sign(text.as_bytes()).to_bytes());
        assert!(
            run(good.clone()).is_ok(),
            "the real owner still gets a token"
        );
        assert_eq!(
            code(run(good).unwrap_err()),
            "invalid_grant",
            "but only once"
        );
    }

    /// ed25519-speccheck `cases.txt` (SECURITY_CASES §12.1): a strict verifier accepts
    /// only case 3. Keys of small order or non-canonical encoding never become
    /// identities; the others are verified strictly.
    #[test]
    fn speccheck_cases_only_case_3_is_accepted() {
        let cases = [
            (
                "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
                "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
                "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
                "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
                "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            ),
            (
                "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
                "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
                "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
            ),
            (
                "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
                "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
                "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
            ),
            (
                "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
                "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
                "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
            ),
            (
                "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
                "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
                "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
            ),
            (
                "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
                "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
                "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
            ),
            (
                "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
                "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
                "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
            ),
            (
                "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
                "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
            ),
            (
                "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
                "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
            ),
            (
                "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            ),
            (
                "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
            ),
        ];
        let accepted: Vec<usize> = cases
            .iter()
            .enumerate()
            .filter(|(_, (msg, pbk, sig))| {
                let pbk: [u8; 32] = hex(pbk).try_into().unwrap();
                let sig: [u8; 64] = hex(sig).try_into().unwrap();
                Identity::from_bytes(&pbk).is_ok_and(|id| id.verify(&hex(msg), &sig))
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(accepted, [3]);
        // Which refusals come from the key check alone: small-order A (0, 1) and the
        // non-canonical A (10, 11).
        for i in [0, 1, 10, 11] {
            let pbk: [u8; 32] = hex(cases[i].1).try_into().unwrap();
            assert!(Identity::from_bytes(&pbk).is_err(), "case {i}");
        }
    }
}
