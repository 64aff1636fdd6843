//! Builds the gateway from a [`Config`]: the only module that knows the whole stack.
//!
//! The order of the layers, outermost first, and why each sits where it does:
//!
//! 1. **request id**: first, so every response, even an error from a later layer,
//!    carries `X-Request-Id`, and every log line can name the request;
//! 2. **access log**: outside everything that can answer, so each request is logged
//!    exactly once, with the status the client really got;
//! 3. **panic guard**: a panic below becomes a logged 500, not a dropped connection;
//! 4. **router**: normalises the path, then picks the endpoint or route;
//! 5. per route: **hop-by-hop hygiene** (before anything that sets headers), the
//!    **body parser** where the route asks for one, then the **proxy**.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceBuilder, service_fn};

use crate::body::{BodyKind, BodyParserLayer};
use crate::body_type::{Body, BoxError};
use crate::config::{
    AuthConfig, BodyConfig, BodyMode, Config, ConfigError, IdentityModeConfig, SecretSource,
};
use crate::context::RouteInfo;
use crate::echo::Echo;
use crate::error::json_response;
use crate::guard::{AuthMode, ClaimHeaders, JwtGuardLayer, Requirements};
use crate::jwt::{
    Algorithm, Authenticator, Issuer, KeyMaterial, KeySet, KeySpec, MemoryRevocationStore,
    RequiredTyp, TokenCache, Validation, Verifier, check_extra_claims,
};
use crate::log::{AccessLog, AccessLogBody, AccessLogLayer};
use crate::middleware::BoxService;
use crate::panic::{CatchPanic, CatchPanicLayer};
use crate::proxy::{ClientSettings, HopByHopLayer, Proxy, Upstream, UpstreamClient};
use crate::request_id::{RequestIdLayer, SetRequestId};
use crate::router::{HttpService, Router, RouterBuilder};
use crate::server::{self, ServerSettings};
use crate::token::{
    ChallengeEndpoint, ChallengeGrant, Challenges, Client, Grant, Identity, IdentityGrant,
    IdentityPolicy, Jwks, MemoryRateLimit, PasswordHash, RevokeEndpoint, TokenEndpoint, User,
};

/// A gateway, ready to serve: built from a [`Config`] or by hand with [`Gateway::builder`].
pub struct Gateway {
    service: GatewayService,
    server: ServerSettings,
    echo: Option<SocketAddr>,
    summary: Vec<String>,
    cache: Option<TokenCache>,
}

/// Assembles a gateway by hand, Koa-style: routes and endpoints on a router, and an
/// ordered list of middleware around it (`app.use(mw)` is [`GatewayBuilder::layer`];
/// the first one added runs first).
///
/// The built-in outer layers (request id, access log, panic guard) always wrap the
/// user's middleware, so every response has an id and every request is logged once.
///
/// ```
/// use http::{Method, Request, Response, StatusCode};
/// use portcullis::{Body, Gateway};
/// use portcullis::middleware::{Next, from_fn};
/// use tower::{Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hello = service_fn(|_req: Request<Body>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Body::from("hello")))
/// });
/// let gateway = Gateway::builder()
///     .endpoint("/hello", &[Method::GET], hello)
///     .layer(from_fn(|req: Request<Body>, next: Next| async move {
///         if req.headers().contains_key("x-block") {
///             return portcullis::Error::NotFound.into_response();
///         }
///         next.run(req).await
///     }))
///     .build();
///
/// let res = gateway.service().oneshot(Request::get("/hello").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
/// assert!(res.headers().contains_key("x-request-id"));
/// # }
/// ```
pub struct GatewayBuilder {
    router: RouterBuilder,
    layers: Vec<Box<dyn FnOnce(BoxService) -> BoxService + Send>>,
    access_log: bool,
    server: ServerSettings,
    echo: Option<SocketAddr>,
    summary: Vec<String>,
    cache: Option<TokenCache>,
}

/// The gateway's whole tower stack, usable as any tower service.
///
/// Cheap to clone: every layer keeps its state behind an `Arc`.
#[derive(Clone)]
pub struct GatewayService {
    inner: SetRequestId<AccessLog<CatchPanic<Core>>>,
}

/// The router alone, or the router inside the user's middleware.
#[derive(Clone)]
enum Core {
    Router(Router),
    Layered(BoxService),
}

