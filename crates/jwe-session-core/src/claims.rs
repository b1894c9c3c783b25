//! The claims a session token carries: the registered JWT claims, the session's own
//! (`sid`, `auth_time`, `started_us`, `issued_us`, `slt`) and the application's, read in one
//! pass; and how a session's [`Lifetimes`] are written into them and judged by them.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::lifetimes::{Lifetimes, SessionLifetimes, Stage};
use crate::names::Claim;
use crate::proof::PublicJwk;
use crate::time::{UnixMicros, UnixTime};

/// The claims a session token carries: the registered JWT claims, `sid`, `auth_time` and
/// `started_us`, and the application's own claims (`T`) flattened in beside them.
///
/// `T` can be any serde type that (de)serializes as a map, e.g. a struct of roles and
/// preferences, or `serde_json::Map` for free-form claims; `()` means none.
///
/// ```
/// use jwe_session_core::Claims;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct App { roles: Vec<String> }
///
/// let mut claims = Claims::new(App { roles: vec!["admin".into()] });
/// claims.sub = Some("alice".into());
/// let json = serde_json::to_string(&claims)?;
/// assert_eq!(json, r#"{"sub":"alice","roles":["admin"]}"#);
/// let back: Claims<App> = serde_json::from_str(&json)?;
/// assert_eq!(back, claims);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims<T = ()> {
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject: the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiration time: trusted without lookup until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<UnixTime>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    /// Issued at (this token, not the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<UnixTime>,
    /// Token id, new for every token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Session id, stable across re-issues; what logout revokes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user logged in; the absolute lifetime counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// When this session (`sid`) began, in microseconds: what revocations of "every session
    /// begun at or before M" compare, exactly. A private claim; tokens without it (sealed
    /// before commit d92def7, see CHANGELOG.md) count as begun at the start of their `auth_time` second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_us: Option<UnixMicros>,
    /// When this token was issued, in microseconds: what a claims refresh of "tokens
    /// issued before M" compares, exactly (`iat` stays a whole second for
    /// interoperability). A private claim; tokens without it count as issued at the start
    /// of their `iat` second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_us: Option<UnixMicros>,
    /// Lifetimes chosen for this session at its start, narrower than the layer's (a
    /// session without "remember me", a browser-session cookie). A private claim, `slt`;
    /// without it the configured [`Lifetimes`] apply as they are.
    #[serde(rename = "slt", default, skip_serializing_if = "Option::is_none")]
    pub lifetimes: Option<SessionLifetimes>,
    /// The key this session is bound to (RFC 7800 `cnf`, RFC 9449 §6): a token that
    /// carries it is accepted only with a proof made by that key. Set when the session
    /// starts and never changed or removed during its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The application's own claims.
    #[serde(flatten)]
    pub app: T,
}

impl<T> Claims<T> {
    /// Claims with only the application's part set.
    pub fn new(app: T) -> Self {
        Self {
            iss: None,
            sub: None,
            aud: None,
            exp: None,
            nbf: None,
            iat: None,
            jti: None,
            sid: None,
            auth_time: None,
            started_us: None,
            issued_us: None,
            lifetimes: None,
            cnf: None,
            app,
        }
    }
}

/// The confirmation claim of a bound session (RFC 7800 §3.1): the RFC 7638 SHA-256
/// thumbprint of the public key whose proofs the token requires (RFC 9449 §6.1), and, for
/// a device-bound browser session (DBSC), the public key itself with the session's DBSC
/// identifier ([`DeviceKey`]). Any other member is refused, since a token sealed here
/// never has one.
///
/// ```
/// use jwe_session_core::{Claims, Confirmation};
///
/// let mut claims = Claims::new(());
/// claims.cnf = Some(Confirmation::jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
/// let json = serde_json::to_string(&claims)?;
/// assert_eq!(json, r#"{"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}"#);
/// assert!(serde_json::from_str::<Claims<()>>(r#"{"cnf":{"jkt":"a","jwk":{}}}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint, base64url without padding.
    pub jkt: String,
    /// Set for a device-bound session (DBSC): the key signs the session's refreshes, not
    /// its requests, and the token is a cookie that lives only the bound lifetime. A
    /// private member, `dbsc`; a DPoP-bound token never has it, so neither kind of token
    /// passes for the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbsc: Option<DeviceKey>,
}

