//! Key rings: the set of keys a service opens tokens with, one of them active for sealing.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::key::{check_kid, JwkRepr, Key};
use crate::names::Enc;
use crate::time::UnixTime;

mod tokens;

/// The environment variable [`KeyRing::from_env`] reads.
pub const DEFAULT_KEYS_ENV: &str = "JWE_SESSION_KEYS";

/// A set of keys: one active key seals, every key opens.
///
/// Loaded from a JWK Set (RFC 7517): `{"keys":[{"kty":"oct","kid":"2026-11","k":"..."}]}`.
/// The active key is the one named by `active_kid` (a member of the set, or an argument), or
/// else the first key. A ring cannot exist without an active key that may seal, so there is
/// no `Default`.
///
/// Rotation is a config change: put the new key first (or name it `active_kid`), keep the old
/// ones until every token they sealed is past its longest lifetime, then drop them. Dropping
/// a key invalidates every token it sealed.
///
/// # Scheduled activation
///
/// On a fleet, every instance must be able to open a key's tokens before any instance seals
/// with it. So a key is first *staged* (in the set, not active) everywhere, then activated
/// everywhere at once: a key whose JWK has `"seals_from": T` (seconds since the epoch) seals
/// from `T` on, by each instance's own clock — no second deploy, no signal. The key that
/// seals at a moment `now` is the scheduled key with the latest `seals_from <= now`, or,
/// before any, the named active key. Until its moment a scheduled key only opens, and a
/// token it sealed (on an instance whose clock is ahead) is not re-sealed back under the
/// older key. `seals_from` and `sealed_until` (a record of when a key stopped sealing) are
/// members of this crate's own; other JOSE implementations ignore them (RFC 7517 §4).
///
/// ```
/// use jwe_session_core::{KeyRing, UnixTime};
///
/// let ring = KeyRing::from_jwks(r#"{"keys":[
///     {"kty":"oct","kid":"2026-11","k":"qmXz6Qh2Vb0Dk1SWkq1X4Pj9Lw8Rbs0Y7Ucv3T2aHfE"},
///     {"kty":"oct","kid":"2026-12","k":"N2Vb0Dk1SWkq1X4Pj9Lw8Rbs0Y7Ucv3T2aHfEqmXz6Q","seals_from":1796083200}
/// ],"active_kid":"2026-11"}"#)?;
/// assert_eq!(ring.active_at(UnixTime::from_secs(1_796_083_199)).kid(), "2026-11");
/// assert_eq!(ring.active_at(UnixTime::from_secs(1_796_083_200)).kid(), "2026-12");
/// # Ok::<(), jwe_session_core::KeyError>(())
/// ```
///
/// ```
/// use jwe_session_core::KeyRing;
///
/// let ring = KeyRing::from_jwks(r#"{"keys":[
///     {"kty":"oct","kid":"2026-12","k":"qmXz6Qh2Vb0Dk1SWkq1X4Pj9Lw8Rbs0Y7Ucv3T2aHfE"},
///     {"kty":"oct","kid":"2026-11","k":"N2Vb0Dk1SWkq1X4Pj9Lw8Rbs0Y7Ucv3T2aHfEqmXz6Q","key_ops":["decrypt"]}
/// ]}"#)?;
/// assert_eq!(ring.active().kid(), "2026-12");
/// assert!(!format!("{ring:?}").contains("qmXz6Qh2"));
/// # Ok::<(), jwe_session_core::KeyError>(())
/// ```
pub struct KeyRing {
    keys: Box<[Key]>,
    /// The named active key: the one that seals before any scheduled key's moment.
    active: usize,
    /// Scheduled keys, `(seals_from, index)`, earliest first, no two at one moment.
    schedule: Box<[(UnixTime, usize)]>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active().kid())
            .field("named_active", &self.named_active().kid())
            .field("keys", &self.keys)
            .finish()
    }
}

