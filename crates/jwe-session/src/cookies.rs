//! Cookie transport: one token per cookie, or split across numbered chunk cookies.
//!
//! # Format
//!
//! A token that fits in one cookie is the cookie's value as it is: a plain compact JWE,
//! readable by anything that reads the cookie. A longer token is split across `NAME`,
//! `NAME.1`, … `NAME.{n-1}`:
//!
//! - `NAME` = `~{n}~{id}~{part 0}`, where `n` is the number of cookies (2 to 16, plain
//!   digits) and `id` the first 8 characters of the token's last segment (its tag);
//! - `NAME.{i}` = `{id}~{part i}`.
//!
//! `~` never occurs in a compact JWE (base64url and `.`), so a main cookie says whether it
//! is whole or the head of a chunked token, and how many chunks belong to it. Reading
//! therefore never glues chunks onto a token they do not belong to: a whole token beside
//! leftover chunks opens and the leftovers are cleared; chunks of another token (a
//! different `id`) or missing chunks make the cookie unreadable, never a mis-assembled
//! token. Chunk numbers are ASCII digits without a leading zero; any other name (such as
//! `NAME.+1` or `NAME.01`) is not ours and is left alone.

use std::borrow::Cow;
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// What browsers are sure to keep for one cookie, name and attributes included
/// (RFC 6265 §6.1 asks for at least 4096 bytes; a margin stays for proxies that count
/// differently).
const COOKIE_BUDGET: usize = 4000;

/// The most cookies one token may be split across.
pub(crate) const MAX_CHUNKS: usize = 16;

/// Separates the fields of a chunked cookie's value; never part of a compact JWE.
const SEP: u8 = b'~';

/// Length of the id that ties chunks to their main cookie.
const ID_LEN: usize = 8;

/// The most bytes the chunk framing adds to one cookie's value: `~16~` + id + `~`.
const FRAME_MAX: usize = 4 + ID_LEN + 1;

#[derive(Debug, Clone)]
pub(crate) struct CookieSettings {
    name: String,
    domain: Option<String>,
    path: String,
    same_site: SameSite,
    secure: bool,
    max_chunks: usize,
    /// How many token bytes the main cookie holds when the token is not split.
    whole_len: usize,
    /// How many token bytes one cookie of a split token holds, framing and the longest
    /// name and attributes taken into account.
    chunk_len: usize,
}

/// Why the cookies the request carried do not make a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// They hold more than the token limit.
    TooLong,
    /// The main cookie's chunk framing is malformed or names more chunks than allowed.
    BadFrame,
    /// A chunk the main cookie names is missing or belongs to another token.
    ChunkMismatch,
    /// A value is not UTF-8 (our tokens are ASCII).
    NotText,
}

impl Unreadable {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::TooLong => "session cookies exceed the token limit",
            Self::BadFrame => "session cookie has a malformed chunk header",
            Self::ChunkMismatch => "session cookie chunks are missing or from another token",
            Self::NotText => "session cookie is not text",
        }
    }
}

/// The session as the request carried it in cookies.
#[derive(Debug, Default)]
pub(crate) struct CookieToken<'h> {
    /// The token, if the cookies make one: borrowed from the header when it came in one
    /// cookie, reassembled when it came in chunks.
    pub(crate) token: Option<Cow<'h, str>>,
    /// Which of our cookies (bit 0 the main one, bit i chunk i) the request carried.
    pub(crate) present: u32,
    /// Chunks the request carried that are not part of its token (left over from an
    /// earlier, longer token, or without a main cookie): to be cleared.
    pub(crate) stale: u32,
    /// The cookies are ours but make no token.
    pub(crate) unreadable: Option<Unreadable>,
}

