//! The session registry ("your devices"): one small record per session, written where a
//! session changes (start, renewal, refresh, a new `sid`, end), never on an ordinary
//! request, and read only when asked (a user's device list, a per-user cap, an admin
//! tool). It is not a session store: a record holds no claims and no token, only what a
//! device list shows.
//!
//! A store that keeps one answers [`RevocationStore::registry`](super::RevocationStore::registry);
//! [`RevocationStore::sessions_of`](super::RevocationStore::sessions_of) is the one rule
//! for which records are live (not past their `until`, not revoked by any scope).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{debug_report, BoxError, CheckError};
use crate::time::{UnixMicros, UnixTime};

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The longest device label a record keeps, in bytes; a longer one is cut at a character
/// boundary.
pub const MAX_LABEL_LEN: usize = 128;

/// The longest network hint a record keeps, in bytes.
pub const MAX_NETWORK_LEN: usize = 64;

/// How a session is bound to a key its client holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Binding {
    /// Not bound: whoever holds the token can use it.
    #[default]
    None,
    /// Bound to a DPoP key (`cnf.jkt`): every request carries a proof.
    Dpop,
    /// A device-bound cookie (DBSC): refreshed only with the browser's device key.
    Dbsc,
}

impl Binding {
    /// Its name in records, JSON and the CLI's output: `none`, `dpop`, `dbsc`.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Dpop => "dpop",
            Self::Dbsc => "dbsc",
        }
    }

    /// The binding a label names; `None` for one this version does not know.
    #[must_use]
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "none" => Some(Self::None),
            "dpop" => Some(Self::Dpop),
            "dbsc" => Some(Self::Dbsc),
            _ => None,
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One session as the registry knows it. Holds no claims and no token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The session id.
    pub sid: String,
    /// Whose session it is.
    pub sub: String,
    /// When the session began (its `started_us`; `auth_time` to the second).
    pub started: UnixMicros,
    /// When its token was last renewed (or, before any renewal, when it began).
    pub renewed: UnixTime,
    /// How it is bound.
    pub binding: Binding,
    /// A short device label the app supplied at login ("Firefox on Linux"), if any.
    pub label: Option<String>,
    /// A coarse network hint the app supplied at login (`203.0.113.0/24`), if any.
    pub network: Option<String>,
    /// When the session can no longer be renewed (idle window, absolute lifetime): the
    /// record is dropped then.
    pub until: UnixTime,
}

impl SessionRecord {
    /// A record for `sid` of `sub`, begun at `started`, renewable until `until`; unbound,
    /// without label or network hint, renewed when it began.
    #[must_use]
    pub fn new(
        sid: impl Into<String>,
        sub: impl Into<String>,
        started: UnixMicros,
        until: UnixTime,
    ) -> Self {
        Self {
            sid: sid.into(),
            sub: sub.into(),
            started,
            renewed: started.secs(),
            binding: Binding::None,
            label: None,
            network: None,
            until,
        }
    }

