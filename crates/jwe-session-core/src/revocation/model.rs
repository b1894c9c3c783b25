//! The revocation model: what a revocation is ([`Revocation`], its scopes), what it
//! looks at in a session ([`SessionIds`]) and why a session is refused ([`Revoked`]), with
//! the one merge rule and the one "begun before" rule every store applies. Stores
//! (`store`, `memory`) and watches (`watch`) all build on it; it imports none of them.
//!
//! These enums are exhaustive on purpose. Every crate of the project matches them without
//! a wildcard, so a new scope is a compile error wherever it must be handled (a store's
//! layout, the log encoding, metrics, the CLI) instead of silently taking the meaning of
//! some default arm; an app that matches them is told the same way.
//!
//! # Entries a reader does not know
//!
//! One policy for every store: an entry that this version cannot read is never taken for
//! another scope and never silently dropped. It is refused where it is read, loudly: the
//! file store refuses to open a file that holds one ([`Scope::from_code`] is its only
//! decoder), the Redis store sets a log entry or point key aside with an error naming it
//! (it cannot refuse a log that a whole fleet shares). A store layout that gains a kind
//! gains a new format number, so an older reader refuses the newer format as a whole
//! before it meets the entry.

use std::fmt;

use crate::claims::Claims;
use crate::error::InvalidRevocation;
use crate::lifetimes::{Lifetimes, REVOCATION_GRACE};
use crate::time::{UnixMicros, UnixTime};

/// One revocation. Each carries `until`: the time after which no token it affects could
/// still be renewed, so a store may forget it then (see
/// [`Lifetimes::renewable_until`](crate::Lifetimes::renewable_until)).
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// A claims refresh: every *token* of `sub` issued at or before `at` loses its trust
    /// without lookup, while the *session* goes on. Such a token is not refused but taken
    /// through renewal on its next request (the authoritative check and the app's renew
    /// hook), so changed claims (roles, say) apply at once. Renewal issues a token after
    /// `at`, which this no longer affects. Its wire label is `refresh` ([`Scope::label`]),
    /// after the operation that makes it.
    Tokens {
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
pub enum RevocationKey<'a> {
    /// A session's entry.
    Session(&'a str),
    /// A subject's entry.
    Subject(&'a str),
    /// The global entry.
    All,
    /// A subject's claims refresh entry ([`Revocation::Tokens`]).
    Tokens(&'a str),
}

/// The kind of a revocation, without its data: what metrics, logs, the CLI's output and
/// the stores' layouts name. Every mapping of a kind to a label or a code is here, as an
/// exhaustive match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// [`Revocation::Session`].
    Session,
    /// [`Revocation::Subject`].
    Subject,
    /// [`Revocation::All`].
    All,
    /// [`Revocation::Tokens`].
    Tokens,
}

impl Scope {
    /// Every scope, in code order.
    pub const EVERY: [Self; 4] = [Self::Session, Self::Subject, Self::All, Self::Tokens];

    /// Its name in metrics, logs and the CLI's output: `session`, `subject`, `all`,
    /// `refresh`.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Subject => "subject",
            Self::All => "all",
            Self::Tokens => "refresh",
        }
    }

    /// Its code in a store's layout (the file store's `kind` column): 0 session,
    /// 1 subject, 2 all, 3 refresh. Codes are never reused.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Session => 0,
            Self::Subject => 1,
            Self::All => 2,
            Self::Tokens => 3,
        }
    }

    /// The scope of a code; `None` for a code this version does not know, which a reader
    /// refuses (see the module docs).
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Session),
            1 => Some(Self::Subject),
            2 => Some(Self::All),
            3 => Some(Self::Tokens),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl<'a> RevocationKey<'a> {
    /// The entry's scope.
    #[must_use]
    pub const fn scope(self) -> Scope {
        match self {
            Self::Session(_) => Scope::Session,
            Self::Subject(_) => Scope::Subject,
            Self::All => Scope::All,
            Self::Tokens(_) => Scope::Tokens,
        }
    }

    /// The entry's id: the `sid`, the subject, or `""` for the global entry.
    #[must_use]
    pub const fn id(self) -> &'a str {
        match self {
            Self::Session(id) | Self::Subject(id) | Self::Tokens(id) => id,
            Self::All => "",
        }
    }
}

impl Revocation {
    /// Logout: the session `sid`, which began at `started` (`None` when unknown: taken as
    /// `now`, the latest it could have), revoked at `now`. Kept until no token of it can
    /// be renewed ([`Lifetimes::renewable_until`]) plus [`REVOCATION_GRACE`].
    #[must_use]
    pub fn session(
        sid: impl Into<String>,
        started: Option<UnixTime>,
        now: UnixTime,
        lifetimes: &Lifetimes,
    ) -> Self {
        let until = lifetimes
            .renewable_until(started.unwrap_or(now), now)
            .saturating_add(REVOCATION_GRACE);
        Self::Session {
            sid: sid.into(),
            until,
        }
    }

