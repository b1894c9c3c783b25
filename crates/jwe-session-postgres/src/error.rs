//! The ways a call to PostgreSQL fails here: it did not answer in time, could not be
//! reached (or refused the call), or holds a schema this version cannot use. Each public
//! operation turns it into its own error.

use std::fmt;
use std::time::Duration;

use jwe_session_core::{debug_report, BoxError, CheckError, RegistryError, RevokeError};

/// PostgreSQL did not answer within the timeout, could not be reached or refused the call,
/// or its schema is missing or of another format: what
/// [`connect`](crate::PgStoreBuilder::connect),
/// [`connect_writer`](crate::PgStoreBuilder::connect_writer),
/// [`migrate`](crate::migrate) and [`PgWriter::serving`](crate::PgWriter::serving) return.
/// A revocation's failure is a [`RevokeError`], an authoritative check's a
/// [`CheckError`], a registry call's a [`RegistryError`], with the same cause.
///
/// `Debug` reads as `Display` followed by each cause and the variant, so `?` in `main`
/// prints what to act on (never the connection string, which may carry a password).
#[non_exhaustive]
pub enum BackendError {
    /// PostgreSQL did not answer within the configured
    /// [`timeout`](crate::PgStoreBuilder::timeout).
    Timeout {
        /// How long it waited.
        after: Duration,
    },
    /// PostgreSQL could not be reached or refused the call; the cause says which.
    Unavailable {
        /// What failed, with the driver's own error as its cause.
        source: BoxError,
    },
    /// The store's schema is not in the database (and this store was told not to create
    /// it: [`migrate(false)`](crate::PgStoreBuilder::migrate)), or it is of a format this
    /// version does not know (a newer version made it).
    Schema {
        /// The schema's name.
        schema: String,
        /// The format found; `None` when there is no schema.
        found: Option<u32>,
        /// The format this version reads.
        expected: u32,
    },
    /// A schema name that is not a plain lower-case SQL identifier
    /// (`[a-z_][a-z0-9_]*`, at most 48 bytes).
    InvalidSchemaName {
        /// The name given.
        name: String,
    },
}

impl BackendError {
    pub(crate) fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            source: source.into(),
        }
    }
}

impl From<sqlx::Error> for BackendError {
    fn from(e: sqlx::Error) -> Self {
        Self::unavailable(e)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { after } => {
                write!(f, "revocation store did not answer within {after:?}")
            }
            Self::Unavailable { .. } => f.write_str("revocation store is unavailable"),
            Self::Schema {
                schema,
                found: None,
                ..
            } => write!(
                f,
                "the revocation schema {schema:?} is not in this database (let the service \
                 create it, or run the crate's sql/0001_init.sql)"
            ),
            Self::Schema {
                schema,
                found: Some(found),
                expected,
            } => write!(
                f,
                "the revocation schema {schema:?} has format {found}; this version reads \
                 format {expected}"
            ),
            Self::InvalidSchemaName { name } => write!(
                f,
                "schema name {name:?} is not a lower-case SQL identifier ([a-z_][a-z0-9_]*, \
                 at most 48 bytes)"
            ),
        }
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::Timeout { .. } => "BackendError::Timeout",
            Self::Unavailable { .. } => "BackendError::Unavailable",
            Self::Schema { .. } => "BackendError::Schema",
            Self::InvalidSchemaName { .. } => "BackendError::InvalidSchemaName",
        };
        debug_report(self, variant, f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable { source } => Some(&**source),
            Self::Timeout { .. } | Self::Schema { .. } | Self::InvalidSchemaName { .. } => None,
        }
    }
}

impl From<BackendError> for CheckError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Timeout { after } => CheckError::Timeout { after },
            other => CheckError::Unavailable {
                source: unavailable_source(other),
            },
        }
    }
}

impl From<BackendError> for RevokeError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Timeout { after } => RevokeError::Timeout { after },
            other => RevokeError::Unavailable {
                source: unavailable_source(other),
            },
        }
    }
}

impl From<BackendError> for RegistryError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Timeout { after } => RegistryError::Timeout { after },
            other => RegistryError::Unavailable {
                source: unavailable_source(other),
            },
        }
    }
}

/// The cause an operation's `Unavailable` carries: the driver's error itself, or the
/// schema problem whole.
fn unavailable_source(e: BackendError) -> BoxError {
    match e {
        BackendError::Unavailable { source } => source,
        other => Box::new(other),
    }
}
