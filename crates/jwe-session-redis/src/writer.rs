//! Writing to Redis: [`RedisWriter`] (what the CLI revokes through) and the writer every
//! store sends with, which also reads point keys and notices a Redis that went back in
//! time.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jwe_session_core::{Revocation, RevokeError, SessionIds};

use crate::conn::{bounded, stale, Conn};
use crate::error::BackendError;
use crate::layout::{self, Keys, StreamId};

/// Writes revocations and reads point keys.
pub(crate) struct Writer {
    pub(crate) conn: Conn,
    pub(crate) keys: Keys,
    pub(crate) revoke: redis::Script,
    /// Reads the log's last id (every second, from the follower): hashed once, here.
    pub(crate) last_id: redis::Script,
    pub(crate) timeout: Duration,
    /// This instance's mirror window.
    pub(crate) window: Duration,
    /// The newest log entry this instance has seen (written or read): Redis's log never
    /// ends before it unless Redis went back in time.
    pub(crate) seen: Mutex<StreamId>,
}

impl Writer {
    pub(crate) fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs one call, once more on a fresh connection if the first found it dropped.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, BackendError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match bounded(self.timeout, f(self.conn.clone())).await {
            Err(e) if stale(&e) => {
                tracing::debug!(error = ?e, "Redis connection dropped; retrying once");
                bounded(self.timeout, f(self.conn.clone())).await
            }
            other => other,
        }
    }

    /// Remembers that the log reached `id`.
    pub(crate) fn saw(&self, id: &str) {
        if let Some(id) = StreamId::parse(id) {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            *seen = (*seen).max(id);
        }
    }

    pub(crate) fn seen(&self) -> StreamId {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether Redis went back in time: its log ends before an entry this instance saw
    /// (a restart from an older snapshot, an AOF that lost its last second, a failover to
    /// a lagging replica). Then forgets the newer entries, so it answers `true` once.
    pub(crate) async fn went_back(&self, conn: &mut Conn) -> Result<bool, BackendError> {
        // What was seen before asking was in Redis before it answered: a write that lands
        // meanwhile cannot look like a loss.
        let seen = self.seen();
        let mut inv = self.last_id.prepare_invoke();
        inv.key(self.keys.log());
        let id: String = bounded(self.timeout, inv.invoke_async(conn)).await?;
        let last = StreamId::parse(&id).unwrap_or_default();
        if last >= seen {
            return Ok(false);
        }
        let mut kept = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *kept == seen {
            *kept = last;
        }
        Ok(true)
    }

    /// Records revocations (any number; one script call per [`layout::BATCH`], several in
    /// flight); returns how many changed what Redis held. Redis stamps when it took each
    /// (readers window session revocations from then).
    pub(crate) async fn send(&self, revs: &[Revocation]) -> Result<usize, BackendError> {
        let mut changed = 0;
        for group in revs.chunks(layout::BATCH * 8) {
            let batches = group.chunks(layout::BATCH).map(|c| self.send_batch(c));
            changed += futures_util::future::try_join_all(batches)
                .await?
                .into_iter()
                .sum::<usize>();
        }
        Ok(changed)
    }

    async fn send_batch(&self, revs: &[Revocation]) -> Result<usize, BackendError> {
        let mut keys = vec![self.keys.log(), self.keys.cutoffs(), self.keys.window()];
        let mut args = vec![self.window_ms().to_string()];
        for r in revs {
            if let Err(e) = r.check() {
                tracing::warn!(error = ?e, "not sending a malformed revocation to Redis");
                continue;
            }
            keys.push(self.keys.point(r));
            args.extend(layout::script_args(r));
        }
        if keys.len() == 3 {
            return Ok(0);
        }
        self.call(|mut c| {
            let mut inv = self.revoke.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(a);
            }
            async move { inv.invoke_async::<(usize, String)>(&mut c).await }
        })
        .await
        .map(|(changed, id)| {
            self.saw(&id);
            changed
        })
    }

    /// What Redis holds for a session's point keys.
    pub(crate) async fn point_keys(
        &self,
        ids: SessionIds<'_>,
    ) -> Result<Vec<Revocation>, BackendError> {
        let mut keys = vec![self.keys.all()];
        keys.extend(ids.sid.map(|s| self.keys.sid(s)));
        keys.extend(ids.sub.map(|s| self.keys.sub(s)));
        self.points(&keys).await
    }

    async fn points(&self, keys: &[String]) -> Result<Vec<Revocation>, BackendError> {
        let pipe = layout::points_query(keys);
        let rows = self
            .call(|mut c| {
                let pipe = pipe.clone();
                async move { pipe.query_async(&mut c).await }
            })
            .await?;
        Ok(self.keys.decode_points(keys, rows))
    }

    /// Raises the stored window to ours, so the log is kept long enough for us.
    pub(crate) async fn raise_window(&self) -> Result<(), BackendError> {
        let script = redis::Script::new(layout::WINDOW_LUA);
        let key = self.keys.window();
        let ms = self.window_ms();
        self.call(|mut c| {
            let mut inv = script.prepare_invoke();
            inv.key(&key).arg(ms);
            async move { inv.invoke_async::<u64>(&mut c).await }
        })
        .await
        .map(|_| ())
    }

    /// Redis's `maxmemory-policy`, if it lets us read it.
    pub(crate) async fn eviction_policy(&self) -> Option<String> {
        let value = self
            .call(|mut c| async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async::<redis::Value>(&mut c)
                    .await
            })
            .await
            .ok()?;
        let mut words = Vec::new();
        flatten(value, &mut words);
        let at = words.iter().position(|w| w == "maxmemory-policy")?;
        words.into_iter().nth(at + 1)
    }
}