impl Confirmation {
    /// A confirmation by this key thumbprint (DPoP).
    pub fn jkt(thumbprint: impl Into<String>) -> Self {
        Self {
            jkt: thumbprint.into(),
            dbsc: None,
        }
    }

    /// The confirmation of device-bound session `id` (its DBSC identifier): the key's
    /// thumbprint and the key.
    pub fn device(id: impl Into<String>, jwk: &PublicJwk) -> Self {
        Self {
            jkt: jwk.thumbprint(),
            dbsc: Some(DeviceKey::new(id, jwk)),
        }
    }

    /// Whether this is a device-bound (DBSC) session's confirmation.
    #[must_use]
    pub fn is_device_bound(&self) -> bool {
        self.dbsc.is_some()
    }
}

/// The device key of a DBSC session, as its token carries it: the identifier the browser
/// knows the session by (its `sid` at registration, kept when the `sid` later moves) and the
/// public P-256 key its refreshes are verified with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKey {
    /// The DBSC session identifier.
    pub id: String,
    /// The public key's x coordinate, base64url.
    pub x: String,
    /// The public key's y coordinate, base64url.
    pub y: String,
    /// The `sid` the session had before it was bound, until the layer has revoked it (on
    /// the bound cookie's first use): the unbound cookie of the login, and any copy of it,
    /// then stops working, without a race with requests the browser sent before it had the
    /// bound cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

impl DeviceKey {
    /// The device key of session `id`, from a proof's public key.
    pub fn new(id: impl Into<String>, jwk: &PublicJwk) -> Self {
        let (x, y) = jwk.p256_coordinates();
        Self {
            id: id.into(),
            x,
            y,
            prev: None,
        }
    }

    /// The public key, or `None` when a coordinate is not 32 bytes of base64url (never
    /// for a key sealed here).
    #[must_use]
    pub fn public_jwk(&self) -> Option<PublicJwk> {
        PublicJwk::from_p256_coordinates(&self.x, &self.y)
    }
}

// Deserialization reads the JSON object once: registered claims are taken as they pass and
// every other member goes straight to `T`'s deserializer, which never sees the registered
// ones. (`#[serde(flatten)]` would buffer the whole object first, at about a third more
// cost, and hide registered claims from a `T` with `deny_unknown_fields` only by accident.)
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Claims<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ClaimsVisitor(std::marker::PhantomData))
    }
}

struct ClaimsVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ClaimsVisitor<T> {
    type Value = Claims<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Claims<T>, A::Error> {
        let mut access = Intercept {
            inner: map,
            reg: Registered::default(),
            done: false,
        };
        let app = T::deserialize(AppPart {
            access: &mut access,
        })?;
        access.drain()?;
        let r = access.reg;
        Ok(Claims {
            iss: r.iss.flatten(),
            sub: r.sub.flatten(),
            aud: r.aud.flatten(),
            exp: r.exp.flatten(),
            nbf: r.nbf.flatten(),
            iat: r.iat.flatten(),
            jti: r.jti.flatten(),
            sid: r.sid.flatten(),
            auth_time: r.auth_time.flatten(),
            started_us: r.started_us.flatten(),
            issued_us: r.issued_us.flatten(),
            lifetimes: r.lifetimes.flatten(),
            cnf: r.cnf.flatten(),
            app,
        })
    }
}

/// Registered claims seen so far: `None` not seen, `Some(None)` seen as `null`.
#[derive(Default)]
struct Registered {
    iss: Option<Option<String>>,
    sub: Option<Option<String>>,
    aud: Option<Option<Audience>>,
    exp: Option<Option<UnixTime>>,
    nbf: Option<Option<UnixTime>>,
    iat: Option<Option<UnixTime>>,
    jti: Option<Option<String>>,
    sid: Option<Option<String>>,
    auth_time: Option<Option<UnixTime>>,
    started_us: Option<Option<UnixMicros>>,
    issued_us: Option<Option<UnixMicros>>,
    lifetimes: Option<Option<SessionLifetimes>>,
    cnf: Option<Option<Confirmation>>,
}

enum Key<'de> {
    Registered(Claim),
    Other(std::borrow::Cow<'de, str>),
}

struct KeySeed;

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

