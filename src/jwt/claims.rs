//! The verified claim set (Koa's `ctx.state.user`), shared as `Arc<Claims>`.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::VerifyError;

/// Largest NumericDate accepted: 2^53 - 1, the largest integer a JSON number
/// holds exactly everywhere (RFC 7493 §2.2). Anything beyond is nonsense and
/// would risk wrapping.
pub(crate) const MAX_NUMERIC_DATE: i64 = (1 << 53) - 1;

/// Names of the registered claims that [`Claims`] types; an issuer's extra
/// claims may not reuse them.
pub const REGISTERED_CLAIMS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "client_id",
];

/// The claims of a token whose signature, time window, issuer and audience
/// have been checked. Only the verifier builds one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claims {
    /// Issuer; always equal to the configured issuer once verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject; never empty.
    pub sub: String,
    /// Audiences (`aud` as a string becomes a one-element list).
    pub aud: Vec<String>,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Not-before, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued-at, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id, the key for revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Space-delimited scopes (RFC 8693 §4.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The OAuth client the token was issued to (RFC 9068 §2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Every other claim, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    #[serde(skip)]
    kid: Arc<str>,
    #[serde(skip)]
    leeway: i64,
}

// === impl Claims ===

impl Claims {
    /// Builds claims from a parsed payload, checking registered claim types.
    /// `leeway` (seconds) is kept so a cache hit re-checks time exactly as
    /// the verifier did.
    pub(crate) fn from_payload(
        mut map: Map<String, Value>,
        kid: Arc<str>,
        leeway: i64,
    ) -> Result<Claims, VerifyError> {
        let exp = match map.remove("exp") {
            Some(v) => numeric_date(&v).ok_or(VerifyError::Claims("exp"))?,
            None => return Err(VerifyError::Claims("exp")),
        };
        let nbf = map
            .remove("nbf")
            .map(|v| numeric_date(&v).ok_or(VerifyError::Claims("nbf")))
            .transpose()?;
        let iat = map
            .remove("iat")
            .map(|v| numeric_date(&v).ok_or(VerifyError::Claims("iat")))
            .transpose()?;
        let sub = match map.remove("sub") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(VerifyError::Claims("sub")),
        };
        let aud = match map.remove("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(VerifyError::Claims("aud")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(VerifyError::Claims("aud")),
        };
        Ok(Claims {
            iss: optional_string(&mut map, "iss")?,
            sub,
            aud,
            exp,
            nbf,
            iat,
            jti: optional_string(&mut map, "jti")?,
            scope: optional_string(&mut map, "scope")?,
            client_id: optional_string(&mut map, "client_id")?,
            extra: map,
            kid,
            leeway,
        })
    }

    /// Checks `exp`, `nbf` and `iat` against `now` (unix seconds) with the
    /// leeway the verifier used. Called at verification and on every cache
    /// hit, so a cached token never outlives its `exp`.
    pub fn check_time(&self, now: i64) -> Result<(), VerifyError> {
        let leeway = self.leeway;
        if self.exp <= now.saturating_sub(leeway) {
            return Err(VerifyError::Expired);
        }
        if self.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(VerifyError::NotYetValid);
        }
        if self.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(VerifyError::IssuedInFuture);
        }
        Ok(())
    }

    /// Any claim by name, registered or not, so callers look up `"sub"`,
    /// `"role"` or `"scp"` the same way. Registered claims are returned as an
    /// owned `Value` (`aud` always as an array); others are borrowed.
    pub fn get(&self, name: &str) -> Option<Cow<'_, Value>> {
        let owned = |v: Value| Some(Cow::Owned(v));
        match name {
            "iss" => self.iss.clone().and_then(|s| owned(Value::String(s))),
            "sub" => owned(Value::String(self.sub.clone())),
            "aud" => owned(Value::Array(
                self.aud.iter().cloned().map(Value::String).collect(),
            )),
            "exp" => owned(self.exp.into()),
            "nbf" => self.nbf.and_then(|v| owned(v.into())),
            "iat" => self.iat.and_then(|v| owned(v.into())),
            "jti" => self.jti.clone().and_then(|s| owned(Value::String(s))),
            "scope" => self.scope.clone().and_then(|s| owned(Value::String(s))),
            "client_id" => self.client_id.clone().and_then(|s| owned(Value::String(s))),
            _ => self.extra.get(name).map(Cow::Borrowed),
        }
    }

    /// Every granted scope: the space-delimited `scope` claim, then the
    /// strings of an `scp` array (or space-delimited `scp` string), as some
    /// issuers send. Empty items are skipped.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let from_scope = self.scope.as_deref().unwrap_or("").split(' ');
        let from_scp: Box<dyn Iterator<Item = &str>> = match self.extra.get("scp") {
            Some(Value::Array(items)) => Box::new(items.iter().filter_map(Value::as_str)),
            Some(Value::String(s)) => Box::new(s.split(' ')),
            _ => Box::new(std::iter::empty()),
        };
        from_scope.chain(from_scp).filter(|s| !s.is_empty())
    }

    /// True if `scope` is among [`scopes`](Self::scopes).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The `kid` of the key that verified this token; the cache purges by it
    /// when a key is removed.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// A NumericDate (RFC 7519 §2) that is an integer-valued JSON number in
