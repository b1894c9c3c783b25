//! The three clocks of a session (access lifetime, idle timeout, absolute lifetime), a
//! session's own narrower choice of them (`slt`), and the one grace period for how long a
//! revocation is remembered. A leaf: it knows durations and moments, not claims.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::time::UnixTime;

/// The three clocks of a session.
///
/// - access lifetime (`exp - iat`, default 15 minutes): a token is trusted without lookup;
/// - idle timeout (default 24 hours): a token past `exp` can still be renewed until
///   `exp + idle`;
/// - absolute lifetime (default 7 days from `auth_time`): then the user logs in again.
///
/// ```
/// use std::time::Duration;
/// use jwe_session_core::{Claims, Lifetimes, Stage, UnixTime};
///
/// let life = Lifetimes::default();
/// let t0 = UnixTime::from_secs(1_000_000);
/// let mut c = Claims::new(());
/// life.start(&mut c, "alice", t0);
/// assert_eq!(life.stage(&c, t0), Stage::Fresh);
/// assert_eq!(life.stage(&c, t0.saturating_add(Duration::from_secs(16 * 60))), Stage::Renewable);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Lifetimes {
    access: Duration,
    idle: Duration,
    absolute: Duration,
}

/// How long past the last moment a revocation could matter it is still kept, and how much
/// longer than a token's trusted lifetime a store's memory must hold a logout: room for the
/// clocks of the instances and the store to disagree. The one grace period of the project:
/// the layer, the CLI and every store take it from here, through the [`Revocation`]
/// constructors and [`Lifetimes::mirror_window`].
///
/// [`Revocation`]: crate::Revocation
pub const REVOCATION_GRACE: Duration = Duration::from_secs(60);

impl Default for Lifetimes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where a session stands at a moment, by its claims alone.
///
/// Exhaustive, like the revocation scopes: the layer's decision matches every stage
/// without a wildcard, so a new one is a compile error there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before `exp`: trust it.
    Fresh,
    /// Past `exp`, within the idle window and the absolute lifetime: renew it after the
    /// authoritative revocation check.
    Renewable,
    /// Past `exp + idle`: the user was idle too long.
    IdleExpired,
    /// Past `auth_time + absolute`: the user must log in again.
    AbsoluteExpired,
    /// Lacks `exp` or `auth_time`, so none of the above can be decided.
    Incomplete,
}

impl Lifetimes {
    /// Custom lifetimes. `access` is capped at `absolute`.
    pub fn new(access: Duration, idle: Duration, absolute: Duration) -> Self {
        Self {
            access: access.min(absolute),
            idle,
            absolute,
        }
    }

    /// The access lifetime.
    #[must_use]
    pub fn access(&self) -> Duration {
        self.access
    }

    /// The idle timeout.
    #[must_use]
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The absolute lifetime.
    #[must_use]
    pub fn absolute(&self) -> Duration {
        self.absolute
    }
    /// Each of the three lifetimes, the shorter of these and `other`'s.
    pub fn narrowed_by(&self, other: &Self) -> Self {
        Self::new(
            self.access.min(other.access),
            self.idle.min(other.idle),
            self.absolute.min(other.absolute),
        )
    }

    /// Whether each of `other`'s lifetimes is at most this one's.
    #[must_use]
    pub fn contains(&self, other: &Self) -> bool {
        other.access <= self.access && other.idle <= self.idle && other.absolute <= self.absolute
    }

    /// Until when a token of a session that began at `auth_time` could still be renewed, if
    /// its newest token was issued no later than `now`: the latest moment a revocation of it
    /// must be remembered.
    pub fn renewable_until(&self, auth_time: UnixTime, now: UnixTime) -> UnixTime {
        let by_idle = now.saturating_add(self.access).saturating_add(self.idle);
        let by_absolute = auth_time.saturating_add(self.absolute);
        by_idle.min(by_absolute)
    }

    /// Until when a revocation of every session that began before `before` matters: the
    /// latest such session ends by `before + absolute`.
    pub fn sessions_before_end_by(&self, before: UnixTime) -> UnixTime {
        before.saturating_add(self.absolute)
    }

    /// How long a store that answers checks from memory (the Redis store's mirror) must
    /// keep a session revocation after it was made, so that no token issued before it is
    /// trusted without it: the access lifetime, plus the validation `leeway` or the
    /// [`REVOCATION_GRACE`], whichever is longer. With `renews_from_memory` (a layer that
    /// renews from memory while the store is down), until no such token can be renewed
    /// either: the access lifetime plus the idle timeout, at most the absolute lifetime.
    ///
    /// The session layer refuses to build with a store whose window is shorter; the Redis
    /// store's default is this for the default lifetimes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwe_session_core::Lifetimes;
    ///
    /// let l = Lifetimes::default();
    /// assert_eq!(l.mirror_window(false, Duration::ZERO), Duration::from_secs(16 * 60));
    /// ```
    #[must_use]
    pub const fn mirror_window(&self, renews_from_memory: bool, leeway: Duration) -> Duration {
        let usable = if renews_from_memory {
            let by_idle = self.access.saturating_add(self.idle);
            if by_idle.as_nanos() < self.absolute.as_nanos() {
                by_idle
            } else {
                self.absolute
            }
        } else {
            self.access
        };
        let grace = if leeway.as_nanos() > REVOCATION_GRACE.as_nanos() {
            leeway
        } else {
            REVOCATION_GRACE
        };
        usable.saturating_add(grace)
    }

