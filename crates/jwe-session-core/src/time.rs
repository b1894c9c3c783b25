//! Time as a parameter: [`UnixTime`], the [`Clock`] trait, and clocks for production and tests.

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

/// A source of the current time. Every time-dependent operation takes one (or an explicit
/// `now`), so tests move the clock instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock before 1970 is a broken machine; treating it as the epoch makes every
        // token look not-yet-expired only if it was minted before 1970, which none is.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        UnixTime(secs)
    }
}

/// A clock that only moves when told to: for tests, and for replaying a scenario.
///
/// Clones share the same time, so a test keeps one and hands another to the code under test.
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
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    /// Sets the time.
    pub fn set(&self, t: UnixTime) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
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
