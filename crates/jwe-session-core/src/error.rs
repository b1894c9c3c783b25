//! One error enum per operation. Structure errors say exactly what is wrong; a failed
//! decryption says only that it failed.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::names::{Claim, Enc};
use crate::time::UnixTime;

const MAKE_A_KEY: &str = "make one with `jwe-session keygen`, or 32 bytes from a CSPRNG";

/// Why a key or key ring could not be loaded.
///
/// Errors never carry key material, not even from a malformed JSON document.
///
/// `Debug` reads as `Display` does, followed by the variant (what `?` in `main` prints):
/// `JWE_SESSION_KEYS is not set ... (KeyError::EnvMissing)`.
#[non_exhaustive]
pub enum KeyError {
    /// The document is not JSON of the expected shape. Only the position is kept: the
    /// parser's own message may quote a value, and values here are secrets.
    Json {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// A single JWK was given where a JWK Set (`{"keys":[...]}`) is expected.
    NotASet,
    /// A JWK has no `kid`; every key in a ring needs one.
    MissingKid,
    /// A `kid` is empty, longer than 128 bytes, or not printable ASCII (or has `"` or `\`).
    InvalidKid {
        /// The offending kid, shortened.
        kid: String,
    },
    /// A JWK's `kty` is not `"oct"`.
    NotOct {
        /// The key's kid.
        kid: String,
        /// The `kty` found.
        kty: String,
    },
    /// A JWK's `use` is not `"enc"`.
    UseNotEnc {
        /// The key's kid.
        kid: String,
        /// The `use` found.
        found: String,
    },
    /// A JWK's `key_ops` is not a set of `"encrypt"`/`"decrypt"` that includes `"decrypt"`.
    KeyOps {
        /// The key's kid.
        kid: String,
    },
    /// A JWK's `alg` is neither `"dir"` nor the `enc` its length implies.
    AlgMismatch {
        /// The key's kid.
        kid: String,
        /// The `alg` found.
        alg: String,
        /// The key length in bytes.
        bytes: usize,
    },
    /// A JWK has no `k` member.
    MissingK {
        /// The key's kid.
        kid: String,
    },
    /// `k` is not canonical unpadded base64url.
    BadBase64 {
        /// The key's kid.
        kid: String,
    },
    /// The key is shorter than 128 bits.
    TooShort {
        /// The key's kid.
        kid: String,
        /// Its length in bits.
        bits: usize,
    },
    /// The key is not 16, 24 or 32 bytes long.
    BadLength {
        /// The key's kid.
        kid: String,
        /// Its length in bytes.
        bytes: usize,
    },
    /// The key looks like something a person typed (a password), not random bytes.
    PassphraseLike {
        /// The key's kid.
        kid: String,
    },
    /// The JWK Set has no keys (or no Auth.js secret was given).
    EmptySet,
    /// An Auth.js / NextAuth secret is empty (`AUTH_SECRET=`): it would derive a key anyone
    /// can compute.
    EmptySecret {
        /// Its position in the list of secrets, from 0.
        index: usize,
    },
    /// Two keys share a kid.
    DuplicateKid {
        /// The repeated kid.
        kid: String,
    },
    /// The named active kid is not in the set.
    ActiveKidMissing {
        /// The named kid.
        kid: String,
    },
    /// The active key (named or first) is marked decrypt-only.
    ActiveKidDecryptOnly {
        /// The key's kid.
        kid: String,
    },
    /// A schedule member (`seals_from`, `sealed_until`) is not a whole number of seconds
    /// since the epoch.
    BadTime {
        /// The key's kid.
        kid: String,
        /// The member.
        member: &'static str,
    },
    /// A key scheduled to seal (`seals_from`) is marked decrypt-only.
    ScheduledDecryptOnly {
        /// The key's kid.
        kid: String,
    },
    /// Two keys are scheduled to take over sealing at the same moment.
    ScheduleConflict {
        /// The first key's kid.
        first: String,
        /// The second key's kid.
        second: String,
        /// The moment both name, seconds since the epoch.
        at: u64,
    },
    /// The key file could not be read.
    Io {
        /// The path that was read.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file could not be watched (neither file events nor polling).
    Watch {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The environment variable is not set.
    EnvMissing {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is not valid Unicode.
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },
}

/// Whether JSON text starts with an object (after whitespace). serde's derived visitors
/// also accept an array, fields by position; headers, claims and key sets must be objects.
pub(crate) fn starts_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

impl KeyError {
    pub(crate) fn from_json(e: serde_json::Error) -> Self {
        Self::Json {
            line: e.line(),
            column: e.column(),
        }
    }

    /// Parses a JSON object; serde's derived visitors would also take an array.
    pub(crate) fn parse_object<'a, T: serde::Deserialize<'a>>(json: &'a str) -> Result<T, Self> {
        if !starts_json_object(json.as_bytes()) {
            return Err(Self::Json { line: 1, column: 1 });
        }
        serde_json::from_str(json).map_err(Self::from_json)
    }

    /// Parses a JWK Set; a single JWK given instead is [`KeyError::NotASet`].
    pub(crate) fn parse_set<'a, T: serde::Deserialize<'a>>(json: &'a str) -> Result<T, Self> {
        Self::parse_object(json).map_err(|e| {
            /// Which members are there, keeping none of their values.
            #[derive(serde::Deserialize)]
            struct Probe {
                kty: Option<serde::de::IgnoredAny>,
                keys: Option<serde::de::IgnoredAny>,
            }
            match serde_json::from_str::<Probe>(json) {
                Ok(Probe {
                    kty: Some(_),
                    keys: None,
                }) => Self::NotASet,
                _ => e,
            }
        })
    }
}

/// Writes `err` for `Debug` the way this project's errors read under `?` in `main`: its
/// message, each underlying cause after a colon, then the type and variant in parentheses,
/// e.g. `revocation store is unavailable: could not connect to Redis at 127.0.0.1:6379:
/// Connection refused (os error 111) (CheckError::Unavailable)`. `fn main() -> Result<(),
/// Box<dyn Error>>` prints an error's `Debug`: derived, it would print a struct.
///
/// # Errors
/// Only the formatter's.
pub fn debug_report(
    err: &(dyn StdError + 'static),
    variant: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(f, "{err}")?;
    let mut cause = err.source();
    while let Some(e) = cause {
        write!(f, ": {e}")?;
        cause = e.source();
    }
    write!(f, " ({variant})")
}

impl KeyError {
    fn variant(&self) -> &'static str {
        match self {
            Self::Json { .. } => "Json",
            Self::NotASet => "NotASet",
            Self::MissingKid { .. } => "MissingKid",
            Self::InvalidKid { .. } => "InvalidKid",
            Self::NotOct { .. } => "NotOct",
            Self::UseNotEnc { .. } => "UseNotEnc",
            Self::KeyOps { .. } => "KeyOps",
            Self::AlgMismatch { .. } => "AlgMismatch",
            Self::MissingK { .. } => "MissingK",
            Self::BadBase64 { .. } => "BadBase64",
            Self::TooShort { .. } => "TooShort",
            Self::BadLength { .. } => "BadLength",
            Self::PassphraseLike { .. } => "PassphraseLike",
            Self::EmptySet { .. } => "EmptySet",
            Self::EmptySecret { .. } => "EmptySecret",
            Self::DuplicateKid { .. } => "DuplicateKid",
            Self::ActiveKidMissing { .. } => "ActiveKidMissing",
            Self::ActiveKidDecryptOnly { .. } => "ActiveKidDecryptOnly",
            Self::BadTime { .. } => "BadTime",
            Self::ScheduledDecryptOnly { .. } => "ScheduledDecryptOnly",
            Self::ScheduleConflict { .. } => "ScheduleConflict",
            Self::Io { .. } => "Io",
            Self::Watch { .. } => "Watch",
            Self::EnvMissing { .. } => "EnvMissing",
            Self::EnvNotUnicode { .. } => "EnvNotUnicode",
        }
    }
}

impl fmt::Debug for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} (KeyError::{})", self.variant())
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json { line, column } => write!(
                f,
                "key set is not a JWK Set of the expected shape (line {line}, column {column}); \
                 expected {{\"keys\":[{{\"kty\":\"oct\",\"kid\":\"...\",\"k\":\"...\"}}]}}"
            ),
            Self::NotASet => f.write_str(
                "this is a single JWK, not a JWK Set: wrap it as {\"keys\":[<the JWK>]}, or \
                 make a set with `jwe-session keygen --set`",
            ),
            Self::MissingKid => f.write_str("a key has no \"kid\"; give every key a unique kid"),
            Self::InvalidKid { kid } => write!(
                f,
                "kid {kid:?} is not allowed: use 1 to 128 printable ASCII characters, no quotes"
            ),
            Self::NotOct { kid, kty } => {
                write!(
                    f,
                    "key {kid:?} has kty {kty:?}; only symmetric \"oct\" keys are used"
                )
            }
            Self::UseNotEnc { kid, found } => {
                write!(
                    f,
                    "key {kid:?} has use {found:?}; session keys need \"enc\" or no use"
                )
            }
            Self::KeyOps { kid } => write!(
                f,
                "key {kid:?} has key_ops other than [\"encrypt\",\"decrypt\"] or [\"decrypt\"]"
            ),
            Self::AlgMismatch { kid, alg, bytes } => write!(
                f,
                "key {kid:?} says alg {alg:?} but is {bytes} bytes; use \"dir\" or the matching \
                 A128GCM/A192GCM/A256GCM"
            ),
            Self::MissingK { kid } => write!(f, "key {kid:?} has no \"k\" member"),
            Self::BadBase64 { kid } => write!(
                f,
                "key {kid:?}: \"k\" is not unpadded base64url (a JWK's k uses - and _, not + \
                 and /, and no = padding); {MAKE_A_KEY}"
            ),
            Self::TooShort { kid, bits } => write!(
                f,
                "key {kid:?} is {bits} bits; keys need at least 128 bits (256 recommended): \
                 {MAKE_A_KEY}"
            ),
            Self::BadLength { kid, bytes } => write!(
                f,
                "key {kid:?} is {bytes} bytes; AES-GCM keys are 16, 24 or 32 bytes (64 for A256CBC-HS512): {MAKE_A_KEY}"
            ),
            Self::PassphraseLike { kid } => write!(
                f,
                "key {kid:?} looks like a password, not random bytes; {MAKE_A_KEY}"
            ),
            Self::EmptySet => f.write_str("the key set has no keys"),
            Self::EmptySecret { index } => write!(
                f,
                "Auth.js secret {index} is empty; set AUTH_SECRET to the Next.js app's secret"
            ),
            Self::DuplicateKid { kid } => write!(f, "two keys share the kid {kid:?}"),
            Self::ActiveKidMissing { kid } => {
                write!(f, "active kid {kid:?} is not in the key set")
            }
            Self::ActiveKidDecryptOnly { kid } => write!(
                f,
                "active key {kid:?} is decrypt-only; make another key active or drop its key_ops"
            ),
            Self::BadTime { kid, member } => write!(
                f,
                "key {kid:?} has a {member:?} that is not a whole number of seconds since the \
                 epoch (e.g. 1798761600 for 2027-01-01T00:00:00Z)"
            ),
            Self::ScheduledDecryptOnly { kid } => write!(
                f,
                "key {kid:?} is scheduled to seal (seals_from) but is decrypt-only; drop one of the two"
            ),
            Self::ScheduleConflict { first, second, at } => write!(
                f,
                "keys {first:?} and {second:?} are both scheduled to seal from {at}; give each its own moment"
            ),
            Self::Io { path, .. } => write!(f, "could not read key file {}", path.display()),
            Self::Watch { path, .. } => write!(f, "could not watch key file {}", path.display()),
            Self::EnvMissing { var } => write!(
                f,
                "environment variable {var} is not set: it holds the key set (a JWK Set); make \
                 one with `jwe-session keygen --set` and pass it, e.g. \
                 {var}=\"$(jwe-session keygen --set)\", or keep it in a file (mode 0600) and \
                 load that"
            ),
            Self::EnvNotUnicode { var } => {
                write!(f, "environment variable {var} is not valid UTF-8")
            }
        }
    }
}