// === impl GatewayBuilder ===

impl GatewayBuilder {
    /// Routes every request under `prefix` to `service` (see [`Router`]).
    pub fn route<S>(mut self, prefix: &str, service: S) -> Self
    where
        S: HttpService,
    {
        self.router = self.router.route(prefix, service);
        self
    }

    /// Like [`GatewayBuilder::route`], with the names the access log shows.
    pub fn route_with_info<S>(mut self, prefix: &str, info: RouteInfo, service: S) -> Self
    where
        S: HttpService,
    {
        self.router = self.router.route_with_info(prefix, info, service);
        self
    }

    /// Answers one exact path for `methods` (405 with `Allow` for others).
    pub fn endpoint<S>(mut self, path: &str, methods: &[Method], service: S) -> Self
    where
        S: HttpService,
    {
        self.router = self.router.endpoint(path, methods, service);
        self
    }

    /// Adds middleware around the router: Koa's `app.use(mw)`. The first added is the
    /// outermost. Each user layer costs one boxed call per request.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxService> + Send + 'static,
        L::Service: HttpService,
    {
        self.layers
            .push(Box::new(move |inner| BoxService::new(layer.layer(inner))));
        self
    }

    /// Turns the access log on or off (on by default).
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.access_log = enabled;
        self
    }

    /// How the server treats connections.
    pub fn server_settings(mut self, settings: ServerSettings) -> Self {
        self.server = settings;
        self
    }

    /// Also starts the built-in echo upstream on `addr` when serving.
    pub fn echo(mut self, addr: SocketAddr) -> Self {
        self.echo = Some(addr);
        self
    }

    /// Finishes the gateway.
    pub fn build(self) -> Gateway {
        // RouteInfo is for the access log, and for middleware that may read it.
        let route_info = self.access_log || !self.layers.is_empty();
        let router = self
            .router
            .endpoint("/healthz", &[Method::GET], service_fn(healthz))
            .route_info(route_info)
            .build();
        let mut summary = self.summary;
        summary.push("GET /healthz (built-in)".to_owned());
        let core = if self.layers.is_empty() {
            Core::Router(router)
        } else {
            // Wrap from the innermost (last added) outwards.
            let mut service = BoxService::new(router);
            for wrap in self.layers.into_iter().rev() {
                service = wrap(service);
            }
            Core::Layered(service)
        };
        let inner = ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(AccessLogLayer::new().enabled(self.access_log))
            .layer(CatchPanicLayer)
            .service(core);
        Gateway {
            service: GatewayService { inner },
            server: self.server,
            echo: self.echo,
            summary,
            cache: self.cache,
        }
    }
}

// === impl Gateway ===

