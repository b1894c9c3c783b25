//! Reading claims: a short JSON reader for what this crate's own serializer writes, with
//! `serde_json` as the judge of everything else.
//!
//! Every opened token is parsed, so this is on the hot path. The reader here handles the
//! common subset: objects, arrays, strings without escapes, integers, `true`, `false`,
//! `null`, JSON whitespace. It hands keys and strings to the visitor borrowed, finds a
//! string's end a word at a time (with `memchr` past 32 bytes) and has none of
//! `serde_json`'s position tracking or scratch buffer. The moment it meets anything else (an escape, a fraction or an exponent, an
//! integer past 64 bits, `-0`, nesting past [`MAX_DEPTH`], a key that is not a plain
//! string, a malformed byte) or the type refuses what it was given, it gives up and the
//! whole payload is parsed again by `serde_json::from_str`, whose answer (value or error)
//! is the one returned.
//!
//! So the reader never decides whether a payload is valid: a payload it accepts yields the
//! events `serde_json` would hand the visitor for it (the tests compare the two on
//! arbitrary input), and every refusal, with its message, is `serde_json`'s.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

/// Nesting the reader follows before it hands over (`serde_json` refuses past 128).
const MAX_DEPTH: u32 = 64;

/// The name `serde_json::value::RawValue` asks for: a raw value is only `serde_json`'s.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

/// Parses `json` as `T`: the fast reader, or `serde_json` wherever the reader gives up.
///
/// # Errors
/// Exactly `serde_json::from_str`'s.
pub(crate) fn from_str<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    match read(json) {
        Ok(value) => Ok(value),
        Err(GiveUp) => serde_json::from_str(json),
    }
}

/// The fast reader alone: `Err(GiveUp)` for anything outside its subset.
fn read<T: DeserializeOwned>(json: &str) -> Result<T, GiveUp> {
    let mut r = Reader {
        bytes: json.as_bytes(),
        json,
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut r)?;
    r.skip_ws();
    if r.pos == r.bytes.len() {
        Ok(value)
    } else {
        Err(GiveUp)
    }
}

/// The length of a string's body up to its closing quote, or `None` if a backslash, a
/// control character or the end comes first.
///
/// Most claims are short: their first 32 bytes are tested eight at a time (each test sets
/// the high bit of a byte that matches, and the lowest bit set is always a true match,
/// since a borrow only spills into the bytes above one). A longer string is searched with
/// `memchr2` for its quote or backslash and then checked for control characters, both
/// vectorized.
fn string_len(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    let found = |at: usize| (s.get(at) == Some(&b'"')).then_some(at);
    for (i, word) in s.chunks_exact(8).take(4).enumerate() {
        let v = u64::from_le_bytes(word.try_into().ok()?);
        let (quote, backslash) = (v ^ (ONES * u64::from(b'"')), v ^ (ONES * u64::from(b'\\')));
        let hits = (v.wrapping_sub(ONES * 0x20) & !v
            | quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash)
            & ONES << 7;
        if hits != 0 {
            return found(i * 8 + (hits.trailing_zeros() / 8) as usize);
        }
    }
    let at = memchr::memchr2(b'"', b'\\', s)?;
    let body = s.get(..at)?;
    (body.iter().fold(u8::MAX, |m, &b| m.min(b)) >= 0x20).then_some(())?;
    found(at)
}

/// The reader met something outside its subset, or the type refused a value: parse again
/// with `serde_json`. It carries nothing, since `serde_json` makes the real error.
#[derive(Debug)]
struct GiveUp;

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outside the fast reader's subset")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

/// Deserializer methods that read a number.
macro_rules! read_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
            self.number_value(visitor)
        }
    )*};
}

/// Deserializer methods left to `serde_json` whatever the input.
macro_rules! give_up {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GiveUp> {
            Err(GiveUp)
        }
    )*};
}

struct Reader<'de> {
    bytes: &'de [u8],
    json: &'de str,
    pos: usize,
    depth: u32,
}

enum Number {
    U64(u64),
    I64(i64),
}

