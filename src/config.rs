//! `config.toml` as serde types: the file format and nothing else.
//!
//! Every section and key is typed; unknown keys, bad durations, addresses and URLs are
//! errors that name the key and the line ([`ConfigError`]). Durations are strings such
//! as `"90s"`, `"15m"` or `"1h"`; secrets are `env:NAME`, `file:PATH` or a literal
//! ([`Secret`]), resolved through a [`SecretSource`] so tests never touch the
//! environment. Turning these values into runtime types is `gateway.rs`'s job; values
//! that only make sense there (an upstream URL, a key) keep their position
//! ([`toml::Spanned`]) so that its errors can name the line too.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`: the listener and connection limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[log]`: level, format, access log.
    #[serde(default)]
    pub log: LogConfig,
    /// `[proxy]`: the upstream connection pool.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// `[jwt]`: keys, issuer, audience, lifetimes.
    #[serde(default)]
    pub jwt: JwtConfig,
    /// `[cache]`: the validated-token cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[token]`: the token endpoint.
    #[serde(default)]
    pub token: TokenConfig,
    /// `[[users]]`: accounts of the password grant.
    #[serde(default)]
    pub users: Vec<Spanned<UserConfig>>,
    /// `[[clients]]`: clients of the client-credentials grant.
    #[serde(default)]
    pub clients: Vec<Spanned<ClientConfig>>,
    /// `[body]`: limits of the body parser.
    #[serde(default)]
    pub body: BodyConfig,
    /// `[echo]`: a built-in echo upstream for local development.
    #[serde(default)]
    pub echo: Option<EchoConfig>,
    /// `[[routes]]`: proxied path prefixes.
    #[serde(default)]
    pub routes: Vec<Spanned<RouteConfig>>,
    /// The text and name of the file, to turn positions into line numbers.
    #[serde(skip)]
    origin: Origin,
}

#[derive(Debug, Clone, Default)]
struct Origin {
    name: Arc<str>,
    text: Arc<str>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Tokio worker threads; 0 means one per core.
    pub workers: usize,
    /// The longest a request may take to get its response head, where the route sets no
    /// `timeout` of its own.
    pub request_timeout: HumanDuration,
    /// How long a client may take to send a request head (slowloris guard).
    pub header_read_timeout: HumanDuration,
    /// The largest request head in bytes (431 beyond), at least 8192.
    pub max_header_size: usize,
    /// The most header fields in a request.
    pub max_headers: usize,
    /// The most connections open at once.
    pub max_connections: usize,
    /// How long in-flight requests may finish after SIGINT/SIGTERM.
    pub shutdown_grace: HumanDuration,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogConfig {
    /// A level or `tracing` filter directives; `RUST_LOG` overrides it.
    pub level: String,
    /// `pretty` or `json`.
    pub format: LogFormatConfig,
    /// Whether to log one event per request.
    pub access_log: bool,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatConfig {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// JSON lines.
    Json,
}

/// `[proxy]`: how the gateway talks to upstreams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Give up connecting to an upstream after this long.
    pub connect_timeout: HumanDuration,
    /// Close pooled upstream connections idle this long (keep it under the upstream's
    /// keep-alive timeout).
    pub pool_idle_timeout: HumanDuration,
    /// The most idle connections kept per upstream.
    pub pool_max_idle_per_host: usize,
    /// The most connections open to one upstream at once (busy, idle or tunnelling);
    /// 0: no cap.
    pub max_connections_per_host: usize,
}

/// `[jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct JwtConfig {
    /// The `iss` of issued tokens, and the only one accepted.
    pub issuer: String,
    /// The `aud` of issued tokens, and the audience a token must name.
    pub audience: String,
    /// The lifetime of issued tokens.
    pub ttl: HumanDuration,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: HumanDuration,
    /// The `kid` of the key that signs issued tokens.
    pub signing_key: Option<Spanned<String>>,
    /// The `realm` of `WWW-Authenticate: Bearer` challenges.
    pub realm: String,
    /// Require the RFC 9068 `typ: at+jwt` header (turn off to accept other issuers'
    /// plain JWTs through verify-only keys).
    pub require_typ: bool,
    /// `[[jwt.keys]]`.
    pub keys: Vec<Spanned<KeyConfig>>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "portcullis".into(),
            audience: "api".into(),
            ttl: HumanDuration(Duration::from_secs(3600)),
            leeway: HumanDuration(Duration::from_secs(30)),
            signing_key: None,
            realm: "portcullis".into(),
            require_typ: true,
            keys: Vec::new(),
        }
    }
}

