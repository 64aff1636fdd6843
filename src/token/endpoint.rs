//! [`TokenEndpoint`]: the OAuth 2.0 token endpoint (RFC 6749 §4.3, §4.4, §5).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};
use tower::Service;

use super::challenge::{CHALLENGE_GRANT_TYPE, ChallengeGrant};
use super::client_auth::{ClientAuthError, ClientCredentials, credentials};
use super::limit::RateLimit;
use super::password::{PasswordHash, dummy_hash};
use crate::body_type::Body;
use crate::clock;
use crate::context::{ClientAddr, ParsedBody};
use crate::error::{Error, OAuthError, OAuthErrorKind, no_store_json};
use crate::jwt::{Issuer, TokenRequest};

/// The longest password accepted; longer ones are refused before any hashing.
const MAX_PASSWORD: usize = 1024;

/// A user of the password grant.
#[derive(Debug, Clone)]
pub struct User {
    /// The stored hash of the password.
    pub password_hash: PasswordHash,
    /// Claims added to this user's tokens (`user_id`, `role`, ...).
    pub claims: Map<String, Value>,
    /// The scopes this user may be granted.
    pub scope: Vec<String>,
    /// A token lifetime for this user instead of the default.
    pub ttl: Option<Duration>,
}

/// A client of the client-credentials grant (and an optional authenticator of the
/// password grant).
#[derive(Debug, Clone)]
pub struct Client {
    /// The stored hash of the client secret.
    pub secret_hash: PasswordHash,
    /// The scopes this client may be granted.
    pub scope: Vec<String>,
    /// Claims added to this client's tokens.
    pub claims: Map<String, Value>,
}

/// The grant types an endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `password` (RFC 6749 §4.3).
    Password,
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// The Ed25519 challenge-response grant of private-key identities:
    /// [`CHALLENGE_GRANT_TYPE`] or its alias `challenge` (see [`super::challenge`]).
    Challenge,
}

/// Issues access tokens for users and clients.
///
/// It reads its parameters from the [`ParsedBody`] extension (form, as RFC 6749 says,
/// or JSON, as the seed apps send), so a body parser must run in front of it. Password
/// and secret checks run on the blocking pool. Every answer carries
/// `Cache-Control: no-store`. Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct TokenEndpoint {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    issuer: Issuer,
    ttl: Duration,
    users: HashMap<String, User>,
    clients: HashMap<String, Client>,
    grants: HashSet<Grant>,
    limit: Option<Arc<dyn RateLimit>>,
    basic_realm: Arc<str>,
    challenge: Option<ChallengeGrant>,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

impl TokenEndpoint {
    /// An endpoint issuing tokens of `ttl` through `issuer`, with no user, no client and
    /// both grants enabled.
    pub fn new(issuer: Issuer, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                issuer,
                ttl,
                users: HashMap::new(),
                clients: HashMap::new(),
                grants: [Grant::Password, Grant::ClientCredentials]
                    .into_iter()
                    .collect(),
                limit: None,
                basic_realm: "portcullis".into(),
                challenge: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Adds a user of the password grant.
    pub fn with_user(mut self, username: impl Into<String>, user: User) -> Self {
        self.inner_mut().users.insert(username.into(), user);
        self
    }

    /// Adds a client.
    pub fn with_client(mut self, client_id: impl Into<String>, client: Client) -> Self {
        self.inner_mut().clients.insert(client_id.into(), client);
        self
    }

    /// Answers only these grant types (others: `unsupported_grant_type`).
    pub fn with_grants(mut self, grants: impl IntoIterator<Item = Grant>) -> Self {
        self.inner_mut().grants = grants.into_iter().collect();
        self
    }

    /// Rate-limits attempts per client address (429 with `Retry-After` beyond).
    pub fn with_rate_limit(mut self, limit: Arc<dyn RateLimit>) -> Self {
        self.inner_mut().limit = Some(limit);
        self
    }

    /// Answers the challenge grant of private-key identities (and enables it).
    pub fn with_challenge_grant(mut self, grant: ChallengeGrant) -> Self {
        let inner = self.inner_mut();
        inner.challenge = Some(grant);
        inner.grants.insert(Grant::Challenge);
        self
    }

    /// The realm of the `WWW-Authenticate: Basic` challenge of `invalid_client`.
    pub fn with_basic_realm(mut self, realm: impl Into<Arc<str>>) -> Self {
        self.inner_mut().basic_realm = realm.into();
        self
    }
}

impl Service<Request<Body>> for TokenEndpoint {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            Ok(match inner.token(req).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            })
        })
    }
}

fn invalid_request(description: &'static str) -> Error {
    OAuthError::new(OAuthErrorKind::InvalidRequest, description).into()
}

