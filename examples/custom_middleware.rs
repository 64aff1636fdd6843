//! A user's own async middleware between the built-in layers: Koa's
//! `app.use(async (ctx, next) => { ...; await next(); ... })`.
//!
//! The gateway below has an API-key check that runs before the route, and a timing
//! header added after it. It answers `/hello` itself, so it needs no upstream.
//!
//! ```sh
//! cargo run --example custom_middleware
//! curl -s -i localhost:3002/hello                        # 401: no API key
//! curl -s -i localhost:3002/hello -H 'x-api-key: demo'   # 200, with x-response-time-us
//! ```

use std::convert::Infallible;

use http::{Method, Request, Response, StatusCode};
use portcullis::middleware::{Next, from_fn};
use portcullis::{Body, Gateway};
use tower::service_fn;

/// `ctx.throw(401)` unless the request carries the demo API key.
async fn require_api_key(req: Request<Body>, next: Next) -> Response<Body> {
    if req.headers().get("x-api-key").is_none_or(|k| k != "demo") {
        let mut res = Response::new(Body::from(r#"{"error":"unauthorized"}"#));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        return res;
    }
    next.run(req).await
}

/// Code after `next` runs once the inner layers have answered.
async fn timing(req: Request<Body>, next: Next) -> Response<Body> {
    let start = std::time::Instant::now();
    let mut res = next.run(req).await;
    if let Ok(value) = start.elapsed().as_micros().to_string().parse() {
        res.headers_mut().insert("x-response-time-us", value);
    }
    res
}

/// The gateway: timing outermost, then the key check, then the router.
pub(crate) fn gateway() -> Gateway {
    let hello = service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("hello\n")))
    });
    Gateway::builder()
        .endpoint("/hello", &[Method::GET], hello)
        .layer(from_fn(timing))
        .layer(from_fn(require_api_key))
        .build()
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("listening on http://{}", listener.local_addr()?);
    gateway()
        .serve(listener, portcullis::server::shutdown_signal())
        .await
}
