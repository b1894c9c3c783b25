//! `A256CBC-HS512` (RFC 7518 §5.2.5): AES-256-CBC with PKCS #7 padding, authenticated by
//! HMAC-SHA-512 truncated to 256 bits, encrypt-then-MAC. Auth.js seals its session cookies
//! with it; this crate opens them and writes them back.
//!
//! The 64-byte key is split as §5.2.2.1 says: the first half keys the MAC, the second the
//! cipher. The tag covers `AAD || IV || ciphertext || AL` (AL: the AAD's length in bits, a
//! 64-bit big-endian number), and is checked in constant time before anything is decrypted,
//! so a changed byte never reaches the padding check (no padding oracle).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use aes::Aes256;
use hmac::{Hmac, Mac};
use sha2::Sha512;
use zeroize::Zeroizing;

/// The IV length: one AES block.
pub(crate) const IV_LEN: usize = 16;

/// The tag length: half of HMAC-SHA-512's output.
pub(crate) const TAG_LEN: usize = 32;

/// The key length: a MAC key and an AES-256 key.
pub(crate) const KEY_LEN: usize = 64;

/// The expanded key: the MAC, keyed once (its inner and outer states), and the AES key
/// schedule. Both zeroize on drop (`hmac`'s and `aes`'s `zeroize`).
pub(crate) struct CbcHs512 {
    mac: Hmac<Sha512>,
    aes: Aes256,
}

/// A cipher refused a token: its tag did not verify (or an IV or tag had the wrong
/// length), or, for CBC, after the tag passed (which no one but the key holder can make
/// happen) the padding was not PKCS #7. One type for every cipher of [`Key`](crate::Key).
#[derive(Debug)]
pub(crate) struct Refused;

