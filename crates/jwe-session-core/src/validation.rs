//! What makes opened claims acceptable now: `exp`, `nbf`, leeway, issuer, audience,
//! required claims and the absolute lifetime, against a given moment.

use std::time::Duration;

use crate::claims::Claims;
use crate::error::ValidationError;
use crate::names::Claim;
use crate::time::{Clock, SystemClock, UnixTime};

/// What makes opened claims acceptable now.
///
/// Defaults: `exp` required and checked, `nbf` checked when present, no leeway, no issuer,
/// audience or absolute-lifetime check.
///
/// ```
/// use std::time::Duration;
/// use jwe_session_core::{Claim, Claims, UnixTime, Validation, ValidationError};
///
/// let v = Validation::new().issuer("https://app.example").require(&[Claim::Sub]);
/// let mut c = Claims::new(());
/// c.iss = Some("https://app.example".into());
/// c.sub = Some("alice".into());
/// c.exp = Some(UnixTime::from_secs(1_000));
/// assert_eq!(v.validate_at(&c, UnixTime::from_secs(999)), Ok(()));
/// assert!(matches!(
///     v.validate_at(&c, UnixTime::from_secs(1_000)),
///     Err(ValidationError::Expired { .. })
/// ));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Validation {
    leeway: Duration,
    check_exp: bool,
    issuer: Option<String>,
    audiences: Option<Vec<String>>,
    required: Vec<Claim>,
    absolute_lifetime: Option<Duration>,
}

impl Default for Validation {
    fn default() -> Self {
        Self::new()
    }
}

impl Validation {
    /// The defaults.
    pub fn new() -> Self {
        Self {
            leeway: Duration::ZERO,
            check_exp: true,
            issuer: None,
            audiences: None,
            required: vec![Claim::Exp],
            absolute_lifetime: None,
        }
    }