impl CookieSettings {
    pub(crate) fn new(
        name: String,
        domain: Option<String>,
        path: String,
        same_site: SameSite,
        secure: bool,
        max_chunks: usize,
    ) -> Self {
        let mut s = Self {
            name,
            domain,
            path,
            same_site,
            secure,
            max_chunks,
            whole_len: 0,
            chunk_len: 0,
        };
        // Measure the cookies with an empty value and the longest Max-Age.
        let longest = Duration::from_secs(u32::MAX.into());
        let main = s
            .build(&s.name, String::new(), Some(longest))
            .to_string()
            .len();
        let last = s
            .build(
                &s.chunk_name(max_chunks.saturating_sub(1)),
                String::new(),
                Some(longest),
            )
            .to_string()
            .len();
        s.whole_len = COOKIE_BUDGET.saturating_sub(main);
        s.chunk_len = COOKIE_BUDGET.saturating_sub(last.max(main) + FRAME_MAX);
        s
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The most token bytes the cookies can carry.
    pub(crate) fn capacity(&self) -> usize {
        if self.max_chunks <= 1 {
            self.whole_len
        } else {
            self.whole_len.max(self.chunk_len * self.max_chunks)
        }
    }

    fn chunk_name(&self, i: usize) -> String {
        if i == 0 {
            self.name.clone()
        } else {
            format!("{}.{i}", self.name)
        }
    }

    /// Which of our cookies `name` is: `0` for the main one, `i` for chunk `i`.
    fn index_of(&self, name: &[u8]) -> Option<usize> {
        let rest = name.strip_prefix(self.name.as_bytes())?;
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.strip_prefix(b".")?;
        let i = parse_count(digits)?;
        (1..self.max_chunks).contains(&i).then_some(i)
    }

    /// Reads our cookies from the request's `Cookie` headers. The headers are scanned as
    /// bytes: other cookies may hold anything (`lang=français`) and are only skipped. A
    /// cookie that appears twice (set for two paths, say) counts once, the first one, as
    /// browsers send the most specific first.
    pub(crate) fn read<'h>(&self, headers: &'h HeaderMap, max_len: usize) -> CookieToken<'h> {
        // `max_chunks` is at most MAX_CHUNKS (checked when the layer is built): no allocation.
        let mut parts: [Option<&'h [u8]>; MAX_CHUNKS] = [None; MAX_CHUNKS];
        let mut out = CookieToken::default();
        for value in headers.get_all(COOKIE) {
            for (name, value) in pairs(value.as_bytes()) {
                let Some(index) = self.index_of(name) else {
                    continue;
                };
                out.present |= 1 << index;
                if parts[index].is_none() {
                    parts[index] = Some(value);
                }
            }
        }
        let Some(main) = parts[0] else {
            // Chunks without their main cookie are debris.
            out.stale = out.present;
            return out;
        };
        match self.assemble(main, &parts, max_len) {
            Ok((token, count)) => {
                out.stale = out.present & !((1u32 << count) - 1);
                out.token = Some(token);
            }
            Err(why) => out.unreadable = Some(why),
        }
        out
    }

    /// The token the main cookie and its chunks make, and how many cookies it took.
    fn assemble<'h>(
        &self,
        main: &'h [u8],
        parts: &[Option<&'h [u8]>; MAX_CHUNKS],
        max_len: usize,
    ) -> Result<(Cow<'h, str>, usize), Unreadable> {
        let Some(framed) = main.strip_prefix(&[SEP]) else {
            if main.len() > max_len {
                return Err(Unreadable::TooLong);
            }
            let token = std::str::from_utf8(main).map_err(|_| Unreadable::NotText)?;
            return Ok((Cow::Borrowed(token), 1));
        };
        // ~{n}~{id}~{part 0}
        let mut fields = framed.splitn(3, |b| *b == SEP);
        let (Some(n), Some(id), Some(first)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(Unreadable::BadFrame);
        };
        let count = parse_count(n).ok_or(Unreadable::BadFrame)?;
        if !(2..=self.max_chunks).contains(&count) || id.is_empty() || id.len() > ID_LEN {
            return Err(Unreadable::BadFrame);
        }
        let mut rest: [&[u8]; MAX_CHUNKS] = [&[]; MAX_CHUNKS];
        let mut len = first.len();
        for (i, slot) in rest.iter_mut().enumerate().take(count).skip(1) {
            let part = parts[i]
                .and_then(|p| p.strip_prefix(id))
                .and_then(|p| p.strip_prefix(&[SEP]))
                .ok_or(Unreadable::ChunkMismatch)?;
            len += part.len();
            *slot = part;
        }
        if len > max_len {
            return Err(Unreadable::TooLong);
        }
        let mut token = String::with_capacity(len);
        for part in std::iter::once(first).chain(rest[1..count].iter().copied()) {
            token.push_str(std::str::from_utf8(part).map_err(|_| Unreadable::NotText)?);
        }
        Ok((Cow::Owned(token), count))
    }