    /// Logout everywhere: every session of `sub` begun at or before `at`. Kept until the
    /// latest of them reaches its absolute lifetime
    /// ([`Lifetimes::sessions_before_end_by`]) plus [`REVOCATION_GRACE`].
    #[must_use]
    pub fn subject(sub: impl Into<String>, at: UnixMicros, lifetimes: &Lifetimes) -> Self {
        Self::Subject {
            sub: sub.into(),
            at,
            until: cutoff_until(at, lifetimes),
        }
    }

    /// Emergency: every session begun at or before `at`. Kept as long as
    /// [`subject`](Self::subject)'s.
    #[must_use]
    pub fn everyone(at: UnixMicros, lifetimes: &Lifetimes) -> Self {
        Self::All {
            at,
            until: cutoff_until(at, lifetimes),
        }
    }

    /// [`Revocation::Tokens`]: a claims refresh of `sub` at `at`. Kept until every token issued by `at` is past its
    /// `exp` (one second for `at`'s own, then the access lifetime) plus
    /// [`REVOCATION_GRACE`]: after that each renews anyway.
    #[must_use]
    pub fn tokens(sub: impl Into<String>, at: UnixMicros, lifetimes: &Lifetimes) -> Self {
        let until = at
            .secs()
            .saturating_add(std::time::Duration::from_secs(1))
            .saturating_add(lifetimes.access())
            .saturating_add(REVOCATION_GRACE);
        Self::Tokens {
            sub: sub.into(),
            at,
            until,
        }
    }

    /// Its scope.
    #[must_use]
    pub fn scope(&self) -> Scope {
        self.key().scope()
    }