/// The request parameters: each at most once, empty values treated as omitted.
struct Params(HashMap<String, String>);

impl Params {
    fn from_body(body: Option<&ParsedBody>) -> Result<Self, Error> {
        let mut map = HashMap::new();
        match body {
            Some(ParsedBody::Form(pairs)) => {
                for (name, value) in pairs {
                    if map.insert(name.clone(), value.clone()).is_some() {
                        return Err(invalid_request("A parameter is repeated"));
                    }
                }
            }
            Some(ParsedBody::Json(Value::Object(object))) => {
                for (name, value) in object {
                    match value {
                        Value::String(s) => {
                            map.insert(name.clone(), s.clone());
                        }
                        Value::Null => {}
                        _ => return Err(invalid_request("Parameters must be strings")),
                    }
                }
            }
            _ => {
                return Err(invalid_request(
                    "The request must have an application/x-www-form-urlencoded or JSON body",
                ));
            }
        }
        map.retain(|_, v| !v.is_empty());
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl Inner {
    async fn token(self: Arc<Self>, req: Request<Body>) -> Result<Response<Body>, Error> {
        if let (Some(limit), Some(addr)) = (&self.limit, req.extensions().get::<ClientAddr>()) {
            if let Err(wait) = limit.check(addr.0.ip()) {
                return Err(Error::TooManyRequests {
                    retry_after: wait.as_secs().max(1),
                });
            }
        }
        // RFC 6749 §2.3.1, §3.2: credentials never travel in the URI.
        if let Some(query) = req.uri().query() {
            let secret_in_url = query.split('&').any(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                [
                    "password",
                    "client_secret",
                    "username",
                    "client_id",
                    "grant_type",
                ]
                .contains(&name)
            });
            if secret_in_url {
                return Err(invalid_request(
                    "Token parameters must not be sent in the URL",
                ));
            }
        }
        let params = Params::from_body(req.extensions().get::<ParsedBody>())?;
        let grant = match params.get("grant_type") {
            None => return Err(invalid_request("The grant_type parameter is missing")),
            Some("password") => Grant::Password,
            Some("client_credentials") => Grant::ClientCredentials,
            Some(CHALLENGE_GRANT_TYPE | "challenge") => Grant::Challenge,
            Some(_) => return Err(unsupported_grant()),
        };
        if !self.grants.contains(&grant) {
            return Err(unsupported_grant());
        }
        let client = self
            .authenticate_client(req.headers(), &params, grant == Grant::ClientCredentials)
            .await?;

        let (subject, allowed, claims, ttl, client_id) = match grant {
            Grant::Password => {
                let user = self.authenticate_user(&params).await?;
                let (name, user) = user;
                let client_id = client.as_ref().map(|(id, _)| id.clone());
                (
                    name,
                    user.scope.clone(),
                    user.claims.clone(),
                    user.ttl,
                    client_id,
                )
            }
            Grant::ClientCredentials => {
                let Some((id, client)) = client else {
                    return Err(OAuthError::invalid_client(self.basic_realm.clone()).into());
                };
                (
                    id.clone(),
                    client.scope.clone(),
                    client.claims.clone(),
                    None,
                    Some(id),
                )
            }
            Grant::Challenge => {
                let Some(challenge) = &self.challenge else {
                    return Err(unsupported_grant());
                };
                let (identity, grant) = challenge
                    .redeem(
                        params.get("id"),
                        params.get("challenge"),
                        params.get("signature"),
                        |grant| grant_scope(params.get("scope"), &grant.scope).map(|_| ()),
                    )
                    .await?;
                let client_id = client.as_ref().map(|(id, _)| id.clone());
                (
                    identity.to_string(),
                    grant.scope,
                    grant.claims,
                    None,
                    client_id,
                )
            }
        };
        let scope = grant_scope(params.get("scope"), &allowed)?;
        let issued = self
            .issuer
            .issue(
                TokenRequest {
                    subject,
                    ttl: ttl.unwrap_or(self.ttl),
                    scope: scope.clone(),
                    client_id,
                    extra: claims,
                },
                clock::unix_now(),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "signing a token failed");
                Error::Internal
            })?;
        let body = TokenResponse {
            access_token: &issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: scope.as_deref(),
        };
        let json = serde_json::to_vec(&body).map_err(|_| Error::Internal)?;
        Ok(no_store_json(StatusCode::OK, json))
    }

    /// Checks the client's credentials, if any; `required` for client_credentials.
    async fn authenticate_client(
        &self,
        headers: &HeaderMap,
        params: &Params,
        required: bool,
    ) -> Result<Option<(String, Client)>, Error> {
        let invalid_client = || Error::from(OAuthError::invalid_client(self.basic_realm.clone()));
        let presented = credentials(
            headers,
            params.get("client_id"),
            params.get("client_secret"),
        )
        .map_err(|e| match e {
            ClientAuthError::BadBasic => invalid_client(),
            ClientAuthError::TwoMethods => invalid_request("Use one client authentication method"),
        })?;
        let (id, secret) = match presented {
            ClientCredentials::None if required => return Err(invalid_client()),
            ClientCredentials::None => return Ok(None),
            ClientCredentials::Basic { id, secret } => (id, secret),
            ClientCredentials::Body { id, secret } => (id, secret.unwrap_or_default()),
        };
        let client = self.clients.get(&id).cloned();
        let hash = client.as_ref().map(|c| c.secret_hash.clone());
        if !verify_blocking(hash, secret.into_bytes()).await {
            tracing::info!(client_id = ?id, "client authentication failed");
            return Err(invalid_client());
        }
        Ok(client.map(|c| (id, c)))
    }

    async fn authenticate_user(&self, params: &Params) -> Result<(String, User), Error> {
        let (Some(username), Some(password)) = (params.get("username"), params.get("password"))
        else {
            return Err(invalid_request(
                "The username and password parameters are required",
            ));
        };
        if password.len() > MAX_PASSWORD {
            return Err(invalid_request("The password is too long"));
        }
        let user = self.users.get(username).cloned();
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        if !verify_blocking(hash, password.as_bytes().to_vec()).await {
            tracing::info!(username = ?username, "login failed");
            return Err(OAuthError::new(
                OAuthErrorKind::InvalidGrant,
                "Invalid username or password",
            )
            .into());
        }
        match user {
            Some(user) => Ok((username.to_owned(), user)),
            None => Err(OAuthError::new(
                OAuthErrorKind::InvalidGrant,
                "Invalid username or password",
            )
            .into()),
        }
    }
}