impl StdError for KeyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Io { source, .. } | Self::Watch { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A segment of a compact JWE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// The base64url protected header.
    Header,
    /// The encrypted key (empty for `dir`).
    EncryptedKey,
    /// The initialization vector.
    Iv,
    /// The ciphertext.
    Ciphertext,
    /// The authentication tag.
    Tag,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "protected header",
            Self::EncryptedKey => "encrypted key",
            Self::Iv => "IV",
            Self::Ciphertext => "ciphertext",
            Self::Tag => "tag",
        })
    }
}

/// Why a token could not be opened. Checks run in this order, cheapest first, and the
/// first failing one is reported.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The token is longer than the configured limit (checked before any decoding).
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token does not have exactly five `.`-separated segments.
    SegmentCount {
        /// How many were found (counting stops at six).
        found: usize,
    },
    /// The encrypted-key segment is not empty, which `dir` requires.
    EncryptedKeyNotEmpty,
    /// A segment is not canonical unpadded base64url.
    Base64 {
        /// Which one.
        segment: Segment,
    },
    /// The protected header is not a JSON object with string members where expected,
    /// or repeats a member.
    HeaderNotJson,
    /// The protected header lacks a member this library requires.
    MissingHeader {
        /// Which one: `"alg"`, `"enc"` or `"kid"`.
        field: &'static str,
    },
    /// `alg` is not `"dir"`.
    UnsupportedAlg {
        /// The `alg` found, shortened.
        found: String,
    },
    /// The header has `zip`; compressed payloads are refused.
    Compressed,
    /// The header has `crit`; no extensions are understood.
    Critical,
    /// No key in the ring has this kid.
    UnknownKid {
        /// The kid found, shortened.
        kid: String,
    },
    /// `enc` does not match the key the kid names.
    EncMismatch {
        /// The key's kid.
        kid: String,
        /// What the key is for.
        expected: Enc,
        /// What the header says, shortened.
        found: String,
    },
    /// The token was sealed for another purpose (`typ`), e.g. another app or cookie.
    PurposeMismatch {
        /// The purpose expected, if any.
        expected: Option<String>,
        /// The purpose found, shortened, if any.
        found: Option<String>,
    },
    /// The IV is not 12 bytes.
    IvLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The tag is not 16 bytes.
    TagLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The token could not be decrypted. Deliberately without detail.
    Decrypt,
    /// The decrypted payload is not a JSON object.
    ClaimsNotObject,
    /// The claims are a JSON object that does not fit the expected type (a registered claim
    /// of the wrong type, or the application's own claims not matching its type).
    ClaimsType(ClaimsTypeError),
}

