//! Every error the gateway answers with, and the one place that turns it into a response.
//!
//! Layers construct an [`Error`]; they never assemble an error response by hand. Each
//! variant is named in the vocabulary of the RFC that defines it, and [`Error::status`],
//! [`Error::code`] and [`Error::into_response`] are the whole mapping, so that every
//! error of the gateway has the same JSON shape:
//!
//! ```json
//! {"error": "invalid_token", "error_description": "The access token expired"}
//! ```
//!
//! Descriptions are fixed strings chosen here or by the layer, never text taken from the
//! request, so no attacker-supplied byte is ever reflected in a body or a header.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use serde::Serialize;

/// An error answered to the client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// No route or endpoint matches the path (404).
    NotFound,
    /// The endpoint exists but not for this method (405, with `Allow`).
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: HeaderValue,
    },
    /// The request is malformed (400 `invalid_request`).
    BadRequest {
        /// A fixed, input-free description.
        description: Cow<'static, str>,
    },
    /// The body is larger than the route accepts (413).
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body's media type or charset is not accepted here (415).
    UnsupportedMediaType {
        /// A fixed description.
        description: &'static str,
    },
    /// RFC 6750 §3: the request carries no bearer credentials (401, no `error`).
    MissingToken {
        /// The `realm` of the `WWW-Authenticate` challenge.
        realm: Arc<str>,
    },
    /// RFC 6750 §3.1 `invalid_request`: the credentials are malformed (400).
    MalformedCredentials {
        /// The `realm` of the `WWW-Authenticate` challenge.
        realm: Arc<str>,
        /// A fixed description.
        description: &'static str,
    },
    /// RFC 6750 §3.1 `invalid_token`: the token is expired, revoked or invalid (401).
    InvalidToken {
        /// The `realm` of the `WWW-Authenticate` challenge.
        realm: Arc<str>,
        /// A fixed description ("The access token expired" for expiry).
        description: &'static str,
    },
    /// RFC 6750 §3.1 `insufficient_scope`: the token lacks a required role or scope (403).
    InsufficientScope {
        /// The `realm` of the `WWW-Authenticate` challenge.
        realm: Arc<str>,
        /// The scope the route requires, if it requires one (configured, not input).
        scope: Option<Arc<str>>,
    },
    /// An RFC 6749 §5.2 token endpoint error.
    OAuth(OAuthError),
    /// Too many requests from this client (429, with `Retry-After`).
    TooManyRequests {
        /// Seconds until a request may succeed again.
        retry_after: u64,
    },
    /// The upstream refused the connection, reset it or answered garbage (502).
    UpstreamUnavailable {
        /// The route that failed (its configured path).
        route: Arc<str>,
    },
    /// The upstream did not answer within the route's timeout (504).
    UpstreamTimeout {
        /// The route that failed (its configured path).
        route: Arc<str>,
    },
    /// The request could not be read as HTTP/1.1: a malformed or ambiguous head (400),
    /// a head sent too slowly (408), a request target (414) or header section (431)
    /// over the limit, a transfer coding the gateway does not implement (501). The
    /// server answers it and closes the connection.
    Protocol {
        /// One of 400, 408, 414, 431 or 501.
        status: StatusCode,
        /// A fixed, input-free description.
        description: &'static str,
    },
    /// The gateway failed (500); details go to the log, never to the client.
    Internal,
}

/// An RFC 6749 §5.2 error of the token endpoint.
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// The error code.
    pub kind: OAuthErrorKind,
    /// A fixed, input-free description.
    pub description: Option<&'static str>,
    /// For `invalid_client`: the `realm` of the `WWW-Authenticate: Basic` challenge.
    pub basic_realm: Option<Arc<str>>,
}

/// The error codes of RFC 6749 §5.2 (and RFC 7009 §2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorKind {
    /// A parameter is missing, repeated or malformed.
    InvalidRequest,
    /// Client authentication failed (401).
    InvalidClient,
    /// The credentials, grant or challenge are invalid.
    InvalidGrant,
    /// This client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The requested scope exceeds what may be granted.
    InvalidScope,
    /// RFC 7009: this token type cannot be revoked.
    UnsupportedTokenType,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
}

// === impl Error ===