impl KeyRing {
    /// A ring of the given keys; the active one is `active_kid`, or the first key, until a
    /// key's [`seals_from`](Key::seals_from) moment (see [Scheduled
    /// activation](#scheduled-activation)).
    ///
    /// # Errors
    /// [`KeyError::EmptySet`], [`KeyError::DuplicateKid`], [`KeyError::ActiveKidMissing`],
    /// [`KeyError::ActiveKidDecryptOnly`], [`KeyError::ScheduledDecryptOnly`],
    /// [`KeyError::ScheduleConflict`].
    pub fn new(keys: Vec<Key>, active_kid: Option<&str>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::EmptySet);
        }
        let mut seen = HashSet::with_capacity(keys.len());
        for k in &keys {
            if !seen.insert(k.kid()) {
                return Err(KeyError::DuplicateKid {
                    kid: k.kid().to_owned(),
                });
            }
        }
        let active = match active_kid {
            None => 0,
            Some(kid) => keys.iter().position(|k| k.kid() == kid).ok_or_else(|| {
                KeyError::ActiveKidMissing {
                    kid: kid.to_owned(),
                }
            })?,
        };
        if !keys[active].can_seal() {
            return Err(KeyError::ActiveKidDecryptOnly {
                kid: keys[active].kid().to_owned(),
            });
        }
        let mut schedule = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(at) = k.seals_from() {
                if !k.can_seal() {
                    return Err(KeyError::ScheduledDecryptOnly {
                        kid: k.kid().to_owned(),
                    });
                }
                schedule.push((at, i));
            }
        }
        schedule.sort_unstable();
        if let Some(w) = schedule.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(KeyError::ScheduleConflict {
                first: keys[w[0].1].kid().to_owned(),
                second: keys[w[1].1].kid().to_owned(),
                at: w[0].0.as_secs(),
            });
        }
        // A token of a key is left alone while that key seals or is still to seal, which
        // is always up to one moment: the named key until the first scheduled one, a
        // scheduled key until the next one (for ever, the last); every other key never.
        let mut keys = keys;
        let forever = UnixTime::from_secs(u64::MAX);
        keys[active].keep_until = schedule.first().map_or(forever, |&(at, _)| at);
        for (n, &(_, i)) in schedule.iter().enumerate() {
            let until = schedule.get(n + 1).map_or(forever, |&(at, _)| at);
            keys[i].keep_until = keys[i].keep_until.max(until);
        }
        Ok(Self {
            keys: keys.into_boxed_slice(),
            active,
            schedule: schedule.into_boxed_slice(),
        })
    }

    /// The ring's keys, to build another ring from (keys are not `Clone`, by design).
    #[must_use]
    pub fn into_keys(self) -> Vec<Key> {
        self.keys.into_vec()
    }

    /// A ring with one fresh random A256GCM key, for demos and tests. Tokens it seals die
    /// with the process.
    #[must_use]
    pub fn generate() -> Self {
        let mut suffix = [0u8; 4];
        OsRng.fill_bytes(&mut suffix);
        let kid = format!("generated-{:08x}", u32::from_be_bytes(suffix));
        // The kid is well-formed by construction and generation does not otherwise fail.
        match Key::generate(&kid, Enc::A256Gcm).and_then(|k| Self::new(vec![k], None)) {
            Ok(ring) => ring,
            Err(e) => unreachable!("generated key rejected: {e}"),
        }
    }

    /// Parses a JWK Set. A top-level `"active_kid"` member, if present, names the active key.
    ///
    /// # Errors
    /// Any [`KeyError`]: malformed JSON, a bad key, or a ring rule broken.
    pub fn from_jwks(json: &str) -> Result<Self, KeyError> {
        let repr: JwkSetRepr = KeyError::parse_set(json)?;
        repr.build(None)
    }

    /// Parses a JWK Set with the active key named here (overriding any `active_kid` member).
    ///
    /// # Errors
    /// As [`from_jwks`](Self::from_jwks).
    pub fn from_jwks_with_active(json: &str, active_kid: &str) -> Result<Self, KeyError> {
        let repr: JwkSetRepr = KeyError::parse_set(json)?;
        repr.build(Some(active_kid))
    }

    /// Reads a JWK Set from a file. On Unix a file readable by group or others is loaded
    /// with a warning: key files should be mode 0600.
    ///
    /// # Errors
    /// [`KeyError::Io`] if the file cannot be read, else as [`from_jwks`](Self::from_jwks).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        Self::from_file_contents(path, &Self::read_file(path)?)
    }

    /// A key file's bytes, in zeroizing memory.
    pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|source| KeyError::Io {
                path: path.to_owned(),
                source,
            })
    }

    /// The ring in `bytes`, read from `path` (named in errors and in the mode warning).
    pub(crate) fn from_file_contents(path: &Path, bytes: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        "key file is readable by group or others; chmod 600 it"
                    );
                }
            }
        }
        Self::from_jwks(text)
    }

    /// Reads a JWK Set from the environment variable `JWE_SESSION_KEYS`.
    ///
    /// # Errors
    /// [`KeyError::EnvMissing`], [`KeyError::EnvNotUnicode`], else as
    /// [`from_jwks`](Self::from_jwks).
    pub fn from_env() -> Result<Self, KeyError> {
        Self::from_env_var(DEFAULT_KEYS_ENV)
    }

    /// Reads a JWK Set from the named environment variable.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_env_var(var: &str) -> Result<Self, KeyError> {
        let value = match std::env::var(var) {
            Ok(v) => Zeroizing::new(v),
            Err(std::env::VarError::NotPresent) => {
                return Err(KeyError::EnvMissing {
                    var: var.to_owned(),
                })
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(KeyError::EnvNotUnicode {
                    var: var.to_owned(),
                })
            }
        };
        Self::from_jwks(&value)
    }

    /// The key that seals now, by the system clock. Code with a [`Clock`](crate::Clock)
    /// uses [`active_at`](Self::active_at).
    #[must_use]
    pub fn active(&self) -> &Key {
        if self.schedule.is_empty() {
            return &self.keys[self.active];
        }
        self.active_at(UnixTime::now())
    }

    /// The key that seals at `now`: the scheduled key with the latest `seals_from <= now`,
    /// or else the named active key.
    #[must_use]
    pub fn active_at(&self, now: UnixTime) -> &Key {
        let started = self.schedule.partition_point(|(at, _)| *at <= now);
        let i = match started.checked_sub(1) {
            Some(last) => self.schedule[last].1,
            None => self.active,
        };
        &self.keys[i]
    }

    /// The key named active (`active_kid`, or the first key): the one that seals before
    /// any scheduled key's moment.
    #[must_use]
    pub fn named_active(&self) -> &Key {
        &self.keys[self.active]
    }

    /// The scheduled keys and their moments (`seals_from`), earliest first.
    pub fn schedule(&self) -> impl Iterator<Item = (UnixTime, &Key)> + '_ {
        self.schedule.iter().map(|&(at, i)| (at, &self.keys[i]))
    }

    /// Whether a token sealed under `kid` should be re-sealed under the key active at
    /// `now`: true for every key of the ring except the active one and keys scheduled to
    /// seal later (a token from an instance whose clock already passed the moment is not
    /// taken back to the older key). False for a kid the ring does not have. A token just
    /// opened answers the same without the lookup: [`Opened::needs_reseal_at`].
    ///
    /// [`Opened::needs_reseal_at`]: crate::Opened::needs_reseal_at
    #[must_use]
    pub fn needs_reseal(&self, kid: &str, now: UnixTime) -> bool {
        self.get(kid).is_some_and(|key| now >= key.keep_until)
    }

    /// All keys, in the order given.
    #[must_use]
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The key with this kid, if any.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// Whether `kid` names the key that seals now (by the system clock).
    #[must_use]
    pub fn is_active(&self, kid: &str) -> bool {
        self.active().kid() == kid
    }

    /// The ring as a JWK Set **with its secrets**, the named active key first and named in
    /// `active_kid`, schedule members kept. Only for writing a key file.
    #[must_use]
    pub fn to_jwks_secret(&self) -> Zeroizing<String> {
        let others = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.active);
        let jwks: Vec<Zeroizing<String>> = std::iter::once(self.named_active())
            .chain(others.map(|(_, k)| k))
            .map(Key::to_jwk_secret)
            .collect();
        let active = serde_json::Value::from(self.named_active().kid()).to_string();
        // Sized up front so that no reallocation leaves a copy in freed memory.
        let len = jwks.iter().map(|j| j.len() + 4).sum::<usize>() + active.len() + 32;
        let mut out = Zeroizing::new(String::with_capacity(len));
        out.push_str("{\"keys\":[\n  ");
        for (i, jwk) in jwks.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n  ");
            }
            out.push_str(jwk);
        }
        out.push_str("\n],\n\"active_kid\":");
        out.push_str(&active);
        out.push_str("}\n");
        out
    }
}

