//! portcullis's layers inside an axum application.
//!
//! An axum `Router` uses `BodyParserLayer` the way a Koa app uses koa-bodyparser:
//! handlers read the parsed body from the request extensions (`ctx.request.body`), and
//! bad bodies are refused with the gateway's JSON errors before a handler runs.
//!
//! Run it, then call it:
//!
//! ```sh
//! cargo run --example axum_reuse
//! curl -s localhost:3001/orders -H 'content-type: application/json' -d '{"item":"tea","qty":2}'
//! # {"received":{"item":"tea","qty":2},"kind":"json"}
//! curl -s -i localhost:3001/orders -H 'content-type: application/json' -d '{"item":'
//! # HTTP/1.1 400 ... {"error":"invalid_request","error_description":"Malformed JSON at line 1 column 8"}
//! ```

use axum::extract::Request;
use axum::response::{IntoResponse, Json};
use axum::routing::post;
use portcullis::{BodyParserLayer, ParsedBody};
use serde_json::{Value, json};

/// The application: one route, its body parsed by portcullis.
pub(crate) fn app() -> axum::Router {
    axum::Router::new()
        .route("/orders", post(create_order))
        .layer(BodyParserLayer::new().json_limit(64 * 1024))
}

async fn create_order(req: Request) -> impl IntoResponse {
    let (kind, received) = match req.extensions().get::<ParsedBody>() {
        Some(ParsedBody::Json(value)) => ("json", value.clone()),
        Some(ParsedBody::Form(pairs)) => ("form", json!(pairs)),
        Some(ParsedBody::Text(text)) => ("text", Value::String(text.clone())),
        _ => ("none", Value::Null),
    };
    Json(json!({ "received": received, "kind": kind }))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app()).await
}