impl<'de> Reader<'de> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `byte` (after whitespace) or gives up.
    fn eat(&mut self, byte: u8) -> Result<(), GiveUp> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// Consumes `word` (`true`, `false`, `null`) at the current position or gives up.
    fn word(&mut self, word: &[u8]) -> Result<(), GiveUp> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// A string without escapes or control characters, borrowed; the opening quote is at
    /// the current position (after whitespace).
    fn string(&mut self) -> Result<&'de str, GiveUp> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..).ok_or(GiveUp)?;
        let len = string_len(rest).ok_or(GiveUp)?;
        self.pos = start + len + 1;
        // Both ends are ASCII quotes in a `str`: always a character boundary.
        self.json.get(start..start + len).ok_or(GiveUp)
    }

    /// An integer as `serde_json` reads it: non-negative → `u64`, negative → `i64`. A
    /// fraction, an exponent, `-0`, a leading zero or a value past 64 bits: give up.
    fn number(&mut self) -> Result<Number, GiveUp> {
        self.skip_ws();
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let digits = self.bytes.get(start..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        });
        // Nineteen digits always fit in a u64; twenty may not.
        if digits > 19 {
            return Err(GiveUp);
        }
        let n = self
            .bytes
            .get(start..start + digits)
            .unwrap_or_default()
            .iter()
            .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
        self.pos = start + digits;
        let leading_zero = digits > 1 && self.bytes.get(start) == Some(&b'0');
        let more = matches!(self.bytes.get(self.pos), Some(b'.' | b'e' | b'E'));
        if digits == 0 || leading_zero || more {
            return Err(GiveUp);
        }
        if !negative {
            return Ok(Number::U64(n));
        }
        // `serde_json` reads `-0` and anything below `i64::MIN` as a float.
        match n {
            0 => Err(GiveUp),
            n if n <= 1 << 63 => Ok(Number::I64(0i64.wrapping_sub_unsigned(n))),
            _ => Err(GiveUp),
        }
    }

    /// An object or an array, from its opening byte to its `close`: `visit` reads what is
    /// between.
    fn nested<T>(
        &mut self,
        open: u8,
        close: u8,
        visit: impl FnOnce(Access<'_, 'de>) -> Result<T, GiveUp>,
    ) -> Result<T, GiveUp> {
        self.eat(open)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        let value = visit(Access {
            r: self,
            close,
            first: true,
        })?;
        self.eat(close)?;
        self.depth -= 1;
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GiveUp> {
        self.nested(b'{', b'}', |members| visitor.visit_map(members))
    }

    fn seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GiveUp> {
        self.nested(b'[', b']', |elements| visitor.visit_seq(elements))
    }

    fn number_value<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.number()? {
            Number::U64(n) => visitor.visit_u64(n),
            Number::I64(n) => visitor.visit_i64(n),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.peek().ok_or(GiveUp)? {
            b'"' => visitor.visit_borrowed_str(self.string()?),
            b'{' => self.map(visitor),
            b'[' => self.seq(visitor),
            b't' => {
                self.word(b"true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.word(b"false")?;
                visitor.visit_bool(false)
            }
            b'n' => {
                self.word(b"null")?;
                visitor.visit_unit()
            }
            b'-' | b'0'..=b'9' => self.number_value(visitor),
            _ => Err(GiveUp),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.peek() {
            Some(b't' | b'f') => self.deserialize_any(visitor),
            _ => Err(GiveUp),
        }
    }

    read_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
    }

    // 128-bit integers and floats have their own readings in `serde_json`; so have bytes.
    give_up! {
        deserialize_i128 deserialize_u128 deserialize_f32 deserialize_f64
        deserialize_bytes deserialize_byte_buf
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.string()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if self.peek() == Some(b'n') {
            self.word(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if self.peek() != Some(b'n') {
            return Err(GiveUp);
        }
        self.word(b"null")?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        if name == RAW_VALUE {
            return Err(GiveUp);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, GiveUp> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.map(visitor)
    }

    // `serde_json` also reads a struct from an array; that is left to it.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.map(visitor)
    }

    // A unit variant by name; the object form is left to `serde_json`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        let name = self.string()?;
        visitor.visit_enum(de::value::BorrowedStrDeserializer::new(name))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    // As `serde_json` does: the value is read (and so checked) and the visitor told of a
    // unit, whatever the value was.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_any(de::IgnoredAny)?;
        visitor.visit_unit()
    }
}

/// The members of an object or the elements of an array.
struct Access<'a, 'de> {
    r: &'a mut Reader<'de>,
    /// `}` or `]`.
    close: u8,
    first: bool,
}

impl Access<'_, '_> {
    /// Whether another member or element follows (consuming its comma), or the end does.
    fn more(&mut self) -> Result<bool, GiveUp> {
        let close = self.close;
        let next = self.r.peek().ok_or(GiveUp)?;
        if next == close {
            return Ok(false);
        }
        if !std::mem::take(&mut self.first) {
            if next != b',' {
                return Err(GiveUp);
            }
            self.r.pos += 1;
            // A trailing comma is `serde_json`'s to refuse.
            if self.r.peek() == Some(close) {
                return Err(GiveUp);
            }
        }
        Ok(true)
    }
}

impl<'de> de::MapAccess<'de> for Access<'_, 'de> {
    type Error = GiveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GiveUp> {
        if !self.more()? {
            return Ok(None);
        }
        let key = self.r.string()?;
        self.r.eat(b':')?;
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GiveUp> {
        seed.deserialize(&mut *self.r)
    }
}

impl<'de> de::SeqAccess<'de> for Access<'_, 'de> {
    type Error = GiveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GiveUp> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.r).map(Some)
    }
}

/// An object's key as a string. `serde_json` also reads keys as numbers, booleans,
/// options and newtypes (`HashMap<u32, _>`); those are left to it.
struct Key<'de>(&'de str);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.0)
    }

    give_up! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_option
        deserialize_bytes deserialize_byte_buf
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        visitor.visit_enum(de::value::BorrowedStrDeserializer::new(self.0))
    }

    serde::forward_to_deserialize_any! {
        char str string unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::time::Duration;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::Value;

    use super::{from_str, read};
    use crate::{
        Audience, Claims, Confirmation, Lifetimes, SessionLifetimes, UnixMicros, UnixTime,
    };

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct App {
        roles: Vec<String>,
        #[serde(default)]
        n: Option<u32>,
        #[serde(default)]
        flag: Option<bool>,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        offset: Option<i16>,
        #[serde(default)]
        pair: Option<(u8, String)>,
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Admin,
        Guest,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        roles: Vec<String>,
    }

    /// The reader's answer and `serde_json`'s agree: what the reader accepts, `serde_json`
    /// reads to the same value; and `from_str` is `serde_json::from_str`, errors included.
    fn agrees<T: serde::de::DeserializeOwned + PartialEq + Debug>(json: &str) -> bool {
        let judge = serde_json::from_str::<T>(json);
        if let Ok(fast) = read::<T>(json) {
            assert_eq!(
                judge.as_ref().ok(),
                Some(&fast),
                "the reader accepted {json:?}"
            );
        }
        match (from_str::<T>(json), judge) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{json:?}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{json:?}"),
            (a, b) => panic!("{json:?}: {a:?} but serde_json {b:?}"),
        }
        read::<T>(json).is_ok()
    }

    fn all_agree(json: &str) {
        agrees::<Value>(json);
        agrees::<Claims<Value>>(json);
        agrees::<Claims<()>>(json);
        agrees::<Claims<App>>(json);
        agrees::<Claims<Strict>>(json);
        agrees::<Claims<BTreeMap<String, Value>>>(json);
        agrees::<BTreeMap<String, u64>>(json);
        agrees::<Vec<i64>>(json);
    }

    fn full_claims() -> Claims<App> {
        let mut c = Claims::new(App {
            roles: vec!["editor".into(), "é ü 日本".into()],
            n: Some(7),
            flag: Some(false),
            kind: Some(Kind::Admin),
            offset: Some(-300),
            pair: Some((1, "x".repeat(100))),
        });
        let now = UnixTime::from_secs(1_800_000_000);
        Lifetimes::default().start(&mut c, "alice", now);
        c.iss = Some("https://auth.example.com".into());
        c.aud = Some(Audience::many(["web", "api"]));
        c.nbf = Some(now);
        c.started_us = Some(UnixMicros::from(now));
        c.lifetimes = Some(
            SessionLifetimes::new(Lifetimes::new(
                Duration::from_secs(60),
                Duration::from_secs(600),
                Duration::from_secs(3600),
            ))
            .browser_session(true),
        );
        c.cnf = Some(Confirmation::jkt(
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        ));
        c
    }

    #[test]
    fn what_this_crate_seals_takes_the_fast_path() {
        // A regression here costs no correctness, only the speed the reader is for.
        let claims = full_claims();
        let json = serde_json::to_string(&claims).unwrap();
        assert!(agrees::<Claims<App>>(&json), "{json}");
        assert_eq!(read::<Claims<App>>(&json).unwrap(), claims);
        assert!(agrees::<Claims<Value>>(&json));
        assert!(agrees::<Claims<()>>(&json));
        let mut one = Claims::new(());
        one.aud = Some(Audience::one("web"));
        one.sub = Some(String::new());
        assert!(agrees::<Claims<()>>(&serde_json::to_string(&one).unwrap()));
        assert!(agrees::<Claims<()>>(
            " {\n\t\"sub\" : \"a\" ,\r\"exp\":0 } "
        ));
        assert!(agrees::<Claims<App>>(
            r#"{"roles":[],"kind":"guest","offset":-32768}"#
        ));
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for (json, why) in [
            (r#"{"sub":"a\"b"}"#, "an escape"),
            (r#"{"sub":"\u0061"}"#, "a unicode escape"),
            (r#"{"\u0073ub":"a"}"#, "an escaped key"),
            ("{\"sub\":\"a\u{1}\"}", "a raw control character"),
            (r#"{"exp":1.5}"#, "a fraction"),
            (r#"{"exp":1e3}"#, "an exponent"),
            (r#"{"exp":-0}"#, "minus zero"),
            (r#"{"exp":18446744073709551615}"#, "twenty digits"),
            (r#"{"exp":018}"#, "a leading zero"),
            (r#"{"roles":[],}"#, "a trailing comma"),
            (r#"{"roles":[1,]}"#, "a trailing comma in an array"),
            (r#"{"roles":[] "x":1}"#, "a missing comma"),
            (r#"{"sub":"a"} x"#, "trailing characters"),
            (r#"{"sub":"a""#, "an unclosed object"),
            (r#"{"sub":"a"#, "an unclosed string"),
            (r#"{"sub":tru}"#, "a broken word"),
            (
                r#"{"roles":["a"],"kind":{"admin":null}}"#,
                "an enum as an object",
            ),
            (r#"{"roles":"a"}"#, "the wrong type"),
            (r#"{"sub":"a","sub":"b"}"#, "a duplicate claim"),
            (
                r#"{"cnf":{"jkt":"a","jwk":{}}}"#,
                "an unknown member of cnf",
            ),
            (r#"[1,2]"#, "not an object"),
            ("", "nothing"),
        ] {
            assert!(!agrees::<Claims<App>>(json), "{why}: {json}");
            all_agree(json);
        }
        // The reader does not follow deep nesting; serde_json refuses past 128.
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(!agrees::<Claims<Value>>(&deep));
        let ok = format!("{{\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(agrees::<Claims<Value>>(&ok));
    }

    #[test]
    fn raw_values_and_wide_integers_are_serde_jsons() {
        #[derive(serde::Deserialize)]
        struct Raw {
            x: Box<serde_json::value::RawValue>,
        }
        let json = r#"{"x": [1, "two"]}"#;
        assert!(read::<Raw>(json).is_err());
        assert_eq!(from_str::<Raw>(json).unwrap().x.get(), r#"[1, "two"]"#);
        assert_eq!(
            from_str::<BTreeMap<String, u128>>(r#"{"x":1}"#).unwrap()["x"],
            1
        );
        assert!(read::<BTreeMap<String, u128>>(r#"{"x":1}"#).is_err());
        assert!(read::<BTreeMap<u32, u8>>(r#"{"1":1}"#).is_err());
        assert_eq!(from_str::<BTreeMap<u32, u8>>(r#"{"1":1}"#).unwrap()[&1], 1);
        assert!(agrees::<Vec<i64>>(
            "[-9223372036854775808, 9223372036854775807]"
        ));
        assert!(!agrees::<Vec<i64>>("[-9223372036854775809]"));
    }

    /// JSON-ish text: mostly valid, with the near misses a reader gets wrong.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("tru".to_owned()),
            Just("nul".to_owned()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            (0u32..100).prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                "-0", "01", "1.5", "1e3", "-", "2E-2", "00", "1.", "-1"
            ])
            .prop_map(str::to_owned),
            "[a-zé日 \\-/]{0,40}".prop_map(|s| format!("\"{s}\"")),
            prop::sample::select(vec![
                r#""\"""#,
                r#""\\""#,
                r#""\n""#,
                r#""\u00e9""#,
                r#""\ud83d\ude00""#,
                r#""\ud83d""#,
                "\"\u{1}\"",
                "\"\u{7f}\"",
                r#""\x""#,
                r#""admin""#,
                r#""guest""#,
                r#""abc"#,
            ])
            .prop_map(str::to_owned),
        ];
        let key = prop::sample::select(vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "nbf",
            "iat",
            "jti",
            "sid",
            "auth_time",
            "started_us",
            "issued_us",
            "slt",
            "cnf",
            "roles",
            "n",
            "flag",
            "kind",
            "offset",
            "pair",
            "x",
            "\\u0073ub",
            "",
        ]);
        let sep = prop::sample::select(vec![",", ",", ",", " , ", "\n,\t", ",,", ""]);
        leaf.prop_recursive(4, 48, 6, move |inner| {
            let members = prop::collection::vec((key.clone(), inner.clone(), sep.clone()), 0..6);
            prop_oneof![
                (
                    prop::collection::vec((inner, sep.clone()), 0..6),
                    any::<bool>()
                )
                    .prop_map(|(items, trailing)| {
                        let mut s = String::from("[");
                        for (i, (v, sep)) in items.iter().enumerate() {
                            if i > 0 {
                                s.push_str(sep);
                            }
                            s.push_str(v);
                        }
                        if trailing && !items.is_empty() {
                            s.push(',');
                        }
                        s + "]"
                    }),
                (members, any::<bool>()).prop_map(|(members, spaced)| {
                    let colon = if spaced { " : " } else { ":" };
                    let mut s = String::from("{");
                    for (i, (k, v, sep)) in members.iter().enumerate() {
                        if i > 0 {
                            s.push_str(sep);
                        }
                        s.push_str(&format!("\"{k}\"{colon}{v}"));
                    }
                    s + "}"
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn the_reader_agrees_with_serde_json(json in json_text(), pad in "[ \n]{0,2}") {
            all_agree(&format!("{pad}{json}{pad}"));
        }

        #[test]
        fn the_reader_never_panics(s in "\\PC{0,64}") {
            all_agree(&s);
        }

        #[test]
        fn sealed_claims_read_back(sub in "[ -~é]{0,30}", exp in any::<u64>(), roles in prop::collection::vec("[ -~]{0,12}", 0..4)) {
            let mut c = Claims::new(App { roles, n: None, flag: None, kind: None, offset: None, pair: None });
            c.sub = Some(sub);
            c.exp = Some(UnixTime::from_secs(exp));
            let json = serde_json::to_string(&c).unwrap();
            agrees::<Claims<App>>(&json);
            prop_assert_eq!(from_str::<Claims<App>>(&json).unwrap(), c);
        }
    }
}
