//! Tokens this instance opened recently, so that the next request carrying the same token
//! skips decrypting and parsing it.
//!
//! A browser sends the same token on every request until the token is renewed, so the
//! steady path of a session is, by far, a token seen before. The cache maps a token's exact
//! bytes, compared in constant time, to what opening it gave under the ring that opened it.
//! Only the opening is skipped: validation, lifetimes and the revocation check run on every
//! request as before, so a cached token is refused exactly when a freshly opened one would
//! be.

use std::sync::{Arc, PoisonError, RwLock, Weak};

use jwe_session_core::{Claims, KeyRing, Opened};

/// A fixed number of slots, each holding the last token opened that falls into it: no
/// chains to walk, so no input can make a lookup slow, and memory is bounded up front.
pub(crate) struct OpenedCache<T> {
    slots: Box<[RwLock<Option<Entry<T>>>]>,
}

struct Entry<T> {
    /// The ring that opened the token, held weakly: the cache never keeps retired keys
    /// alive, and while this entry exists no later ring can be allocated at the same
    /// address, so pointer equality means the same ring.
    ring: Weak<KeyRing>,
    token: Box<str>,
    opened: Opened<Claims<T>>,
}

impl<T> OpenedCache<T> {
    /// A cache of at least `capacity` slots (a power of two); none at all for 0.
    pub(crate) fn new(capacity: usize) -> Self {
        let n = match capacity {
            0 => 0,
            c => c.next_power_of_two(),
        };
        Self {
            slots: (0..n).map(|_| RwLock::new(None)).collect(),
        }
    }
}

impl<T: Clone> OpenedCache<T> {
    fn slot(&self, token: &str) -> Option<&RwLock<Option<Entry<T>>>> {
        let n = self.slots.len();
        // A token's last characters are its authentication tag's: random for every token
        // sealed here. Anyone can steer other tokens into a chosen slot, but a slot only
        // ever holds a token that opened, and a lookup only ever matches the same bytes.
        let tail = token.as_bytes().last_chunk::<8>()?;
        let h = u64::from_le_bytes(*tail).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.slots.get((h >> 32) as usize & n.checked_sub(1)?)
    }

    /// What opening `token` under `ring` gave, if this cache holds it.
    pub(crate) fn get(&self, ring: &Arc<KeyRing>, token: &str) -> Option<Opened<Claims<T>>> {
        let slot = self.slot(token)?;
        let entry = slot.read().unwrap_or_else(PoisonError::into_inner);
        let e = entry.as_ref()?;
        (std::ptr::eq(e.ring.as_ptr(), Arc::as_ptr(ring)) && same(&e.token, token))
            .then(|| e.opened.clone())
    }

    /// Remembers what opening `token` under `ring` gave, in place of whatever its slot held.
    pub(crate) fn put(&self, ring: &Arc<KeyRing>, token: &str, opened: &Opened<Claims<T>>) {
        let Some(slot) = self.slot(token) else {
            return;
        };
        let entry = Entry {
            ring: Arc::downgrade(ring),
            token: token.into(),
            opened: opened.clone(),
        };
        let evicted = slot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(entry);
        // Dropped after the lock is released.
        drop(evicted);
    }
}

/// Whether two tokens are the same, in a time that depends only on their lengths: a slot
/// holds another user's token, and an early exit would tell a guesser how much of it a
/// guess got right.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwe_session_core::{Key, TokenOptions};

    fn ring(seed: u8) -> Arc<KeyRing> {
        let bytes: [u8; 32] =
            std::array::from_fn(|i| seed.wrapping_mul(131) ^ (i as u8) << 3 ^ 0x85);
        Arc::new(KeyRing::new(vec![Key::from_bytes("k", &bytes).unwrap()], None).unwrap())
    }

    fn opened(ring: &KeyRing, sub: &str) -> (String, Opened<Claims<()>>) {
        let opts = TokenOptions::new();
        let mut c = Claims::new(());
        c.sub = Some(sub.to_owned());
        let token = ring.seal(&c, &opts).unwrap().into_string();
        let o = ring.open::<Claims<()>>(&token, &opts).unwrap();
        (token, o)
    }

    #[test]
    fn a_token_is_served_only_for_its_exact_bytes_and_its_ring() {
        let cache = OpenedCache::<()>::new(64);
        let (r1, r2) = (ring(1), ring(2));
        let (token, o) = opened(&r1, "alice");
        assert!(cache.get(&r1, &token).is_none());
        cache.put(&r1, &token, &o);
        let hit = cache.get(&r1, &token).expect("cached");
        assert_eq!(hit.payload(), o.payload());
        assert_eq!(hit.kid(), o.kid());
        // The same bytes under another ring (a rotation replaced it): not served.
        assert!(cache.get(&r2, &token).is_none());
        // Every single-byte change, the tag included (same slot for most): not served.
        for i in 0..token.len() {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            assert!(cache.get(&r1, &t).is_none(), "byte {i}");
        }
        // Shorter or longer: not served.
        assert!(cache.get(&r1, &token[1..]).is_none());
        assert!(cache.get(&r1, &format!("A{token}")).is_none());
    }

    #[test]
    fn a_retired_ring_is_not_kept_alive_and_never_matches_a_new_one() {
        let cache = OpenedCache::<()>::new(8);
        let r1 = ring(1);
        let (token, o) = opened(&r1, "alice");
        cache.put(&r1, &token, &o);
        let weak = Arc::downgrade(&r1);
        drop(r1);
        assert!(
            weak.upgrade().is_none(),
            "the cache kept the ring (and its keys) alive"
        );
        // Rings made after the old one was dropped: none takes its place in the cache.
        for seed in 2..66 {
            assert!(cache.get(&ring(seed), &token).is_none());
        }
    }

    #[test]
    fn colliding_tokens_replace_each_other_and_zero_capacity_caches_nothing() {
        let cache = OpenedCache::<()>::new(1);
        let r = ring(1);
        let (a, oa) = opened(&r, "alice");
        let (b, ob) = opened(&r, "bob");
        cache.put(&r, &a, &oa);
        cache.put(&r, &b, &ob);
        assert!(cache.get(&r, &a).is_none());
        assert_eq!(
            cache.get(&r, &b).unwrap().payload().sub.as_deref(),
            Some("bob")
        );

        let none = OpenedCache::<()>::new(0);
        none.put(&r, &a, &oa);
        assert!(none.get(&r, &a).is_none());
        // Too short to have a tag: never cached, never a panic.
        cache.put(&r, "abc", &oa);
        assert!(cache.get(&r, "abc").is_none());
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("", ""));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("xbc", "abc"));
    }
}
