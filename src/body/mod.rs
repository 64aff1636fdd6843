//! `BodyParserLayer`: koa-bodyparser as a tower layer.
//!
//! Reads `application/json` (and `+json`), `application/x-www-form-urlencoded` and
//! `text/*` request bodies within a per-type limit, parses them into a
//! [`ParsedBody`](crate::ParsedBody) request extension (Koa's `ctx.request.body`), and
//! forwards the **original bytes** unchanged, so an upstream sees exactly what the
//! client sent. Other types pass through untouched, unless the layer
//! [requires](BodyParserLayer::require) one type.
//!
//! | problem | answer |
//! |---|---|
//! | declared `Content-Length` over the limit | 413 before reading a byte |
//! | streamed (chunked) body passing the limit | 413 as soon as it passes |
//! | malformed JSON (with line and column), duplicate member names, nesting over the limit, strict mode and a scalar, empty JSON, bad form escapes, non-UTF-8 text | 400 |
//! | a charset other than UTF-8, a `Content-Encoding`, a type other than the required one | 415 |
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use portcullis::{Body, BodyParserLayer, ParsedBody};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(BodyParserLayer::new().json_limit(64 * 1024))
//!     .service(service_fn(|req: Request<Body>| async move {
//!         let name = match req.extensions().get::<ParsedBody>() {
//!             Some(ParsedBody::Json(v)) => v["name"].as_str().unwrap_or("?").to_owned(),
//!             _ => "none".to_owned(),
//!         };
//!         Ok::<_, std::convert::Infallible>(Response::new(Body::from(name)))
//!     }));
//!
//! let req = Request::post("/").header("content-type", "application/json")
//!     .body(Body::from(r#"{"name":"koa"}"#)).unwrap();
//! assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
//!
//! let req = Request::post("/").header("content-type", "application/json")
//!     .body(Body::from("{oops")).unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::BAD_REQUEST);
//! # }
//! ```

mod form;
mod json;
mod layer;
mod media;
mod service;

pub use layer::BodyParserLayer;
pub use media::BodyKind;
pub use service::{BodyParser, ResponseFuture};