    /// Allows this much clock skew on `exp` and `nbf` (whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires `iss` to equal `iss`.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer = Some(iss.into());
        self
    }

    /// Requires `aud` to contain at least one of `auds`.
    pub fn audience(mut self, auds: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audiences = Some(auds.into_iter().map(Into::into).collect());
        self
    }

    /// Requires these claims to be present (in addition to `exp`).
    pub fn require(mut self, claims: &[Claim]) -> Self {
        for c in claims {
            if !self.required.contains(c) {
                self.required.push(*c);
            }
        }
        self
    }

    /// Refuses sessions whose `auth_time` is more than `max` ago (and requires `auth_time`).
    pub fn absolute_lifetime(mut self, max: Duration) -> Self {
        self.absolute_lifetime = Some(max);
        self.require(&[Claim::AuthTime])
    }

    /// Skips the `exp` check (and its requirement). For code that handles expiry itself,
    /// like the session layer's renewal window.
    ///
    /// # Security
    /// Without another expiry check, such tokens are valid forever.
    pub fn dangerous_skip_exp(mut self) -> Self {
        self.check_exp = false;
        self.required.retain(|c| *c != Claim::Exp);
        self
    }

    /// Validates against the system clock.
    ///
    /// # Errors
    /// As [`validate_at`](Self::validate_at).
    pub fn validate<T>(&self, claims: &Claims<T>) -> Result<(), ValidationError> {
        self.validate_at(claims, SystemClock.now())
    }

    /// Validates as of `now`, in this order: required claims, `exp`, `nbf`, `iss`, `aud`,
    /// absolute lifetime.
    ///
    /// # Errors
    /// The first failing check's [`ValidationError`].
    pub fn validate_at<T>(&self, claims: &Claims<T>, now: UnixTime) -> Result<(), ValidationError> {
        for &claim in &self.required {
            if !claim.is_present(claims) {
                return Err(ValidationError::MissingClaim { claim });
            }
        }
        if self.check_exp {
            if let Some(exp) = claims.exp {
                if now >= exp.saturating_add(self.leeway) {
                    return Err(ValidationError::Expired {
                        exp,
                        now,
                        leeway: self.leeway,
                    });
                }
            }
        }
        if let Some(nbf) = claims.nbf {
            if now.saturating_add(self.leeway) < nbf {
                return Err(ValidationError::NotYetValid {
                    nbf,
                    now,
                    leeway: self.leeway,
                });
            }
        }
        if let Some(expected) = &self.issuer {
            match &claims.iss {
                None => return Err(ValidationError::MissingClaim { claim: Claim::Iss }),
                Some(found) if found != expected => {
                    return Err(ValidationError::IssuerMismatch {
                        expected: expected.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(expected) = &self.audiences {
            let Some(found) = &claims.aud else {
                return Err(ValidationError::MissingClaim { claim: Claim::Aud });
            };
            if !expected.iter().any(|a| found.contains(a)) {
                return Err(ValidationError::AudienceMismatch {
                    expected: expected.clone(),
                });
            }
        }
        if let (Some(max), Some(auth_time)) = (self.absolute_lifetime, claims.auth_time) {
            if now >= auth_time.saturating_add(max) {
                return Err(ValidationError::AbsoluteLifetimeExceeded {
                    auth_time,
                    max,
                    now,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;

    fn t(s: u64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    fn base() -> Claims<()> {
        let mut c = Claims::new(());
        c.exp = Some(t(1_000));
        c
    }

    #[test]
    fn exp_boundaries() {
        let v = Validation::new();
        assert_eq!(v.validate_at(&base(), t(999)), Ok(()));
        // At exp the token is expired: "the current time MUST be before" exp (RFC 7519 4.1.4).
        assert_eq!(
            v.validate_at(&base(), t(1_000)),
            Err(ValidationError::Expired {
                exp: t(1_000),
                now: t(1_000),
                leeway: Duration::ZERO
            })
        );
        assert!(matches!(
            v.validate_at(&base(), t(1_001)),
            Err(ValidationError::Expired { .. })
        ));
        let lenient = Validation::new().leeway(Duration::from_secs(30));
        assert_eq!(lenient.validate_at(&base(), t(1_029)), Ok(()));
        assert!(matches!(
            lenient.validate_at(&base(), t(1_030)),
            Err(ValidationError::Expired { leeway, .. }) if leeway == Duration::from_secs(30)
        ));
        let skip = Validation::new().dangerous_skip_exp();
        assert_eq!(skip.validate_at(&base(), t(5_000)), Ok(()));
        assert_eq!(skip.validate_at(&Claims::new(()), t(5_000)), Ok(()));
    }

    #[test]
    fn nbf_boundaries() {
        let mut c = base();
        c.nbf = Some(t(500));
        let v = Validation::new();
        assert_eq!(v.validate_at(&c, t(500)), Ok(()));
        assert_eq!(
            v.validate_at(&c, t(499)),
            Err(ValidationError::NotYetValid {
                nbf: t(500),
                now: t(499),
                leeway: Duration::ZERO
            })
        );
        assert_eq!(
            v.leeway(Duration::from_secs(1)).validate_at(&c, t(499)),
            Ok(())
        );
    }

    #[test]
    fn missing_required_claims() {
        let v = Validation::new();
        assert_eq!(
            v.validate_at(&Claims::new(()), t(0)),
            Err(ValidationError::MissingClaim { claim: Claim::Exp })
        );
        let v = Validation::new().require(&[Claim::Sub, Claim::Sid]);
        assert_eq!(
            v.validate_at(&base(), t(0)),
            Err(ValidationError::MissingClaim { claim: Claim::Sub })
        );
        let mut c = base();
        c.sub = Some("a".into());
        assert_eq!(
            v.validate_at(&c, t(0)),
            Err(ValidationError::MissingClaim { claim: Claim::Sid })
        );
    }

    #[test]
    fn issuer_and_audience() {
        let v = Validation::new().issuer("me").audience(["web", "api"]);
        let mut c = base();
        assert_eq!(
            v.validate_at(&c, t(0)),
            Err(ValidationError::MissingClaim { claim: Claim::Iss })
        );
        c.iss = Some("them".into());
        assert_eq!(
            v.validate_at(&c, t(0)),
            Err(ValidationError::IssuerMismatch {
                expected: "me".into(),
            })
        );
        c.iss = Some("me".into());
        assert_eq!(
            v.validate_at(&c, t(0)),
            Err(ValidationError::MissingClaim { claim: Claim::Aud })
        );
        c.aud = Some(Audience::many(["mobile", "desktop"]));
        assert!(matches!(
            v.validate_at(&c, t(0)),
            Err(ValidationError::AudienceMismatch { expected }) if expected == ["web", "api"]
        ));
        c.aud = Some(Audience::one("api"));
        assert_eq!(v.validate_at(&c, t(0)), Ok(()));
        c.aud = Some(Audience::many(["x", "web"]));
        assert_eq!(v.validate_at(&c, t(0)), Ok(()));
    }

    #[test]
    fn absolute_lifetime() {
        let v = Validation::new().absolute_lifetime(Duration::from_secs(100));
        let mut c = base();
        assert_eq!(
            v.validate_at(&c, t(0)),
            Err(ValidationError::MissingClaim {
                claim: Claim::AuthTime
            })
        );
        c.auth_time = Some(t(800));
        assert_eq!(v.validate_at(&c, t(899)), Ok(()));
        assert_eq!(
            v.validate_at(&c, t(900)),
            Err(ValidationError::AbsoluteLifetimeExceeded {
                auth_time: t(800),
                max: Duration::from_secs(100),
                now: t(900)
            })
        );
    }
}
