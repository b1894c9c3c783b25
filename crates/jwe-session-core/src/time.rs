//! Time as a parameter: [`UnixTime`] (whole seconds, for claims), [`UnixMicros`] (for the
//! order of session starts and revocations), the [`Clock`] trait, and clocks for production
//! and tests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time, in whole seconds since the Unix epoch (a JWT `NumericDate`).
///
/// Claims carry integers only: a fractional `exp` from another implementation fails to
/// deserialize instead of being rounded one way or the other.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: Self = Self(0);

    /// Builds a time from seconds since the epoch.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// The current system time. Library code takes time from a [`Clock`] instead.
    #[must_use]
    pub fn now() -> Self {
        SystemClock.now()
    }

    /// `self + d`, saturating at the far future instead of overflowing.
    #[must_use]
    pub const fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_secs()))
    }

    /// `self - d`, saturating at the epoch.
    #[must_use]
    pub const fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.as_secs()))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

const MICROS_PER_SEC: u64 = 1_000_000;

/// A moment, in microseconds since the Unix epoch: when a session began and when a
/// revocation was made, so that "sessions begun at or before M" is exact below the second.
///
/// Claims keep their registered times in whole seconds ([`UnixTime`]); this type is what
/// the session's own start (`started_us`) and revocation cut-offs are compared in.
///
/// ```
/// use jwe_session_core::{UnixMicros, UnixTime};
///
/// let m = UnixMicros::from_micros(1_800_000_000_250_000);
/// assert_eq!(m.secs(), UnixTime::from_secs(1_800_000_000));
/// assert_eq!(m.to_string(), "1800000000.250000");
/// assert_eq!(UnixMicros::from(UnixTime::from_secs(5)).as_micros(), 5_000_000);
/// ```
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMicros(u64);

impl UnixMicros {
    /// The epoch itself.
    pub const EPOCH: Self = Self(0);

    /// Builds a moment from microseconds since the epoch.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The whole second this moment falls in.
    #[must_use]
    pub const fn secs(self) -> UnixTime {
        UnixTime(self.0 / MICROS_PER_SEC)
    }

    /// The next representable moment (one microsecond later, saturating).
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// `self + d`, saturating at the far future.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

impl From<UnixTime> for UnixMicros {
    /// The first microsecond of that second.
    fn from(t: UnixTime) -> Self {
        Self(t.0.saturating_mul(MICROS_PER_SEC))
    }
}

impl fmt::Display for UnixMicros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}",
            self.0 / MICROS_PER_SEC,
            self.0 % MICROS_PER_SEC
        )
    }
}

/// A source of the current time. Every time-dependent operation takes one (or an explicit
/// `now`), so tests move the clock instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;

    /// The current time to the microsecond. Clocks that only know whole seconds keep this
    /// default, the start of [`now`](Self::now)'s second.
    fn now_micros(&self) -> UnixMicros {
        self.now().into()
    }
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        self.now_micros().secs()
    }

    fn now_micros(&self) -> UnixMicros {
        // A clock before 1970 is a broken machine; treating it as the epoch makes every
        // token look not-yet-expired only if it was minted before 1970, which none is.
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        UnixMicros(micros)
    }
}

/// A clock that only moves when told to: for tests, and for replaying a scenario.
///
/// Clones share the same time, so a test keeps one and hands another to the code under test.
/// It keeps microseconds, so [`advance`](Self::advance) by less than a second is not lost.
///
/// ```
/// use std::time::Duration;
/// use jwe_session_core::{Clock, ManualClock, UnixTime};
///
/// let clock = ManualClock::new(UnixTime::from_secs(1_000));
/// let seen_by_app = clock.clone();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(seen_by_app.now(), UnixTime::from_secs(1_060));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicU64::new(UnixMicros::from(start).0)))
    }

    /// Sets the time to the start of second `t`.
    pub fn set(&self, t: UnixTime) {
        self.set_micros(t.into());
    }

    /// Sets the time to the microsecond.
    pub fn set_micros(&self, t: UnixMicros) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `d` (to the microsecond).
    pub fn advance(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // `fetch_update` with a saturating add: a test moving far ahead never wraps.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(micros))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.now_micros().secs()
    }

    fn now_micros(&self) -> UnixMicros {
        UnixMicros(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime::from_secs(10);
        assert_eq!(t.saturating_sub(Duration::from_secs(20)), UnixTime::EPOCH);
        assert_eq!(
            UnixTime::from_secs(u64::MAX).saturating_add(Duration::from_secs(1)),
            UnixTime::from_secs(u64::MAX)
        );
        assert_eq!(
            t.saturating_since(UnixTime::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(t.saturating_since(UnixTime::from_secs(40)), Duration::ZERO);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now() > UnixTime::from_secs(1_704_067_200));
        let m = SystemClock.now_micros();
        assert!(m.secs() >= UnixTime::from_secs(1_704_067_200));
        assert!(SystemClock.now_micros() >= m);
    }

    #[test]
    fn manual_clock_keeps_microseconds() {
        let c = ManualClock::new(UnixTime::from_secs(100));
        c.advance(Duration::from_millis(600));
        assert_eq!(c.now(), UnixTime::from_secs(100));
        assert_eq!(c.now_micros(), UnixMicros::from_micros(100_600_000));
        c.advance(Duration::from_millis(600));
        assert_eq!(c.now(), UnixTime::from_secs(101));
        c.set_micros(UnixMicros::from_micros(7_000_001));
        assert_eq!(c.now(), UnixTime::from_secs(7));
        c.advance(Duration::MAX);
        assert_eq!(c.now_micros(), UnixMicros::from_micros(u64::MAX));
    }

    #[test]
    fn micros_convert_and_print() {
        let m = UnixMicros::from_micros(1_999_999);
        assert_eq!(m.secs(), UnixTime::from_secs(1));
        assert_eq!(m.next().secs(), UnixTime::from_secs(2));
        assert_eq!(m.to_string(), "1.999999");
        assert_eq!(
            UnixMicros::from(UnixTime::from_secs(u64::MAX)).as_micros(),
            u64::MAX
        );
        assert_eq!(
            m.saturating_add(Duration::from_micros(1)),
            UnixMicros::from_micros(2_000_000)
        );
        assert!(serde_json::from_str::<UnixMicros>("1.5").is_err());
    }

    #[test]
    fn numeric_dates_are_integers_only() {
        assert_eq!(
            serde_json::from_str::<UnixTime>("17").unwrap(),
            UnixTime::from_secs(17)
        );
        assert!(serde_json::from_str::<UnixTime>("17.5").is_err());
        assert!(serde_json::from_str::<UnixTime>("-1").is_err());
        assert!(serde_json::from_str::<UnixTime>("\"17\"").is_err());
    }
}
