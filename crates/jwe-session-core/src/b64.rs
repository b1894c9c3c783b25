//! Strict base64url without padding (RFC 4648 §5, as JOSE uses it: RFC 7515 §2).
//!
//! Decoding accepts only the canonical encoding: the 64 URL-safe characters, no padding,
//! no whitespace, no length of the form `4n + 1`, and zero bits where the last character
//! carries fewer than six. Each byte string has exactly one encoding, so a token cannot be
//! re-encoded into a second spelling that still opens.
//!
//! Written here rather than taken from the `base64` crate because every token goes through
//! it twice (seal and open) and this is the hot loop: eight characters are decoded at a
//! time with pre-shifted tables and one validity check per segment, six bytes are encoded
//! at a time, two characters per lookup, each group written with one store. The tests
//! compare it with that crate on arbitrary input.

use zeroize::Zeroizing;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Marks a byte outside the alphabet. It sits above the 24 bits a quartet fills, so it
/// survives the OR of four lookups.
const INVALID: u32 = 0xFF00_0000;

const fn table(shift: u32) -> [u32; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = (i as u32) << shift;
        i += 1;
    }
    t
}

/// Every pair of characters (big-endian: the first in the high byte), indexed by the
/// twelve bits they encode: a triple of bytes is two lookups.
static PAIRS: [u16; 4096] = {
    let mut t = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = (ALPHABET[i >> 6] as u16) << 8 | ALPHABET[i & 63] as u16;
        i += 1;
    }
    t
};

/// Each character's six bits, already in place for its position within a quartet.
static D0: [u32; 256] = table(18);
static D1: [u32; 256] = table(12);
static D2: [u32; 256] = table(6);
static D3: [u32; 256] = table(0);

/// The decoded length of `n` characters, or `None` if no canonical encoding has that length.
pub(crate) const fn decoded_len(n: usize) -> Option<usize> {
    match n % 4 {
        0 => Some(n / 4 * 3),
        1 => None,
        r => Some(n / 4 * 3 + r - 1),
    }
}

/// The encoded length of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Decodes `input` into `out`, which must be exactly [`decoded_len`] long. On `false`,
/// `out` holds garbage.
fn decode_into(input: &[u8], out: &mut [u8]) -> bool {
    if decoded_len(input.len()) != Some(out.len()) {
        return false;
    }
    let quartet = |[a, b, c, d]: [u8; 4]| {
        D0[usize::from(a)] | D1[usize::from(b)] | D2[usize::from(c)] | D3[usize::from(d)]
    };
    let mut seen = 0u32;
    // Eight characters make six bytes.
    let (groups, rest) = input.as_chunks::<8>();
    let (six, out) = out.split_at_mut(groups.len() * 6);
    for ([a, b, c, d, e, f, g, h], dst) in groups.iter().zip(six.as_chunks_mut::<6>().0) {
        let (hi, lo) = (quartet([*a, *b, *c, *d]), quartet([*e, *f, *g, *h]));
        seen |= hi | lo;
        // An invalid character's marker bits land outside the six bytes or on bytes that
        // are garbage anyway: `seen` refuses the whole input.
        let bytes = (u64::from(hi) << 40 | u64::from(lo) << 16).to_be_bytes();
        dst.copy_from_slice(&bytes[..6]);
    }
    let (quads, tail) = rest.as_chunks::<4>();
    let (triples, out_tail) = out.split_at_mut(quads.len() * 3);
    let (triples, _) = triples.as_chunks_mut::<3>();
    for (q, dst) in quads.iter().zip(triples) {
        let v = quartet(*q);
        seen |= v;
        *dst = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
    }
    // Two or three characters left: the bits past the last whole byte must be zero.
    let (v, spare) = match *tail {
        [] => (0, 0),
        [a, b] => (D0[usize::from(a)] | D1[usize::from(b)], 0xFFFF),
        [a, b, c] => (
            D0[usize::from(a)] | D1[usize::from(b)] | D2[usize::from(c)],
            0xFF,
        ),
        _ => return false,
    };
    for (i, byte) in out_tail.iter_mut().enumerate() {
        *byte = (v >> (16 - 8 * i)) as u8;
    }
    (seen | v) & INVALID == 0 && v & spare == 0
}

/// Decodes into zeroizing memory (segments may be plaintext-to-be or key material).
pub(crate) fn decode(input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; decoded_len(input.len())?]);
    decode_into(input, &mut out).then_some(out)
}

/// Decodes exactly `N` bytes, or `None` for any other length.
pub(crate) fn decode_array<const N: usize>(input: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_into(input, &mut out).then_some(out)
}