/// Claims that did not fit the expected type (opening) or could not be serialized (sealing).
///
/// `Display` and `Debug` say which field and what kind of mismatch (``missing field
/// `display_name` ``, ``at `profile.age`: a string where the type expects u64``) and where
/// in the JSON, never a claim value: a field name the type declares is shown, one that
/// came from the token only if it reads as an identifier. [`detail`](Self::detail) has the
/// parser's own message, which may quote claim values, so keep it out of logs unless the
/// claims are not confidential.
pub struct ClaimsTypeError {
    error: serde_json::Error,
    /// Where in the claims, rendered safely (`profile.age`, `roles[2]`); `None` at the top.
    path: Option<String>,
}

impl ClaimsTypeError {
    /// A serializer's error (sealing): no position in any JSON.
    pub(crate) fn sealing(error: serde_json::Error) -> Self {
        Self { error, path: None }
    }

    /// A parse of `json` as `T` failed with `error`: parses it again, on this error path
    /// only, to learn which field.
    pub(crate) fn opening<T: serde::de::DeserializeOwned>(
        error: serde_json::Error,
        json: &str,
    ) -> Self {
        let mut de = serde_json::Deserializer::from_str(json);
        let path = match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => safe_path(e.path()),
            Ok(_) => None,
        };
        Self { error, path }
    }

    /// The (de)serializer's message. It can include claim values.
    #[must_use]
    pub fn detail(&self) -> String {
        self.error.to_string()
    }

    /// Where in the claims the mismatch is (`profile.age`, `roles[2]`), if below the top
    /// level; segments that do not read as identifiers are shown as `?`.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// What kind of mismatch, in words that never quote a value: ``missing field `x` ``,
    /// `a string where the type expects u64`.
    #[must_use]
    pub fn mismatch(&self) -> String {
        let text = self.error.to_string();
        // serde_json appends " at line L column C".
        let message = match text.rfind(" at line ") {
            Some(i) => &text[..i],
            None => &text,
        };
        describe(message)
    }

    /// 1-based line of the problem in the claims JSON (0 when sealing).
    #[must_use]
    pub fn line(&self) -> usize {
        self.error.line()
    }

    /// 1-based column of the problem in the claims JSON (0 when sealing).
    #[must_use]
    pub fn column(&self) -> usize {
        self.error.column()
    }
}

