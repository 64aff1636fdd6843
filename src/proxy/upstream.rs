//! An upstream's base URL, and how a request path is joined onto it.

use std::fmt;
use std::sync::Arc;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};

/// Where a route forwards to: `http://host:port[/base/path]`.
#[derive(Debug, Clone)]
pub struct Upstream {
    authority: Authority,
    /// The base path without a trailing slash; empty for `/`.
    base_path: Arc<str>,
    host: HeaderValue,
    label: Arc<str>,
}

/// Why an upstream URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUpstream(&'static str);

impl fmt::Display for InvalidUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidUpstream {}

// === impl Upstream ===

impl Upstream {
    /// Parses `http://host:port[/base]`. HTTPS upstreams are not supported (no TLS
    /// client is built in), and a query or fragment in the base is refused.
    pub fn parse(url: &str) -> Result<Self, InvalidUpstream> {
        let uri: Uri = url
            .parse()
            .map_err(|_| InvalidUpstream("not a valid URL (expected http://host:port/path)"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or(InvalidUpstream("the URL has no scheme (expected http://)"))?;
        if scheme != Scheme::HTTP {
            return Err(InvalidUpstream("only http:// upstreams are supported"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or(InvalidUpstream("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(InvalidUpstream(
                "credentials in the upstream URL are not supported",
            ));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(InvalidUpstream(
                "the upstream URL may not have a query or fragment",
            ));
        }
        let base_path = uri.path().trim_end_matches('/').into();
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| InvalidUpstream("the host is not a valid header value"))?;
        Ok(Self {
            authority,
            base_path,
            host,
            label: url.trim_end_matches('/').into(),
        })
    }

    /// The `Host` header value for requests to this upstream.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The base path without a trailing slash; empty for `/`.
    pub(super) fn base_path(&self) -> &Arc<str> {
        &self.base_path
    }

    /// The URL as configured, for logs.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// `host:port` to connect to (port 80 when the URL has none).
    pub fn address(&self) -> String {
        let port = self.authority.port_u16().unwrap_or(80);
        format!("{}:{port}", self.authority.host())
    }

    /// The origin-form request target (`/base/path?query`) for a request path (already
    /// stripped of the route prefix if the route says so) and its query, kept byte for
    /// byte.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let mut target = Vec::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1) + 1,
        );
        write_target(&self.base_path, path, query, &mut target);
        Ok(Uri::from(PathAndQuery::try_from(target)?))
    }
}

/// Writes the origin-form target `base` + `path` + `?query` into `dst`: `path` already
/// stripped of the route prefix if the route says so, `base` without a trailing slash, and
/// `/` when both are empty. The one place where a forwarded path is joined.
pub(super) fn write_target(base: &str, path: &str, query: Option<&str>, dst: &mut Vec<u8>) {
    dst.extend_from_slice(base.as_bytes());
    if !path.is_empty() {
        dst.extend_from_slice(path.as_bytes());
    } else if base.is_empty() {
        dst.push(b'/');
    }
    if let Some(query) = query {
        dst.push(b'?');
        dst.extend_from_slice(query.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(base: &str, path: &str, query: Option<&str>) -> String {
        Upstream::parse(base)
            .unwrap()
            .uri_for(path, query)
            .unwrap()
            .to_string()
    }

    #[test]
    fn paths_join_onto_the_base() {
        assert_eq!(join("http://u:1", "", None), "/");
        assert_eq!(join("http://u:1/", "/x", None), "/x");
        assert_eq!(join("http://u:1/v1", "", None), "/v1");
        assert_eq!(join("http://u:1/v1/", "/x/y", None), "/v1/x/y");
        assert_eq!(join("http://u:1/v1", "/", None), "/v1/");
    }

    #[test]
    fn the_query_is_kept_byte_for_byte() {
        assert_eq!(
            join("http://u:1", "/x", Some("b=2&a=%2F&&c")),
            "/x?b=2&a=%2F&&c"
        );
        assert_eq!(join("http://u:1", "/x", Some("")), "/x?");
    }

    #[test]
    fn the_address_has_a_port() {
        let address = |url: &str| Upstream::parse(url).unwrap().address();
        assert_eq!(address("http://u:1/v1"), "u:1");
        assert_eq!(address("http://example.com"), "example.com:80");
        assert_eq!(address("http://[::1]:8080/"), "[::1]:8080");
        assert!("[::1]:8080".parse::<std::net::SocketAddr>().is_ok());
    }

    #[test]
    fn unsupported_upstreams_are_refused() {
        assert!(Upstream::parse("https://u").is_err());
        assert!(Upstream::parse("u:80").is_err());
        assert!(Upstream::parse("http://u/?q").is_err());
        assert!(Upstream::parse("http://user:pw@u/").is_err());
        assert!(Upstream::parse("not a url").is_err());
    }
}
