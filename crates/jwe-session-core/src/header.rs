//! The protected header: the one a key writes for a purpose (built once per key and
//! purpose, then reused for sealing and compared byte for byte by opening's fast path), and
//! the strict reading of the header a token brings.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use crate::b64;
use crate::error::{truncate, OpenError};
use crate::names::Enc;

/// How many purposes' headers a key keeps; past that the oldest is dropped (and rebuilt if
/// used again). Purposes come from the application's configuration, not from input.
pub(crate) const HEADER_PURPOSES: usize = 8;

/// The headers one key writes, one per purpose it has been used with (at most
/// [`HEADER_PURPOSES`], newest last).
///
/// One entry per purpose, so layers with different purposes sharing a key ring (a cookie
/// layer and a bearer layer, say) each keep theirs instead of rebuilding it on every
/// request.
pub(crate) struct Headers(ArcSwap<Vec<Arc<Written>>>);

/// A key's protected header for one purpose.
pub(crate) struct Written {
    purpose: Option<Arc<str>>,
    /// The header, base64url-encoded, as it leads every token the key seals for the purpose.
    pub(crate) b64: Box<str>,
}

impl Headers {
    pub(crate) fn new() -> Self {
        Self(ArcSwap::from_pointee(Vec::new()))
    }

    /// The header the key `kid` (for `enc`) writes for `purpose`, built on first use; a
    /// key that writes no kid (NextAuth v4's) passes `None`.
    pub(crate) fn for_purpose(
        &self,
        kid: Option<&str>,
        enc: Enc,
        purpose: Option<&Arc<str>>,
    ) -> Arc<Written> {
        let same = |c: &Written| match (&c.purpose, purpose) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
            _ => false,
        };
        if let Some(c) = self.0.load().iter().find(|c| same(c)) {
            return Arc::clone(c);
        }
        let fresh = Arc::new(Written {
            purpose: purpose.cloned(),
            b64: encode(kid, enc, purpose.map(|p| &**p)).into_boxed_str(),
        });
        self.0.rcu(|cached| {
            let keep = cached.len().saturating_sub(HEADER_PURPOSES - 1);
            let mut next: Vec<_> = cached[keep..]
                .iter()
                .filter(|c| !same(c))
                .cloned()
                .collect();
            next.push(Arc::clone(&fresh));
            next
        });
        fresh
    }

    /// How many purposes' headers are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.load().len()
    }
}

/// The protected header a key writes for a purpose, base64url-encoded:
/// `{"alg":"dir","enc":…,"kid":…}` and, with a purpose, `"typ"`. (Auth.js writes the same
/// three members in the same order; NextAuth v4 writes no kid.)
pub(crate) fn encode(kid: Option<&str>, enc: Enc, purpose: Option<&str>) -> String {
    let mut json = String::with_capacity(96);
    json.push_str("{\"alg\":\"dir\",\"enc\":\"");
    json.push_str(enc.as_str());
    json.push('"');
    // Kids are printable ASCII without quotes or backslashes (checked at load), so they
    // need no escaping; purposes may be anything and go through the JSON encoder.
    if let Some(kid) = kid {
        json.push_str(",\"kid\":\"");
        json.push_str(kid);
        json.push('"');
    }
    if let Some(p) = purpose {
        json.push_str(",\"typ\":");
        json.push_str(&serde_json::Value::from(p).to_string());
    }
    json.push('}');
    b64::encode(json.as_bytes())
}

/// A token's protected header after the checks that need no key: `alg` is `dir`, no `zip`,
/// no `crit`. What is left depends on the key the `kid` names (a ring that opens tokens
/// without a kid, Auth.js's, finds the key otherwise; any other refuses them).
pub(crate) struct Parsed<'a> {
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) enc: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
}

/// Reads a protected header (already known to start as a JSON object), in the documented
/// order: JSON, `alg` present and `dir`, no `zip`, no `crit`.
pub(crate) fn parse(json: &[u8]) -> Result<Parsed<'_>, OpenError> {
    let header: Repr<'_> = serde_json::from_slice(json).map_err(|_| OpenError::HeaderNotJson)?;
    let alg = header
        .alg
        .ok_or(OpenError::MissingHeader { field: "alg" })?;
    if alg != "dir" {
        return Err(OpenError::UnsupportedAlg {
            found: truncate(&alg),
        });
    }
    if header.zip {
        return Err(OpenError::Compressed);
    }
    if header.crit {
        return Err(OpenError::Critical);
    }
    Ok(Parsed {
        kid: header.kid,
        enc: header.enc,
        typ: header.typ,
    })
}

/// The protected header members that matter; unknown members are ignored (RFC 7516 §4),
/// except that `zip` and `crit` are refused wherever they appear and duplicates are errors.
#[derive(Deserialize)]
struct Repr<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    enc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    zip: bool,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}