/// One `[[jwt.keys]]` entry: a `kid` bound to one algorithm and its material.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The key id (`kid` header).
    pub kid: String,
    /// `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`, `ES256`, `ES384` or `EdDSA`.
    pub algorithm: Spanned<String>,
    /// An HMAC secret.
    pub secret: Option<Spanned<Secret>>,
    /// A PEM private key (its public part is published in the JWKS).
    pub private_key: Option<Spanned<Secret>>,
    /// A PEM public key: verify-only, for another issuer's tokens.
    pub public_key: Option<Spanned<Secret>>,
}

/// `[cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Validated tokens kept; 0 turns the cache off.
    pub max_entries: u64,
    /// The longest an entry lives, whatever its token's `exp`.
    pub max_ttl: HumanDuration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_ttl: HumanDuration(Duration::from_secs(3600)),
        }
    }
}

/// `[token]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TokenConfig {
    /// Where the token endpoint answers (`POST`).
    pub path: RoutePath,
    /// The grant types answered: `password`, `client_credentials`, `challenge`.
    pub grants: Vec<Spanned<String>>,
    /// The `realm` of `WWW-Authenticate: Basic` on `invalid_client`.
    pub realm: String,
    /// Attempts allowed per client address and minute (0 turns the limit off).
    pub rate_per_minute: u32,
    /// Attempts allowed in a burst.
    pub rate_burst: u32,
    /// `[token.identities]`: the Ed25519 challenge grant of private-key identities.
    pub identities: Option<Spanned<IdentitiesConfig>>,
}

/// `[token.identities]`: who may get tokens by signing a challenge, and with what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IdentitiesConfig {
    /// `open` (any valid key) or `allowlist` (only `[[token.identities.allow]]`).
    pub mode: IdentityModeConfig,
    /// How long a challenge is valid.
    #[serde(default = "default_challenge_ttl")]
    pub challenge_ttl: Spanned<HumanDuration>,
    /// The MAC key of challenges, at least 32 bytes; random at start-up when absent
    /// (then challenges neither survive a restart nor work across instances).
    #[serde(default)]
    pub secret: Option<Spanned<Secret>>,
    /// The scopes granted to identities that are not listed, space-separated.
    #[serde(default)]
    pub scope: String,
    /// Claims added to the tokens of identities that are not listed.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Challenge requests allowed per client address and minute (0 turns the limit off).
    #[serde(default = "default_rate_per_minute")]
    pub rate_per_minute: u32,
    /// Challenge requests allowed in a burst.
    #[serde(default = "default_rate_burst")]
    pub rate_burst: u32,
    /// `[[token.identities.allow]]`: listed identities.
    #[serde(default)]
    pub allow: Vec<Spanned<AllowedIdentityConfig>>,
}

/// `token.identities.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityModeConfig {
    /// Any valid public key gets a token (with `scope` and `claims` unless listed).
    Open,
    /// Only listed identities get tokens.
    Allowlist,
}

/// One `[[token.identities.allow]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AllowedIdentityConfig {
    /// The identity: the base64url (no padding) of a 32-byte Ed25519 public key.
    pub id: Spanned<String>,
    /// The scopes it may be granted, space-separated (default: `token.identities.scope`).
    #[serde(default)]
    pub scope: Option<String>,
    /// Claims added to its tokens (default: `token.identities.claims`).
    #[serde(default)]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_challenge_ttl() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(Duration::from_secs(120)))
}

fn default_rate_per_minute() -> u32 {
    60
}

fn default_rate_burst() -> u32 {
    10
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            path: RoutePath("/token".into()),
            grants: vec![
                Spanned::new(0..0, "password".to_owned()),
                Spanned::new(0..0, "client_credentials".to_owned()),
            ],
            realm: "portcullis".into(),
            rate_per_minute: 60,
            rate_burst: 10,
            identities: None,
        }
    }
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UserConfig {
    /// The login name (compared byte for byte).
    pub username: String,
    /// An argon2 PHC string (`portcullis hash-password`) or a bcrypt `$2b$` hash.
    pub password_hash: Spanned<String>,
    /// Claims added to the user's tokens.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The scopes the user may be granted, space-separated.
    #[serde(default)]
    pub scope: String,
    /// A token lifetime for this user instead of `jwt.ttl`.
    #[serde(default)]
    pub ttl: Option<HumanDuration>,
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The client id.
    pub client_id: String,
    /// The hash of the client secret, as for users.
    pub secret_hash: Spanned<String>,
    /// The scopes the client may be granted, space-separated.
    #[serde(default)]
    pub scope: String,
    /// Claims added to the client's tokens.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// `routes[].auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthConfig {
    /// A valid bearer token is required (the default).
    #[default]
    Required,
    /// No token passes; a present token must be valid.
    Optional,
    /// No check (identity headers are still stripped).
    Public,
}

