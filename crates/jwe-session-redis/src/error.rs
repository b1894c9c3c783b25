//! The one way a call to Redis fails here: it did not answer in time, or it could not be
//! reached (or refused the call). Each public operation turns it into its own error.

use std::fmt;
use std::time::Duration;

use jwe_session_core::{debug_report, BoxError, CheckError, RevokeError};

/// Redis did not answer within the timeout, could not be reached, or refused the call:
/// what [`connect`](crate::RedisStoreBuilder::connect),
/// [`connect_writer`](crate::RedisStoreBuilder::connect_writer) and
/// [`RedisWriter::serving`](crate::RedisWriter::serving) return. A revocation's failure is
/// a [`RevokeError`] and an authoritative check's a [`CheckError`], with the same cause.
///
/// `Debug` reads as `Display` followed by each cause and the variant, so `?` in `main`
/// prints what to act on (never the URL, which may carry a password).
#[non_exhaustive]
pub enum BackendError {
    /// Redis did not answer within the configured
    /// [`timeout`](crate::RedisStoreBuilder::timeout).
    Timeout {
        /// How long it waited.
        after: Duration,
    },
    /// Redis could not be reached or refused the call; the cause says which.
    Unavailable {
        /// What failed, with Redis's own error as its cause.
        source: BoxError,
    },
}

impl BackendError {
    pub(crate) fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            source: source.into(),
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { after } => {
                write!(f, "revocation store did not answer within {after:?}")
            }
            Self::Unavailable { .. } => f.write_str("revocation store is unavailable"),
        }
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::Timeout { .. } => "BackendError::Timeout",
            Self::Unavailable { .. } => "BackendError::Unavailable",
        };
        debug_report(self, variant, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable { source } => Some(&**source),
            Self::Timeout { .. } => None,
        }
    }
}

impl From<BackendError> for CheckError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Timeout { after } => CheckError::Timeout { after },
            BackendError::Unavailable { source } => CheckError::Unavailable { source },
        }
    }
}

impl From<BackendError> for RevokeError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Timeout { after } => RevokeError::Timeout { after },
            BackendError::Unavailable { source } => RevokeError::Unavailable { source },
        }
    }
}