/// `0..=2^53-1`. Strings, booleans, null, fractions, negatives and huge
/// values are refused rather than coerced or wrapped.
pub(crate) fn numeric_date(v: &Value) -> Option<i64> {
    let Value::Number(n) = v else { return None };
    let i = if let Some(u) = n.as_u64() {
        i64::try_from(u).ok()?
    } else if n.is_i64() {
        return None; // negative
    } else {
        let f = n.as_f64()?;
        if !(f.is_finite() && f.fract() == 0.0 && f >= 0.0 && f <= MAX_NUMERIC_DATE as f64) {
            return None;
        }
        f as i64
    };
    (i <= MAX_NUMERIC_DATE).then_some(i)
}

fn optional_string(
    map: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, VerifyError> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::Claims(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Result<Claims, VerifyError> {
        let Value::Object(map) = v else { panic!() };
        Claims::from_payload(map, Arc::from("k"), 30)
    }

    #[test]
    fn numeric_date_refuses_wrong_types_and_nonsense() {
        for bad in [
            json!("1893456000"),
            json!(true),
            json!(null),
            json!({}),
            json!([]),
            json!(-1),
            json!(1.5),
            json!(18446744073709551615u64),
            json!(1e300),
            json!(9007199254740992u64), // 2^53
        ] {
            assert_eq!(numeric_date(&bad), None, "{bad}");
        }
        assert_eq!(numeric_date(&json!(1893456000)), Some(1893456000));
        assert_eq!(numeric_date(&json!(1893456000.0)), Some(1893456000));
        assert_eq!(numeric_date(&json!(0)), Some(0));
    }

    #[test]
    fn sub_must_be_a_non_empty_string() {
        for sub in [json!(null), json!(""), json!(123), json!(["a"])] {
            assert_eq!(
                claims(json!({"sub": sub, "exp": 10})),
                Err(VerifyError::Claims("sub"))
            );
        }
        assert_eq!(claims(json!({"exp": 10})), Err(VerifyError::Claims("sub")));
    }

    #[test]
    fn exp_is_required() {
        assert_eq!(claims(json!({"sub": "a"})), Err(VerifyError::Claims("exp")));
    }

    #[test]
    fn aud_string_or_array_of_strings() {
        let c = claims(json!({"sub": "a", "exp": 10, "aud": "api"})).unwrap();
        assert_eq!(c.aud, ["api"]);
        let c = claims(json!({"sub": "a", "exp": 10, "aud": ["x", "api"]})).unwrap();
        assert_eq!(c.aud, ["x", "api"]);
        for bad in [json!(1), json!([1]), json!({"a": 1})] {
            assert_eq!(
                claims(json!({"sub": "a", "exp": 10, "aud": bad})),
                Err(VerifyError::Claims("aud"))
            );
        }
    }

    #[test]
    fn registered_strings_must_be_strings() {
        for name in ["iss", "jti", "scope", "client_id"] {
            let mut v = json!({"sub": "a", "exp": 10});
            v[name] = json!(1);
            assert_eq!(claims(v), Err(VerifyError::Claims(name)));
        }
    }

    #[test]
    fn get_answers_registered_and_extra_names() {
        let c = claims(json!({
            "sub": "alice", "exp": 10, "aud": "api", "role": "admin", "scope": "a b"
        }))
        .unwrap();
        assert_eq!(c.get("sub").unwrap().as_ref(), &json!("alice"));
        assert_eq!(c.get("role").unwrap().as_ref(), &json!("admin"));
        assert_eq!(c.get("aud").unwrap().as_ref(), &json!(["api"]));
        assert_eq!(c.get("exp").unwrap().as_ref(), &json!(10));
        assert!(c.get("nbf").is_none() && c.get("nope").is_none());
        assert_eq!(c.kid(), "k");
    }

    #[test]
    fn scopes_merge_scope_and_scp() {
        let c = claims(json!({
            "sub": "a", "exp": 10, "scope": "read  write", "scp": ["admin", 3]
        }))
        .unwrap();
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["read", "write", "admin"]);
        assert!(c.has_scope("write") && !c.has_scope("rea"));
    }

    #[test]
    fn check_time_applies_leeway_at_the_boundaries() {
        let now = 1_000_000;
        let at = |exp: i64, nbf: Option<i64>, iat: Option<i64>| {
            let mut v = json!({"sub": "a", "exp": exp});
            if let Some(n) = nbf {
                v["nbf"] = json!(n);
            }
            if let Some(i) = iat {
                v["iat"] = json!(i);
            }
            claims(v).unwrap().check_time(now)
        };
        // Row 17: exp = now - (L-1) accepted, exp = now - L and - (L+1) expired.
        assert_eq!(at(now - 29, None, None), Ok(()));
        assert_eq!(at(now, None, None), Ok(()));
        assert_eq!(at(now - 30, None, None), Err(VerifyError::Expired));
        assert_eq!(at(now - 31, None, None), Err(VerifyError::Expired));
        // Row 18: nbf = now, now + (L-1) accepted; now + (L+1) refused.
        assert_eq!(at(now + 60, Some(now), None), Ok(()));
        assert_eq!(at(now + 60, Some(now + 29), None), Ok(()));
        assert_eq!(
            at(now + 60, Some(now + 31), None),
            Err(VerifyError::NotYetValid)
        );
        // Row 19: iat in the future beyond leeway refused.
        assert_eq!(
            at(now + 60, None, Some(now + 3600)),
            Err(VerifyError::IssuedInFuture)
        );
        assert_eq!(at(now + 60, None, Some(now + 29)), Ok(()));
    }

    #[test]
    fn check_time_never_wraps() {
        let c = claims(json!({"sub": "a", "exp": MAX_NUMERIC_DATE})).unwrap();
        assert_eq!(c.check_time(i64::MIN), Ok(()));
        assert_eq!(c.check_time(i64::MAX), Err(VerifyError::Expired));
    }
}