    /// Writes `token` (split if it must be) and clears chunks the request had that the new
    /// token no longer uses.
    pub(crate) fn write(
        &self,
        headers: &mut HeaderMap,
        token: &str,
        max_age: Option<Duration>,
        present: u32,
    ) {
        if token.len() <= self.whole_len || self.max_chunks <= 1 {
            append(headers, &self.build(&self.name, token.to_owned(), max_age));
            self.clear_from(headers, 1, present);
            return;
        }
        let chunks = split(token, self.chunk_len);
        let tag = token.rsplit('.').next().unwrap_or(token);
        let id = &tag[..tag.len().min(ID_LEN)];
        for (i, part) in chunks.iter().enumerate() {
            let value = if i == 0 {
                format!("~{}~{id}~{part}", chunks.len())
            } else {
                format!("{id}~{part}")
            };
            append(headers, &self.build(&self.chunk_name(i), value, max_age));
        }
        self.clear_from(headers, chunks.len(), present);
    }

    /// Clears exactly the cookies in `mask` (bit 0 the main one, bit i chunk i).
    pub(crate) fn clear_only(&self, headers: &mut HeaderMap, mask: u32) {
        self.clear_from(headers, 0, mask);
    }

    fn clear_from(&self, headers: &mut HeaderMap, first: usize, present: u32) {
        for i in first..self.max_chunks {
            if present & (1 << i) != 0 {
                let c = self.build(&self.chunk_name(i), String::new(), Some(Duration::ZERO));
                append(headers, &c);
            }
        }
    }

    /// The main cookie's attributes as a `Set-Cookie` line gives them, without `Max-Age`
    /// (`Path=/; Secure; HttpOnly; SameSite=Lax`): what a DBSC credential names.
    pub(crate) fn attributes(&self) -> String {
        let full = self.build(&self.name, String::new(), None).to_string();
        // `name=; attr; attr`: everything after the first "; ".
        full.split_once("; ")
            .map_or(String::new(), |(_, a)| a.to_owned())
    }

    /// One cookie; without `max_age` a browser-session cookie (dropped when the browser
    /// closes).
    fn build(&self, name: &str, value: String, max_age: Option<Duration>) -> Cookie<'static> {
        let mut b = Cookie::build((name.to_owned(), value))
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .path(self.path.clone());
        if let Some(max_age) = max_age {
            b = b.max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ));
        }
        if let Some(d) = &self.domain {
            b = b.domain(d.clone());
        }
        b.build()
    }
}

/// A chunk number or count: one or two ASCII digits without a leading zero. `usize`'s
/// parser would also take `+1`.
fn parse_count(digits: &[u8]) -> Option<usize> {
    match digits {
        [d @ b'1'..=b'9'] => Some(usize::from(d - b'0')),
        [a @ b'1'..=b'9', b @ b'0'..=b'9'] => {
            Some(usize::from(a - b'0') * 10 + usize::from(b - b'0'))
        }
        _ => None,
    }
}