/// A name that came from the token, shown only if it reads as an identifier.
fn safe_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(name)
}

fn safe_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(safe_name(key).unwrap_or("?"));
            }
            // serde_path_to_error's segments are open-ended: anything else is unnamed.
            _ => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// serde's message, kept only where it names what the type declares.
fn describe(message: &str) -> String {
    let backticked = |rest: &str| rest.split('`').nth(1).map(str::to_owned);
    let expected = |rest: &str| {
        rest.rsplit_once(", expected ")
            .map(|(_, e)| e.to_owned())
            .unwrap_or_default()
    };
    if let Some(rest) = message.strip_prefix("missing field ") {
        // The type's own field name.
        return match backticked(rest) {
            Some(name) => format!("missing field `{name}`"),
            None => "a missing field".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return match backticked(rest) {
            Some(name) => format!("duplicate field `{name}`"),
            None => "a duplicate field".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        // The token's name: shown only if it reads as one.
        let name = backticked(rest);
        return match name.as_deref().and_then(safe_name) {
            Some(name) => format!("unknown field `{name}` (the type denies unknown fields)"),
            None => "an unknown field (the type denies unknown fields)".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        // The variant is a value: only what the type expects.
        return format!(
            "a value that is none of the variants, expected {}",
            expected(rest)
        );
    }
    for (prefix, what) in [("invalid type: ", "a"), ("invalid value: ", "a wrong")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // `string "alice"`, `integer `5``, `map`: the words before any quote.
            let found = rest.split(['"', '`', ',']).next().unwrap_or("").trim();
            let found = if found.is_empty() { "value" } else { found };
            return format!("{what} {found} where the type expects {}", expected(rest));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        return format!("a wrong number of items, expected {}", expected(rest));
    }
    // A message of the type's own `Deserialize` (it could say anything).
    "a value the type's deserializer refused".to_owned()
}

impl fmt::Debug for ClaimsTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} (ClaimsTypeError)")
    }
}

impl fmt::Display for ClaimsTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("claims do not fit the expected type: ")?;
        if let Some(path) = &self.path {
            write!(f, "at `{path}`: ")?;
        }
        f.write_str(&self.mismatch())?;
        if self.line() > 0 {
            write!(f, " (line {}, column {})", self.line(), self.column())?;
        }
        Ok(())
    }
}