fn registered(name: &str) -> Option<Claim> {
    Some(match name {
        "iss" => Claim::Iss,
        "sub" => Claim::Sub,
        "aud" => Claim::Aud,
        "exp" => Claim::Exp,
        "nbf" => Claim::Nbf,
        "iat" => Claim::Iat,
        "jti" => Claim::Jti,
        "sid" => Claim::Sid,
        "auth_time" => Claim::AuthTime,
        "started_us" => Claim::StartedUs,
        "issued_us" => Claim::IssuedUs,
        "slt" => Claim::SessionLifetimes,
        "cnf" => Claim::Cnf,
        _ => return None,
    })
}

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(registered(v).map_or(Key::Other(std::borrow::Cow::Borrowed(v)), Key::Registered))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(registered(v).map_or_else(
            || Key::Other(std::borrow::Cow::Owned(v.to_owned())),
            Key::Registered,
        ))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(registered(&v).map_or(Key::Other(std::borrow::Cow::Owned(v)), Key::Registered))
    }
}

/// The claims object as `T` sees it: registered members are taken out on the way.
struct Intercept<A> {
    inner: A,
    reg: Registered,
    done: bool,
}

impl<'de, A: MapAccess<'de>> Intercept<A> {
    fn take<V: Deserialize<'de>>(
        inner: &mut A,
        slot: &mut Option<Option<V>>,
        claim: Claim,
    ) -> Result<(), A::Error> {
        if slot.is_some() {
            return Err(de::Error::duplicate_field(claim.name()));
        }
        *slot = Some(inner.next_value()?);
        Ok(())
    }

    fn read_registered(&mut self, claim: Claim) -> Result<(), A::Error> {
        let (i, r) = (&mut self.inner, &mut self.reg);
        match claim {
            Claim::Iss => Self::take(i, &mut r.iss, claim),
            Claim::Sub => Self::take(i, &mut r.sub, claim),
            Claim::Aud => Self::take(i, &mut r.aud, claim),
            Claim::Exp => Self::take(i, &mut r.exp, claim),
            Claim::Nbf => Self::take(i, &mut r.nbf, claim),
            Claim::Iat => Self::take(i, &mut r.iat, claim),
            Claim::Jti => Self::take(i, &mut r.jti, claim),
            Claim::Sid => Self::take(i, &mut r.sid, claim),
            Claim::AuthTime => Self::take(i, &mut r.auth_time, claim),
            Claim::StartedUs => Self::take(i, &mut r.started_us, claim),
            Claim::IssuedUs => Self::take(i, &mut r.issued_us, claim),
            Claim::SessionLifetimes => Self::take(i, &mut r.lifetimes, claim),
            Claim::Cnf => Self::take(i, &mut r.cnf, claim),
        }
    }

    /// Consumes whatever `T` left unread, still picking up registered claims.
    fn drain(&mut self) -> Result<(), A::Error> {
        while de::MapAccess::next_key::<de::IgnoredAny>(self)?.is_some() {
            de::MapAccess::next_value::<de::IgnoredAny>(self)?;
        }
        Ok(())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Intercept<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.done {
            return Ok(None);
        }
        loop {
            match self.inner.next_key_seed(KeySeed)? {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(Key::Registered(claim)) => self.read_registered(claim)?,
                Some(Key::Other(std::borrow::Cow::Borrowed(k))) => {
                    return seed
                        .deserialize(de::value::BorrowedStrDeserializer::new(k))
                        .map(Some)
                }
                Some(Key::Other(std::borrow::Cow::Owned(k))) => {
                    return seed
                        .deserialize(de::value::StringDeserializer::new(k))
                        .map(Some)
                }
            }
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Hands the remaining claims to `T` as a map (or, for `()`, as nothing).
struct AppPart<'a, A> {
    access: &'a mut Intercept<A>,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for AppPart<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.access)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.access.drain()?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        seq tuple tuple_struct map struct enum identifier
    }
}

/// The `aud` claim: one audience (serialized as a string) or several (as an array).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    /// A single audience.
    pub fn one(aud: impl Into<String>) -> Self {
        Self(vec![aud.into()])
    }

    /// Several audiences.
    pub fn many(auds: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(auds.into_iter().map(Into::into).collect())
    }

    /// Whether `aud` is among them.
    #[must_use]
    pub fn contains(&self, aud: &str) -> bool {
        self.0.iter().any(|a| a == aud)
    }

    /// All of them.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AudVisitor;
        impl<'de> Visitor<'de> for AudVisitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(Audience(v))
            }
        }
        d.deserialize_any(AudVisitor)
    }
}