/// Appends the encoding of `input` to `out`.
pub(crate) fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + encoded_len(input.len()), 0);
    let dst = &mut out[start..];
    let pair = |v: u64, shift: u32| u64::from(PAIRS[(v >> shift) as usize & 0xFFF]);
    // Six bytes make eight characters, written with one store.
    let (groups, rest) = input.as_chunks::<6>();
    let (eight, dst) = dst.split_at_mut(groups.len() * 8);
    for ([a, b, c, d, e, f], chars) in groups.iter().zip(eight.as_chunks_mut::<8>().0) {
        let v = u64::from_be_bytes([*a, *b, *c, *d, *e, *f, 0, 0]);
        let c = pair(v, 52) << 48 | pair(v, 40) << 32 | pair(v, 28) << 16 | pair(v, 16);
        *chars = c.to_be_bytes();
    }
    let (triples, tail) = rest.as_chunks::<3>();
    let (quads, dst_tail) = dst.split_at_mut(triples.len() * 4);
    let (quads, _) = quads.as_chunks_mut::<4>();
    for ([a, b, c], q) in triples.iter().zip(quads) {
        let v = u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c);
        let (p, r) = (PAIRS[(v >> 12) as usize], PAIRS[(v & 0xFFF) as usize]);
        *q = (u32::from(p) << 16 | u32::from(r)).to_be_bytes();
    }
    let sym = |v: u32, shift: u32| ALPHABET[((v >> shift) & 63) as usize];
    let v = tail
        .iter()
        .enumerate()
        .fold(0u32, |v, (i, b)| v | u32::from(*b) << (16 - 8 * i));
    for (i, ch) in dst_tail.iter_mut().enumerate() {
        *ch = sym(v, 18 - 6 * i as u32);
    }
}

/// Appends the encoding of `input` to a string, through zeroizing scratch memory (the
/// input may be key material).
pub(crate) fn encode_to_string(input: &[u8], out: &mut String) {
    let mut scratch = Zeroizing::new(Vec::with_capacity(encoded_len(input.len())));
    encode_into(input, &mut scratch);
    out.extend(scratch.iter().map(|&b| char::from(b)));
}

/// The encoding of `input` as a new string.
pub(crate) fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(input.len()));
    encode_to_string(input, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rfc4648_vectors_in_the_url_alphabet() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, text) in cases {
            assert_eq!(encode(raw), text);
            assert_eq!(
                decode(text.as_bytes()).as_deref().map(Vec::as_slice),
                Some(raw)
            );
        }
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(decode_array::<3>(b"-_-_"), Some([0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn only_the_canonical_spelling_decodes() {
        for bad in [
            "Zg==",
            "Zm8=",
            "Zh",
            "Zm9",
            "Z",
            "Zm9vY",
            "Zm9v+g",
            "Zm9v/g",
            "Zm 9v",
            "Zm9v\n",
            "Zm9vYmFy.",
            "\u{e9}AAA",
        ] {
            assert!(decode(bad.as_bytes()).is_none(), "{bad:?} decoded");
        }
        assert!(
            decode_array::<2>(b"Zm9v").is_none(),
            "wrong length accepted"
        );
        assert!(
            decode_array::<4>(b"Zm9v").is_none(),
            "wrong length accepted"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn encodes_as_the_base64_crate_does(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            let ours = encode(&raw);
            prop_assert_eq!(&ours, &URL_SAFE_NO_PAD.encode(&raw));
            prop_assert_eq!(ours.len(), encoded_len(raw.len()));
            prop_assert_eq!(decode(ours.as_bytes()).map(|d| d.to_vec()), Some(raw));
        }

        #[test]
        fn accepts_exactly_what_the_base64_crate_accepts(
            text in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(ALPHABET.to_vec()),
                    1 => any::<u8>(),
                ],
                0..120,
            )
        ) {
            // The crate's URL_SAFE_NO_PAD engine refuses padding and non-canonical
            // trailing bits too; where it decodes, we must decode the same bytes.
            let theirs = URL_SAFE_NO_PAD.decode(&text).ok();
            prop_assert_eq!(decode(&text).map(|d| d.to_vec()), theirs);
        }

        #[test]
        fn long_alphabet_only_text_decodes_as_the_base64_crate_decodes(
            text in proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), 0..300)
        ) {
            // Without a stray byte, long inputs reach the eight-character groups and the
            // trailing-bits check on every length the crate accepts or refuses.
            let theirs = URL_SAFE_NO_PAD.decode(&text).ok();
            prop_assert_eq!(decode(&text).map(|d| d.to_vec()), theirs);
        }
    }
}