impl StdError for ClaimsTypeError {}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "token is {len} bytes, over the {max}-byte limit")
            }
            Self::SegmentCount { found } => write!(
                f,
                "token has {found} segments; a compact JWE has exactly 5 separated by '.'"
            ),
            Self::EncryptedKeyNotEmpty => {
                f.write_str("token's encrypted key is not empty; alg \"dir\" requires it empty")
            }
            Self::Base64 { segment } => {
                write!(f, "token's {segment} is not canonical unpadded base64url")
            }
            Self::HeaderNotJson => f.write_str(
                "token's protected header is not a JSON object with string alg/enc/kid/typ",
            ),
            Self::MissingHeader { field } => {
                write!(f, "token's protected header has no {field:?}")
            }
            Self::UnsupportedAlg { found } => {
                write!(f, "token's alg is {found:?}; only \"dir\" is accepted")
            }
            Self::Compressed => f.write_str("token's header has \"zip\"; compression is refused"),
            Self::Critical => {
                f.write_str("token's header has \"crit\"; no critical extensions are supported")
            }
            Self::UnknownKid { kid } => write!(f, "no key in the ring has kid {kid:?}"),
            Self::EncMismatch {
                kid,
                expected,
                found,
            } => write!(
                f,
                "token's enc is {found:?} but key {kid:?} is for {expected}"
            ),
            Self::PurposeMismatch { expected, found } => {
                let show =
                    |p: &Option<String>| p.as_ref().map_or("none".to_owned(), |p| format!("{p:?}"));
                write!(
                    f,
                    "token was sealed for purpose {}, expected {}",
                    show(found),
                    show(expected)
                )
            }
            Self::IvLength { len } => write!(f, "token's IV is {len} bytes, not 12"),
            Self::TagLength { len } => write!(f, "token's tag is {len} bytes, not 16"),
            Self::Decrypt => f.write_str("token could not be decrypted"),
            Self::ClaimsNotObject => f.write_str("token's payload is not a JSON object"),
            Self::ClaimsType(e) => write!(f, "token's {e}"),
        }
    }
}

impl StdError for OpenError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::ClaimsType(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a token could not be sealed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SealError {
    /// The key has sealed [`SEAL_LIMIT`](crate::SEAL_LIMIT) tokens; rotate to a new key.
    KeyExhausted {
        /// The key's kid.
        kid: String,
    },
    /// No key in the ring has the requested kid.
    UnknownKid {
        /// The kid asked for.
        kid: String,
    },
    /// The requested key is decrypt-only.
    DecryptOnly {
        /// The key's kid.
        kid: String,
    },
    /// The claims could not be serialized as a JSON object.
    Claims(ClaimsTypeError),
    /// The claims serialized to something other than a JSON object.
    ClaimsNotObject,
    /// The sealed token would exceed the configured limit, so it could never be opened.
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The AEAD refused the input (only possible for absurdly large payloads).
    Encrypt,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyExhausted { kid } => write!(
                f,
                "key {kid:?} has sealed 2^32 tokens, the random-IV limit; rotate to a new key"
            ),
            Self::UnknownKid { kid } => write!(f, "no key in the ring has kid {kid:?}"),
            Self::DecryptOnly { kid } => write!(f, "key {kid:?} is decrypt-only"),
            Self::Claims(_) => f.write_str("claims could not be serialized to JSON"),
            Self::ClaimsNotObject => f.write_str("claims did not serialize to a JSON object"),
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "sealed token would be {len} bytes, over the {max}-byte limit"
                )
            }
            Self::Encrypt => f.write_str("payload could not be encrypted"),
        }
    }
}

impl StdError for SealError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Claims(e) => Some(e),
            _ => None,
        }
    }
}

/// Why valid, decrypted claims are not acceptable now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// `now >= exp + leeway`.
    Expired {
        /// The token's `exp`.
        exp: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The leeway allowed.
        leeway: Duration,
    },
    /// `now + leeway < nbf`.
    NotYetValid {
        /// The token's `nbf`.
        nbf: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The leeway allowed.
        leeway: Duration,
    },
    /// `iss` is not the expected issuer. The token's value is not kept: claims are
    /// confidential, and errors end up in logs.
    IssuerMismatch {
        /// The issuer expected (from the configuration).
        expected: String,
    },
    /// `aud` has none of the expected audiences. The token's values are not kept.
    AudienceMismatch {
        /// The audiences accepted (from the configuration).
        expected: Vec<String>,
    },
    /// A required claim is absent.
    MissingClaim {
        /// Which one.
        claim: Claim,
    },
    /// The session began (`auth_time`) longer ago than the absolute lifetime allows.
    AbsoluteLifetimeExceeded {
        /// The token's `auth_time`.
        auth_time: UnixTime,
        /// The absolute lifetime.
        max: Duration,
        /// The time of the check.
        now: UnixTime,
    },
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { exp, now, leeway } => write!(
                f,
                "token expired at {exp} (now {now}, leeway {}s)",
                leeway.as_secs()
            ),
            Self::NotYetValid { nbf, now, leeway } => write!(
                f,
                "token not valid before {nbf} (now {now}, leeway {}s)",
                leeway.as_secs()
            ),
            Self::IssuerMismatch { expected } => {
                write!(f, "token issuer is not the expected {expected:?}")
            }
            Self::AudienceMismatch { expected } => {
                write!(f, "token audience has none of the expected {expected:?}")
            }
            Self::MissingClaim { claim } => write!(f, "token has no {:?} claim", claim.name()),
            Self::AbsoluteLifetimeExceeded {
                auth_time,
                max,
                now,
            } => write!(
                f,
                "session began at {auth_time}, over its {}s absolute lifetime (now {now})",
                max.as_secs()
            ),
        }
    }
}