impl CbcHs512 {
    /// `None` unless `key` is [`KEY_LEN`] bytes.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        if key.len() != KEY_LEN {
            return None;
        }
        let (mac_key, enc_key) = key.split_at(KEY_LEN / 2);
        Some(Self {
            mac: <Hmac<Sha512> as KeyInit>::new_from_slice(mac_key).ok()?,
            aes: Aes256::new_from_slice(enc_key).ok()?,
        })
    }

    fn mac(&self, aad: &[u8], iv: &[u8; IV_LEN], ciphertext: &[u8]) -> Hmac<Sha512> {
        let mut mac = self.mac.clone();
        mac.update(aad);
        mac.update(iv);
        mac.update(ciphertext);
        let bits = (aad.len() as u64).wrapping_mul(8);
        mac.update(&bits.to_be_bytes());
        mac
    }

    /// Encrypts `buf` in place (it grows by the padding, 1 to 16 bytes) and returns the tag.
    pub(crate) fn seal(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        buf: &mut Zeroizing<Vec<u8>>,
    ) -> [u8; TAG_LEN] {
        let len = buf.len();
        let padded = padded_len(len);
        // Grown here, inside `Zeroizing`: if the Vec must move, its old buffer held
        // plaintext, so it is grown by hand and the old one wiped.
        if buf.capacity() < padded {
            let mut bigger = Zeroizing::new(Vec::with_capacity(padded));
            bigger.extend_from_slice(buf);
            *buf = bigger;
        }
        buf.resize(padded, 0);
        let encryptor = cbc::Encryptor::<Aes256>::inner_iv_init(self.aes.clone(), iv.into());
        // The buffer has room for the padding by construction: this cannot fail.
        let written = encryptor
            .encrypt_padded::<Pkcs7>(buf, len)
            .map_or(0, <[u8]>::len);
        debug_assert_eq!(written, padded);
        let full = self.mac(aad, iv, buf).finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Checks the tag, then decrypts `buf` in place and cuts the padding off.
    pub(crate) fn open(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        buf: &mut Zeroizing<Vec<u8>>,
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Refused> {
        self.mac(aad, iv, buf)
            .verify_truncated_left(tag)
            .map_err(|_| Refused)?;
        let decryptor = cbc::Decryptor::<Aes256>::inner_iv_init(self.aes.clone(), iv.into());
        let plain = decryptor
            .decrypt_padded::<Pkcs7>(buf)
            .map_err(|_| Refused)?
            .len();
        buf.truncate(plain);
        Ok(())
    }
}

/// The ciphertext length for `len` bytes of plaintext: PKCS #7 always adds 1 to 16 bytes.
pub(crate) const fn padded_len(len: usize) -> usize {
    (len / IV_LEN + 1) * IV_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix B.3, as published (key, plaintext, IV, AAD, ciphertext, tag).
    const RFC7518_B3: &str = include_str!("../vectors/rfc7518-B.3.json");

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    struct Vector {
        key: Vec<u8>,
        plaintext: Vec<u8>,
        iv: [u8; IV_LEN],
        aad: Vec<u8>,
        ciphertext: Vec<u8>,
        tag: [u8; TAG_LEN],
    }

    fn vector() -> Vector {
        let v: serde_json::Value = serde_json::from_str(RFC7518_B3).unwrap();
        let field = |name: &str| hex(v[name].as_str().unwrap());
        Vector {
            key: field("K"),
            plaintext: field("P"),
            iv: field("IV").try_into().unwrap(),
            aad: field("A"),
            ciphertext: field("E"),
            tag: field("T").try_into().unwrap(),
        }
    }

    #[test]
    fn rfc7518_b3_seals_to_its_ciphertext_and_tag() {
        let v = vector();
        let key = CbcHs512::new(&v.key).unwrap();
        let mut buf = Zeroizing::new(v.plaintext.clone());
        let tag = key.seal(&v.iv, &v.aad, &mut buf);
        assert_eq!(buf.as_slice(), v.ciphertext.as_slice());
        assert_eq!(tag, v.tag);
        // The plaintext of the vector is what its name says.
        assert!(v
            .plaintext
            .starts_with(b"A cipher system must not be required to be secret"));
        assert_eq!(v.aad, b"The second principle of Auguste Kerckhoffs");
    }

    #[test]
    fn rfc7518_b3_opens_and_refuses_any_change() {
        let v = vector();
        let key = CbcHs512::new(&v.key).unwrap();
        let mut buf = Zeroizing::new(v.ciphertext.clone());
        key.open(&v.iv, &v.aad, &mut buf, &v.tag).unwrap();
        assert_eq!(buf.as_slice(), v.plaintext.as_slice());

        // Every byte of ciphertext, IV, AAD and tag, flipped: refused, and the buffer is
        // never decrypted (the tag is checked first).
        for i in 0..v.ciphertext.len() {
            let mut c = Zeroizing::new(v.ciphertext.clone());
            c[i] ^= 1;
            let before = c.clone();
            assert!(key.open(&v.iv, &v.aad, &mut c, &v.tag).is_err(), "E[{i}]");
            assert_eq!(c, before, "decrypted although the tag failed");
        }
        for i in 0..IV_LEN {
            let mut iv = v.iv;
            iv[i] ^= 1;
            let mut c = Zeroizing::new(v.ciphertext.clone());
            assert!(key.open(&iv, &v.aad, &mut c, &v.tag).is_err(), "IV[{i}]");
        }
        for i in 0..v.aad.len() {
            let mut aad = v.aad.clone();
            aad[i] ^= 1;
            let mut c = Zeroizing::new(v.ciphertext.clone());
            assert!(key.open(&v.iv, &aad, &mut c, &v.tag).is_err(), "A[{i}]");
        }
        for i in 0..TAG_LEN {
            let mut tag = v.tag;
            tag[i] ^= 1;
            let mut c = Zeroizing::new(v.ciphertext.clone());
            assert!(key.open(&v.iv, &v.aad, &mut c, &tag).is_err(), "T[{i}]");
        }
        // A shorter AAD with the same bytes is another message (the AL block).
        let mut c = Zeroizing::new(v.ciphertext.clone());
        assert!(key
            .open(&v.iv, &v.aad[..v.aad.len() - 1], &mut c, &v.tag)
            .is_err());
    }

    #[test]
    fn every_length_round_trips_with_its_padding() {
        let key = CbcHs512::new(&(0..64).map(|i| i as u8 ^ 0xa5).collect::<Vec<_>>()).unwrap();
        let iv = [7u8; IV_LEN];
        for len in 0..70 {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = Zeroizing::new(plain.clone());
            let tag = key.seal(&iv, b"aad", &mut buf);
            assert_eq!(buf.len(), padded_len(len));
            key.open(&iv, b"aad", &mut buf, &tag).unwrap();
            assert_eq!(buf.as_slice(), plain.as_slice());
        }
    }

    #[test]
    fn only_64_byte_keys() {
        assert!(CbcHs512::new(&[1; 32]).is_none());
        assert!(CbcHs512::new(&[1; 65]).is_none());
        assert!(CbcHs512::new(&[1; 64]).is_some());
    }
}
