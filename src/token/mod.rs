//! The token endpoint: OAuth 2.0 password and client-credentials grants (RFC 6749),
//! the Ed25519 challenge-response grant for private-key identities ([`challenge`]),
//! token revocation (RFC 7009), and the JWKS document.
//!
//! [`TokenEndpoint`] reads its parameters from the [`ParsedBody`](crate::ParsedBody)
//! extension, so it sits behind a body parser (the gateway puts one there). Every
//! answer, success or error, is JSON with `Cache-Control: no-store`, and no error ever
//! echoes its input. Unknown users cost the time of a wrong password (a dummy hash is
//! verified), and both get the same `invalid_grant` answer, byte for byte.

pub mod challenge;
mod client_auth;
mod endpoint;
pub mod identity;
mod jwks;
mod limit;
mod password;
mod replay;
mod revoke;

pub use challenge::{
    CHALLENGE_GRANT_TYPE, ChallengeEndpoint, ChallengeGrant, Challenges, ShortSecret,
};
pub use endpoint::{Client, Grant, TokenEndpoint, User};
pub use identity::{Identity, IdentityGrant, IdentityPolicy, InvalidIdentity};
pub use jwks::Jwks;
pub use limit::{MemoryRateLimit, RateLimit};
pub use password::{InvalidHash, PasswordHash, dummy_hash, hash_password};
pub use replay::{MemoryReplayGuard, ReplayError, ReplayGuard};
pub use revoke::RevokeEndpoint;