    /// With a device label (control characters dropped, at most [`MAX_LABEL_LEN`] bytes).
    #[must_use]
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = clean(label, MAX_LABEL_LEN);
        self
    }

    /// With a network hint (control characters dropped, at most [`MAX_NETWORK_LEN`] bytes).
    #[must_use]
    pub fn with_network(mut self, network: &str) -> Self {
        self.network = clean(network, MAX_NETWORK_LEN);
        self
    }

    /// With a binding.
    #[must_use]
    pub fn with_binding(mut self, binding: Binding) -> Self {
        self.binding = binding;
        self
    }

    /// Renewed at `at`, renewable until `until`.
    #[must_use]
    pub fn renewed_at(mut self, at: UnixTime, until: UnixTime) -> Self {
        self.renewed = at;
        self.until = until;
        self
    }

    /// When the session began, to the second.
    #[must_use]
    pub fn started_secs(&self) -> UnixTime {
        self.started.secs()
    }

    /// Merges `newer`, a later write of the same session, into this record: every store
    /// applies this one rule. The start stays the earliest, `renewed` and `until` the
    /// latest; the binding is the newer one; a label or network hint the newer write does
    /// not carry (a renewal) keeps the one recorded at login. Returns `false`, changing
    /// nothing, for another session.
    pub fn absorb(&mut self, newer: &Self) -> bool {
        if self.sid != newer.sid || self.sub != newer.sub {
            return false;
        }
        self.started = self.started.min(newer.started);
        self.renewed = self.renewed.max(newer.renewed);
        self.until = self.until.max(newer.until);
        self.binding = newer.binding;
        if newer.label.is_some() {
            self.label.clone_from(&newer.label);
        }
        if newer.network.is_some() {
            self.network.clone_from(&newer.network);
        }
        true
    }

    /// Checks what a store is asked to keep: a non-empty `sid` and `sub`, moments that
    /// are real (no later than the year 9999), label and hint within their limits.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`] naming what is wrong.
    pub fn check(&self) -> Result<(), RegistryError> {
        const LATEST: u64 = 253_402_300_799;
        let reason = if self.sid.is_empty() {
            Some("empty sid")
        } else if self.sub.is_empty() {
            Some("empty sub")
        } else if self.until.as_secs() > LATEST
            || self.renewed.as_secs() > LATEST
            || self.started.secs().as_secs() > LATEST
        {
            Some("a moment later than the year 9999")
        } else if self.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_LEN) {
            Some("label too long")
        } else if self
            .network
            .as_ref()
            .is_some_and(|n| n.len() > MAX_NETWORK_LEN)
        {
            Some("network hint too long")
        } else {
            None
        };
        reason.map_or(Ok(()), |reason| Err(RegistryError::Invalid { reason }))
    }

    /// What every store asks of a record it is given to write: well-formed
    /// ([`check`](Self::check)), and whether it is still worth keeping at `now` (`false`
    /// once its `until` has passed: nothing is written then).
    ///
    /// # Errors
    /// [`RegistryError::Invalid`], as [`check`](Self::check).
    pub fn to_keep(&self, now: UnixTime) -> Result<bool, RegistryError> {
        self.check()?;
        Ok(self.until > now)
    }

    /// The record as a JSON object, the encoding the durable stores keep:
    /// `{"sid":…,"sub":…,"started_us":…,"renewed":…,"bound":"none","until":…}`, with
    /// `label` and `network` when present.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(&Wire::from(self)).unwrap_or_default()
    }

    /// A record back from [`to_json`](Self::to_json), strictly: unknown members, an
    /// unknown binding or a record that fails [`check`](Self::check) are refused.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`]; serde's message (which could quote a value) is dropped.
    pub fn from_json(json: &[u8]) -> Result<Self, RegistryError> {
        let wire: Wire = serde_json::from_slice(json).map_err(|_| RegistryError::Invalid {
            reason: "a record that is not one this version reads",
        })?;
        let binding = Binding::from_label(&wire.bound).ok_or(RegistryError::Invalid {
            reason: "an unknown binding",
        })?;
        let record = Self {
            sid: wire.sid,
            sub: wire.sub,
            started: UnixMicros::from_micros(wire.started_us),
            renewed: UnixTime::from_secs(wire.renewed),
            binding,
            label: wire.label,
            network: wire.network,
            until: UnixTime::from_secs(wire.until),
        };
        record.check()?;
        Ok(record)
    }
}

/// Drops control characters and cuts `s` to at most `max` bytes at a character boundary;
/// `None` when nothing is left.
fn clean(s: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    sid: String,
    sub: String,
    started_us: u64,
    renewed: u64,
    bound: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    until: u64,
}

impl From<&SessionRecord> for Wire {
    fn from(r: &SessionRecord) -> Self {
        Self {
            sid: r.sid.clone(),
            sub: r.sub.clone(),
            started_us: r.started.as_micros(),
            renewed: r.renewed.as_secs(),
            bound: r.binding.label().to_owned(),
            label: r.label.clone(),
            network: r.network.clone(),
            until: r.until.as_secs(),
        }
    }
}

/// Why a registry operation failed. Nothing was changed by a failed write.
///
/// `Debug` reads as `Display` followed by each cause and the variant.
#[non_exhaustive]
pub enum RegistryError {
    /// The store keeps no session registry.
    Unsupported,
    /// The record is not well-formed.
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },
    /// The backend did not answer within the configured time.
    Timeout {
        /// How long it waited.
        after: Duration,
    },
    /// The backend is not reachable or could not save it.
    Unavailable {
        /// The underlying error.
        source: BoxError,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str(
                "the revocation store keeps no session registry (MemoryStore, FileStore and RedisStore do)",
            ),
            Self::Invalid { reason } => write!(f, "invalid session record: {reason}"),
            Self::Timeout { after } => {
                write!(f, "session registry did not answer within {after:?}")
            }
            Self::Unavailable { .. } => f.write_str("session registry is unavailable"),
        }
    }
}