impl Claim {
    pub(crate) fn is_present<T>(self, c: &Claims<T>) -> bool {
        match self {
            Self::Iss => c.iss.is_some(),
            Self::Sub => c.sub.is_some(),
            Self::Aud => c.aud.is_some(),
            Self::Exp => c.exp.is_some(),
            Self::Nbf => c.nbf.is_some(),
            Self::Iat => c.iat.is_some(),
            Self::Jti => c.jti.is_some(),
            Self::Sid => c.sid.is_some(),
            Self::AuthTime => c.auth_time.is_some(),
            Self::StartedUs => c.started_us.is_some(),
            Self::IssuedUs => c.issued_us.is_some(),
            Self::SessionLifetimes => c.lifetimes.is_some(),
            Self::Cnf => c.cnf.is_some(),
        }
    }
}

/// A fresh 128-bit random identifier, base64url (22 characters): for `sid` and `jti`.
#[must_use]
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    crate::b64::encode(&b)
}

/// The session clocks applied to a token's claims: written at login and renewal, judged
/// at every request. (The lifetimes themselves, and their arithmetic, are in `lifetimes`.)
impl Lifetimes {
    /// Starts a session (login): new `sid` and `jti`, `sub`, `auth_time = iat = now`,
    /// `started_us = now` (to the microsecond, when `now` is a [`UnixMicros`]),
    /// `exp = now + access`.
    pub fn start<T>(
        &self,
        claims: &mut Claims<T>,
        sub: impl Into<String>,
        now: impl Into<UnixMicros>,
    ) {
        let now = now.into();
        claims.sub = Some(sub.into());
        claims.sid = Some(random_id());
        claims.auth_time = Some(now.secs());
        claims.started_us = Some(now);
        self.reissue(claims, now);
    }

    /// Re-issues a token for the same session: keeps `sid` and `auth_time`, sets a new
    /// `jti`, `iat = now` (and `issued_us`, the same moment to the microsecond, when `now`
    /// is a [`UnixMicros`]), and `exp = now + access` (never past the absolute lifetime).
    /// A session's own [`SessionLifetimes`] narrow these ([`for_claims`](Self::for_claims)).
    pub fn reissue<T>(&self, claims: &mut Claims<T>, now: impl Into<UnixMicros>) {
        let life = self.for_claims(claims);
        let moment = now.into();
        let now = moment.secs();
        claims.jti = Some(random_id());
        claims.iat = Some(now);
        claims.issued_us = Some(moment);
        let mut exp = now.saturating_add(life.access());
        if let Some(auth) = claims.auth_time {
            exp = exp.min(auth.saturating_add(life.absolute()));
        }
        claims.exp = Some(exp);
    }

    /// Where a session stands at `now`, by these lifetimes narrowed by the session's own
    /// ([`for_claims`](Self::for_claims)).
    pub fn stage<T>(&self, claims: &Claims<T>, now: UnixTime) -> Stage {
        let (Some(exp), Some(auth)) = (claims.exp, claims.auth_time) else {
            return Stage::Incomplete;
        };
        let life = self.for_claims(claims);
        if now >= auth.saturating_add(life.absolute()) {
            Stage::AbsoluteExpired
        } else if now < exp {
            Stage::Fresh
        } else if now < exp.saturating_add(life.idle()) {
            Stage::Renewable
        } else {
            Stage::IdleExpired
        }
    }

    /// When the session of `claims` reaches its absolute lifetime (`auth_time` plus the
    /// absolute lifetime, narrowed by the session's own), if it has an `auth_time`: the
    /// latest a long-lived connection of that session should stay open.
    pub fn absolute_end<T>(&self, claims: &Claims<T>) -> Option<UnixTime> {
        let auth = claims.auth_time?;
        Some(auth.saturating_add(self.for_claims(claims).absolute()))
    }

    /// Until when the token of `claims` can be renewed: its `exp` plus the idle timeout,
    /// within the absolute lifetime (both narrowed by the session's own); `None` without
    /// `exp` and `auth_time`. What a cookie's `Max-Age` covers and when a session's
    /// registry record is dropped.
    pub fn renewable_end<T>(&self, claims: &Claims<T>) -> Option<UnixTime> {
        let (exp, auth) = (claims.exp?, claims.auth_time?);
        let life = self.for_claims(claims);
        Some(
            exp.saturating_add(life.idle())
                .min(auth.saturating_add(life.absolute())),
        )
    }