impl Gateway {
    /// Starts a gateway by hand.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            router: Router::builder(),
            layers: Vec::new(),
            access_log: true,
            server: ServerSettings::default(),
            echo: None,
            summary: Vec::new(),
            cache: None,
        }
    }

    /// Builds the gateway that `config` describes. Errors name the key and line.
    pub fn from_config(config: &Config, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        let client = UpstreamClient::new(&ClientSettings {
            connect_timeout: config.proxy.connect_timeout.into(),
            pool_idle_timeout: config.proxy.pool_idle_timeout.into(),
            pool_max_idle_per_host: config.proxy.pool_max_idle_per_host,
            max_connections_per_host: config.proxy.max_connections_per_host,
        });
        let s = &config.server;
        let mut builder = Gateway::builder()
            .access_log(config.log.access_log)
            .server_settings(ServerSettings {
                header_read_timeout: s.header_read_timeout.into(),
                max_header_size: s.max_header_size,
                max_headers: s.max_headers,
                max_connections: s.max_connections,
                shutdown_grace: s.shutdown_grace.into(),
            });
        if let Some(echo) = &config.echo {
            builder = builder.echo(echo.listen);
        }
        let auth = auth_parts(config, secrets)?;
        if let Some(auth) = &auth {
            builder = mount_token_endpoints(builder, config, secrets, auth)?;
            builder.cache = Some(auth.authenticator.cache().clone());
        }

        for (i, spanned) in config.routes.iter().enumerate() {
            let route = spanned.get_ref();
            let path = route.path.normalized();
            let upstream = Upstream::parse(route.upstream.get_ref()).map_err(|e| {
                config.error_at(
                    format!("routes[{i}].upstream"),
                    route.upstream.span(),
                    e.to_string(),
                )
            })?;
            let timeout: Duration = route
                .timeout
                .unwrap_or(config.server.request_timeout)
                .into();
            let info = RouteInfo {
                name: path.into(),
                upstream: Some(upstream.label().clone()),
            };
            builder.summary.push(format!(
                "{path} -> {}, auth {}{}{}{} (timeout {})",
                upstream.label(),
                match route.auth.get_ref() {
                    AuthConfig::Required => "required",
                    AuthConfig::Optional => "optional",
                    AuthConfig::Public => "public",
                },
                if route.strip_prefix {
                    ", strip_prefix"
                } else {
                    ""
                },
                if route.preserve_host {
                    ", preserve_host"
                } else {
                    ""
                },
                match route.body {
                    Some(BodyMode::Json) => ", body json",
                    Some(BodyMode::Form) => ", body form",
                    Some(BodyMode::Any) => ", body any",
                    None => "",
                },
                humantime::format_duration(timeout),
            ));
            let mut proxy = Proxy::new(client.clone(), upstream)
                .with_route_name(path)
                .with_preserve_host(route.preserve_host)
                .with_timeout(timeout);
            if route.strip_prefix {
                proxy = proxy.with_strip_prefix(path);
            }
            let body = route.body.map(|mode| body_parser(&config.body, mode));
            let guard = match &auth {
                Some(auth) => Some(route_guard(config, i, auth)?),
                None => None,
            };
            // Hygiene first (so Connection cannot remove what the guard sets), then the
            // guard (so no body is read for a request that will be refused), then the
            // body parser, then the proxy.
            let service = ServiceBuilder::new()
                .layer(HopByHopLayer)
                .option_layer(guard)
                .option_layer(body)
                .service(proxy);
            builder = builder.route_with_info(path, info, service);
        }
        Ok(builder.build())
    }

    /// The tower service that handles requests.
    pub fn service(&self) -> GatewayService {
        self.service.clone()
    }

    /// One line per route and endpoint, as `check-config` prints them.
    pub fn summary(&self) -> &[String] {
        &self.summary
    }

    /// Serves on `listener` (and starts the echo upstream if configured) until
    /// `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let echo = match self.echo {
            Some(addr) => {
                let echo_listener = TcpListener::bind(addr).await.map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot start the echo upstream on {addr}: {e}"),
                    )
                })?;
                tracing::info!(%addr, "echo upstream listening");
                let settings = self.server.clone();
                Some(tokio::spawn(server::serve(
                    echo_listener,
                    Echo,
                    settings,
                    std::future::pending(),
                )))
            }
            None => None,
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "portcullis listening");
        }
        let stats = self.cache.map(|cache| tokio::spawn(log_cache_stats(cache)));
        server::serve(listener, self.service, self.server, shutdown).await;
        for task in [echo, stats].into_iter().flatten() {
            task.abort();
        }
        Ok(())
    }
}

/// Logs the token cache's counters at debug level once a minute (until metrics exist).
async fn log_cache_stats(cache: TokenCache) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.tick().await;
    loop {
        every.tick().await;
        let stats = cache.stats();
        tracing::debug!(
            hits = stats.hits,
            misses = stats.misses,
            evictions = stats.evictions,
            entries = cache.entry_count(),
            "token cache"
        );
    }
}

/// The JWT machinery built from `[jwt]` and `[cache]`: shared by the guard of every
/// route and by the token endpoints (and by the `token` CLI commands).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthParts {
    /// The configured keys.
    pub keys: KeySet,
    /// Verification through the cache, and the revocation list.
    pub authenticator: Authenticator,
    /// The signer, when `jwt.signing_key` names a key.
    pub issuer: Option<Issuer>,
}