impl From<CheckError> for RegistryError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Timeout { after } => Self::Timeout { after },
            CheckError::Unavailable { source } => Self::Unavailable { source },
        }
    }
}

impl fmt::Debug for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::Unsupported => "RegistryError::Unsupported",
            Self::Invalid { .. } => "RegistryError::Invalid",
            Self::Timeout { .. } => "RegistryError::Timeout",
            Self::Unavailable { .. } => "RegistryError::Unavailable",
        };
        debug_report(self, variant, f)
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable { source } => Some(&**source),
            _ => None,
        }
    }
}

/// Where a store keeps its [`SessionRecord`]s. Written by the session layer where a
/// session changes, read on demand; never on the request path.
///
/// Every method takes `now`, the caller's clock; records whose `until` is not after it
/// are gone.
pub trait SessionRegistry: Send + Sync {
    /// Writes `record`, merged into the one kept for its `sid` by
    /// [`SessionRecord::absorb`]; kept until its `until`. A durable store has it on disk
    /// when this returns.
    ///
    /// # Errors
    /// [`RegistryError`]: nothing was written.
    fn record<'a>(
        &'a self,
        record: SessionRecord,
        now: UnixTime,
    ) -> Fut<'a, Result<(), RegistryError>>;

    /// Removes the record of `sid` of `sub`, if there is one.
    ///
    /// # Errors
    /// [`RegistryError`]: nothing was removed.
    fn remove<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        now: UnixTime,
    ) -> Fut<'a, Result<(), RegistryError>>;

    /// Every record of `sub` whose `until` is after `now`, in any order. Revoked sessions
    /// may still be among them: [`RevocationStore::sessions_of`](super::RevocationStore::sessions_of)
    /// applies the revocations.
    ///
    /// # Errors
    /// [`RegistryError`] if the backend could not answer.
    fn records_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> Fut<'a, Result<Vec<SessionRecord>, RegistryError>>;
}

/// The session registry in this process's memory ([`MemoryStore`](super::MemoryStore)'s;
/// also a building block for other stores' tests).
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    by_sub: RwLock<HashMap<String, HashMap<String, SessionRecord>>>,
}