fn unsupported_grant() -> Error {
    OAuthError::new(
        OAuthErrorKind::UnsupportedGrantType,
        "This grant type is not supported",
    )
    .into()
}

/// Verifies on the blocking pool; an unknown account is checked against the dummy hash
/// so that it costs what a wrong password costs, and always fails.
async fn verify_blocking(hash: Option<PasswordHash>, secret: Vec<u8>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| dummy_hash().clone());
    let matched = tokio::task::spawn_blocking(move || hash.verify(&secret))
        .await
        .unwrap_or(false);
    known && matched
}

/// RFC 6749 §3.3: the requested scope must be within what may be granted; no scope
/// requested grants all of it. Returns the granted scope, space-joined.
fn grant_scope(requested: Option<&str>, allowed: &[String]) -> Result<Option<String>, Error> {
    let invalid = || {
        Error::from(OAuthError::new(
            OAuthErrorKind::InvalidScope,
            "The requested scope is not allowed",
        ))
    };
    let Some(requested) = requested else {
        return Ok((!allowed.is_empty()).then(|| allowed.join(" ")));
    };
    let mut granted: Vec<&str> = Vec::new();
    for token in requested.split(' ').filter(|t| !t.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid || !allowed.iter().any(|a| a == token) {
            return Err(invalid());
        }
        if !granted.contains(&token) {
            granted.push(token);
        }
    }
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["read".into(), "write".into()]
    }

    #[test]
    fn scope_is_a_subset_of_what_may_be_granted() {
        assert_eq!(
            grant_scope(None, &allowed()).unwrap().as_deref(),
            Some("read write")
        );
        assert_eq!(
            grant_scope(Some("read"), &allowed()).unwrap().as_deref(),
            Some("read")
        );
        assert_eq!(
            grant_scope(Some("read read"), &allowed())
                .unwrap()
                .as_deref(),
            Some("read")
        );
        assert!(grant_scope(Some("admin"), &allowed()).is_err());
        assert!(grant_scope(Some("read\"x"), &allowed()).is_err());
        assert_eq!(grant_scope(None, &[]).unwrap(), None);
    }

    #[test]
    fn repeated_and_non_string_parameters_are_refused() {
        let form = ParsedBody::Form(vec![("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert!(Params::from_body(Some(&form)).is_err());
        let json = ParsedBody::Json(serde_json::json!({"grant_type": 1}));
        assert!(Params::from_body(Some(&json)).is_err());
        assert!(Params::from_body(None).is_err());
        let form = ParsedBody::Form(vec![("scope".into(), String::new())]);
        assert_eq!(
            Params::from_body(Some(&form)).unwrap().get("scope"),
            None,
            "empty is omitted"
        );
    }
}