#[derive(Deserialize)]
struct JwkSetRepr {
    keys: Vec<JwkRepr>,
    #[serde(default)]
    active_kid: Option<String>,
}

impl JwkSetRepr {
    fn build(self, active_override: Option<&str>) -> Result<KeyRing, KeyError> {
        let active = active_override.map(str::to_owned).or(self.active_kid);
        if let Some(kid) = &active {
            check_kid(kid)?;
        }
        let keys = self
            .keys
            .into_iter()
            .map(Key::from_repr)
            .collect::<Result<Vec<_>, _>>()?;
        KeyRing::new(keys, active.as_deref())
    }
}

/// What a key set that does not deserialize reports, instead of serde's message.
const NOT_A_JWK_SET: &str = "key set is not a JWK Set of the expected shape \
     {\"keys\":[{\"kty\":\"oct\",\"kid\":\"...\",\"k\":\"...\"}]} (values are not shown: they may be secret)";

/// Deserializes from a JWK Set object (with optional `active_kid`) or from a string holding
/// one, so a ring can sit in an application's config file or in an environment variable
/// that `config`/`figment` read.
impl<'de> Deserialize<'de> for KeyRing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RingVisitor;
        impl<'de> Visitor<'de> for RingVisitor {
            type Value = KeyRing;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JWK Set object or a string holding one")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyRing, E> {
                KeyRing::from_jwks(v).map_err(E::custom)
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyRing, E> {
                let v = Zeroizing::new(v);
                KeyRing::from_jwks(&v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeyRing, A::Error> {
                // serde's own messages quote the offending value ("invalid type: string
                // \"<the key>\""), and any value here may be a secret: keep only the fact
                // (the format adds the position).
                let repr = JwkSetRepr::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map_err(|_| de::Error::custom(NOT_A_JWK_SET))?;
                repr.build(None).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(RingVisitor)
    }
}

/// A shared, swappable key ring: clones share one ring, readers never block, and
/// [`replace`](Self::replace) swaps in a new one (rotation from config without a restart).
///
/// ```
/// use jwe_session_core::{KeyRing, KeyRingHandle};
///
/// let handle = KeyRingHandle::new(KeyRing::generate());
/// let before = handle.load().active().kid().to_owned();
/// handle.replace(KeyRing::generate());
/// assert_ne!(handle.load().active().kid(), before);
/// ```
#[derive(Clone)]
pub struct KeyRingHandle(pub(crate) Arc<ArcSwap<KeyRing>>);

impl fmt::Debug for KeyRingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyRingHandle")
            .field(&**self.0.load())
            .finish()
    }
}

