//! What a route requires of a verified token: a role (any of), scopes (all of), claims.

use std::sync::Arc;

use serde_json::Value;

use super::claim;
use crate::context::Claims;

/// A route's requirements. Checked on every request, after verification: the cache
/// holds "this token is authentic", never "this token may use this route".
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    roles: Vec<String>,
    role_claim: String,
    scopes: Vec<String>,
    claims: Vec<(String, Value)>,
    /// The `scope` attribute of a 403 challenge (the required scopes, space-joined).
    pub(super) scope_hint: Option<Arc<str>>,
}

impl Requirements {
    /// No requirement: any verified token passes.
    pub fn new() -> Self {
        Self {
            role_claim: "role".to_owned(),
            ..Self::default()
        }
    }

    /// The token's `role` claim (a string, or an array of strings) must contain one of
    /// `roles`.
    pub fn any_role<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Reads roles from this claim instead of `role`.
    pub fn role_claim(mut self, name: impl Into<String>) -> Self {
        self.role_claim = name.into();
        self
    }

    /// The token must grant every one of `scopes` (space-delimited `scope`, or `scp`).
    pub fn all_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        let hint = self.scopes.join(" ");
        self.scope_hint = (!hint.is_empty()).then(|| hint.into());
        self
    }

    /// The claim `name` must equal `value` (or, for an array claim, contain it).
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.claims.push((name.into(), value));
        self
    }

    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.scopes.is_empty() && self.claims.is_empty()
    }

    /// Whether `claims` meet every requirement.
    pub fn allows(&self, claims: &Claims) -> bool {
        let roles_ok = self.roles.is_empty()
            || claim(claims, &self.role_claim)
                .is_some_and(|v| self.roles.iter().any(|r| contains(&v, r)));
        roles_ok
            && self
                .scopes
                .iter()
                .all(|s| claims.scopes().any(|granted| granted == s))
            && self.claims.iter().all(|(name, want)| {
                claim(claims, name).is_some_and(|have| {
                    *have == *want || have.as_array().is_some_and(|a| a.contains(want))
                })
            })
    }
}

fn contains(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Array(items) => items.iter().any(|v| v.as_str() == Some(wanted)),
        _ => false,
    }
}