impl StdError for ValidationError {}

/// The cause a store gives when its backend did not answer or took nothing.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A revocation that is not well-formed (an empty `sid`, a moment past the year 9999):
/// refused before anything changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidRevocation {
    reason: &'static str,
}

impl InvalidRevocation {
    pub(crate) const fn new(reason: &'static str) -> Self {
        Self { reason }
    }

    /// What is wrong, e.g. `"empty sid"`.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for InvalidRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid revocation: {}", self.reason)
    }
}

impl StdError for InvalidRevocation {}

/// How a revocation was recorded: what
/// [`RevocationStore::revoke`](crate::RevocationStore::revoke) returns when it succeeded.
///
/// Both are successes: the revocation is in force on this instance at once either way.
#[derive(Debug)]
pub enum Recorded {
    /// Recorded where every instance sees it (this process's memory for a
    /// [`MemoryStore`](crate::MemoryStore), the file for a file store, Redis).
    Stored,
    /// In force on this instance and queued here: the shared backend has not taken it yet
    /// (Redis is down, say). The store re-sends it on its own once the backend answers, and
    /// other instances honour it from then on. Nothing is lost and the caller need not
    /// retry: tell the user they are logged out here.
    Queued {
        /// Whether the queue is on disk (survives a restart of this process).
        durable: bool,
        /// Why the backend did not take it.
        reason: BoxError,
    },
}

impl Recorded {
    /// Whether every instance already sees it.
    #[must_use]
    pub fn is_stored(&self) -> bool {
        matches!(self, Self::Stored)
    }
}

/// Why a revocation was not recorded: nothing is in force anywhere.
///
/// `Debug` reads as `Display` followed by each cause and the variant (see
/// [`debug_report`]), so `?` in `main` prints what to act on.
#[non_exhaustive]
pub enum RevokeError {
    /// The revocation is not well-formed; nothing changed.
    Invalid(InvalidRevocation),
    /// The backend did not answer within the configured time.
    Timeout {
        /// How long it waited.
        after: Duration,
    },
    /// The backend is not reachable or could not save it (Redis is down for a writer
    /// without a mirror, a file that cannot be written).
    Unavailable {
        /// The underlying error.
        source: BoxError,
    },
}

impl From<InvalidRevocation> for RevokeError {
    fn from(e: InvalidRevocation) -> Self {
        Self::Invalid(e)
    }
}

impl From<CheckError> for RevokeError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Timeout { after } => Self::Timeout { after },
            CheckError::Unavailable { source } => Self::Unavailable { source },
        }
    }
}

impl fmt::Display for RevokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => e.fmt(f),
            Self::Timeout { after } => write!(
                f,
                "revocation store did not answer within {after:?}; nothing was recorded"
            ),
            Self::Unavailable { .. } => {
                f.write_str("revocation store is unavailable; nothing was recorded")
            }
        }
    }
}

impl fmt::Debug for RevokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::Invalid(_) => "RevokeError::Invalid",
            Self::Timeout { .. } => "RevokeError::Timeout",
            Self::Unavailable { .. } => "RevokeError::Unavailable",
        };
        debug_report(self, variant, f)
    }
}

impl StdError for RevokeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable { source } => Some(&**source),
            Self::Invalid(_) | Self::Timeout { .. } => None,
        }
    }
}

/// Why a store could not give the authoritative answer
/// ([`RevocationStore::check_authoritative`](crate::RevocationStore::check_authoritative)),
/// or a shared backend could not be reached at all. The layer's policy decides what a
/// renewal does then (refuse, by default).
///
/// `Debug` reads as `Display` followed by each cause and the variant.
#[non_exhaustive]
pub enum CheckError {
    /// The backend did not answer within the configured time.
    Timeout {
        /// How long it waited.
        after: Duration,
    },
    /// The backend is not reachable (e.g. Redis is down).
    Unavailable {
        /// The underlying error.
        source: BoxError,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { after } => {
                write!(f, "revocation store did not answer within {after:?}")
            }
            Self::Unavailable { .. } => f.write_str("revocation store is unavailable"),
        }
    }
}

impl fmt::Debug for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Self::Timeout { .. } => "CheckError::Timeout",
            Self::Unavailable { .. } => "CheckError::Unavailable",
        };
        debug_report(self, variant, f)
    }
}

