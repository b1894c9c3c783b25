//! Writing to PostgreSQL: [`PgWriter`] (what the CLI revokes through) and the writer every
//! store sends with, which also reads a session's rows for the authoritative check and
//! remembers the newest number it has seen.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jwe_session_core::{Revocation, RevocationQueue, RevokeError, SessionIds, UnixTime};
use sqlx::{PgPool, Row as _};

use crate::conn::bounded;
use crate::error::BackendError;
use crate::rows::{self, Columns, Stored};
use crate::schema::Sql;

/// How many revocations one call of the `revoke` function carries.
pub(crate) const BATCH: usize = 2_000;

/// Writes revocations and reads rows.
pub(crate) struct Writer {
    pub(crate) pool: PgPool,
    pub(crate) sql: Arc<Sql>,
    pub(crate) timeout: Duration,
    /// The newest `seq` this instance has seen (written or read): the table's largest
    /// never falls below it unless the database went back in time.
    pub(crate) seen: AtomicI64,
}

impl Writer {
    /// Remembers that the table reached `seq`.
    pub(crate) fn saw(&self, seq: i64) {
        self.seen.fetch_max(seq, Ordering::SeqCst);
    }

    pub(crate) fn seen(&self) -> i64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Forgets numbers above `last` (after a database that went back was repaired), if
    /// nothing newer came meanwhile.
    pub(crate) fn rewind(&self, from: i64, last: i64) {
        let _ = self
            .seen
            .compare_exchange(from, last, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Records revocations (any number, merged per entry first, one function call per
    /// [`BATCH`], each its own transaction); returns how many rows changed. Malformed ones
    /// are skipped with a warning, expired ones at `now` skipped silently.
    pub(crate) async fn send(
        &self,
        revs: &[Revocation],
        now: UnixTime,
    ) -> Result<u64, BackendError> {
        let merged = RevocationQueue::new();
        merged.enqueue(revs.iter().filter(|r| match r.check() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = ?e, "not sending a malformed revocation to PostgreSQL");
                false
            }
        }).cloned());
        let all = merged.snapshot();
        let mut changed = 0;
        for batch in all.chunks(BATCH) {
            let c = Columns::of(batch);
            let row = bounded(
                self.timeout,
                sqlx::query(self.sql.revoke.clone())
                    .bind(&c.scopes)
                    .bind(&c.ids)
                    .bind(&c.ats)
                    .bind(&c.untils)
                    .bind(rows::secs(now))
                    .fetch_one(&self.pool),
            )
            .await?;
            let n: i64 = row.try_get(0).map_err(BackendError::from)?;
            let last: i64 = row.try_get(1).map_err(BackendError::from)?;
            self.saw(last);
            changed += u64::try_from(n).unwrap_or(0);
        }
        Ok(changed)
    }

    /// The rows that could end session `ids`: its own, its subject's, everyone's.
    pub(crate) async fn point_rows(
        &self,
        ids: SessionIds<'_>,
    ) -> Result<Vec<Stored>, BackendError> {
        let rows = bounded(
            self.timeout,
            sqlx::query(self.sql.points.clone())
                .bind(ids.sid)
                .bind(ids.sub)
                .fetch_all(&self.pool),
        )
        .await?;
        Ok(rows.iter().filter_map(rows::decode_or_set_aside).collect())
    }

    /// Deletes expired rows in bounded batches (at most `batch` rows a statement, `rounds`
    /// statements a table): revocations but the newest, then registry records. How many
    /// went.
    pub(crate) async fn prune(
        &self,
        now: UnixTime,
        batch: u32,
        rounds: u32,
    ) -> Result<u64, BackendError> {
        let mut gone = 0;
        for sql in [&self.sql.prune, &self.sql.devices_prune] {
            for _ in 0..rounds {
                let done = bounded(
                    self.timeout,
                    sqlx::query(sql.clone())
                        .bind(rows::secs(now))
                        .bind(i64::from(batch))
                        .execute(&self.pool),
                )
                .await?
                .rows_affected();
                gone += done;
                if done < u64::from(batch) {
                    break;
                }
            }
        }
        Ok(gone)
    }

    /// Whether the schema's meta table exists and holds an epoch: the schema was made for
    /// a service.
    pub(crate) async fn serving(&self) -> Result<bool, BackendError> {
        crate::schema::check_format(&self.pool, &self.sql, self.timeout)
            .await
            .map_or_else(
                |e| match e {
                    BackendError::Schema { found: None, .. } => Ok(false),
                    other => Err(other),
                },
                |()| Ok(true),
            )
    }
}

/// Revokes through PostgreSQL without a mirror: what the CLI uses. Made by
/// [`PgStoreBuilder::connect_writer`](crate::PgStoreBuilder::connect_writer).
pub struct PgWriter {
    writer: Writer,
}

impl From<Writer> for PgWriter {
    fn from(writer: Writer) -> Self {
        Self { writer }
    }
}

impl fmt::Debug for PgWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgWriter")
            .field("schema", &self.writer.sql.schema)
            .finish_non_exhaustive()
    }
}

impl PgWriter {
    /// Records revocations in batches of 2,000 (one transaction each); returns how many
    /// changed what the table held (a repeat changes nothing). Every instance's mirror
    /// picks them up from the table's `NOTIFY` (or its next poll). The database stamps
    /// when it took them, by its own clock, so this machine's clock cannot shorten how
    /// long the instances keep them; `now` only skips what has already expired.
    ///
    /// # Errors
    /// [`RevokeError::Invalid`] (and nothing is sent) if one is malformed;
    /// [`RevokeError::Unavailable`] or [`RevokeError::Timeout`] if PostgreSQL did not take
    /// them: batches already sent stay, and sending all again is safe.
    pub async fn revoke_batch(
        &self,
        revs: &[Revocation],
        now: UnixTime,
    ) -> Result<u64, RevokeError> {
        for r in revs {
            r.check()?;
        }
        Ok(self.writer.send(revs, now).await?)
    }

    /// Whether a service's schema is in this database, in this version's format.
    /// Revocations written where no service reads protect nothing, so a tool should refuse
    /// to write when this is `false` (the CLI does, unless `--force`).
    ///
    /// # Errors
    /// [`BackendError::Schema`] for a schema of another format;
    /// [`BackendError::Unavailable`] or [`BackendError::Timeout`] if PostgreSQL did not
    /// answer.
    pub async fn serving(&self) -> Result<bool, BackendError> {
        self.writer.serving().await
    }

    /// The schema this writer writes to.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.writer.sql.schema
    }
}