fn split(token: &str, chunk_len: usize) -> Vec<&str> {
    // Tokens are ASCII (base64url and dots), so any byte offset is a char boundary.
    let chunk_len = chunk_len.max(1);
    let mut out = Vec::with_capacity(token.len() / chunk_len + 1);
    let mut rest = token;
    while rest.len() > chunk_len {
        let (a, b) = rest.split_at(chunk_len);
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

/// The `name=value` pairs of a `Cookie` header value, in order, as bytes. As the `cookie`
/// crate reads them: pairs are split on `;`, whitespace around names and values is
/// dropped, a pair without `=` or with an empty name is skipped, and values are taken raw
/// (no percent-decoding). Bytes, not `str`: a header with one non-ASCII cookie must not
/// hide the others. Written out because this runs on every request and the general parser
/// cost more than the rest of the layer but the token itself.
pub(crate) fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = Some(header);
    std::iter::from_fn(move || loop {
        let h = rest?;
        let pair = match find_semicolon(h) {
            Some(i) => {
                rest = h.get(i + 1..);
                &h[..i]
            }
            None => {
                rest = None;
                h
            }
        };
        let Some(eq) = pair.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (name, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
        if !name.is_empty() {
            return Some((name, value));
        }
    })
}

/// Where the first `;` is: the session token is most of a typical `Cookie` header, and a
/// byte-by-byte search cost more than the rest of reading it (memchr compares 16 or 32
/// bytes at a time where the CPU can).
fn find_semicolon(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b';', bytes)
}

fn append(headers: &mut HeaderMap, c: &Cookie<'_>) {
    // Cookie values here are base64url, dots and `~`, names are checked tokens: always a
    // valid header value. Should that ever change, dropping the header is safer than a panic.
    if let Ok(mut v) = HeaderValue::try_from(c.to_string()) {
        v.set_sensitive(true);
        headers.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn pairs_are_read_as_the_cookie_crate_reads_them(
            header in "([ ]?[a-z.]{0,4}[ ]?(=[ ]?[a-z=\"]{0,5}[ ]?)?;?){0,6}"
        ) {
            let ours: Vec<(&[u8], &[u8])> = pairs(header.as_bytes()).collect();
            let theirs: Vec<(String, String)> = Cookie::split_parse(header.as_str())
                .flatten()
                .map(|c| (c.name().to_owned(), c.value_raw().unwrap_or_default().to_owned()))
                .collect();
            let theirs: Vec<(&[u8], &[u8])> =
                theirs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn semicolons_are_found_where_a_plain_search_finds_them(
            bytes in proptest::collection::vec(
                prop_oneof![4 => Just(b';'), 1 => Just(b';' ^ 0x80), 1 => Just(b':'), 30 => any::<u8>()],
                0..80,
            )
        ) {
            prop_assert_eq!(find_semicolon(&bytes), bytes.iter().position(|b| *b == b';'));
        }

        /// Whatever the length, what `write` sets comes back whole from `read`, and the
        /// chunks a longer token left behind are cleared or reported stale.
        #[test]
        fn every_length_round_trips(len in 1usize..19_000, before in 0u32..32) {
            let s = settings(5);
            prop_assume!(len <= s.capacity());
            let token = token_of_len(len);
            let mut h = HeaderMap::new();
            s.write(&mut h, &token, Some(Duration::from_secs(60)), before);
            let written = set_cookies(&h);
            for c in &written {
                prop_assert!(c.len() <= COOKIE_BUDGET, "{} bytes", c.len());
            }
            let request = as_request(&written);
            let back = s.read(&request, usize::MAX);
            prop_assert_eq!(back.token.as_deref(), Some(token.as_str()));
            prop_assert_eq!(back.stale, 0);
            prop_assert_eq!(back.unreadable, None);
        }

        /// No Cookie header, however hostile, panics the reader or yields a token longer
        /// than the limit.
        #[test]
        fn reading_anything_is_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = settings(3);
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.insert(COOKIE, v);
            }
            let t = s.read(&h, 40);
            prop_assert!(t.token.as_ref().is_none_or(|t| t.len() <= 40));
        }
    }

    /// A token-shaped string: base64url segments and dots, a 22-character tag last.
    fn token_of_len(len: usize) -> String {
        let body: String = (0..len.saturating_sub(23))
            .map(|i| {
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i % 64],
                )
            })
            .collect();
        let tag: String = format!("{:0>22}", len).chars().rev().collect();
        let mut t = format!("{body}.{tag}");
        t.truncate(len);
        t
    }

    fn settings(max_chunks: usize) -> CookieSettings {
        CookieSettings::new(
            "session".into(),
            None,
            "/".into(),
            SameSite::Lax,
            true,
            max_chunks,
        )
    }

    fn set_cookies(h: &HeaderMap) -> Vec<String> {
        h.get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn pairs_of(set: &[String]) -> Vec<String> {
        set.iter()
            .map(|s| Cookie::parse(s.as_str()).unwrap())
            .filter(|c| !c.value().is_empty())
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect()
    }

    fn header(pairs: &[String]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::try_from(pairs.join("; ")).unwrap());
        h
    }

    fn as_request(set: &[String]) -> HeaderMap {
        header(&pairs_of(set))
    }

    fn chunked(s: &CookieSettings, len: usize) -> (String, Vec<String>) {
        let token = token_of_len(len);
        let mut h = HeaderMap::new();
        s.write(&mut h, &token, Some(Duration::from_secs(60)), 0);
        (token, pairs_of(&set_cookies(&h)))
    }

    #[test]
    fn every_written_cookie_fits_the_budget() {
        let s = settings(5);
        let token = token_of_len(s.capacity());
        let mut h = HeaderMap::new();
        s.write(&mut h, &token, Some(Duration::from_secs(86_400)), 0);
        let written = set_cookies(&h);
        assert_eq!(written.len(), 5);
        for c in &written {
            assert!(c.len() <= COOKIE_BUDGET, "{} bytes", c.len());
            assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Lax"));
        }
        assert!(written[0].starts_with("session=~5~"), "{}", written[0]);
        let request = as_request(&written);
        let back = s.read(&request, usize::MAX);
        assert_eq!(back.token.as_deref(), Some(token.as_str()));
        assert_eq!(back.present, 0b11111);
        assert!(h.get_all(SET_COOKIE).iter().all(HeaderValue::is_sensitive));
        // One byte more cannot be carried.
        assert!(s.capacity() < 5 * COOKIE_BUDGET);
    }

    #[test]
    fn a_token_that_fits_one_cookie_is_written_as_it_is() {
        let s = settings(5);
        let token = token_of_len(s.whole_len);
        let mut h = HeaderMap::new();
        s.write(&mut h, &token, Some(Duration::from_secs(60)), 0);
        let written = set_cookies(&h);
        assert_eq!(written.len(), 1);
        assert!(written[0].starts_with(&format!("session={token};")));
        assert!(written[0].len() <= COOKIE_BUDGET);
    }

    #[test]
    fn shrinking_clears_stale_chunks() {
        let s = settings(5);
        let mut h = HeaderMap::new();
        s.write(&mut h, "small", Some(Duration::from_secs(60)), 0b111);
        let written = set_cookies(&h);
        assert_eq!(written.len(), 3);
        assert!(written[0].starts_with("session=small;"));
        assert!(written[1].starts_with("session.1=;") && written[1].contains("Max-Age=0"));
        assert!(written[2].starts_with("session.2=;") && written[2].contains("Max-Age=0"));
    }

    #[test]
    fn clear_covers_exactly_the_given_cookies() {
        let s = settings(5);
        let mut h = HeaderMap::new();
        s.clear_only(&mut h, 0b1011);
        let names: Vec<String> = set_cookies(&h)
            .iter()
            .map(|c| Cookie::parse(c.as_str()).unwrap().name().to_owned())
            .collect();
        assert_eq!(names, ["session", "session.1", "session.3"]);
    }

    #[test]
    fn a_whole_token_beside_orphan_chunks_is_read_and_the_orphans_are_stale() {
        let s = settings(5);
        let (_, old) = chunked(&s, 9_000);
        assert_eq!(old.len(), 3);
        let mut cookies = vec!["session=whole.token".to_owned()];
        cookies.extend(old[1..].iter().cloned());
        let h = header(&cookies);
        let t = s.read(&h, 20_000);
        assert_eq!(t.token.as_deref(), Some("whole.token"));
        assert_eq!(t.stale, 0b110);
        assert!(matches!(t.token, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn chunks_of_another_token_are_never_glued_on() {
        let s = settings(5);
        let (a, ca) = chunked(&s, 9_000);
        let (_, cb) = chunked(&s, 9_001);
        assert_eq!(
            s.read(&header(&ca), 20_000).token.as_deref(),
            Some(a.as_str())
        );
        // A's head, B's chunks: unreadable, never a wrong token.
        let mixed = vec![ca[0].clone(), cb[1].clone(), ca[2].clone()];
        let h = header(&mixed);
        let t = s.read(&h, 20_000);
        assert_eq!(t.token, None);
        assert_eq!(t.unreadable, Some(Unreadable::ChunkMismatch));
        // A chunk missing.
        let h = header(&[ca[0].clone(), ca[2].clone()]);
        let t = s.read(&h, 20_000);
        assert_eq!(t.unreadable, Some(Unreadable::ChunkMismatch));
        // A longer earlier token's extra chunk is stale, not part of the token.
        let (c, cc) = chunked(&s, 4_500);
        assert_eq!(cc.len(), 2);
        let mut both = cc.clone();
        both.push(ca[2].clone());
        let h = header(&both);
        let t = s.read(&h, 20_000);
        assert_eq!(t.token.as_deref(), Some(c.as_str()));
        assert_eq!(t.stale, 0b100);
    }

    #[test]
    fn malformed_frames_are_unreadable() {
        let s = settings(3);
        for main in [
            "session=~",
            "session=~2",
            "session=~2~",
            "session=~+2~abcdefgh~x",
            "session=~02~abcdefgh~x",
            "session=~1~abcdefgh~x",
            "session=~4~abcdefgh~x",
            "session=~2~~x",
            "session=~2~abcdefghi~x",
        ] {
            let h = header(&[main.to_owned(), "session.1=abcdefgh~y".to_owned()]);
            let t = s.read(&h, 100);
            assert_eq!(t.token, None, "{main}");
            assert!(t.unreadable.is_some(), "{main}");
            assert_eq!(t.present, 0b11, "{main}");
        }
        let h = header(&[
            "session=~2~abcdefgh~x".to_owned(),
            "session.1=abcdefgh~y".to_owned(),
        ]);
        assert_eq!(s.read(&h, 100).token.as_deref(), Some("xy"));
    }

    #[test]
    fn chunk_names_are_plain_digits() {
        let s = settings(16);
        for (name, index) in [
            ("session", Some(0)),
            ("session.1", Some(1)),
            ("session.15", Some(15)),
            ("session.16", None),
            ("session.+1", None),
            ("session.01", None),
            ("session.-1", None),
            ("session.1a", None),
            ("session.", None),
            ("session.٣", None),
            ("sessionx", None),
            ("Session", None),
        ] {
            assert_eq!(s.index_of(name.as_bytes()), index, "{name}");
        }
    }

    #[test]
    fn reading_is_bounded_and_ignores_foreign_cookies() {
        let s = settings(3);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_bytes(
                "other=1; lang=fran\u{e7}ais; session=~2~id~aa; sessionx=zz; session.01=no; session.1=id~bb; session.7=cc"
                    .as_bytes(),
            )
            .unwrap(),
        );
        let t = s.read(&h, 100);
        assert_eq!(t.token.as_deref(), Some("aabb"));
        assert_eq!(t.unreadable, None);
        assert_eq!(t.present, 0b11);
        let t = s.read(&h, 3);
        assert_eq!(t.token, None);
        assert_eq!(t.unreadable, Some(Unreadable::TooLong));
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("session.1=bb"));
        let t = s.read(&h, 100);
        assert_eq!(
            t.token, None,
            "chunks without the main cookie are not a token"
        );
        assert_eq!(t.present, 0b10);
        assert_eq!(t.stale, 0b10);
    }

    #[test]
    fn non_ascii_bytes_in_our_cookie_are_unreadable_not_a_panic() {
        let s = settings(3);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe").unwrap(),
        );
        let t = s.read(&h, 100);
        assert_eq!(t.unreadable, Some(Unreadable::NotText));
        assert_eq!(t.present, 1);
    }

    #[test]
    fn duplicate_cookies_take_the_first() {
        let s = settings(2);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("session=first"));
        h.append(COOKIE, HeaderValue::from_static("session=second"));
        // One cookie is read in place, without a copy.
        assert!(matches!(
            s.read(&h, 100).token,
            Some(Cow::Borrowed("first"))
        ));
    }
}
