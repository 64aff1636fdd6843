//! [`BodyParserLayer`]: which bodies to parse, and how much of them to accept.

use std::sync::Arc;

use tower::Layer;

use super::media::BodyKind;
use super::service::BodyParser;

/// Parses JSON, form and text request bodies into a [`ParsedBody`](crate::ParsedBody)
/// request extension, Koa's `ctx.request.body`.
///
/// Defaults follow koa-bodyparser: JSON up to 1 MiB, forms up to 56 KiB, text up to
/// 1 MiB, strict JSON (an object or an array), plus a nesting limit of 64 and at most
/// 1000 form fields. Cheap to clone: one `Arc`.
#[derive(Debug, Clone)]
pub struct BodyParserLayer {
    pub(super) settings: Arc<Settings>,
}

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) json_limit: Option<u64>,
    pub(super) form_limit: Option<u64>,
    pub(super) text_limit: Option<u64>,
    pub(super) required: Option<BodyKind>,
    pub(super) max_depth: usize,
    pub(super) strict: bool,
    pub(super) max_fields: usize,
}

impl Settings {
    pub(super) fn limit(&self, kind: BodyKind) -> Option<u64> {
        match kind {
            BodyKind::Json => self.json_limit,
            BodyKind::Form => self.form_limit,
            BodyKind::Text => self.text_limit,
        }
    }
}

impl Default for BodyParserLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl BodyParserLayer {
    /// Parses JSON, form and text bodies with koa-bodyparser's limits.
    pub fn new() -> Self {
        Self {
            settings: Arc::new(Settings {
                json_limit: Some(1024 * 1024),
                form_limit: Some(56 * 1024),
                text_limit: Some(1024 * 1024),
                required: None,
                max_depth: 64,
                strict: true,
                max_fields: 1000,
            }),
        }
    }

    fn update(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// The largest JSON body accepted, in bytes (413 beyond).
    pub fn json_limit(self, bytes: u64) -> Self {
        self.update(|s| s.json_limit = Some(bytes))
    }

    /// The largest form body accepted, in bytes (413 beyond).
    pub fn form_limit(self, bytes: u64) -> Self {
        self.update(|s| s.form_limit = Some(bytes))
    }

    /// The largest text body accepted, in bytes (413 beyond).
    pub fn text_limit(self, bytes: u64) -> Self {
        self.update(|s| s.text_limit = Some(bytes))
    }

    /// Stops parsing `kind`: such bodies pass through untouched.
    pub fn disable(self, kind: BodyKind) -> Self {
        self.update(|s| match kind {
            BodyKind::Json => s.json_limit = None,
            BodyKind::Form => s.form_limit = None,
            BodyKind::Text => s.text_limit = None,
        })
    }

    /// Accepts only `kind`: a request with a body of any other type gets 415.
    pub fn require(self, kind: BodyKind) -> Self {
        self.update(|s| s.required = Some(kind))
    }

    /// The deepest JSON nesting accepted (400 beyond).
    pub fn max_depth(self, depth: usize) -> Self {
        self.update(|s| s.max_depth = depth)
    }

    /// Whether a JSON body must be an object or an array (on by default).
    pub fn strict(self, strict: bool) -> Self {
        self.update(|s| s.strict = strict)
    }

    /// The most fields a form body may have (400 beyond).
    pub fn max_form_fields(self, fields: usize) -> Self {
        self.update(|s| s.max_fields = fields)
    }
}

impl<S> Layer<S> for BodyParserLayer {
    type Service = BodyParser<S>;

    fn layer(&self, inner: S) -> BodyParser<S> {
        BodyParser {
            inner,
            settings: self.settings.clone(),
        }
    }
}