    /// The lifetimes that apply to one session: these, each narrowed by the session's own
    /// [`SessionLifetimes`] when it has them. A session never outlives the configured
    /// lifetimes, even if they were shortened after it began.
    pub fn for_claims<T>(&self, claims: &Claims<T>) -> Self {
        match &claims.lifetimes {
            Some(own) => self.narrowed_by(&own.lifetimes),
            None => *self,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    #[test]
    fn audience_serializes_like_jwt() {
        assert_eq!(
            serde_json::to_string(&Audience::one("a")).unwrap(),
            r#""a""#
        );
        assert_eq!(
            serde_json::to_string(&Audience::many(["a", "b"])).unwrap(),
            r#"["a","b"]"#
        );
        assert_eq!(
            serde_json::from_str::<Audience>(r#""a""#).unwrap(),
            Audience::one("a")
        );
        assert_eq!(
            serde_json::from_str::<Audience>(r#"["a","b"]"#).unwrap(),
            Audience::many(["a", "b"])
        );
        assert!(serde_json::from_str::<Audience>("[1]").is_err());
        assert!(serde_json::from_str::<Audience>("7").is_err());
    }

    #[test]
    fn claims_flatten_app_types() {
        let c: Claims<()> = serde_json::from_str(r#"{"sub":"a","other":1}"#).unwrap();
        assert_eq!(c.sub.as_deref(), Some("a"));
        let m: Claims<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(r#"{"sub":"a","other":1}"#).unwrap();
        assert_eq!(m.app.get("other"), Some(&serde_json::json!(1)));
        assert!(!m.app.contains_key("sub"));
        assert!(serde_json::from_str::<Claims<()>>(r#"{"exp":"soon"}"#).is_err());
        assert_eq!(serde_json::to_string(&Claims::new(())).unwrap(), "{}");
    }

    #[test]
    fn claims_deserialize_in_one_pass_without_leaking_registered_claims_to_t() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Strict {
            roles: Vec<String>,
        }
        let json = r#"{"sub":"a","roles":["x"],"exp":5,"aud":["w","v"],"iss":null}"#;
        let c: Claims<Strict> = serde_json::from_str(json).unwrap();
        assert_eq!(
            c.app,
            Strict {
                roles: vec!["x".into()]
            }
        );
        assert_eq!(
            (c.sub.as_deref(), c.exp, c.iss),
            (Some("a"), Some(t(5)), None)
        );
        assert_eq!(c.aud, Some(Audience::many(["w", "v"])));
        assert!(serde_json::from_str::<Claims<Strict>>(r#"{"roles":[],"other":1}"#).is_err());
        assert!(
            serde_json::from_str::<Claims<Strict>>(r#"{"sub":"a"}"#).is_err(),
            "roles missing"
        );
        // Duplicates of registered claims are refused, as serde's derive refuses its own.
        assert!(serde_json::from_str::<Claims<()>>(r#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(
            serde_json::from_str::<Claims<()>>(r#"{"exp":1,"x":{"y":[1,2]},"exp":2}"#).is_err()
        );
        // Escaped keys are matched like plain ones.
        let c: Claims<()> = serde_json::from_str(r#"{"s\u0075b":"esc"}"#).unwrap();
        assert_eq!(c.sub.as_deref(), Some("esc"));
        // Not an object.
        assert!(serde_json::from_str::<Claims<()>>("[1]").is_err());
        assert!(serde_json::from_str::<Claims<()>>("\"x\"").is_err());
        // Optional and newtype application parts.
        #[derive(Deserialize, Debug, PartialEq)]
        struct Wrap(std::collections::BTreeMap<String, u8>);
        let c: Claims<Wrap> = serde_json::from_str(r#"{"a":1,"sub":"s","b":2}"#).unwrap();
        assert_eq!(c.app.0.len(), 2);
        let c: Claims<Option<Strict>> = serde_json::from_str(r#"{"roles":["r"]}"#).unwrap();
        assert!(c.app.is_some());
    }

    #[test]
    fn claims_round_trip_through_json() {
        let mut c = Claims::new(serde_json::json!({"roles": ["a"], "n": 1}));
        c.sub = Some("s".into());
        c.aud = Some(Audience::one("x"));
        c.exp = Some(t(9));
        c.auth_time = Some(t(3));
        let back: Claims<serde_json::Value> =
            serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn lifetimes_stage_and_reissue() {
        let life = Lifetimes::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
            Duration::from_secs(3_600),
        );
        let mut c = Claims::new(());
        assert_eq!(life.stage(&c, t(0)), Stage::Incomplete);
        life.start(&mut c, "alice", t(10_000));
        let sid = c.sid.clone().unwrap();
        let jti = c.jti.clone().unwrap();
        assert_eq!(sid.len(), 22);
        assert_eq!(c.exp, Some(t(10_060)));
        assert_eq!(life.stage(&c, t(10_059)), Stage::Fresh);
        assert_eq!(life.stage(&c, t(10_060)), Stage::Renewable);
        assert_eq!(life.stage(&c, t(10_659)), Stage::Renewable);
        assert_eq!(life.stage(&c, t(10_660)), Stage::IdleExpired);
        life.reissue(&mut c, t(10_500));
        assert_eq!(c.sid.as_deref(), Some(sid.as_str()));
        assert_ne!(c.jti.as_deref(), Some(jti.as_str()));
        assert_eq!(c.iat, Some(t(10_500)));
        assert_eq!(c.auth_time, Some(t(10_000)));
        // exp never passes auth_time + absolute.
        life.reissue(&mut c, t(13_590));
        assert_eq!(c.exp, Some(t(13_600)));
        assert_eq!(life.stage(&c, t(13_600)), Stage::AbsoluteExpired);
        assert_eq!(life.renewable_until(t(10_000), t(10_100)), t(10_760));
        assert_eq!(life.renewable_until(t(10_000), t(13_500)), t(13_600));
        assert_eq!(life.sessions_before_end_by(t(50)), t(3_650));
    }

    /// `issued_us`: set to the microsecond by every issue (login and re-issue), read as a
    /// registered claim, integers only, once only; what a claims refresh compares.
    #[test]
    fn each_token_records_when_it_was_issued_to_the_microsecond() {
        let life = Lifetimes::default();
        let mut c = Claims::new(());
        let m = UnixMicros::from_micros(1_800_000_000_987_654);
        life.start(&mut c, "alice", m);
        assert_eq!(c.issued_us, Some(m));
        let later = UnixMicros::from_micros(1_800_000_000_987_655);
        life.reissue(&mut c, later);
        assert_eq!((c.issued_us, c.iat), (Some(later), Some(t(1_800_000_000))));
        assert_eq!(c.started_us, Some(m), "the session's start stays");
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""issued_us":1800000000987655"#), "{json}");
        let back: Claims<()> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Strict {}
        let strict: Claims<Strict> = serde_json::from_str(&json).unwrap();
        assert_eq!(strict.issued_us, Some(later));
        for bad in [
            r#"{"issued_us":1.5}"#,
            r#"{"issued_us":"1"}"#,
            r#"{"issued_us":-1}"#,
            r#"{"issued_us":1,"issued_us":2}"#,
        ] {
            assert!(serde_json::from_str::<Claims<()>>(bad).is_err(), "{bad}");
        }
    }

    /// `started_us`: set to the microsecond at login, kept by re-issues, read as a
    /// registered claim (never handed to the app's type), integers only, once only.
    #[test]
    fn the_session_start_is_kept_to_the_microsecond() {
        let life = Lifetimes::default();
        let mut c = Claims::new(());
        let m = UnixMicros::from_micros(1_800_000_000_987_654);
        life.start(&mut c, "alice", m);
        assert_eq!(c.auth_time, Some(t(1_800_000_000)));
        assert_eq!(c.iat, Some(t(1_800_000_000)));
        assert_eq!(c.started_us, Some(m));
        life.reissue(&mut c, t(1_800_000_500));
        assert_eq!(c.started_us, Some(m));
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""started_us":1800000000987654"#), "{json}");
        let back: Claims<()> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);

        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Strict {}
        let strict: Claims<Strict> = serde_json::from_str(&json).unwrap();
        assert_eq!(strict.started_us, Some(m));
        for bad in [
            r#"{"started_us":1.5}"#,
            r#"{"started_us":"1"}"#,
            r#"{"started_us":-1}"#,
            r#"{"started_us":1,"started_us":2}"#,
        ] {
            assert!(serde_json::from_str::<Claims<()>>(bad).is_err(), "{bad}");
        }
        // Whole seconds, as before, when the time given is a `UnixTime`.
        let mut old_style = Claims::new(());
        life.start(&mut old_style, "bob", t(5));
        assert_eq!(
            old_style.started_us,
            Some(UnixMicros::from_micros(5_000_000))
        );
    }
}
