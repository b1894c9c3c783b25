//! The data layout in Redis (format 2): key names, the scripts that write them, and the
//! encoding of revocations in the replication log. The crate docs describe it for operators.

use jwe_session_core::{Revocation, UnixMicros, UnixTime};
use redis::Value;

/// Records a batch of revocations into their point keys and the log, atomically. What it
/// takes and returns is written at the top of `lua/revoke.lua`.
pub(crate) const REVOKE_LUA: &str = include_str!("lua/revoke.lua");

/// The id of the last entry ever added to the log. What it takes and returns is written at
/// the top of `lua/last_id.lua`.
pub(crate) const LAST_ID_LUA: &str = include_str!("lua/last_id.lua");

/// A log entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StreamId(u64, u64);

impl StreamId {
    pub(crate) fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }

    /// When Redis added the entry, by Redis's clock (the id's first part, in ms).
    pub(crate) fn time(self) -> UnixTime {
        UnixTime::from_secs(self.0 / 1000)
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Raises the stored window to this instance's, never lowers it. What it takes and returns
/// is written at the top of `lua/window.lua`.
pub(crate) const WINDOW_LUA: &str = include_str!("lua/window.lua");

/// The most revocations one script call carries (Lua's `unpack` limit stays far off).
pub(crate) const BATCH: usize = 500;

/// Key names under one prefix, all in one hash slot (`{prefix}`), so a script may touch
/// them together on Redis Cluster.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    base: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            base: format!("{{{prefix}}}"),
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn log(&self) -> String {
        format!("{}log", self.base)
    }

    pub(crate) fn cutoffs(&self) -> String {
        format!("{}cutoffs", self.base)
    }

    pub(crate) fn window(&self) -> String {
        format!("{}window", self.base)
    }

    pub(crate) fn epoch(&self) -> String {
        format!("{}epoch", self.base)
    }

    pub(crate) fn sid(&self, sid: &str) -> String {
        format!("{}sid:{sid}", self.base)
    }

    pub(crate) fn sub(&self, sub: &str) -> String {
        format!("{}sub:{sub}", self.base)
    }

    /// A subject's session registry index (sorted set of sids by `until`).
    pub(crate) fn devices(&self, sub: &str) -> String {
        format!("{}devices:{sub}", self.base)
    }

    /// A session's registry record (hash).
    pub(crate) fn device(&self, sid: &str) -> String {
        format!("{}device:{sid}", self.base)
    }

    pub(crate) fn all(&self) -> String {
        format!("{}all", self.base)
    }

    pub(crate) fn refresh(&self, sub: &str) -> String {
        format!("{}refresh:{sub}", self.base)
    }

    /// The point key a revocation is merged into.
    pub(crate) fn point(&self, r: &Revocation) -> String {
        match r {
            Revocation::Session { sid, .. } => self.sid(sid),
            Revocation::Subject { sub, .. } => self.sub(sub),
            Revocation::Tokens { sub, .. } => self.refresh(sub),
            Revocation::All { .. } => self.all(),
        }
    }

    /// A point key and its value back into a revocation; `exat` is its `EXPIRETIME`
    /// (-1 none, -2 missing): a key without expiry is not ours. A key that exists but
    /// cannot be read is set aside with an error (the policy in the crate docs); one that
    /// expired meanwhile is just gone.
    /// The revocations in a reply to [`points_query`] for `keys`; a key that holds nothing
    /// is skipped, one this version cannot read is set aside with an error.
    pub(crate) fn decode_points(
        &self,
        keys: &[String],
        rows: Vec<(Option<u64>, i64)>,
    ) -> Vec<Revocation> {
        keys.iter()
            .zip(rows)
            .filter_map(|(k, (v, exat))| self.decode_point(k, v, exat))
            .collect()
    }

    pub(crate) fn decode_point(
        &self,
        key: &str,
        value: Option<u64>,
        exat: i64,
    ) -> Option<Revocation> {
        let value = value?;
        let r = self.decode_point_value(key, value, exat);
        if r.is_none() && exat != -2 {
            tracing::error!(
                key,
                "a revocation key this version cannot read is set aside"
            );
        }
        r
    }

    fn decode_point_value(&self, key: &str, value: u64, exat: i64) -> Option<Revocation> {
        let until = UnixTime::from_secs(u64::try_from(exat).ok()?);
        let name = key.strip_prefix(self.base.as_str())?;
        let r = if let Some(sid) = name.strip_prefix("sid:") {
            Revocation::Session {
                sid: sid.to_owned(),
                until,
            }
        } else if let Some(sub) = name.strip_prefix("sub:") {
            Revocation::Subject {
                sub: sub.to_owned(),
                at: UnixMicros::from_micros(value),
                until,
            }
        } else if let Some(sub) = name.strip_prefix("refresh:") {
            Revocation::Tokens {
                sub: sub.to_owned(),
                at: UnixMicros::from_micros(value),
                until,
            }
        } else if name == "all" {
            Revocation::All {
                at: UnixMicros::from_micros(value),
                until,
            }
        } else {
            return None;
        };
        r.check().is_ok().then_some(r)
    }
}

