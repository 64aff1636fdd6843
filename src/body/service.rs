//! [`BodyParser`]: reads a body within its limit, parses it, forwards the same bytes.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Request, Response, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use tower::Service;

use super::layer::Settings;
use super::media::{BodyKind, classify};
use super::{form, json};
use crate::body_type::{Body, BoxError};
use crate::context::ParsedBody;
use crate::error::{Error, ErrorOr};

/// The service of [`BodyParserLayer`](super::BodyParserLayer).
#[derive(Debug, Clone)]
pub struct BodyParser<S> {
    pub(super) inner: S,
    pub(super) settings: Arc<Settings>,
}

/// The response future of [`BodyParser`]: the inner future when there is nothing to
/// parse (no allocation), the boxed read-parse-call otherwise, or the refusal.
pub type ResponseFuture<F, R> = ErrorOr<F, R>;

impl<S, B, ResBody> Service<Request<B>> for BodyParser<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let req = req.map(Body::new);
        let has_body = !req.body().is_end_stream();
        let media = classify(req.headers().get(header::CONTENT_TYPE));
        let settings = &*self.settings;
        let kind = media.kind.filter(|&k| settings.limit(k).is_some());

        if has_body && settings.required.is_some() && kind != settings.required {
            return ErrorOr::error(Error::UnsupportedMediaType {
                description: match settings.required {
                    Some(BodyKind::Form) => {
                        "This route accepts only application/x-www-form-urlencoded bodies"
                    }
                    Some(BodyKind::Text) => "This route accepts only text bodies",
                    _ => "This route accepts only application/json bodies",
                },
            });
        }
        let (Some(kind), true) = (kind, has_body) else {
            return ErrorOr::future(self.inner.call(req));
        };
        if !media.utf8 {
            return ErrorOr::error(Error::UnsupportedMediaType {
                description: "Only UTF-8 bodies are accepted",
            });
        }
        let encoded = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return ErrorOr::error(Error::UnsupportedMediaType {
                description: "Compressed request bodies are not accepted",
            });
        }
        let limit = settings.limit(kind).unwrap_or(0);
        // A declared length over the limit is refused before a byte is read (and so
        // before hyper sends `100 Continue`).
        if req.body().size_hint().lower() > limit {
            return ErrorOr::error(Error::PayloadTooLarge { limit });
        }

        // Call the clone that was driven to readiness; keep a fresh one for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        ErrorOr::boxed(Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let parsed = read(body, limit).await.and_then(|bytes| {
                let parsed = parse(&bytes, kind, &settings)?;
                Ok((bytes, parsed))
            });
            match parsed {
                Ok((bytes, parsed)) => {
                    parts.extensions.insert(parsed);
                    inner
                        .call(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
                Err(error) => Ok(error.into_response()),
            }
        }))
    }
}

/// Reads the whole body, failing as soon as it passes `limit`.
async fn read(body: Body, limit: u64) -> Result<Bytes, Error> {
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|_| Error::bad_request("The request body is malformed or was cut short"))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

fn parse(bytes: &[u8], kind: BodyKind, settings: &Settings) -> Result<ParsedBody, Error> {
    match kind {
        BodyKind::Json => json::parse(bytes, settings.max_depth, settings.strict)
            .map(ParsedBody::Json)
            .map_err(|e| Error::bad_request(e.description())),
        BodyKind::Form => form::parse(bytes, settings.max_fields)
            .map(ParsedBody::Form)
            .map_err(|e| Error::bad_request(e.description())),
        BodyKind::Text => std::str::from_utf8(bytes)
            .map(|text| ParsedBody::Text(text.to_owned()))
            .map_err(|_| Error::bad_request("The text body is not UTF-8")),
    }
}
