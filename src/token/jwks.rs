//! `GET /.well-known/jwks.json`: the public keys, for anyone verifying our tokens.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderValue};
use http::{Request, Response, StatusCode};
use tower::Service;

use crate::body_type::Body;
use crate::error::json_response;
use crate::jwt::KeySet;

/// Serves the RFC 7517 JWK Set of the public part of every asymmetric key (never an
/// HMAC secret), rendered once, with `Cache-Control: max-age=300`.
#[derive(Debug, Clone)]
pub struct Jwks {
    json: Bytes,
}

impl Jwks {
    /// Renders `keys`'s JWK Set.
    pub fn new(keys: &KeySet) -> Self {
        let json = serde_json::to_vec(&keys.jwks()).unwrap_or_default();
        Self { json: json.into() }
    }
}

impl<B> Service<Request<B>> for Jwks {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut response: Response<Body> = json_response(StatusCode::OK, self.json.to_vec());
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        ready(Ok(response))
    }
}