fn flatten(v: redis::Value, out: &mut Vec<String>) {
    match v {
        redis::Value::BulkString(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => out.push(s),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.into_iter().for_each(|i| flatten(i, out));
        }
        redis::Value::Map(pairs) => pairs.into_iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        _ => {}
    }
}

/// Revokes through Redis without a mirror: what the CLI uses. Made by
/// [`RedisStoreBuilder::connect_writer`](crate::RedisStoreBuilder::connect_writer).
pub struct RedisWriter {
    writer: Writer,
}

impl From<Writer> for RedisWriter {
    fn from(writer: Writer) -> Self {
        Self { writer }
    }
}

impl fmt::Debug for RedisWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisWriter")
            .field("prefix", &self.writer.keys.base())
            .finish_non_exhaustive()
    }
}

impl RedisWriter {
    /// Records revocations, pipelined in batches; returns how many changed what Redis held
    /// (a repeat changes nothing). Every instance's mirror picks them up from the log.
    /// Redis stamps when it took them, by its own clock, so this machine's clock cannot
    /// shorten how long the instances keep them.
    ///
    /// # Errors
    /// [`RevokeError::Invalid`] (and nothing is sent) if one is malformed;
    /// [`RevokeError::Unavailable`] or [`RevokeError::Timeout`] if Redis did not take them:
    /// batches already sent stay, and sending all again is safe.
    pub async fn revoke_batch(&self, revs: &[Revocation]) -> Result<usize, RevokeError> {
        for r in revs {
            r.check()?;
        }
        Ok(self.writer.send(revs).await?)
    }

    /// Whether a service's store has connected under this prefix on this Redis: its epoch
    /// marker (`{P}epoch`, set by the first [`RedisStore`](crate::RedisStore) to connect and kept for good)
    /// exists. Revocations written under a prefix no service reads protect nothing, so a
    /// tool should refuse to write when this is `false` (the CLI does, unless `--force`).
    /// Needs only `EXISTS` on the prefix's keys (the README's ACL).
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] or [`BackendError::Timeout`] if Redis did not answer.
    pub async fn serving(&self) -> Result<bool, BackendError> {
        let key = self.writer.keys.epoch();
        self.writer
            .call(|mut c| {
                let key = key.clone();
                async move {
                    redis::cmd("EXISTS")
                        .arg(&key)
                        .query_async::<u64>(&mut c)
                        .await
                }
            })
            .await
            .map(|n| n > 0)
    }

    /// The prefix this writer writes under, as given to
    /// [`prefix`](crate::RedisStoreBuilder::prefix).
    #[must_use]
    pub fn prefix(&self) -> &str {
        let base = self.writer.keys.base();
        base.strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;

    /// `CONFIG GET maxmemory-policy` answers a flat array (RESP2) or a map (RESP3): the
    /// words come out in order either way.
    #[test]
    fn config_replies_flatten_in_both_protocols() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let mut words = Vec::new();
        flatten(
            Value::Array(vec![bulk("maxmemory-policy"), bulk("noeviction")]),
            &mut words,
        );
        assert_eq!(words, ["maxmemory-policy", "noeviction"]);
        let mut words = Vec::new();
        flatten(
            Value::Map(vec![(
                Value::SimpleString("maxmemory-policy".into()),
                bulk("allkeys-lru"),
            )]),
            &mut words,
        );
        assert_eq!(words, ["maxmemory-policy", "allkeys-lru"]);
        let mut words = Vec::new();
        flatten(Value::Nil, &mut words);
        assert!(words.is_empty());
    }
}