/// `routes[].require`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RequireConfig {
    /// Any one of these in the `role` claim.
    #[serde(default)]
    pub role: Vec<String>,
    /// All of these in the token's scope.
    #[serde(default)]
    pub scope: Vec<String>,
    /// Claims that must have these values.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// `[body]`: the body parser's limits (koa-bodyparser's defaults), for routes that
/// set `body`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BodyConfig {
    /// The largest JSON body in bytes (413 beyond).
    pub json_limit: u64,
    /// The largest form body in bytes (413 beyond).
    pub form_limit: u64,
    /// The largest text body in bytes (413 beyond).
    pub text_limit: u64,
    /// The deepest JSON nesting (400 beyond).
    pub max_depth: usize,
}

impl Default for BodyConfig {
    fn default() -> Self {
        Self {
            json_limit: 1024 * 1024,
            form_limit: 56 * 1024,
            text_limit: 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// `routes[].body`: which request bodies a route parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyMode {
    /// Only JSON bodies (others get 415).
    Json,
    /// Only form bodies (others get 415).
    Form,
    /// JSON, form and text bodies are parsed; others pass through.
    Any,
}

/// `[echo]`: starts a loopback upstream that answers every request with a JSON
/// description of what it received, so the demo config works with no other process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EchoConfig {
    /// Where the echo upstream listens.
    pub listen: SocketAddr,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The path prefix, matched on segment boundaries.
    pub path: RoutePath,
    /// The upstream base URL, `http://host:port[/base]`.
    pub upstream: Spanned<String>,
    /// Remove `path` from the request path before joining it to the upstream's base.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Send the client's `Host` upstream instead of the upstream's.
    #[serde(default)]
    pub preserve_host: bool,
    /// How long to wait for the upstream's response head (504 beyond); defaults to
    /// `server.request_timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Parse request bodies before proxying (`json`, `form` or `any`); off by default.
    #[serde(default)]
    pub body: Option<BodyMode>,
    /// `required` (the default), `optional` or `public`.
    #[serde(default = "default_auth")]
    pub auth: Spanned<AuthConfig>,
    /// What a token must grant on this route.
    #[serde(default)]
    pub require: RequireConfig,
    /// Claims forwarded as upstream headers: `{ sub = "X-User-Id" }`.
    #[serde(default)]
    pub forward_claims: std::collections::BTreeMap<String, Spanned<String>>,
    /// Keep `Authorization` for the upstream (it is removed by default).
    #[serde(default)]
    pub forward_token: bool,
    /// Also read the token from this cookie.
    #[serde(default)]
    pub cookie: Option<String>,
}

/// A route path: starts with `/`, no query, no dot segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath(String);

/// A duration written as `"90s"`, `"15m"`, `"1h"`, `"250ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// A secret: `env:NAME`, `file:PATH` or the literal value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Read from an environment variable at load.
    Env(String),
    /// Read from a file at load (trailing newlines are trimmed).
    File(PathBuf),
    /// Written in the config itself (fine for development only).
    Literal(String),
}

/// Where secrets come from: the process (environment, files) or, in tests, a map.
pub trait SecretSource {
    /// The value of an environment variable.
    fn env(&self, name: &str) -> Option<String>;
    /// The contents of a file.
    fn file(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// Secrets from the real environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSecrets;

/// A start-up error that names the file, the line and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or `<config>` for text).
    pub file: Arc<str>,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The key path, such as `routes[1].upstream`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

// === impl Config ===

impl Config {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name: Arc<str> = path.display().to_string().into();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&text, name)
    }