/// Resolves `[[jwt.keys]]` into a [`KeySet`] (each key checked alone first, so an error
/// names its entry), then the verifier, cache, revocation list and issuer. `None` when
/// no key is configured.
pub fn auth_parts(
    config: &Config,
    secrets: &dyn SecretSource,
) -> Result<Option<AuthParts>, ConfigError> {
    let jwt = &config.jwt;
    if jwt.keys.is_empty() {
        if let Some(kid) = &jwt.signing_key {
            return Err(config.error_at(
                "jwt.signing_key",
                kid.span(),
                "no [[jwt.keys]] is configured",
            ));
        }
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(jwt.keys.len());
    for (i, spanned) in jwt.keys.iter().enumerate() {
        let key = spanned.get_ref();
        let algorithm: Algorithm = key.algorithm.get_ref().parse().map_err(|_| {
            config.error_at(
                format!("jwt.keys[{i}].algorithm"),
                key.algorithm.span(),
                "unknown algorithm; use HS256, HS384, HS512, RS256, RS384, RS512, PS256, ES256, ES384 or EdDSA",
            )
        })?;
        let material = match (&key.secret, &key.private_key, &key.public_key) {
            (Some(secret), None, None) => (
                secret,
                "secret",
                KeyMaterial::Secret as fn(Vec<u8>) -> KeyMaterial,
            ),
            (None, Some(pem), None) => (
                pem,
                "private_key",
                KeyMaterial::PrivatePem as fn(Vec<u8>) -> KeyMaterial,
            ),
            (None, None, Some(pem)) => (
                pem,
                "public_key",
                KeyMaterial::PublicPem as fn(Vec<u8>) -> KeyMaterial,
            ),
            _ => {
                return Err(config.error_at(
                    format!("jwt.keys[{i}]"),
                    spanned.span(),
                    "give exactly one of secret, private_key or public_key",
                ));
            }
        };
        let (secret, field, make) = material;
        let bytes = secret
            .get_ref()
            .resolve(secrets)
            .map_err(|e| config.error_at(format!("jwt.keys[{i}].{field}"), secret.span(), e))?;
        let spec = KeySpec {
            kid: key.kid.clone(),
            algorithm,
            material: make(bytes),
        };
        KeySet::new(vec![spec.clone()], None).map_err(|e| {
            config.error_at(format!("jwt.keys[{i}]"), spanned.span(), e.to_string())
        })?;
        specs.push(spec);
    }
    let signing = jwt.signing_key.as_ref();
    let keys =
        KeySet::new(specs, signing.map(|k| k.get_ref().as_str())).map_err(|e| match signing {
            Some(kid) => config.error_at("jwt.signing_key", kid.span(), e.to_string()),
            None => config.error("jwt.keys", e.to_string()),
        })?;

    let validation = Validation::new(jwt.issuer.clone(), jwt.audience.clone())
        .with_leeway(jwt.leeway.into())
        .with_required_typ(jwt.require_typ.then_some(RequiredTyp::AccessToken));
    let verifier = Verifier::new(keys.clone(), validation);
    let cache = TokenCache::new(config.cache.max_entries, config.cache.max_ttl.into());
    let revocations = Arc::new(MemoryRevocationStore::new(
        config.cache.max_entries.max(10_000),
    ));
    let authenticator = Authenticator::new(verifier, cache, revocations);
    let issuer = match signing {
        Some(kid) => Some(
            Issuer::new(keys.clone(), jwt.issuer.clone(), jwt.audience.clone())
                .map_err(|e| config.error_at("jwt.signing_key", kid.span(), e.to_string()))?,
        ),
        None => None,
    };
    Ok(Some(AuthParts {
        keys,
        authenticator,
        issuer,
    }))
}

/// The token endpoint (with its users and clients), revocation and the JWKS.
fn mount_token_endpoints(
    mut builder: GatewayBuilder,
    config: &Config,
    secrets: &dyn SecretSource,
    auth: &AuthParts,
) -> Result<GatewayBuilder, ConfigError> {
    builder = builder.endpoint(
        "/.well-known/jwks.json",
        &[Method::GET],
        Jwks::new(&auth.keys),
    );
    builder
        .summary
        .push("GET /.well-known/jwks.json (built-in)".to_owned());
    let Some(issuer) = &auth.issuer else {
        return Ok(builder);
    };
    let token = &config.token;
    let mut grants = Vec::new();
    for (i, grant) in token.grants.iter().enumerate() {
        grants.push(match grant.get_ref().as_str() {
            "password" => Grant::Password,
            "client_credentials" => Grant::ClientCredentials,
            "challenge" => Grant::Challenge,
            _ => {
                return Err(config.error_at(
                    format!("token.grants[{i}]"),
                    grant.span(),
                    "unknown grant; use password, client_credentials or challenge",
                ));
            }
        });
    }
    let identities = identity_grant(config, secrets, &grants)?;
    let mut endpoint = TokenEndpoint::new(issuer.clone(), config.jwt.ttl.into())
        .with_grants(grants)
        .with_basic_realm(token.realm.as_str());
    for (i, spanned) in config.users.iter().enumerate() {
        let user = spanned.get_ref();
        let password_hash = PasswordHash::parse(user.password_hash.get_ref()).map_err(|e| {
            config.error_at(
                format!("users[{i}].password_hash"),
                user.password_hash.span(),
                e.to_string(),
            )
        })?;
        check_extra_claims(&user.claims).map_err(|e| {
            config.error_at(format!("users[{i}].claims"), spanned.span(), e.to_string())
        })?;
        let user_value = User {
            password_hash,
            claims: user.claims.clone(),
            scope: user.scope.split_whitespace().map(str::to_owned).collect(),
            ttl: user.ttl.map(Into::into),
        };
        endpoint = endpoint.with_user(user.username.clone(), user_value);
    }
    for (i, spanned) in config.clients.iter().enumerate() {
        let client = spanned.get_ref();
        let secret_hash = PasswordHash::parse(client.secret_hash.get_ref()).map_err(|e| {
            config.error_at(
                format!("clients[{i}].secret_hash"),
                client.secret_hash.span(),
                e.to_string(),
            )
        })?;
        check_extra_claims(&client.claims).map_err(|e| {
            config.error_at(
                format!("clients[{i}].claims"),
                spanned.span(),
                e.to_string(),
            )
        })?;
        let client_value = Client {
            secret_hash,
            scope: client.scope.split_whitespace().map(str::to_owned).collect(),
            claims: client.claims.clone(),
        };
        endpoint = endpoint.with_client(client.client_id.clone(), client_value);
    }
    if let (Some(per_minute), Some(burst)) = (
        NonZeroU32::new(token.rate_per_minute),
        NonZeroU32::new(token.rate_burst.max(1)),
    ) {
        endpoint = endpoint.with_rate_limit(Arc::new(MemoryRateLimit::new(per_minute, burst)));
    }
    if let Some((grant, challenges, note)) = identities {
        endpoint = endpoint.with_challenge_grant(grant);
        let challenge_path = format!(
            "{}/challenge",
            token.path.normalized().trim_end_matches('/')
        );
        builder = builder.endpoint(&challenge_path, &[Method::GET], challenges);
        builder
            .summary
            .push(format!("GET {challenge_path} (identity challenges{note})"));
    }
    // OAuth parameters are small: tight limits, forms and JSON only.
    let params = || {
        BodyParserLayer::new()
            .form_limit(8 * 1024)
            .json_limit(8 * 1024)
            .disable(BodyKind::Text)
    };
    let path = token.path.normalized();
    let revoke_path = format!("{}/revoke", path.trim_end_matches('/'));
    builder = builder
        .endpoint(
            path,
            &[Method::POST],
            ServiceBuilder::new().layer(params()).service(endpoint),
        )
        .endpoint(
            &revoke_path,
            &[Method::POST],
            ServiceBuilder::new()
                .layer(params())
                .service(RevokeEndpoint::new(auth.authenticator.clone())),
        );
    builder
        .summary
        .push(format!("POST {path} (token endpoint)"));
    builder
        .summary
        .push(format!("POST {revoke_path} (revocation)"));
    Ok(builder)
}

/// The challenge grant and endpoint from `[token.identities]`, when the `challenge`
/// grant is on; the note is for the summary.
fn identity_grant(
    config: &Config,
    secrets: &dyn SecretSource,
    grants: &[Grant],
) -> Result<Option<(ChallengeGrant, ChallengeEndpoint, &'static str)>, ConfigError> {
    let token = &config.token;
    let on = grants.iter().position(|g| *g == Grant::Challenge);
    let spanned = match (&token.identities, on) {
        (None, None) => return Ok(None),
        (None, Some(i)) => {
            return Err(config.error_at(
                format!("token.grants[{i}]"),
                token.grants[i].span(),
                "the challenge grant needs a [token.identities] section",
            ));
        }
        (Some(identities), None) => {
            return Err(config.error_at(
                "token.identities",
                identities.span(),
                "token.grants does not list \"challenge\"; add it, or remove [token.identities]",
            ));
        }
        (Some(identities), Some(_)) => identities,
    };
    let ids = spanned.get_ref();
    let ttl: Duration = ids.challenge_ttl.get_ref().0;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&ttl) {
        return Err(config.error_at(
            "token.identities.challenge_ttl",
            ids.challenge_ttl.span(),
            "must be between 1s and 1h",
        ));
    }
    let (secret, note) = match &ids.secret {
        Some(secret) => {
            let bytes = secret
                .get_ref()
                .resolve(secrets)
                .map_err(|e| config.error_at("token.identities.secret", secret.span(), e))?;
            (bytes, "")
        }
        None => {
            let bytes = Challenges::random_secret().map_err(|e| {
                config.error_at("token.identities.secret", spanned.span(), e.to_string())
            })?;
            tracing::warn!(
                "token.identities.secret is not set: a random one is used, so challenges \
                 will not survive a restart or work across instances"
            );
            (
                bytes.to_vec(),
                "; random secret: not shared, lost on restart",
            )
        }
    };
    let challenges = Challenges::new(&secret, ttl).map_err(|e| {
        let span = ids.secret.as_ref().map_or(spanned.span(), |s| s.span());
        config.error_at("token.identities.secret", span, e.to_string())
    })?;
    check_extra_claims(&ids.claims)
        .map_err(|e| config.error_at("token.identities.claims", spanned.span(), e.to_string()))?;
    let scope = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let default = IdentityGrant {
        scope: scope(&ids.scope),
        claims: ids.claims.clone(),
    };
    let mut policy = match ids.mode {
        IdentityModeConfig::Open => IdentityPolicy::open(default.clone()),
        IdentityModeConfig::Allowlist => IdentityPolicy::allowlist(),
    };
    if ids.mode == IdentityModeConfig::Allowlist && ids.allow.is_empty() {
        return Err(config.error_at(
            "token.identities.mode",
            spanned.span(),
            "the allow-list is empty; add [[token.identities.allow]] entries",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, entry) in ids.allow.iter().enumerate() {
        let allowed = entry.get_ref();
        let key = format!("token.identities.allow[{i}].id");
        let identity = Identity::parse(allowed.id.get_ref())
            .map_err(|e| config.error_at(&key, allowed.id.span(), e.to_string()))?;
        if !seen.insert(*identity.as_bytes()) {
            return Err(config.error_at(key, allowed.id.span(), "this identity is listed twice"));
        }
        let claims = allowed.claims.clone().unwrap_or_else(|| ids.claims.clone());
        check_extra_claims(&claims).map_err(|e| {
            config.error_at(
                format!("token.identities.allow[{i}].claims"),
                entry.span(),
                e.to_string(),
            )
        })?;
        let grant = IdentityGrant {
            scope: allowed
                .scope
                .as_deref()
                .map_or(default.scope.clone(), scope),
            claims,
        };
        policy = policy.with_identity(identity, grant);
    }
    let mut endpoint = ChallengeEndpoint::new(challenges.clone());
    if let (Some(per_minute), Some(burst)) = (
        NonZeroU32::new(ids.rate_per_minute),
        NonZeroU32::new(ids.rate_burst.max(1)),
    ) {
        endpoint = endpoint.with_rate_limit(Arc::new(MemoryRateLimit::new(per_minute, burst)));
    }
    Ok(Some((
        ChallengeGrant::new(challenges, policy),
        endpoint,
        note,
    )))
}

/// The guard of `routes[i]`.
fn route_guard(config: &Config, i: usize, auth: &AuthParts) -> Result<JwtGuardLayer, ConfigError> {
    let route = config.routes[i].get_ref();
    let mode = match route.auth.get_ref() {
        AuthConfig::Required => AuthMode::Required,
        AuthConfig::Optional => AuthMode::Optional,
        AuthConfig::Public => AuthMode::Public,
    };
    let require = &route.require;
    let mut requirements = Requirements::new()
        .any_role(require.role.iter().cloned())
        .all_scopes(require.scope.iter().cloned());
    for (name, value) in &require.claims {
        requirements = requirements.claim(name.clone(), value.clone());
    }
    let mut headers = ClaimHeaders::new();
    for (j, other) in config.routes.iter().enumerate() {
        for (claim, header) in &other.get_ref().forward_claims {
            let name = HeaderName::from_bytes(header.get_ref().as_bytes()).map_err(|_| {
                config.error_at(
                    format!("routes[{j}].forward_claims.{claim}"),
                    header.span(),
                    "not a valid header name",
                )
            })?;
            // This route sets its own; every route strips all of them, public ones too.
            headers = if i == j {
                headers.forward(claim.clone(), name)
            } else {
                headers.reserve(name)
            };
        }
    }
    let mut guard = JwtGuardLayer::new(auth.authenticator.clone())
        .with_mode(mode)
        .with_realm(config.jwt.realm.as_str())
        .with_requirements(requirements)
        .with_claim_headers(headers)
        .with_forward_token(route.forward_token);
    if let Some(cookie) = &route.cookie {
        guard = guard.with_cookie(cookie.clone());
    }
    Ok(guard)
}

fn body_parser(limits: &BodyConfig, mode: BodyMode) -> BodyParserLayer {
    let layer = BodyParserLayer::new()
        .json_limit(limits.json_limit)
        .form_limit(limits.form_limit)
        .text_limit(limits.text_limit)
        .max_depth(limits.max_depth);
    match mode {
        BodyMode::Json => layer.require(BodyKind::Json),
        BodyMode::Form => layer.require(BodyKind::Form),
        BodyMode::Any => layer,
    }
}

async fn healthz(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(json_response(
        StatusCode::OK,
        br#"{"status":"ok"}"#.to_vec(),
    ))
}

// === impl GatewayService ===

impl<B> Service<Request<B>> for GatewayService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<AccessLogBody<Body>>;
    type Error = Infallible;
    type Future = crate::request_id::ResponseFuture<
        crate::log::ResponseFuture<crate::panic::ResponseFuture<CoreFuture>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.inner.call(req.map(Body::new))
    }
}