    /// The default lifetimes (15 min access, 24 h idle, 7 days absolute), as a constant.
    pub const DEFAULT: Self = Self {
        access: Duration::from_secs(15 * 60),
        idle: Duration::from_secs(24 * 60 * 60),
        absolute: Duration::from_secs(7 * 24 * 60 * 60),
    };
}

/// What one session chose at its start: its own [`Lifetimes`] (each at most the configured
/// one) and whether its cookie lasts only as long as the browser runs (no `Max-Age`).
///
/// Carried in the token as the private claim `slt`, so every instance applies it:
/// `{"access":900,"idle":3600,"absolute":86400,"browser":true}` (seconds).
///
/// ```
/// use std::time::Duration;
/// use jwe_session_core::{Claims, Lifetimes, SessionLifetimes, Stage, UnixTime};
///
/// let configured = Lifetimes::default(); // 15 min, 24 h, 7 days
/// let short = SessionLifetimes::new(Lifetimes::new(
///     Duration::from_secs(900), Duration::from_secs(3600), Duration::from_secs(8 * 3600),
/// ));
/// let t0 = UnixTime::from_secs(1_000_000);
/// let mut c = Claims::new(());
/// c.lifetimes = Some(short);
/// configured.start(&mut c, "alice", t0);
/// // Idle for two hours: past this session's one-hour idle timeout.
/// let later = t0.saturating_add(Duration::from_secs(2 * 3600));
/// assert_eq!(configured.stage(&c, later), Stage::IdleExpired);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct SessionLifetimes {
    /// The session's lifetimes (narrowed by the configured ones when applied).
    pub lifetimes: Lifetimes,
    /// The cookie carries no `Max-Age`: the browser drops it when it closes.
    pub browser_session: bool,
}

impl SessionLifetimes {
    /// These lifetimes, with a cookie that persists (has a `Max-Age`).
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            lifetimes,
            browser_session: false,
        }
    }

    /// With a browser-session cookie (no `Max-Age`) or not.
    pub fn browser_session(mut self, on: bool) -> Self {
        self.browser_session = on;
        self
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionLifetimesJson {
    access: u64,
    idle: u64,
    absolute: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    browser: bool,
}

impl Serialize for SessionLifetimes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SessionLifetimesJson {
            access: self.lifetimes.access.as_secs(),
            idle: self.lifetimes.idle.as_secs(),
            absolute: self.lifetimes.absolute.as_secs(),
            browser: self.browser_session,
        }
        .serialize(s)
    }
}

/// Only a JSON object: serde's derive would also take an array of the values in order.
struct ObjectOnly;

impl<'de> Visitor<'de> for ObjectOnly {
    type Value = SessionLifetimesJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of session lifetimes")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SessionLifetimesJson::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

impl<'de> Deserialize<'de> for SessionLifetimes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = d.deserialize_map(ObjectOnly)?;
        Ok(Self {
            lifetimes: Lifetimes::new(
                Duration::from_secs(j.access),
                Duration::from_secs(j.idle),
                Duration::from_secs(j.absolute),
            ),
            browser_session: j.browser,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::claims::Claims;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    /// A session's own lifetimes narrow the configured ones, never widen them, travel as
    /// `slt`, and a malformed `slt` is refused like any other malformed claim.
    #[test]
    fn session_lifetimes_narrow_and_round_trip() {
        let configured = Lifetimes::new(
            Duration::from_secs(900),
            Duration::from_secs(3_600),
            Duration::from_secs(86_400),
        );
        let mut c = Claims::new(());
        c.lifetimes = Some(
            SessionLifetimes::new(Lifetimes::new(
                Duration::from_secs(60),
                Duration::from_secs(7_200),
                Duration::from_secs(600),
            ))
            .browser_session(true),
        );
        configured.start(&mut c, "alice", t(1_000));
        assert_eq!(
            c.exp,
            Some(t(1_060)),
            "the session's shorter access lifetime"
        );
        assert_eq!(configured.stage(&c, t(1_059)), Stage::Fresh);
        assert_eq!(configured.stage(&c, t(1_060)), Stage::Renewable);
        // Idle is the configured hour (the session asked for two): narrowed, not widened.
        let life = configured.for_claims(&c);
        assert_eq!(life.idle(), Duration::from_secs(3_600));
        assert_eq!(configured.stage(&c, t(1_600)), Stage::AbsoluteExpired);
        // Re-issues never go past the session's own absolute lifetime.
        configured.reissue(&mut c, t(1_590));
        assert_eq!(c.exp, Some(t(1_600)));

        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""slt":{"access":60,"idle":7200,"absolute":600,"browser":true}"#),
            "{json}"
        );
        let back: Claims<()> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        // Without the member, the configured lifetimes apply as they are.
        let plain: Claims<()> = serde_json::from_str(r#"{"exp":5}"#).unwrap();
        assert_eq!(configured.for_claims(&plain), configured);
        for bad in [
            r#"{"slt":{"access":1,"idle":1}}"#,
            r#"{"slt":{"access":1,"idle":1,"absolute":1,"extra":1}}"#,
            r#"{"slt":{"access":-1,"idle":1,"absolute":1}}"#,
            r#"{"slt":[1,2,3]}"#,
            r#"{"slt":{"access":1,"idle":1,"absolute":1},"slt":null}"#,
        ] {
            assert!(serde_json::from_str::<Claims<()>>(bad).is_err(), "{bad}");
        }
        assert!(configured.contains(&Lifetimes::new(
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_secs(60)
        )));
        assert!(!configured.contains(&Lifetimes::default()));
    }
}