impl MemoryRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// [`SessionRegistry::record`], synchronously.
    ///
    /// # Errors
    /// [`RegistryError::Invalid`]; nothing changes then.
    pub fn put(&self, record: SessionRecord, now: UnixTime) -> Result<(), RegistryError> {
        let keep = record.to_keep(now)?;
        let mut all = self.by_sub.write().unwrap_or_else(PoisonError::into_inner);
        let mine = all.entry(record.sub.clone()).or_default();
        mine.retain(|_, r| r.until > now);
        if !keep {
            return Ok(());
        }
        match mine.get_mut(&record.sid) {
            Some(kept) => {
                kept.absorb(&record);
            }
            None => {
                mine.insert(record.sid.clone(), record);
            }
        }
        Ok(())
    }

    /// [`SessionRegistry::remove`], synchronously.
    pub fn take(&self, sub: &str, sid: &str) {
        let mut all = self.by_sub.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(mine) = all.get_mut(sub) {
            mine.remove(sid);
            if mine.is_empty() {
                all.remove(sub);
            }
        }
    }

    /// [`SessionRegistry::records_of`], synchronously.
    #[must_use]
    pub fn list(&self, sub: &str, now: UnixTime) -> Vec<SessionRecord> {
        let all = self.by_sub.read().unwrap_or_else(PoisonError::into_inner);
        all.get(sub)
            .map(|mine| mine.values().filter(|r| r.until > now).cloned().collect())
            .unwrap_or_default()
    }

    /// How many records are held, expired ones included until the next write of their
    /// subject.
    #[must_use]
    pub fn len(&self) -> usize {
        let all = self.by_sub.read().unwrap_or_else(PoisonError::into_inner);
        all.values().map(HashMap::len).sum()
    }

    /// Whether no record is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionRegistry for MemoryRegistry {
    fn record<'a>(
        &'a self,
        record: SessionRecord,
        now: UnixTime,
    ) -> Fut<'a, Result<(), RegistryError>> {
        let result = self.put(record, now);
        Box::pin(async move { result })
    }

    fn remove<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        _now: UnixTime,
    ) -> Fut<'a, Result<(), RegistryError>> {
        self.take(sub, sid);
        Box::pin(async { Ok(()) })
    }

    fn records_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> Fut<'a, Result<Vec<SessionRecord>, RegistryError>> {
        let list = self.list(sub, now);
        Box::pin(async move { Ok(list) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    fn rec(sid: &str, sub: &str, started: u64, until: u64) -> SessionRecord {
        SessionRecord::new(sid, sub, t(started).into(), t(until))
    }

    #[test]
    fn json_round_trips_and_is_strict() {
        let r = rec("s1", "alice", 100, 900)
            .with_label("Firefox on Linux")
            .with_network("203.0.113.0/24")
            .with_binding(Binding::Dbsc)
            .renewed_at(t(200), t(1_000));
        let json = r.to_json();
        assert_eq!(
            json,
            r#"{"sid":"s1","sub":"alice","started_us":100000000,"renewed":200,"bound":"dbsc","label":"Firefox on Linux","network":"203.0.113.0/24","until":1000}"#
        );
        assert_eq!(SessionRecord::from_json(json.as_bytes()).unwrap(), r);
        for bad in [
            &br#"{"sid":"s1","sub":"alice","started_us":1,"renewed":2,"bound":"tpm","until":3}"#[..],
            br#"{"sid":"","sub":"alice","started_us":1,"renewed":2,"bound":"none","until":3}"#,
            br#"{"sid":"s","sub":"a","started_us":1,"renewed":2,"bound":"none","until":3,"x":1}"#,
            br#"{"sid":"s","sub":"a","started_us":1,"renewed":2,"bound":"none"}"#,
            br#"{"sid":"s","sub":"a","started_us":1,"renewed":2,"bound":"none","until":99999999999999}"#,
            b"[]",
            b"",
        ] {
            assert!(
                matches!(
                    SessionRecord::from_json(bad),
                    Err(RegistryError::Invalid { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn labels_are_cleaned_and_bounded() {
        let r = rec("s", "a", 1, 2).with_label("Chrome\n on\u{7} Mac");
        assert_eq!(r.label.as_deref(), Some("Chrome on Mac"));
        let long = "é".repeat(100);
        let r = rec("s", "a", 1, 2).with_label(&long);
        assert_eq!(r.label.as_ref().map(String::len), Some(MAX_LABEL_LEN));
        assert_eq!(rec("s", "a", 1, 2).with_label("\n\t ").label, None);
        let r = rec("s", "a", 1, 2).with_network(&"1".repeat(200));
        assert_eq!(r.network.as_ref().map(String::len), Some(MAX_NETWORK_LEN));
    }

    #[test]
    fn a_renewal_keeps_what_login_recorded() {
        let login = rec("s1", "alice", 100, 900).with_label("Phone");
        let mut kept = login.clone();
        let renewal = rec("s1", "alice", 100, 1_900).renewed_at(t(1_000), t(1_900));
        assert!(kept.absorb(&renewal));
        assert_eq!(kept.label.as_deref(), Some("Phone"));
        assert_eq!((kept.renewed, kept.until), (t(1_000), t(1_900)));
        // An older write arriving late moves nothing back.
        assert!(kept.absorb(&login));
        assert_eq!((kept.renewed, kept.until), (t(1_000), t(1_900)));
        assert!(!kept.absorb(&rec("s2", "alice", 100, 900)));
        assert!(!kept.absorb(&rec("s1", "bob", 100, 900)));
    }

    #[test]
    fn memory_registry_lists_one_subject_and_forgets_at_until() {
        let reg = MemoryRegistry::new();
        reg.put(rec("s1", "alice", 100, 900), t(100)).unwrap();
        reg.put(rec("s2", "alice", 150, 500), t(150)).unwrap();
        reg.put(rec("s3", "bob", 150, 900), t(150)).unwrap();
        let mut sids: Vec<_> = reg
            .list("alice", t(200))
            .into_iter()
            .map(|r| r.sid)
            .collect();
        sids.sort();
        assert_eq!(sids, ["s1", "s2"]);
        assert_eq!(reg.list("alice", t(500)).len(), 1);
        reg.take("alice", "s1");
        assert!(reg.list("alice", t(200)).iter().all(|r| r.sid != "s1"));
        // Already over: not kept.
        reg.put(rec("s4", "carol", 1, 10), t(10)).unwrap();
        assert!(reg.list("carol", t(5)).is_empty());
        assert!(matches!(
            reg.put(rec("", "carol", 1, 10), t(1)),
            Err(RegistryError::Invalid {
                reason: "empty sid"
            })
        ));
    }
}
