//! The revocation model: what a revocation is ([`Revocation`], its scopes), what it
//! looks at in a session ([`SessionIds`]) and why a session is refused ([`Revoked`]), with
//! the one merge rule and the one "begun before" rule every store applies. Stores
//! (`revocation`) and watches (`live`) both build on it; it imports neither.

use std::fmt;

use crate::claims::Claims;
use crate::error::StoreError;
use crate::time::{UnixMicros, UnixTime};

/// One revocation. Each carries `until`: the time after which no token it affects could
/// still be renewed, so a store may forget it then (see
/// [`Lifetimes::renewable_until`](crate::Lifetimes::renewable_until)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// One session (logout).
    Session {
        /// The session id.
        sid: String,
        /// Remember until then.
        until: UnixTime,
    },
    /// Every session of `sub` that began at or before `at` (logout everywhere, password
    /// change).
    Subject {
        /// The subject.
        sub: String,
        /// The moment of the revocation: sessions begun at or before it are revoked.
        at: UnixMicros,
        /// Remember until then.
        until: UnixTime,
    },
    /// Every session that began at or before `at` (emergency).
    All {
        /// The moment of the revocation: sessions begun at or before it are revoked.
        at: UnixMicros,
        /// Remember until then.
        until: UnixTime,
    },
    /// Claims refresh: every token of `sub` issued at or before `at` is not refused but
    /// taken through renewal on its next request (the authoritative check and the app's
    /// renew hook), so changed claims (roles, say) apply at once. Renewal issues a token
    /// after `at`, which the refresh no longer affects.
    Refresh {
        /// The subject.
        sub: String,
        /// The moment of the refresh: tokens issued at or before it are renewed.
        at: UnixMicros,
        /// Remember until then: once every token issued before `at` is past its `exp`,
        /// each renews anyway.
        until: UnixTime,
    },
}

/// Which entry of a store a [`Revocation`] lives in: one per `sid`, one per subject, one
/// for everyone. Two revocations with the same key are merged by
/// [`Revocation::absorb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationKey<'a> {
    /// A session's entry.
    Session(&'a str),
    /// A subject's entry.
    Subject(&'a str),
    /// The global entry.
    All,
    /// A subject's claims refresh entry.
    Refresh(&'a str),
}

impl Revocation {
    /// The latest `until` or `at` a revocation may carry: the last second of the year 9999
    /// (what every store, Redis's `EXAT` included, can represent).
    pub const LATEST: UnixTime = UnixTime::from_secs(253_402_300_799);

    /// When the store may forget this revocation.
    #[must_use]
    pub fn until(&self) -> UnixTime {
        match self {
            Self::Session { until, .. }
            | Self::Subject { until, .. }
            | Self::All { until, .. }
            | Self::Refresh { until, .. } => *until,
        }
    }

    /// The entry this revocation is kept in.
    #[must_use]
    pub fn key(&self) -> RevocationKey<'_> {
        match self {
            Self::Session { sid, .. } => RevocationKey::Session(sid),
            Self::Subject { sub, .. } => RevocationKey::Subject(sub),
            Self::All { .. } => RevocationKey::All,
            Self::Refresh { sub, .. } => RevocationKey::Refresh(sub),
        }
    }

    /// Merges `other`, a revocation of the same entry, into this one: the later cut-off and
    /// the later `until` win, so applying revocations in any order, or twice, ends in the
    /// same entry. Every store merges with this one rule. Returns `false`, changing
    /// nothing, when the two are for different entries.
    pub fn absorb(&mut self, other: &Self) -> bool {
        if self.key() != other.key() {
            return false;
        }
        match (self, other) {
            (Self::Session { until, .. }, Self::Session { until: u2, .. }) => {
                *until = (*until).max(*u2);
            }
            (
                Self::Subject { at, until, .. },
                Self::Subject {
                    at: a2, until: u2, ..
                },
            )
            | (
                Self::Refresh { at, until, .. },
                Self::Refresh {
                    at: a2, until: u2, ..
                },
            )
            | (Self::All { at, until }, Self::All { at: a2, until: u2 }) => {
                let mut cut = Cutoff::new(*at, *until);
                cut.absorb(Cutoff::new(*a2, *u2));
                (*at, *until) = (cut.at, cut.until);
            }
            _ => return false,
        }
        true
    }

    /// Whether this revocation ends the session `ids` at `now`, and why: the rule every
    /// store applies (a session whose start is unknown counts as begun before any cut-off).
    /// A [`Refresh`](Self::Refresh) never ends a session (see [`refreshes`](Self::refreshes)).
    #[must_use]
    pub fn revokes(&self, ids: SessionIds<'_>, now: UnixTime) -> Option<Revoked> {
        if self.until() <= now {
            return None;
        }
        match self {
            Self::Session { sid, .. } => {
                (ids.sid == Some(sid.as_str())).then_some(Revoked::Session)
            }
            Self::Subject { sub, at, until } => (ids.sub == Some(sub.as_str())
                && cut(&Cutoff::new(*at, *until), ids.started, now))
            .then_some(Revoked::Subject { at: *at }),
            Self::All { at, until } => {
                cut(&Cutoff::new(*at, *until), ids.started, now).then_some(Revoked::All { at: *at })
            }
            Self::Refresh { .. } => None,
        }
    }

    /// Whether this is a claims refresh that takes the token `ids` through renewal at
    /// `now`: the token is `sub`'s and was issued at or before `at` (a token whose issue
    /// moment is unknown counts as issued before).
    #[must_use]
    pub fn refreshes(&self, ids: SessionIds<'_>, now: UnixTime) -> bool {
        match self {
            Self::Refresh { sub, at, until } => {
                ids.sub == Some(sub.as_str()) && cut(&Cutoff::new(*at, *until), ids.issued, now)
            }
            _ => false,
        }
    }

    /// Checks that ids are non-empty and that `until` and `at` are real moments (no later
    /// than [`Revocation::LATEST`]): a value near `u64::MAX` read from a shared backend is
    /// refused here instead of failing every later write that carries it.
    ///
    /// # Errors
    /// [`StoreError::InvalidRevocation`].
    pub fn check(&self) -> Result<(), StoreError> {
        if self.until() > Self::LATEST {
            return Err(StoreError::InvalidRevocation {
                reason: "until is later than the year 9999",
            });
        }
        let at = match self {
            Self::Subject { at, .. } | Self::All { at, .. } | Self::Refresh { at, .. } => Some(*at),
            Self::Session { .. } => None,
        };
        if at.is_some_and(|at| at.secs() > Self::LATEST) {
            return Err(StoreError::InvalidRevocation {
                reason: "at is later than the year 9999",
            });
        }
        match self {
            Self::Session { sid, .. } if sid.is_empty() => Err(StoreError::InvalidRevocation {
                reason: "empty sid",
            }),
            Self::Subject { sub, .. } | Self::Refresh { sub, .. } if sub.is_empty() => {
                Err(StoreError::InvalidRevocation {
                    reason: "empty sub",
                })
            }
            _ => Ok(()),
        }
    }
}

/// The parts of a session that revocation looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionIds<'a> {
    /// Session id.
    pub sid: Option<&'a str>,
    /// Subject.
    pub sub: Option<&'a str>,
    /// When the session began: `started_us`, else the start of the `auth_time` second,
    /// else of the token's `iat` second.
    pub started: Option<UnixMicros>,
    /// When this token was issued: `issued_us`, else the start of its `iat` second (what
    /// a claims refresh compares).
    pub issued: Option<UnixMicros>,
}