/// `GET` and `EXPIRETIME` of each key, in one pipeline: what a point key holds and until
/// when. Its reply goes to [`Keys::decode_points`].
pub(crate) fn points_query(keys: &[String]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.get(k).cmd("EXPIRETIME").arg(k);
    }
    pipe
}

/// One revocation's arguments to [`REVOKE_LUA`]: kind, value, expiry, log encoding (for
/// a session its sid: the script stamps it).
pub(crate) fn script_args(r: &Revocation) -> [String; 4] {
    let (kind, value, enc) = match r {
        Revocation::Session { sid, .. } => ("s", 1, sid.clone()),
        Revocation::Subject { at, .. }
        | Revocation::All { at, .. }
        | Revocation::Tokens { at, .. } => ("c", at.as_micros(), encode(r, UnixTime::EPOCH)),
    };
    [
        kind.to_owned(),
        value.to_string(),
        r.until().as_secs().to_string(),
        enc,
    ]
}

/// A revocation in the log: `s <until> <made> <sid>`, `u <at µs> <until> <sub>`,
/// `a <at µs> <until>`, `f <at µs> <until> <sub>` (claims refresh); ids go last because
/// they may contain spaces. `made` is when Redis took a session revocation, by Redis's
/// clock (the write script stamps it). Readers go by the entry's id instead, which Redis
/// always stamps itself (so no writer's clock, of this version or an older one, can
/// shorten how long they keep it); `made` stays for readers of earlier versions.
pub(crate) fn encode(r: &Revocation, made: UnixTime) -> String {
    match r {
        Revocation::Session { sid, until } => format!("s {until} {made} {sid}"),
        Revocation::Subject { sub, at, until } => format!("u {} {until} {sub}", at.as_micros()),
        Revocation::All { at, until } => format!("a {} {until}", at.as_micros()),
        Revocation::Tokens { sub, at, until } => {
            format!("f {} {until} {sub}", at.as_micros())
        }
    }
}

/// A log entry's revocation and, for a session, when it was made.
pub(crate) fn decode(msg: &[u8]) -> Option<(Revocation, Option<UnixTime>)> {
    let msg = std::str::from_utf8(msg).ok()?;
    let secs = |s: &str| s.parse::<u64>().ok().map(UnixTime::from_secs);
    let micros = |s: &str| s.parse::<u64>().ok().map(UnixMicros::from_micros);
    let (kind, rest) = msg.split_once(' ')?;
    let decoded = match kind {
        "s" => {
            let (until, rest) = rest.split_once(' ')?;
            let (made, sid) = rest.split_once(' ')?;
            let r = Revocation::Session {
                sid: sid.to_owned(),
                until: secs(until)?,
            };
            (r, Some(secs(made)?))
        }
        "u" | "f" => {
            let (at, rest) = rest.split_once(' ')?;
            let (until, sub) = rest.split_once(' ')?;
            let (sub, at, until) = (sub.to_owned(), micros(at)?, secs(until)?);
            let r = if kind == "u" {
                Revocation::Subject { sub, at, until }
            } else {
                Revocation::Tokens { sub, at, until }
            };
            (r, None)
        }
        "a" => {
            let (at, until) = rest.split_once(' ')?;
            let r = Revocation::All {
                at: micros(at)?,
                until: secs(until)?,
            };
            (r, None)
        }
        _ => return None,
    };
    decoded.0.check().is_ok().then_some(decoded)
}

/// Entries of an `XRANGE` reply, or of the one stream of an `XREAD` reply: `(id, values)`
/// with the values of every field (each field of our entries is one revocation).
pub(crate) fn entries(reply: Value) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for entry in items(reply) {
        let mut parts = items(entry).into_iter();
        let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(id) = bytes(id).and_then(|b| String::from_utf8(b).ok()) else {
            continue;
        };
        let values = items(fields)
            .into_iter()
            .skip(1)
            .step_by(2)
            .filter_map(bytes)
            .collect();
        out.push((id, values));
    }
    out
}

/// The entries of the single stream an `XREAD` reply holds (nothing on a timeout).
pub(crate) fn read_entries(reply: Value) -> Vec<(String, Vec<Vec<u8>>)> {
    match reply {
        // RESP3: a map from stream name to entries.
        Value::Map(pairs) => pairs.into_iter().flat_map(|(_, v)| entries(v)).collect(),
        // RESP2: [[name, entries]].
        other => items(other)
            .into_iter()
            .flat_map(|stream| items(stream).into_iter().nth(1).map(entries))
            .flatten()
            .collect(),
    }
}

fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_encoding_round_trips() {
        let t = UnixTime::from_secs;
        let m = UnixMicros::from_micros(1_800_000_000_123_456);
        for r in [
            Revocation::Session {
                sid: "a b".into(),
                until: t(9),
            },
            Revocation::Subject {
                sub: "alice smith".into(),
                at: m,
                until: t(9),
            },
            Revocation::All { at: m, until: t(9) },
            Revocation::Tokens {
                sub: "alice smith".into(),
                at: m,
                until: t(9),
            },
        ] {
            let (back, made) = decode(encode(&r, t(5)).as_bytes()).unwrap();
            assert_eq!(back, r);
            assert_eq!(made.is_some(), matches!(r, Revocation::Session { .. }));
        }
        for bad in [
            "", "s", "s 1 2", "s x 2 y", "s 9 2 ", "u 1 2", "u 1 2 ", "a 1", "z 1 2", "a x 2",
            "f 1 2", "f 1 2 ", "f x 2 u",
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(decode(b"s 9 2 \xff"), None, "not UTF-8");
        // Out of range (issue 25, item 7): refused on reading, never kept to fail a write.
        let max = u64::MAX;
        for bad in [
            format!("a 1 {max}"),
            format!("s {max} 2 x"),
            format!("u {max} 9 x"),
            format!("f 1 {} x", Revocation::LATEST.as_secs() + 1),
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
        let last = format!("a 1 {}", Revocation::LATEST.as_secs());
        assert!(decode(last.as_bytes()).is_some(), "the year 9999 is fine");
    }

    #[test]
    fn point_keys_decode() {
        let k = Keys::new("p:");
        let t = UnixTime::from_secs;
        assert_eq!(k.sid("x"), "{p:}sid:x");
        assert_eq!(
            k.decode_point("{p:}sid:x", Some(1), 9),
            Some(Revocation::Session {
                sid: "x".into(),
                until: t(9)
            })
        );
        let m = 1_800_000_000_123_456;
        assert_eq!(k.refresh("u"), "{p:}refresh:u");
        assert_eq!(
            k.decode_point("{p:}refresh:u", Some(m), 9),
            Some(Revocation::Tokens {
                sub: "u".into(),
                at: UnixMicros::from_micros(m),
                until: t(9)
            })
        );
        assert_eq!(
            k.decode_point("{p:}refresh:", Some(m), 9),
            None,
            "empty sub"
        );
        assert_eq!(
            k.decode_point("{p:}sub:u", Some(m), 9),
            Some(Revocation::Subject {
                sub: "u".into(),
                at: UnixMicros::from_micros(m),
                until: t(9)
            })
        );
        assert_eq!(
            k.decode_point("{p:}all", Some(3), -1),
            None,
            "a key without expiry is not ours"
        );
        assert_eq!(k.decode_point("{p:}all", None, 9), None);
        assert_eq!(k.decode_point("{q:}all", Some(3), 9), None);
        assert_eq!(k.decode_point("{p:}other", Some(3), 9), None);
        assert_eq!(k.decode_point("{p:}sid:", Some(1), 9), None, "empty id");
        assert_eq!(
            k.decode_point("{p:}sid:x", Some(1), i64::MAX),
            None,
            "expiry out of range"
        );
        assert_eq!(
            k.decode_point("{p:}all", Some(u64::MAX), 9),
            None,
            "cut-off out of range"
        );
    }

    #[test]
    fn stream_ids_order_as_redis_does() {
        let id = |s| StreamId::parse(s).unwrap();
        assert!(id("10-0") < id("10-1"));
        assert!(id("9-99") < id("10-0"));
        assert!(id("0-0") < id("1-0"));
        assert_eq!(id("1796194180028-3").to_string(), "1796194180028-3");
        assert_eq!(
            id("1796194180028-3").time(),
            UnixTime::from_secs(1_796_194_180)
        );
        for bad in ["", "1", "1-", "-1", "a-1", "1-b", "1-2-3"] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stream_replies_parse_in_both_protocols() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let entry = |id: &str, vals: &[&str]| {
            let mut fields = Vec::new();
            for v in vals {
                fields.push(bulk("r"));
                fields.push(bulk(v));
            }
            Value::Array(vec![bulk(id), Value::Array(fields)])
        };
        let range = Value::Array(vec![entry("5-0", &["a", "b"]), entry("6-1", &["c"])]);
        let expect = vec![
            ("5-0".to_owned(), vec![b"a".to_vec(), b"b".to_vec()]),
            ("6-1".to_owned(), vec![b"c".to_vec()]),
        ];
        assert_eq!(entries(range.clone()), expect);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("log"), range.clone()])]);
        assert_eq!(read_entries(resp2), expect);
        let resp3 = Value::Map(vec![(bulk("log"), range)]);
        assert_eq!(read_entries(resp3), expect);
        assert!(read_entries(Value::Nil).is_empty());
    }
}