impl Error {
    /// A 400 with a fixed description.
    pub fn bad_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::BadRequest {
            description: description.into(),
        }
    }

    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest { .. } | Self::MalformedCredentials { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MissingToken { .. } | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::OAuth(e) if e.kind == OAuthErrorKind::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::OAuth(_) => StatusCode::BAD_REQUEST,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamUnavailable { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Protocol { status, .. } => *status,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::BadRequest { .. } | Self::MalformedCredentials { .. } => "invalid_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::MissingToken { .. } => "unauthorized",
            Self::InvalidToken { .. } => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::OAuth(e) => e.kind.as_str(),
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::UpstreamUnavailable { .. } => "bad_gateway",
            Self::UpstreamTimeout { .. } => "gateway_timeout",
            Self::Protocol { status, .. } => match status.as_u16() {
                408 => "request_timeout",
                414 => "uri_too_long",
                431 => "header_fields_too_large",
                501 => "not_implemented",
                _ => "invalid_request",
            },
            Self::Internal => "internal_error",
        }
    }

    /// The human-readable `error_description` of the JSON body.
    pub fn description(&self) -> Option<Cow<'static, str>> {
        let text: Cow<'static, str> = match self {
            Self::NotFound => "No route matches this path".into(),
            Self::MethodNotAllowed { .. } => "This endpoint does not accept this method".into(),
            Self::BadRequest { description } => description.clone(),
            Self::PayloadTooLarge { limit } => format!("The body exceeds {limit} bytes").into(),
            Self::UnsupportedMediaType { description } => (*description).into(),
            Self::MissingToken { .. } => "A bearer token is required".into(),
            Self::MalformedCredentials { description, .. }
            | Self::InvalidToken { description, .. } => (*description).into(),
            Self::InsufficientScope { .. } => {
                "The access token lacks a required role or scope".into()
            }
            Self::OAuth(e) => return e.description.map(Cow::Borrowed),
            Self::TooManyRequests { .. } => "Too many requests; retry later".into(),
            Self::UpstreamUnavailable { .. } => "The upstream is unavailable".into(),
            Self::UpstreamTimeout { .. } => "The upstream did not answer in time".into(),
            Self::Protocol { description, .. } => (*description).into(),
            Self::Internal => "The gateway failed to handle the request".into(),
        };
        Some(text)
    }

    /// Builds the response: status, headers and the shared JSON body.
    pub fn into_response<B: From<Bytes>>(self) -> Response<B> {
        let description = self.description();
        let route = match &self {
            Self::UpstreamUnavailable { route } | Self::UpstreamTimeout { route } => Some(&**route),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            error_description: description.as_deref(),
            route,
        };
        // Serialising a struct of strings into a Vec cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();

        let mut response = Response::new(B::from(Bytes::from(json)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // No error is worth caching, and RFC 6749 §5.2 wants both on every token
        // endpoint error, including those a layer in front of it answers.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        match &self {
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, allow.clone());
            }
            Self::OAuth(e) => {
                if let (OAuthErrorKind::InvalidClient, Some(realm)) = (e.kind, &e.basic_realm) {
                    if let Some(value) = challenge("Basic", realm, &[]) {
                        headers.insert(header::WWW_AUTHENTICATE, value);
                    }
                }
            }
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        if let Some(value) = self.bearer_challenge() {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    /// The RFC 6750 §3 `WWW-Authenticate: Bearer` challenge of the bearer errors.
    fn bearer_challenge(&self) -> Option<HeaderValue> {
        match self {
            Self::MissingToken { realm } => challenge("Bearer", realm, &[]),
            Self::MalformedCredentials { realm, description } => challenge(
                "Bearer",
                realm,
                &[
                    ("error", "invalid_request"),
                    ("error_description", description),
                ],
            ),
            Self::InvalidToken { realm, description } => challenge(
                "Bearer",
                realm,
                &[
                    ("error", "invalid_token"),
                    ("error_description", description),
                ],
            ),
            Self::InsufficientScope { realm, scope } => {
                let mut params = vec![("error", "insufficient_scope")];
                if let Some(scope) = scope {
                    params.push(("scope", scope));
                }
                challenge("Bearer", realm, &params)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.code())?;
        if let Some(description) = self.description() {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<OAuthError> for Error {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

// === impl OAuthError ===

impl OAuthError {
    /// An error of this kind with a fixed description.
    pub fn new(kind: OAuthErrorKind, description: &'static str) -> Self {
        Self {
            kind,
            description: Some(description),
            basic_realm: None,
        }
    }

    /// `invalid_client`, answered with a `WWW-Authenticate: Basic` challenge.
    pub fn invalid_client(realm: Arc<str>) -> Self {
        Self {
            kind: OAuthErrorKind::InvalidClient,
            description: Some("Client authentication failed"),
            basic_realm: Some(realm),
        }
    }
}

// === impl OAuthErrorKind ===

impl OAuthErrorKind {
    /// The RFC 6749 error code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

pin_project! {
    /// The response future of a layer that may refuse a request: the inner service's own
    /// future (no allocation), a boxed future for work that must wait (reading a body, a
    /// networked lookup), or an error answered at once.
    pub struct ErrorOr<F, R> {
        #[pin]
        state: ErrorOrState<F, R>,
    }
}

pin_project! {
    #[project = ErrorOrProj]
    enum ErrorOrState<F, R> {
        Future { #[pin] future: F },
        Boxed { future: Pin<Box<dyn Future<Output = R> + Send>> },
        Error { error: Option<Error> },
    }
}

impl<F, R> ErrorOr<F, R> {
    /// Runs the inner service's future.
    pub fn future(future: F) -> Self {
        Self {
            state: ErrorOrState::Future { future },
        }
    }

    /// Runs a boxed future.
    pub fn boxed(future: Pin<Box<dyn Future<Output = R> + Send>>) -> Self {
        Self {
            state: ErrorOrState::Boxed { future },
        }
    }

    /// Answers `error`.
    pub fn error(error: Error) -> Self {
        Self {
            state: ErrorOrState::Error { error: Some(error) },
        }
    }
}

impl<F, B, E> Future for ErrorOr<F, Result<Response<B>, E>>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<Bytes>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ErrorOrProj::Future { future } => future.poll(cx),
            ErrorOrProj::Boxed { future } => future.as_mut().poll(cx),
            ErrorOrProj::Error { error } => {
                let error = error.take().unwrap_or(Error::Internal);
                Poll::Ready(Ok(error.into_response()))
            }
        }
    }
}

/// A response with `Allow` and no body, for `OPTIONS` on a built-in endpoint.
pub fn allow_response<B: From<Bytes>>(allow: HeaderValue) -> Response<B> {
    let mut response = Response::new(B::from(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response.headers_mut().insert(header::ALLOW, allow);
    response
}

/// A JSON response with a status, for built-in endpoints that succeed.
pub fn json_response<B: From<Bytes>>(status: StatusCode, json: Vec<u8>) -> Response<B> {
    let mut response = Response::new(B::from(Bytes::from(json)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON response that must never be cached (token endpoint answers, RFC 6749 §5.1).
pub fn no_store_json<B: From<Bytes>>(status: StatusCode, json: Vec<u8>) -> Response<B> {
    let mut response = json_response(status, json);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Builds `Scheme realm="...", k="v", ...`. Every value here is configured or fixed, but
/// a quote, backslash or control byte is refused rather than emitted (RFC 6750 §3).
fn challenge(scheme: &str, realm: &str, params: &[(&str, &str)]) -> Option<HeaderValue> {
    let quotable = |v: &str| {
        v.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    };
    let mut value = format!(
        "{scheme} realm=\"{}\"",
        if quotable(realm) { realm } else { "" }
    );
    for (name, v) in params {
        if quotable(v) {
            value.push_str(&format!(", {name}=\"{v}\""));
        }
    }
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(e: Error) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response: Response<Bytes> = e.into_response();
        let (parts, body) = response.into_parts();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&body).unwrap(),
        )
    }

    #[test]
    fn every_error_has_the_same_json_shape() {
        let (status, headers, body) = parts(Error::NotFound);
        assert_eq!(status, 404);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body["error"], "not_found");
        assert!(body["error_description"].is_string());
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let allow = HeaderValue::from_static("GET, HEAD, OPTIONS");
        let (status, headers, _) = parts(Error::MethodNotAllowed { allow });
        assert_eq!(status, 405);
        assert_eq!(headers["allow"], "GET, HEAD, OPTIONS");
    }

    #[test]
    fn upstream_errors_name_the_route() {
        let (status, _, body) = parts(Error::UpstreamTimeout {
            route: "/api".into(),
        });
        assert_eq!(status, 504);
        assert_eq!(body["route"], "/api");
        let (status, _, _) = parts(Error::UpstreamUnavailable {
            route: "/api".into(),
        });
        assert_eq!(status, 502);
    }

    #[test]
    fn missing_token_challenge_has_no_error_attribute() {
        let (status, headers, _) = parts(Error::MissingToken { realm: "gw".into() });
        assert_eq!(status, 401);
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"gw\"");
    }

    #[test]
    fn expired_token_challenge_matches_rfc6750_example() {
        let e = Error::InvalidToken {
            realm: "gw".into(),
            description: "The access token expired",
        };
        let (_, headers, body) = parts(e);
        assert_eq!(
            headers["www-authenticate"],
            "Bearer realm=\"gw\", error=\"invalid_token\", error_description=\"The access token expired\""
        );
        assert_eq!(body["error"], "invalid_token");
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let e = Error::InsufficientScope {
            realm: "gw".into(),
            scope: Some("orders:write".into()),
        };
        let (status, headers, _) = parts(e);
        assert_eq!(status, 403);
        assert_eq!(
            headers["www-authenticate"],
            "Bearer realm=\"gw\", error=\"insufficient_scope\", scope=\"orders:write\""
        );
    }

    #[test]
    fn oauth_errors_are_not_cached_and_invalid_client_challenges_basic() {
        let (status, headers, body) = parts(OAuthError::invalid_client("gw-token".into()).into());
        assert_eq!(status, 401);
        assert_eq!(headers["www-authenticate"], "Basic realm=\"gw-token\"");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["pragma"], "no-cache");
        assert_eq!(body["error"], "invalid_client");
        let e = OAuthError::new(OAuthErrorKind::InvalidGrant, "Invalid credentials");
        let (status, _, body) = parts(e.into());
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
    }

    #[test]
    fn a_realm_that_would_break_the_header_is_not_emitted() {
        let (_, headers, _) = parts(Error::MissingToken {
            realm: "a\"b".into(),
        });
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"\"");
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let (status, headers, _) = parts(Error::TooManyRequests { retry_after: 3 });
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "3");
    }
}