impl StdError for CheckError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable { source } => Some(&**source),
            Self::Timeout { .. } => None,
        }
    }
}

/// This store cannot watch sessions
/// ([`RevocationStore::watch`](crate::RevocationStore::watch)'s default; every store of
/// this project can).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchUnsupported;

impl fmt::Display for WatchUnsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this revocation store cannot watch sessions")
    }
}

impl StdError for WatchUnsupported {}

/// Attacker- or operator-supplied strings go into errors shortened, so an error never
/// carries a whole config value.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::claims::Claims;
    use crate::jwe::TokenOptions;
    use crate::lifetimes::Lifetimes;
    use crate::ring::KeyRing;
    use crate::time::UnixTime;
    use crate::validation::Validation;

    /// Looks like key material or a confidential claim; must never be shown.
    const SECRET: &str = "qmXz6Qh2Vb0Dk1SWkq1X4Pj9Lw8Rbs0Y7Ucv3T2aHfE";

    fn assert_hidden(what: &str, e: &(impl std::fmt::Display + std::fmt::Debug)) {
        let (display, debug) = (e.to_string(), format!("{e:?}"));
        for text in [&display, &debug] {
            assert!(!text.contains(SECRET), "{what}: {text}");
            assert!(!text.contains(&SECRET[..12]), "{what}: {text}");
        }
    }

    /// What `fn main() -> Result<(), Box<dyn Error>>` prints for a `?` on a key error is
    /// its `Debug`: it must read like the `Display`, and still name the variant.
    #[test]
    fn key_error_debug_reads_like_display() {
        let e = crate::KeyError::EnvMissing {
            var: "JWE_SESSION_KEYS".into(),
        };
        let debug = format!("{e:?}");
        assert!(debug.starts_with(&e.to_string()), "{debug}");
        assert!(debug.ends_with("(KeyError::EnvMissing)"), "{debug}");
        let boxed: Box<dyn std::error::Error> = Box::new(crate::KeyError::TooShort {
            kid: "k1".into(),
            bits: 64,
        });
        assert_eq!(
            format!("{boxed:?}"),
            format!("{boxed} (KeyError::TooShort)")
        );
    }

    #[test]
    fn key_ring_deserialize_errors_never_quote_the_key() {
        let docs = [
            format!(r#"{{"keys":["{SECRET}"]}}"#),
            format!(r#"{{"keys":["{{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"{SECRET}\"}}"]}}"#),
            format!(
                r#"{{"keys":[{{"kty":"oct","kid":"a","k":"{SECRET}","key_ops":"{SECRET}"}}]}}"#
            ),
            format!(
                r#"{{"keys":[{{"kty":"oct","kid":"a","k":"{SECRET}","extra":1}}],"active_kid":5}}"#
            ),
            format!(r#"{{"keys":{{"k":"{SECRET}"}}}}"#),
            format!(r#"["{SECRET}"]"#),
            format!(r#""{SECRET}""#),
        ];
        for doc in &docs {
            match serde_json::from_str::<KeyRing>(doc) {
                Ok(_) => panic!("accepted {doc}"),
                Err(e) => assert_hidden(doc, &e),
            }
        }
    }

    #[derive(Serialize, Deserialize, Debug)]
    struct App {
        roles: Vec<String>,
    }

    #[derive(Serialize)]
    struct Wrong {
        roles: &'static str,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    enum Tier {
        Gold,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Tiered {
        roles: Tier,
    }

    #[test]
    fn claims_type_errors_never_quote_claim_values() {
        let ring = KeyRing::generate();
        let opts = TokenOptions::new();
        let mut claims = Claims::new(Wrong { roles: SECRET });
        Lifetimes::default().start(&mut claims, "alice", UnixTime::from_secs(1_800_000_000));
        let token = ring.seal(&claims, &opts).unwrap();
        let e = ring.open::<Claims<App>>(token.as_str(), &opts).unwrap_err();
        assert!(matches!(e, super::OpenError::ClaimsType(_)), "{e:?}");
        assert_hidden("wrong type", &e);
        let e = ring
            .open::<Claims<Tiered>>(token.as_str(), &opts)
            .unwrap_err();
        assert_hidden("unknown variant", &e);
    }

    /// A claims type change (a field added, a type changed) must say which field and how,
    /// never the value: what an app deploying a new claims type sees for old tokens.
    #[test]
    fn claims_type_errors_name_the_field_and_the_mismatch() {
        #[derive(Serialize)]
        struct Old {
            roles: Vec<String>,
            profile: OldProfile,
        }
        #[derive(Serialize)]
        struct OldProfile {
            age: &'static str,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Renamed {
            display_name: String,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Typed {
            profile: Profile,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Profile {
            age: u64,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Listed {
            roles: Vec<u8>,
        }
        let ring = KeyRing::generate();
        let opts = TokenOptions::new();
        let mut claims = Claims::new(Old {
            roles: vec![SECRET.into()],
            profile: OldProfile { age: SECRET },
        });
        Lifetimes::default().start(&mut claims, "alice", UnixTime::from_secs(1_800_000_000));
        let token = ring.seal(&claims, &opts).unwrap();
        let open_as = |e: super::OpenError| match e {
            super::OpenError::ClaimsType(e) => e,
            other => panic!("{other:?}"),
        };
        let e = open_as(
            ring.open::<Claims<Renamed>>(token.as_str(), &opts)
                .unwrap_err(),
        );
        assert!(
            e.to_string().contains("missing field `display_name`"),
            "{e}"
        );
        assert_hidden("missing", &e);
        let e = open_as(
            ring.open::<Claims<Typed>>(token.as_str(), &opts)
                .unwrap_err(),
        );
        assert_eq!(e.path(), Some("profile.age"), "{e}");
        assert!(
            e.to_string()
                .contains("at `profile.age`: a string where the type expects u64"),
            "{e}"
        );
        assert_hidden("typed", &e);
        let e = open_as(
            ring.open::<Claims<Listed>>(token.as_str(), &opts)
                .unwrap_err(),
        );
        assert_eq!(e.path(), Some("roles[0]"), "{e}");
        assert_hidden("listed", &e);
        // The layer's message carries it too.
        let e = ring
            .open::<Claims<Renamed>>(token.as_str(), &opts)
            .unwrap_err();
        assert!(
            e.to_string().contains("missing field `display_name`"),
            "{e}"
        );
    }

    #[test]
    fn the_mismatch_never_quotes_what_came_from_the_token() {
        for (message, shown) in [
            ("missing field `name`", "missing field `name`"),
            (
                "invalid type: string \"hunter2\", expected u64",
                "a string where the type expects u64",
            ),
            (
                "invalid value: integer `300`, expected u8",
                "a wrong integer where the type expects u8",
            ),
            (
                "unknown variant `hunter2`, expected `Gold` or `Silver`",
                "a value that is none of the variants, expected `Gold` or `Silver`",
            ),
            (
                "unknown field `who@example.com`, expected `a`",
                "an unknown field (the type denies unknown fields)",
            ),
            ("custom: hunter2", "a value the type's deserializer refused"),
        ] {
            assert_eq!(super::describe(message), shown);
        }
    }

    #[test]
    fn store_errors_read_as_sentences_with_their_cause() {
        let e = super::CheckError::Unavailable {
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        let debug = format!("{e:?}");
        assert!(
            debug.starts_with("revocation store is unavailable: connection refused"),
            "{debug}"
        );
        assert!(debug.ends_with("(CheckError::Unavailable)"), "{debug}");
        // A revoke that failed says nothing was recorded, and keeps the cause.
        let e = super::RevokeError::from(e);
        let debug = format!("{e:?}");
        assert!(
            debug.starts_with(
                "revocation store is unavailable; nothing was recorded: connection refused"
            ),
            "{debug}"
        );
        assert!(debug.ends_with("(RevokeError::Unavailable)"), "{debug}");
        let e = super::RevokeError::from(super::CheckError::Timeout {
            after: std::time::Duration::from_millis(250),
        });
        assert!(matches!(e, super::RevokeError::Timeout { .. }), "{e:?}");
        assert!(e.to_string().contains("250ms"), "{e}");
        let e = crate::Revocation::Session {
            sid: String::new(),
            until: UnixTime::from_secs(1),
        }
        .check()
        .unwrap_err();
        assert_eq!(e.reason(), "empty sid");
        let e = super::RevokeError::from(e);
        assert_eq!(e.to_string(), "invalid revocation: empty sid");
    }

    #[test]
    fn a_bare_jwk_where_a_set_belongs_says_so() {
        let jwk = r#"{"kty":"oct","kid":"k1","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}"#;
        let e = KeyRing::from_jwks(jwk).unwrap_err();
        assert!(matches!(e, crate::KeyError::NotASet), "{e:?}");
        assert!(e.to_string().contains("keygen --set"), "{e}");
        let e = crate::KeyError::EnvMissing {
            var: "JWE_SESSION_KEYS".into(),
        };
        assert!(e.to_string().contains("jwe-session keygen --set"), "{e}");
    }

    #[test]
    fn validation_errors_never_quote_claim_values() {
        let now = UnixTime::from_secs(1_800_000_000);
        let mut claims = Claims::new(());
        Lifetimes::default().start(&mut claims, "alice", now);
        claims.iss = Some(SECRET.to_owned());
        claims.aud = Some(crate::claims::Audience::one(SECRET));
        let e = Validation::new()
            .issuer("https://app.example")
            .validate_at(&claims, now)
            .unwrap_err();
        assert_hidden("issuer", &e);
        let e = Validation::new()
            .audience(["web"])
            .validate_at(&claims, now)
            .unwrap_err();
        assert_hidden("audience", &e);
    }
}
