//! The one body type where every layer of the stack meets.
//!
//! Each layer accepts any [`http_body::Body`] with [`Bytes`] data, but the gateway's
//! stack needs a single concrete type to name. [`Body`] is that type. Unlike a plain
//! boxed body it keeps the common cases unboxed (hyper's `Incoming`, a complete buffer,
//! nothing at all), because a boxed body costs an allocation on every request of a hot
//! path that exists to cost nothing.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

use crate::server::RequestBody;

/// The error type of bodies in the stack: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request and response body used throughout the gateway.
///
/// Build one from bytes (`Body::from(bytes)`), from nothing ([`Body::empty`]), or from
/// any other body ([`Body::new`]).
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Incoming(Incoming),
    /// The gateway's own HTTP/1 request body (see [`Body::wire`]).
    Wire(Box<RequestBody>),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

// === impl Body ===

impl Body {
    /// Wraps any body. A [`Body`] or hyper's `Incoming` is taken as it is; anything
    /// else is boxed once.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        let any = &mut slot as &mut dyn Any;
        if let Some(body) = any.downcast_mut::<Option<Body>>().and_then(Option::take) {
            return body;
        }
        if let Some(incoming) = any
            .downcast_mut::<Option<Incoming>>()
            .and_then(Option::take)
        {
            return Self::incoming(incoming);
        }
        match slot {
            Some(body) => Self {
                kind: Kind::Boxed(UnsyncBoxBody::new(body.map_err(Into::into))),
            },
            None => Self::empty(),
        }
    }

    /// A body with no data.
    pub const fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    /// A body read by the gateway's own HTTP/1 server. Boxed once, without a vtable: it
    /// is five times the size of the other kinds, and every layer moves the body.
    pub(crate) fn wire(body: RequestBody) -> Self {
        Self {
            kind: Kind::Wire(Box::new(body)),
        }
    }

    /// hyper's streaming body, unboxed.
    pub const fn incoming(body: Incoming) -> Self {
        Self {
            kind: Kind::Incoming(body),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Incoming(_) => "incoming",
            Kind::Wire(_) => "wire",
            Kind::Boxed(_) => "boxed",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            return Self::empty();
        }
        Self {
            kind: Kind::Full(Some(bytes)),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<Incoming> for Body {
    fn from(body: Incoming) -> Self {
        Self::incoming(body)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
            Kind::Wire(body) => Pin::new(&mut **body).poll_frame(cx),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(data) => data.is_none(),
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Wire(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Incoming(body) => body.size_hint(),
            Kind::Wire(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn new_does_not_rebox_a_body() {
        let body = Body::new(Body::from("abc"));
        assert!(matches!(body.kind, Kind::Full(_)));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");
    }

    #[tokio::test]
    async fn other_bodies_are_boxed_and_read_whole() {
        let body = Body::new(Full::new(Bytes::from_static(b"xyz")));
        assert!(matches!(body.kind, Kind::Boxed(_)));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "xyz");
    }

    #[test]
    fn size_hints_are_exact_for_buffers() {
        use http_body::Body as _;
        assert_eq!(Body::from("four").size_hint().exact(), Some(4));
        assert_eq!(Body::empty().size_hint().exact(), Some(0));
        assert!(Body::from("").is_end_stream());
    }
}