impl<'a, T> From<&'a Claims<T>> for SessionIds<'a> {
    fn from(c: &'a Claims<T>) -> Self {
        Self {
            sid: c.sid.as_deref(),
            sub: c.sub.as_deref(),
            started: c
                .started_us
                .or_else(|| c.auth_time.or(c.iat).map(UnixMicros::from)),
            issued: c.issued_us.or_else(|| c.iat.map(UnixMicros::from)),
        }
    }
}

/// Why a session is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// Its `sid` was revoked (logout).
    Session,
    /// Its subject's sessions begun at or before `at` were revoked.
    Subject {
        /// The cut-off.
        at: UnixMicros,
    },
    /// Every session begun at or before `at` was revoked.
    All {
        /// The cut-off.
        at: UnixMicros,
    },
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session => f.write_str("session was revoked (logout)"),
            Self::Subject { at } => {
                write!(
                    f,
                    "all sessions of this subject begun at or before {at} were revoked"
                )
            }
            Self::All { at } => write!(f, "all sessions begun at or before {at} were revoked"),
        }
    }
}

impl std::error::Error for Revoked {}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Cutoff {
    pub(crate) at: UnixMicros,
    pub(crate) until: UnixTime,
}

impl Cutoff {
    pub(crate) fn new(at: UnixMicros, until: UnixTime) -> Self {
        Self { at, until }
    }

    /// The merge rule of [`Revocation::absorb`]: the later cut-off, the later `until`.
    pub(crate) fn absorb(&mut self, other: Self) {
        self.at = self.at.max(other.at);
        self.until = self.until.max(other.until);
    }
}

/// A session that began at or before `c.at` is revoked; one whose start is unknown is
/// treated as revoked, because nothing proves it began after the cut-off.
pub(crate) fn cut(c: &Cutoff, started: Option<UnixMicros>, now: UnixTime) -> bool {
    c.until > now && started.is_none_or(|s| s <= c.at)
}