// === impl Core ===

impl Service<Request<Body>> for Core {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CoreFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> CoreFuture {
        match self {
            Self::Router(router) => CoreFuture::Router(router.call(req)),
            Self::Layered(service) => CoreFuture::Layered(service.call(req)),
        }
    }
}

/// The response future of the gateway's core.
pub enum CoreFuture {
    /// The router's own future.
    Router(crate::router::ResponseFuture),
    /// The user's middleware.
    Layered(<BoxService as Service<Request<Body>>>::Future),
}

impl Future for CoreFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both variants are Unpin (the router's future and a boxed future).
        match self.get_mut() {
            Self::Router(future) => std::pin::Pin::new(future).poll(cx),
            Self::Layered(future) => future.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tower::ServiceExt;

    use super::*;
    use crate::middleware::{Next, from_fn};

    fn ok() -> impl HttpService {
        service_fn(|_req: Request<Body>| async { Ok(Response::new(Body::from("ok"))) })
    }

    async fn route_info_seen(gateway: Gateway) -> bool {
        let res = gateway
            .service()
            .oneshot(Request::get("/api/x").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.extensions().get::<RouteInfo>().is_some()
    }

    #[tokio::test]
    async fn route_info_is_set_only_when_something_can_read_it() {
        // Access log on: it names the route.
        let logged = Gateway::builder().route("/api", ok()).build();
        assert!(route_info_seen(logged).await);

        // Access log off, no middleware: nothing reads it, so it is not allocated.
        let bare = Gateway::builder()
            .access_log(false)
            .route("/api", ok())
            .build();
        assert!(!route_info_seen(bare).await);

        // Access log off, user middleware: it may read it, so it is there.
        static SEEN: AtomicBool = AtomicBool::new(false);
        async fn peek(req: Request<Body>, next: Next) -> Response<Body> {
            let res = next.run(req).await;
            SEEN.store(
                res.extensions().get::<RouteInfo>().is_some(),
                Ordering::SeqCst,
            );
            res
        }
        let layered = Gateway::builder()
            .access_log(false)
            .layer(from_fn(peek))
            .route("/api", ok())
            .build();
        assert!(route_info_seen(layered).await);
        assert!(SEEN.load(Ordering::SeqCst));
    }
}