    /// Parses and validates configuration text; `name` is used in error messages.
    pub fn parse(text: &str, name: impl Into<Arc<str>>) -> Result<Self, ConfigError> {
        let origin = Origin {
            name: name.into(),
            text: text.into(),
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| origin.toml_error(&e, String::new()))?;
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // Spanned<T> shows up in the path as a private field; users never wrote it.
            let key = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            origin.toml_error(e.inner(), if key == "." { String::new() } else { key })
        })?;
        config.origin = origin;
        config.validate()?;
        Ok(config)
    }

    /// An error about the value at `span` (from a [`Spanned`] field) under `key`.
    pub fn error_at(
        &self,
        key: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.origin.name.clone(),
            line: Some(self.origin.line_of(span.start)),
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error about `key` (a path such as `server.listen` or `routes[1].path`),
    /// with the line where the file sets it.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let key = key.into();
        ConfigError {
            file: self.origin.name.clone(),
            line: self.origin.key_line(&key),
            key,
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if !(8 * 1024..=1024 * 1024).contains(&s.max_header_size) {
            return Err(self.error(
                "server.max_header_size",
                "must be between 8192 and 1048576 bytes",
            ));
        }
        if s.max_connections == 0 {
            return Err(self.error("server.max_connections", "must be at least 1"));
        }
        if s.workers > 1024 {
            return Err(self.error(
                "server.workers",
                "must be at most 1024 (0 means one per core)",
            ));
        }
        if !(1..=1024).contains(&s.max_headers) {
            return Err(self.error("server.max_headers", "must be between 1 and 1024"));
        }
        let jwt = &self.jwt;
        if !quotable(&jwt.realm) {
            return Err(self.error("jwt.realm", "must be printable ASCII without `\"` or `\\`"));
        }
        if !quotable(&self.token.realm) {
            return Err(self.error(
                "token.realm",
                "must be printable ASCII without `\"` or `\\`",
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            let r = route.get_ref();
            if *r.auth.get_ref() != AuthConfig::Public && jwt.keys.is_empty() {
                return Err(self.error_at(
                    format!("routes[{i}].auth"),
                    if r.auth.span().is_empty() { route.span() } else { r.auth.span() },
                    "this route checks tokens but no [[jwt.keys]] is configured; add a key or set auth = \"public\"",
                ));
            }
            let earlier = self.routes[..i]
                .iter()
                .any(|r| r.get_ref().path.normalized() == route.get_ref().path.normalized());
            if earlier {
                return Err(self.error_at(
                    format!("routes[{i}].path"),
                    route.span(),
                    format!(
                        "the path \"{}\" is already routed",
                        route.get_ref().path.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn default_auth() -> Spanned<AuthConfig> {
    Spanned::new(0..0, AuthConfig::Required)
}

/// A realm goes inside a quoted string of a header (RFC 6750 §3).
fn quotable(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

// === impl Origin ===

impl Origin {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line of `key` in the file, found through a span-keeping parse.
    fn key_line(&self, key: &str) -> Option<usize> {
        let doc = toml_edit::Document::parse(&*self.text).ok()?;
        let mut item = doc.as_item();
        let mut span = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let (k, v) = item.as_table_like()?.get_key_value(name)?;
            span = k.span().or_else(|| v.span()).or(span);
            item = v;
            if let Some(index) = index {
                item = item.get(index)?;
                span = item.span().or(span);
            }
        }
        span.map(|s| self.line_of(s.start))
    }

    fn toml_error(&self, e: &toml::de::Error, key: String) -> ConfigError {
        ConfigError {
            file: self.name.clone(),
            line: e.span().map(|span| self.line_of(span.start)),
            key,
            message: e.message().trim().to_owned(),
        }
    }
}

// === impl ConfigError ===

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

// === defaults ===

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            request_timeout: HumanDuration(Duration::from_secs(30)),
            header_read_timeout: HumanDuration(Duration::from_secs(10)),
            max_header_size: 16 * 1024,
            max_headers: 100,
            max_connections: 10_000,
            shutdown_grace: HumanDuration(Duration::from_secs(10)),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormatConfig::Pretty,
            access_log: true,
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            connect_timeout: HumanDuration(Duration::from_secs(5)),
            pool_idle_timeout: HumanDuration(Duration::from_secs(4)),
            pool_max_idle_per_host: 512,
            max_connections_per_host: 1024,
        }
    }
}

// === impl RoutePath ===

impl RoutePath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without a trailing slash (`/` stays `/`).
    pub fn normalized(&self) -> &str {
        let trimmed = self.0.trim_end_matches('/');
        if trimmed.is_empty() { "/" } else { trimmed }
    }
}

impl<'de> Deserialize<'de> for RoutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = String::deserialize(d)?;
        if !path.starts_with('/') {
            return Err(de::Error::custom("a route path must start with `/`"));
        }
        let bad = path.contains(['?', '#', '%', '\\', ';'])
            || path.split('/').any(|s| s == "." || s == "..")
            || path.contains("//");
        if bad {
            return Err(de::Error::custom(
                "a route path may not contain `?`, `#`, `%`, `\\`, `;`, `//` or dot segments",
            ));
        }
        Ok(Self(path))
    }
}

// === impl HumanDuration ===

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(HumanDuration).map_err(|e| {
            de::Error::custom(format!(
                "invalid duration \"{text}\" ({e}); write a number and a unit, such as \"250ms\", \"90s\", \"15m\" or \"1h\""
            ))
        })
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

// === impl Secret ===

impl Secret {
    /// Reads the secret's bytes.
    pub fn resolve(&self, source: &dyn SecretSource) -> Result<Vec<u8>, String> {
        match self {
            Self::Env(name) => source
                .env(name)
                .map(String::into_bytes)
                .ok_or_else(|| format!("the environment variable {name} is not set")),
            Self::File(path) => source
                .file(path)
                .map(|mut bytes| {
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    bytes
                })
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Self::Literal(value) => Ok(value.clone().into_bytes()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Literal(_) => f.write_str("<literal secret>"),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(if let Some(name) = text.strip_prefix("env:") {
            Self::Env(name.to_owned())
        } else if let Some(path) = text.strip_prefix("file:") {
            Self::File(PathBuf::from(path))
        } else {
            Self::Literal(text)
        })
    }
}

impl SecretSource for ProcessSecrets {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

impl SecretSource for HashMap<String, String> {
    fn env(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.get(&format!("file:{}", path.display()))
            .map(|v| v.clone().into_bytes())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        Config::parse(text, "test.toml").unwrap_err()
    }

    #[test]
    fn an_empty_file_is_a_valid_config_with_defaults() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.server.request_timeout.0, Duration::from_secs(30));
        assert!(c.log.access_log);
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = err("[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("listen_port"), "{e}");
        let e = err("[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\nstrip = true\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("strip"), "{e}");
    }

    #[test]
    fn bad_durations_name_the_key_and_line() {
        let e = err("[server]\n\nshutdown_grace = \"10 parsecs\"\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key, "server.shutdown_grace");
        assert!(e.message.contains("invalid duration"), "{e}");
        let e = err("[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\ntimeout = \"soon\"\n");
        assert_eq!(e.key, "routes[0].timeout");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn bad_addresses_name_the_key_and_line() {
        let e = err("[server]\nlisten = \"localhost\"\n");
        assert_eq!(e.key, "server.listen");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn route_paths_are_checked() {
        let e = err("[[routes]]\npath = \"api\"\nupstream = \"http://x\"\n");
        assert_eq!(e.key, "routes[0].path");
        let e = err("[[routes]]\npath = \"/a/../b\"\nupstream = \"http://x\"\n");
        assert_eq!(e.line, Some(2));
        let e = err(
            "[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\nauth = \"public\"\n[[routes]]\npath = \"/a/\"\nupstream = \"http://y\"\nauth = \"public\"\n",
        );
        assert_eq!(e.key, "routes[1].path");
        assert_eq!(e.line, Some(5));
    }

    #[test]
    fn guarded_routes_need_keys() {
        let e = err("[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\n");
        assert_eq!(e.key, "routes[0].auth");
        assert!(e.message.contains("jwt.keys"), "{e}");
        let e = err("[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\nauth = \"optional\"\n");
        assert_eq!(e.line, Some(4));
        assert!(
            Config::parse(
                "[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\nauth = \"public\"\n",
                "t"
            )
            .is_ok()
        );
    }

    #[test]
    fn limits_are_checked() {
        let e = err("[server]\nmax_header_size = 100\n");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("max_header_size"), "{e}");
        let e = err("[server]\nmax_headers = 5000\n");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("max_headers"), "{e}");
    }

    #[test]
    fn secrets_resolve_from_env_file_or_literal() {
        let mut source = HashMap::new();
        source.insert("S".to_owned(), "from-env".to_owned());
        source.insert("file:/k".to_owned(), "from-file\n".to_owned());
        let parse = |s: &str| -> Secret {
            toml::from_str::<HashMap<String, Secret>>(&format!("v = \"{s}\"")).unwrap()["v"].clone()
        };
        assert_eq!(parse("env:S").resolve(&source).unwrap(), b"from-env");
        assert_eq!(parse("file:/k").resolve(&source).unwrap(), b"from-file");
        assert_eq!(parse("plain").resolve(&source).unwrap(), b"plain");
        assert!(
            parse("env:MISSING")
                .resolve(&source)
                .unwrap_err()
                .contains("MISSING")
        );
        assert_eq!(format!("{:?}", parse("plain")), "<literal secret>");
    }
}
