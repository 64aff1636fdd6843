//! portcullis's layers inside an axum application.
//!
//! An axum `Router` uses `JwtGuardLayer` the way a Koa app uses koa-jwt, and
//! `BodyParserLayer` the way it uses koa-bodyparser: the handler reads the verified
//! claims (`ctx.state.user`) and the parsed body (`ctx.request.body`) from the request
//! extensions. Bad tokens and bad bodies are refused with the gateway's JSON errors
//! before the handler runs. The layers sit in `route_layer`, so an unknown path is
//! still a 404, not a 401.
//!
//! Run it; it prints a token to use:
//!
//! ```sh
//! cargo run --example axum_reuse
//! curl -s localhost:3001/orders -H "authorization: Bearer $TOKEN" \
//!      -H 'content-type: application/json' -d '{"item":"tea","qty":2}'
//! # {"kind":"json","received":{"item":"tea","qty":2},"user":"alice"}
//! curl -s -i localhost:3001/orders -d '{}'              # 401, WWW-Authenticate: Bearer
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Json};
use axum::routing::post;
use portcullis::jwt::{
    Algorithm, Authenticator, Issuer, KeyMaterial, KeySet, KeySpec, MemoryRevocationStore,
    TokenCache, TokenRequest, Validation, Verifier,
};
use portcullis::{BodyParserLayer, Claims, JwtGuardLayer, ParsedBody};
use serde_json::{Value, json};

/// A development-only HMAC secret (32 bytes or more, as HS256 requires).
const DEV_SECRET: &[u8] = b"axum-example-secret-not-for-production!!";

/// The application, and an issuer for its tokens.
pub(crate) struct Demo {
    pub(crate) app: axum::Router,
    pub(crate) issuer: Issuer,
}

/// Builds the keys, the guard and the router.
pub(crate) fn demo() -> Result<Demo, Box<dyn std::error::Error>> {
    let spec = KeySpec {
        kid: "dev".into(),
        algorithm: Algorithm::HS256,
        material: KeyMaterial::Secret(DEV_SECRET.to_vec()),
    };
    let keys = KeySet::new(vec![spec], Some("dev"))?;
    let issuer = Issuer::new(keys.clone(), "example".into(), "orders".into())?;
    let authenticator = Authenticator::new(
        Verifier::new(keys, Validation::new("example", "orders")),
        TokenCache::new(10_000, Duration::from_secs(3600)),
        Arc::new(MemoryRevocationStore::new(10_000)),
    );
    // The guard runs first, so no body is read for a request that will be refused.
    let layers = tower::ServiceBuilder::new()
        .layer(JwtGuardLayer::new(authenticator).with_realm("orders"))
        .layer(BodyParserLayer::new().json_limit(64 * 1024));
    let app = axum::Router::new()
        .route("/orders", post(create_order))
        .route_layer(layers);
    Ok(Demo { app, issuer })
}

async fn create_order(req: Request) -> impl IntoResponse {
    let user = req
        .extensions()
        .get::<Arc<Claims>>()
        .map(|claims| claims.sub.clone());
    let (kind, received) = match req.extensions().get::<ParsedBody>() {
        Some(ParsedBody::Json(value)) => ("json", value.clone()),
        Some(ParsedBody::Form(pairs)) => ("form", json!(pairs)),
        Some(ParsedBody::Text(text)) => ("text", Value::String(text.clone())),
        _ => ("none", Value::Null),
    };
    Json(json!({ "user": user, "kind": kind, "received": received }))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Demo { app, issuer } = demo()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let request = TokenRequest {
        subject: "alice".into(),
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    };
    let token = issuer.issue(request, now)?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("TOKEN={token}");
    axum::serve(listener, app).await?;
    Ok(())
}
