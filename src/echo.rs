//! A built-in echo upstream for local development and demos.
//!
//! It answers every request with a JSON description of what it received (method, path,
//! query, headers, and up to 64 KiB of the body), so that a user can see exactly what
//! the gateway forwards, identity headers included, with no other process running.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use tower::Service;

use crate::body_type::{Body, BoxError};
use crate::error::json_response;

/// How much of a request body the echo shows; the rest is read and counted.
const SHOWN_BODY: usize = 64 * 1024;

/// Answers every request with a JSON description of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl<B> Service<Request<B>> for Echo
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(async move { Ok(describe(req).await) })
    }
}

async fn describe<B>(req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let mut body = std::pin::pin!(body);
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                headers.insert(name.as_str().to_owned(), value);
            }
        }
    }
    let mut shown = Vec::new();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return json_response(
                StatusCode::BAD_REQUEST,
                br#"{"error":"body_read_failed"}"#.to_vec(),
            );
        };
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            let room = SHOWN_BODY.saturating_sub(shown.len());
            shown.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    let description = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": String::from_utf8_lossy(&shown),
        "body_bytes": total,
    });
    let json = serde_json::to_vec_pretty(&description).unwrap_or_default();
    json_response(StatusCode::OK, json)
}
