//! The session registry ("your devices") on PostgreSQL: the `devices` table, beside the
//! revocations and never announced, so it costs the request path and the followers
//! nothing. A write is one transaction applying the core's merge rule
//! ([`SessionRecord::absorb`]) under the row's lock; a list is one indexed read.

use jwe_session_core::{BoxFuture, RegistryError, SessionRecord, SessionRegistry, UnixTime};
use sqlx::Row as _;

use crate::conn::bounded;
use crate::error::BackendError;
use crate::rows::secs;
use crate::store::PgStore;

/// What a write did.
enum Written {
    Done,
    OtherSubject,
}

impl SessionRegistry for PgStore {
    fn record<'a>(
        &'a self,
        record: SessionRecord,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            if !record.to_keep(now)? {
                return Ok(());
            }
            let w = &self.shared.writer;
            let written = bounded(w.timeout, async {
                let mut tx = w.pool.begin().await?;
                let inserted = sqlx::query(w.sql.device_insert.clone())
                    .bind(&record.sid)
                    .bind(&record.sub)
                    .bind(secs(record.until))
                    .bind(record.to_json())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    tx.commit().await?;
                    return Ok::<_, sqlx::Error>(Written::Done);
                }
                let kept: String = sqlx::query(w.sql.device_lock.clone())
                    .bind(&record.sid)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                let merged = match SessionRecord::from_json(kept.as_bytes()) {
                    Ok(mut kept) if kept.sub == record.sub => {
                        kept.absorb(&record);
                        kept
                    }
                    Ok(_) => return Ok(Written::OtherSubject),
                    // One this version cannot read: the new write replaces it.
                    Err(_) => record.clone(),
                };
                sqlx::query(w.sql.device_update.clone())
                    .bind(&merged.sid)
                    .bind(secs(merged.until))
                    .bind(merged.to_json())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Written::Done)
            })
            .await
            .map_err(RegistryError::from)?;
            match written {
                Written::Done => Ok(()),
                Written::OtherSubject => Err(RegistryError::Invalid {
                    reason: "the session id is recorded for another subject",
                }),
            }
        })
    }

    fn remove<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        _now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            let w = &self.shared.writer;
            bounded(
                w.timeout,
                sqlx::query(w.sql.device_remove.clone())
                    .bind(sid)
                    .bind(sub)
                    .execute(&w.pool),
            )
            .await
            .map_err(RegistryError::from)?;
            Ok(())
        })
    }

    fn records_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, RegistryError>> {
        Box::pin(async move {
            let w = &self.shared.writer;
            let rows = bounded(
                w.timeout,
                sqlx::query(w.sql.devices_of.clone())
                    .bind(sub)
                    .bind(secs(now))
                    .fetch_all(&w.pool),
            )
            .await
            .map_err(RegistryError::from)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let json: String = row
                    .try_get(0)
                    .map_err(|e| RegistryError::from(BackendError::from(e)))?;
                match SessionRecord::from_json(json.as_bytes()) {
                    Ok(r) if r.sub == sub && r.until > now => out.push(r),
                    Ok(_) => {}
                    Err(_) => {
                        tracing::error!("a session record this version cannot read was set aside")
                    }
                }
            }
            Ok(out)
        })
    }
}