    /// Its cut-off: the moment sessions (or, for a refresh, tokens) begun at or before it
    /// are affected; `None` for a session revocation, which has none.
    #[must_use]
    pub fn at(&self) -> Option<UnixMicros> {
        match self {
            Self::Session { .. } => None,
            Self::Subject { at, .. } | Self::All { at, .. } | Self::Tokens { at, .. } => Some(*at),
        }
    }

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
            | Self::Tokens { until, .. } => *until,
        }
    }

    /// The entry this revocation is kept in.
    #[must_use]
    pub fn key(&self) -> RevocationKey<'_> {
        match self {
            Self::Session { sid, .. } => RevocationKey::Session(sid),
            Self::Subject { sub, .. } => RevocationKey::Subject(sub),
            Self::All { .. } => RevocationKey::All,
            Self::Tokens { sub, .. } => RevocationKey::Tokens(sub),
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
                Self::Tokens { at, until, .. },
                Self::Tokens {
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
    /// A [`Refresh`](Self::Tokens) never ends a session (see [`refreshes`](Self::refreshes)).
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
            Self::Tokens { .. } => None,
        }
    }

    /// Whether this is a claims refresh that takes the token `ids` through renewal at
    /// `now`: the token is `sub`'s and was issued at or before `at` (a token whose issue
    /// moment is unknown counts as issued before).
    #[must_use]
    pub fn refreshes(&self, ids: SessionIds<'_>, now: UnixTime) -> bool {
        match self {
            Self::Tokens { sub, at, until } => {
                ids.sub == Some(sub.as_str()) && cut(&Cutoff::new(*at, *until), ids.issued, now)
            }
            Self::Session { .. } | Self::Subject { .. } | Self::All { .. } => false,
        }
    }

    /// Checks that ids are non-empty and that `until` and `at` are real moments (no later
    /// than [`Revocation::LATEST`]): a value near `u64::MAX` read from a shared backend is
    /// refused here instead of failing every later write that carries it.
    ///
    /// # Errors
    /// [`InvalidRevocation`].
    pub fn check(&self) -> Result<(), InvalidRevocation> {
        if self.until() > Self::LATEST {
            return Err(InvalidRevocation::new("until is later than the year 9999"));
        }
        if self.at().is_some_and(|at| at.secs() > Self::LATEST) {
            return Err(InvalidRevocation::new("at is later than the year 9999"));
        }
        let empty = match self {
            Self::Session { sid, .. } => sid.is_empty().then_some("empty sid"),
            Self::Subject { sub, .. } | Self::Tokens { sub, .. } => {
                sub.is_empty().then_some("empty sub")
            }
            Self::All { .. } => None,
        };
        empty.map_or(Ok(()), |reason| Err(InvalidRevocation::new(reason)))
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

/// How long a subject or global cut-off made at `at` is kept.
fn cutoff_until(at: UnixMicros, lifetimes: &Lifetimes) -> UnixTime {
    lifetimes
        .sessions_before_end_by(at.secs())
        .saturating_add(REVOCATION_GRACE)
}

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    const NOW: u64 = 1_800_000_000;

    fn one_of_each() -> [Revocation; 4] {
        let at = UnixMicros::from_micros(NOW * 1_000_000 + 7);
        let l = Lifetimes::default();
        [
            Revocation::session("s1", Some(t(NOW - 10)), t(NOW), &l),
            Revocation::subject("alice", at, &l),
            Revocation::everyone(at, &l),
            Revocation::tokens("alice", at, &l),
        ]
    }

    #[test]
    fn every_scope_has_its_own_label_and_code_and_codes_read_back() {
        let mut labels: Vec<_> = Scope::EVERY.iter().map(|s| s.label()).collect();
        labels.dedup();
        assert_eq!(labels, ["session", "subject", "all", "refresh"]);
        for (i, scope) in Scope::EVERY.into_iter().enumerate() {
            assert_eq!(usize::from(scope.code()), i, "codes are their order");
            assert_eq!(Scope::from_code(scope.code()), Some(scope));
            assert_eq!(scope.to_string(), scope.label());
        }
        for unknown in 4..=u8::MAX {
            assert_eq!(Scope::from_code(unknown), None, "{unknown}");
        }
        let scopes: Vec<Scope> = one_of_each().iter().map(Revocation::scope).collect();
        assert_eq!(scopes, Scope::EVERY);
    }

    #[test]
    fn keys_carry_their_scope_and_id() {
        let each = one_of_each();
        let ids: Vec<(Scope, &str)> = each
            .iter()
            .map(|r| (r.key().scope(), r.key().id()))
            .collect();
        assert_eq!(
            ids,
            [
                (Scope::Session, "s1"),
                (Scope::Subject, "alice"),
                (Scope::All, ""),
                (Scope::Tokens, "alice")
            ]
        );
        let r = Revocation::session("s1", None, t(NOW), &Lifetimes::default());
        assert_eq!(r.key().id(), "s1");
        assert_eq!(r.at(), None);
    }

    /// The constructors are the one home of how long each kind is kept.
    #[test]
    fn constructors_keep_each_kind_as_long_as_it_can_matter_plus_the_grace() {
        let min = |m: u64| Duration::from_secs(m * 60);
        let l = Lifetimes::new(min(15), min(60), min(24 * 60));
        let g = REVOCATION_GRACE;
        assert_eq!(g, Duration::from_secs(60));
        // A session: renewable until the idle timeout past its newest token's exp...
        let r = Revocation::session("s1", Some(t(NOW - 60)), t(NOW), &l);
        assert_eq!(r.until(), t(NOW + 15 * 60 + 60 * 60 + 60));
        // ...but never past its absolute lifetime.
        let r = Revocation::session("s1", Some(t(NOW - 23 * 3600)), t(NOW), &l);
        assert_eq!(r.until(), t(NOW - 23 * 3600 + 24 * 3600 + 60));
        // Start unknown (the CLI): it may have begun just now.
        let r = Revocation::session("s1", None, t(NOW), &l);
        assert_eq!(
            r.until(),
            l.renewable_until(t(NOW), t(NOW)).saturating_add(g)
        );
        // Cut-offs: until the latest session begun by `at` reaches its absolute lifetime.
        let at = UnixMicros::from_micros(NOW * 1_000_000 + 999_999);
        for r in [
            Revocation::subject("a", at, &l),
            Revocation::everyone(at, &l),
        ] {
            assert_eq!(r.until(), t(NOW + 24 * 3600 + 60), "{r:?}");
            assert_eq!(r.at(), Some(at));
        }
        // A refresh: until every token issued in `at`'s second is past exp.
        let r = Revocation::tokens("a", at, &l);
        assert_eq!(r.until(), t(NOW + 1 + 15 * 60 + 60));
        for r in one_of_each() {
            assert!(r.check().is_ok(), "{r:?}");
        }
    }

    #[test]
    fn the_mirror_window_is_the_access_lifetime_plus_the_larger_grace() {
        let min = |m: u64| Duration::from_secs(m * 60);
        let l = Lifetimes::default();
        assert_eq!(l.mirror_window(false, Duration::ZERO), min(16));
        assert_eq!(
            l.mirror_window(false, min(2)),
            min(17),
            "a longer leeway wins"
        );
        assert_eq!(l.mirror_window(true, Duration::ZERO), min(24 * 60 + 16));
        let short = Lifetimes::new(min(15), min(24 * 60), min(60));
        assert_eq!(short.mirror_window(true, Duration::ZERO), min(61));
        assert_eq!(Lifetimes::DEFAULT, Lifetimes::default());
    }
}
