//! The session registry ("your devices") on Redis: beside the revocations, never on the
//! replication log, so what it adds never slows the request path or the follower.
//!
//! Per subject a sorted set `{P}devices:<sub>` of its sids scored by `until`, and per
//! session a hash `{P}device:<sid>` with the record's fields; both carry `EXPIREAT`, so
//! a user's records go by themselves once no session of theirs can renew. A write is one
//! script (the merge rule, atomic); a list is two reads.

use std::sync::LazyLock;

use jwe_session_core::{
    Binding, BoxFuture, RegistryError, SessionRecord, SessionRegistry, UnixMicros, UnixTime,
};

use crate::error::BackendError;
use crate::store::RedisStore;

/// Records one session: what it takes and returns is written at the top of the script.
/// Hashed once.
static DEVICE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("lua/device.lua")));

/// Removes one session: what it takes and returns is written at the top of the script.
static FORGET: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("lua/forget.lua")));

fn registry_error(e: BackendError) -> RegistryError {
    match e {
        BackendError::Timeout { after } => RegistryError::Timeout { after },
        BackendError::Unavailable { source } => RegistryError::Unavailable { source },
    }
}

/// A record back from its hash's fields; `None` for one this version cannot read.
fn decode(fields: &[(String, String)]) -> Option<SessionRecord> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let num = |name: &str| get(name)?.parse::<u64>().ok();
    let mut record = SessionRecord::new(
        get("sid")?,
        get("sub")?,
        UnixMicros::from_micros(num("started_us")?),
        UnixTime::from_secs(num("until")?),
    )
    .renewed_at(
        UnixTime::from_secs(num("renewed")?),
        UnixTime::from_secs(num("until")?),
    )
    .with_binding(Binding::from_label(get("bound")?)?);
    record.label = get("label").map(str::to_owned);
    record.network = get("network").map(str::to_owned);
    record.check().ok()?;
    Some(record)
}

impl SessionRegistry for RedisStore {
    fn record<'a>(
        &'a self,
        record: SessionRecord,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            if !record.to_keep(now)? {
                return Ok(());
            }
            let writer = &self.shared.writer;
            let keys = [
                writer.keys.devices(&record.sub),
                writer.keys.device(&record.sid),
            ];
            let args = [
                record.sid.clone(),
                record.sub.clone(),
                record.started.as_micros().to_string(),
                record.renewed.as_secs().to_string(),
                record.binding.label().to_owned(),
                record.until.as_secs().to_string(),
                record.label.clone().unwrap_or_default(),
                record.network.clone().unwrap_or_default(),
            ];
            writer
                .call(|mut c| {
                    let mut inv = DEVICE.prepare_invoke();
                    for k in &keys {
                        inv.key(k);
                    }
                    for a in &args {
                        inv.arg(a);
                    }
                    async move { inv.invoke_async::<i64>(&mut c).await }
                })
                .await
                .map(drop)
                .map_err(registry_error)
        })
    }

    fn remove<'a>(
        &'a self,
        sub: &'a str,
        sid: &'a str,
        _now: UnixTime,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            let writer = &self.shared.writer;
            let keys = [writer.keys.devices(sub), writer.keys.device(sid)];
            writer
                .call(|mut c| {
                    let mut inv = FORGET.prepare_invoke();
                    inv.key(&keys[0]).key(&keys[1]).arg(sid).arg(sub);
                    async move { inv.invoke_async::<i64>(&mut c).await }
                })
                .await
                .map(drop)
                .map_err(registry_error)
        })
    }

    fn records_of<'a>(
        &'a self,
        sub: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<SessionRecord>, RegistryError>> {
        Box::pin(async move {
            let writer = &self.shared.writer;
            let index = writer.keys.devices(sub);
            let after = now.as_secs().saturating_add(1);
            let sids: Vec<String> = writer
                .call(|mut c| {
                    let index = index.clone();
                    async move {
                        redis::cmd("ZRANGEBYSCORE")
                            .arg(&index)
                            .arg(after)
                            .arg("+inf")
                            .query_async(&mut c)
                            .await
                    }
                })
                .await
                .map_err(registry_error)?;
            if sids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for sid in &sids {
                pipe.cmd("HGETALL").arg(writer.keys.device(sid));
            }
            let rows: Vec<Vec<(String, String)>> = writer
                .call(|mut c| {
                    let pipe = pipe.clone();
                    async move { pipe.query_async(&mut c).await }
                })
                .await
                .map_err(registry_error)?;
            let mut out = Vec::with_capacity(rows.len());
            for (sid, fields) in sids.iter().zip(rows) {
                if fields.is_empty() {
                    continue; // expired since the index was read
                }
                match decode(&fields) {
                    Some(r) if r.sub == sub && r.sid == *sid && r.until > now => out.push(r),
                    Some(_) => {}
                    None => tracing::error!(
                        key = %writer.keys.device(sid),
                        "a session record this version cannot read was set aside"
                    ),
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn records_decode_strictly() {
        let good = [
            ("sid", "s1"),
            ("sub", "alice"),
            ("started_us", "100000000"),
            ("renewed", "200"),
            ("bound", "dpop"),
            ("until", "900"),
            ("label", "Phone"),
        ];
        let r = decode(&fields(&good)).unwrap();
        assert_eq!(r.binding, Binding::Dpop);
        assert_eq!(r.label.as_deref(), Some("Phone"));
        assert_eq!(r.network, None);
        for (drop, bad) in [
            ("bound", ("bound", "tpm")),
            ("until", ("until", "-1")),
            ("sid", ("sid", "")),
            ("started_us", ("started_us", "x")),
        ] {
            let mut f: Vec<_> = good.iter().filter(|(k, _)| *k != drop).copied().collect();
            f.push(bad);
            assert!(decode(&fields(&f)).is_none(), "{bad:?}");
        }
        assert!(decode(&fields(&good[1..])).is_none());
    }
}