impl From<KeyRing> for KeyRingHandle {
    fn from(ring: KeyRing) -> Self {
        Self::new(ring)
    }
}

impl KeyRingHandle {
    /// A handle holding `ring`.
    #[must_use]
    pub fn new(ring: KeyRing) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(ring)))
    }

    /// The current ring. Cheap (no lock); hold it for one request, not forever.
    #[must_use]
    pub fn load(&self) -> Arc<KeyRing> {
        self.0.load_full()
    }

    /// Loads a JWK Set from `path` and swaps it in (e.g. on SIGHUP after a rotation). A file
    /// that does not load changes nothing: the current ring stays.
    ///
    /// # Errors
    /// As [`KeyRing::from_file`].
    pub fn reload_from_file(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let ring = KeyRing::from_file(path)?;
        self.replace(ring);
        Ok(())
    }

    /// Swaps in a new ring. Requests in flight finish with the ring they loaded. Seal
    /// counts carry over for keys whose kid is in both rings, so the IV budget is not
    /// reset by reloading config.
    pub fn replace(&self, ring: KeyRing) {
        let old = self.0.load();
        for key in ring.keys() {
            if let Some(prev) = old.get(key.kid()) {
                key.inherit_seal_count(prev);
            }
        }
        let scheduled: Vec<String> = ring
            .schedule()
            .filter(|(at, _)| *at > UnixTime::now())
            .map(|(at, k)| format!("{} from {}", k.kid(), at.as_secs()))
            .collect();
        tracing::info!(
            active = ring.active().kid(),
            keys = ring.keys().len(),
            scheduled = ?scheduled,
            "key ring replaced"
        );
        self.0.store(Arc::new(ring));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    pub(crate) fn k(seed: u8) -> String {
        let bytes: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(seed) | 0x80)
            .collect();
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn jwk(kid: &str, seed: u8, extra: &str) -> String {
        format!(r#"{{"kty":"oct","kid":"{kid}","k":"{}"{extra}}}"#, k(seed))
    }

    #[test]
    fn first_key_is_active_unless_named() {
        let set = format!(r#"{{"keys":[{},{}]}}"#, jwk("a", 1, ""), jwk("b", 2, ""));
        assert_eq!(KeyRing::from_jwks(&set).unwrap().active().kid(), "a");
        assert_eq!(
            KeyRing::from_jwks_with_active(&set, "b")
                .unwrap()
                .active()
                .kid(),
            "b"
        );
        let named = format!(
            r#"{{"keys":[{},{}],"active_kid":"b"}}"#,
            jwk("a", 1, ""),
            jwk("b", 2, "")
        );
        let ring = KeyRing::from_jwks(&named).unwrap();
        assert_eq!(ring.active().kid(), "b");
        assert!(ring.is_active("b"));
        assert!(ring.get("a").is_some());
        assert!(ring.get("c").is_none());
    }

    #[test]
    fn ring_rules_are_enforced() {
        assert!(matches!(
            KeyRing::from_jwks(r#"{"keys":[]}"#),
            Err(KeyError::EmptySet)
        ));
        let dup = format!(r#"{{"keys":[{},{}]}}"#, jwk("a", 1, ""), jwk("a", 2, ""));
        assert!(
            matches!(KeyRing::from_jwks(&dup), Err(KeyError::DuplicateKid { kid }) if kid == "a")
        );
        let set = format!(r#"{{"keys":[{}]}}"#, jwk("a", 1, ""));
        assert!(matches!(
            KeyRing::from_jwks_with_active(&set, "zz"),
            Err(KeyError::ActiveKidMissing { .. })
        ));
        let dec = format!(
            r#"{{"keys":[{},{}]}}"#,
            jwk("old", 1, r#","key_ops":["decrypt"]"#),
            jwk("new", 2, "")
        );
        assert!(matches!(
            KeyRing::from_jwks(&dec),
            Err(KeyError::ActiveKidDecryptOnly { .. })
        ));
        let ring = KeyRing::from_jwks_with_active(&dec, "new").unwrap();
        assert!(!ring.get("old").unwrap().can_seal());
        // A single JWK where a set belongs says so (and how to make a set).
        assert!(matches!(
            KeyRing::from_jwks(r#"{"kty":"oct"}"#),
            Err(KeyError::NotASet)
        ));
        assert!(matches!(
            KeyRing::from_jwks("{"),
            Err(KeyError::Json { .. })
        ));
        let positional = format!(r#"[[{}]]"#, jwk("a", 1, ""));
        assert!(matches!(
            KeyRing::from_jwks(&positional),
            Err(KeyError::Json { .. })
        ));
    }

    #[test]
    fn secrets_round_trip_through_export() {
        let set = format!(
            r#"{{"keys":[{},{}],"active_kid":"b"}}"#,
            jwk("a", 1, r#","key_ops":["decrypt"]"#),
            jwk("b", 2, "")
        );
        let ring = KeyRing::from_jwks(&set).unwrap();
        let back = KeyRing::from_jwks(&ring.to_jwks_secret()).unwrap();
        assert_eq!(back.active().kid(), "b");
        assert_eq!(back.keys()[0].kid(), "b");
        assert!(!back.get("a").unwrap().can_seal());
    }

    #[test]
    fn serde_accepts_object_or_string() {
        #[derive(Deserialize)]
        struct AppConfig {
            keys: KeyRing,
        }
        let set = format!(r#"{{"keys":[{}]}}"#, jwk("a", 1, ""));
        let obj: AppConfig = serde_json::from_str(&format!(r#"{{"keys":{set}}}"#)).unwrap();
        assert_eq!(obj.keys.active().kid(), "a");
        let s: AppConfig =
            serde_json::from_str(&format!(r#"{{"keys":{}}}"#, serde_json::Value::from(set)))
                .unwrap();
        assert_eq!(s.keys.active().kid(), "a");
        let bad = format!(
            r#"{{"keys":{{"keys":[{}]}}}}"#,
            jwk("a", 1, r#","alg":"A128GCM""#)
        );
        let err = serde_json::from_str::<AppConfig>(&bad).err().unwrap();
        assert!(err.to_string().contains("alg"), "{err}");
        assert!(!err.to_string().contains(&k(1)));
    }

    #[test]
    fn loads_from_file_and_env() {
        let dir = std::env::temp_dir().join(format!("jwe-ring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.json");
        std::fs::write(&path, format!(r#"{{"keys":[{}]}}"#, jwk("f", 1, ""))).unwrap();
        assert_eq!(KeyRing::from_file(&path).unwrap().active().kid(), "f");
        let missing = KeyRing::from_file(dir.join("nope.json")).unwrap_err();
        assert!(matches!(missing, KeyError::Io { .. }));
        assert!(std::error::Error::source(&missing).is_some());
        std::fs::remove_dir_all(&dir).unwrap();

        // A variable name no other test uses, so parallel tests do not race on it.
        let var = "JWE_SESSION_CORE_TEST_KEYS_ENV";
        assert!(matches!(
            KeyRing::from_env_var(var),
            Err(KeyError::EnvMissing { .. })
        ));
        std::env::set_var(var, format!(r#"{{"keys":[{}]}}"#, jwk("e", 1, "")));
        assert_eq!(KeyRing::from_env_var(var).unwrap().active().kid(), "e");
        std::env::remove_var(var);
    }

    #[test]
    fn debug_of_ring_and_handle_has_no_key_bytes() {
        let set = format!(r#"{{"keys":[{},{}]}}"#, jwk("a", 1, ""), jwk("b", 2, ""));
        let ring = KeyRing::from_jwks(&set).unwrap();
        let handle = KeyRingHandle::new(KeyRing::from_jwks(&set).unwrap());
        for dbg in [
            format!("{ring:?}"),
            format!("{ring:#?}"),
            format!("{handle:?}"),
        ] {
            assert!(!dbg.contains(&k(1)) && !dbg.contains(&k(2)), "{dbg}");
            assert!(dbg.contains("\"a\"") && dbg.contains("\"b\""), "{dbg}");
        }
    }

    #[test]
    fn reloading_from_a_file_swaps_only_a_good_ring() {
        let dir = std::env::temp_dir().join(format!("jwe-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.json");
        std::fs::write(&path, format!(r#"{{"keys":[{}]}}"#, jwk("a", 1, ""))).unwrap();
        let handle = KeyRingHandle::new(KeyRing::from_file(&path).unwrap());
        std::fs::write(
            &path,
            format!(r#"{{"keys":[{},{}]}}"#, jwk("b", 2, ""), jwk("a", 1, "")),
        )
        .unwrap();
        handle.reload_from_file(&path).unwrap();
        assert_eq!(handle.load().active().kid(), "b");
        std::fs::write(&path, r#"{"keys":[{"kty":"oct","#).unwrap();
        assert!(matches!(
            handle.reload_from_file(&path),
            Err(KeyError::Json { .. })
        ));
        assert_eq!(
            handle.load().active().kid(),
            "b",
            "a bad file changes nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn scheduled(t: u64) -> String {
        format!(
            r#"{{"keys":[{},{}],"active_kid":"old"}}"#,
            jwk("old", 1, ""),
            jwk("new", 2, &format!(r#","seals_from":{t}"#))
        )
    }

    #[test]
    fn a_scheduled_key_seals_from_its_moment_by_the_given_clock() {
        let t = UnixTime::from_secs(1_800_000_000);
        let ring = KeyRing::from_jwks(&scheduled(t.as_secs())).unwrap();
        let before = t.saturating_sub(std::time::Duration::from_secs(1));
        assert_eq!(ring.active_at(before).kid(), "old");
        assert_eq!(ring.active_at(t).kid(), "new");
        assert_eq!(ring.named_active().kid(), "old");
        assert_eq!(ring.get("new").unwrap().seals_from(), Some(t));
        let sched: Vec<_> = ring.schedule().map(|(at, k)| (at, k.kid())).collect();
        assert_eq!(sched, [(t, "new")]);
        // Before T: old tokens stay, new-key tokens (a clock ahead) are not taken back.
        assert!(!ring.needs_reseal("old", before));
        assert!(!ring.needs_reseal("new", before));
        // From T: old tokens move to the new key.
        assert!(ring.needs_reseal("old", t));
        assert!(!ring.needs_reseal("new", t));
        assert!(!ring.needs_reseal("stranger", t));
        // Sealing follows the clock given.
        let opts = crate::TokenOptions::new();
        for (now, kid) in [(before, "old"), (t, "new")] {
            let token = ring.seal_at(&serde_json::json!({}), &opts, now).unwrap();
            assert_eq!(ring.open_bytes(token.as_str(), &opts).unwrap().kid(), kid);
        }
    }

    #[test]
    fn a_scheduled_key_in_the_past_at_load_seals_at_once() {
        let ring = KeyRing::from_jwks(&scheduled(1_000)).unwrap();
        assert_eq!(ring.active().kid(), "new");
        assert!(ring.is_active("new"));
        let opts = crate::TokenOptions::new();
        let token = ring.seal(&serde_json::json!({}), &opts).unwrap();
        let opened = ring.open_bytes(token.as_str(), &opts).unwrap();
        assert_eq!(opened.kid(), "new");
        assert!(!opened.needs_reseal());
        // A far-future one has not started: the named key seals, and tokens of the
        // scheduled key are left as they are.
        let ring = KeyRing::from_jwks(&scheduled(u64::MAX / 2)).unwrap();
        assert_eq!(ring.active().kid(), "old");
        let token = ring.seal_bytes_with_kid("new", b"{}", &opts).unwrap();
        assert!(!ring
            .open_bytes(token.as_str(), &opts)
            .unwrap()
            .needs_reseal());
    }

    #[test]
    fn later_moments_win_and_schedules_round_trip() {
        let set = format!(
            r#"{{"keys":[{},{},{}]}}"#,
            jwk("a", 1, r#","sealed_until":500"#),
            jwk("c", 3, r#","seals_from":3000"#),
            jwk("b", 2, r#","seals_from":2000"#)
        );
        let ring = KeyRing::from_jwks(&set).unwrap();
        let at = |s| ring.active_at(UnixTime::from_secs(s)).kid().to_owned();
        assert_eq!(
            [at(1999), at(2000), at(2999), at(3000)],
            ["a", "b", "b", "c"]
        );
        assert_eq!(
            ring.get("a").unwrap().sealed_until(),
            Some(UnixTime::from_secs(500))
        );
        let back = KeyRing::from_jwks(&ring.to_jwks_secret()).unwrap();
        for k in ring.keys() {
            let b = back.get(k.kid()).unwrap();
            assert_eq!(
                (b.seals_from(), b.sealed_until()),
                (k.seals_from(), k.sealed_until())
            );
        }
        assert_eq!(back.named_active().kid(), "a");
    }

    /// The moment kept per key answers as the rule itself: re-seal unless the key seals at
    /// `now` or is scheduled to seal later. Checked on every second around the moments,
    /// for rings with no schedule, several moments, and a named key that is also scheduled.
    #[test]
    fn the_kept_moment_agrees_with_the_rule() {
        let sets = [
            format!(r#"{{"keys":[{},{}]}}"#, jwk("a", 1, ""), jwk("b", 2, "")),
            format!(
                r#"{{"keys":[{},{},{},{}]}}"#,
                jwk("a", 1, ""),
                jwk("c", 3, r#","seals_from":30"#),
                jwk("b", 2, r#","seals_from":20"#),
                jwk("d", 4, "")
            ),
            format!(
                r#"{{"keys":[{},{}],"active_kid":"a"}}"#,
                jwk("a", 1, r#","seals_from":40"#),
                jwk("b", 2, r#","seals_from":20"#)
            ),
        ];
        for set in &sets {
            let ring = KeyRing::from_jwks(set).unwrap();
            let opts = crate::TokenOptions::new();
            for s in 0..50 {
                let now = UnixTime::from_secs(s);
                for key in ring.keys() {
                    let rule = !std::ptr::eq(key, ring.active_at(now))
                        && key.seals_from().is_none_or(|at| at <= now);
                    assert_eq!(
                        ring.needs_reseal(key.kid(), now),
                        rule,
                        "{} at {s}",
                        key.kid()
                    );
                    if key.can_seal() {
                        let token = ring.seal_bytes_with_kid(key.kid(), b"{}", &opts).unwrap();
                        let opened = ring.open_bytes(token.as_str(), &opts).unwrap();
                        assert_eq!(opened.needs_reseal_at(now), rule);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in [r#""2027-01-01T00:00:00Z""#, "-5", "1.5", "[]", "1e3"] {
            for member in ["seals_from", "sealed_until"] {
                let set = format!(
                    r#"{{"keys":[{},{}]}}"#,
                    jwk("a", 1, ""),
                    jwk("b", 2, &format!(r#","{member}":{bad}"#))
                );
                let err = KeyRing::from_jwks(&set).unwrap_err();
                assert!(
                    matches!(&err, KeyError::BadTime { kid, member: m } if kid == "b" && *m == member),
                    "{member}={bad}: {err:?}"
                );
                assert!(err.to_string().contains(member), "{err}");
            }
        }
        let dec = format!(
            r#"{{"keys":[{},{}]}}"#,
            jwk("a", 1, ""),
            jwk("b", 2, r#","seals_from":5,"key_ops":["decrypt"]"#)
        );
        assert!(matches!(
            KeyRing::from_jwks(&dec),
            Err(KeyError::ScheduledDecryptOnly { kid }) if kid == "b"
        ));
        let same = format!(
            r#"{{"keys":[{},{},{}]}}"#,
            jwk("a", 1, ""),
            jwk("b", 2, r#","seals_from":5"#),
            jwk("c", 3, r#","seals_from":5"#)
        );
        assert!(matches!(
            KeyRing::from_jwks(&same),
            Err(KeyError::ScheduleConflict { at: 5, .. })
        ));
    }

    #[test]
    fn replacing_a_ring_keeps_seal_counts() {
        let set = format!(r#"{{"keys":[{}]}}"#, jwk("a", 1, ""));
        let handle = KeyRingHandle::new(KeyRing::from_jwks(&set).unwrap());
        let old = handle.load();
        old.active().take_seal().unwrap();
        old.active().take_seal().unwrap();
        handle.replace(KeyRing::from_jwks(&set).unwrap());
        assert_eq!(handle.load().active().seal_count(), 2);
        // The reader that loaded before the swap still holds a working ring.
        assert_eq!(old.active().kid(), "a");
    }
}
