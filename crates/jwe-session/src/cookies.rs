//! Cookie transport: one token per cookie, or split across numbered chunk cookies.

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

#[derive(Debug, Clone)]
pub(crate) struct CookieSettings {
    name: String,
    domain: Option<String>,
    path: String,
    same_site: SameSite,
    secure: bool,
    max_chunks: usize,
    /// How many value bytes one chunk may hold with the longest name and attributes.
    chunk_len: usize,
}

/// The session as the request carried it in cookies.
#[derive(Debug, Default)]
pub(crate) struct CookieToken<'h> {
    /// The token, if the main cookie was present: borrowed from the header when it came in
    /// one cookie, reassembled when it came in chunks.
    pub(crate) token: Option<Cow<'h, str>>,
    /// Which chunk numbers (`0` is the main cookie) the request had, to clear stale ones.
    pub(crate) present: u32,
    /// The cookies held more than the allowed chunks or token length.
    pub(crate) oversized: bool,
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
            chunk_len: 0,
        };
        // Measure the longest chunk cookie with an empty value and the longest Max-Age.
        let probe = s.build(
            &s.chunk_name(max_chunks.saturating_sub(1)),
            String::new(),
            Duration::from_secs(u32::MAX.into()),
        );
        s.chunk_len = COOKIE_BUDGET.saturating_sub(probe.to_string().len());
        s
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The most token bytes the cookies can carry.
    pub(crate) fn capacity(&self) -> usize {
        self.chunk_len * self.max_chunks
    }

    fn chunk_name(&self, i: usize) -> String {
        if i == 0 {
            self.name.clone()
        } else {
            format!("{}.{i}", self.name)
        }
    }

    /// The main cookie and its chunks, in order. A cookie that appears twice (set for two
    /// paths, say) counts once, the first one, as browsers send the most specific first.
    pub(crate) fn read<'h>(&self, headers: &'h HeaderMap, max_len: usize) -> CookieToken<'h> {
        // `max_chunks` is at most MAX_CHUNKS (checked when the layer is built): no allocation.
        let mut parts: [Option<&str>; MAX_CHUNKS] = [None; MAX_CHUNKS];
        let mut out = CookieToken::default();
        for value in headers.get_all(COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for (name, value) in pairs(value) {
                let Some(rest) = name.strip_prefix(self.name.as_str()) else {
                    continue;
                };
                let index = if rest.is_empty() {
                    0
                } else if let Some(n) = rest.strip_prefix('.') {
                    // Chunk numbers are written without leading zeros; anything else is not ours.
                    match n.parse::<usize>() {
                        Ok(i) if i >= 1 && n.len() <= 2 && !n.starts_with('0') => i,
                        _ => continue,
                    }
                } else {
                    continue;
                };
                if index >= self.max_chunks {
                    continue;
                }
                out.present |= 1 << index;
                if parts[index].is_none() {
                    parts[index] = Some(value);
                }
            }
        }
        let chunks = || parts[..self.max_chunks].iter().map_while(|p| *p);
        let Some(first) = parts[0] else { return out };
        if chunks().map(str::len).sum::<usize>() > max_len {
            out.oversized = true;
            return out;
        }
        out.token = Some(match parts[1] {
            None => Cow::Borrowed(first),
            Some(_) => Cow::Owned(chunks().collect()),
        });
        out
    }

    /// Writes `token` (split if it must be) and clears chunks the request had that the new
    /// token no longer uses.
    pub(crate) fn write(
        &self,
        headers: &mut HeaderMap,
        token: &str,
        max_age: Duration,
        present: u32,
    ) {
        let chunks: Vec<&str> = split(token, self.chunk_len);
        for (i, part) in chunks.iter().enumerate() {
            let c = self.build(&self.chunk_name(i), (*part).to_owned(), max_age);
            append(headers, &c);
        }
        self.clear_from(headers, chunks.len(), present);
    }

    /// Clears the main cookie and every chunk the request had.
    pub(crate) fn clear(&self, headers: &mut HeaderMap, present: u32) {
        self.clear_from(headers, 0, present | 1);
    }

    fn clear_from(&self, headers: &mut HeaderMap, first: usize, present: u32) {
        for i in first..self.max_chunks {
            if present & (1 << i) != 0 {
                let c = self.build(&self.chunk_name(i), String::new(), Duration::ZERO);
                append(headers, &c);
            }
        }
    }

    fn build(&self, name: &str, value: String, max_age: Duration) -> Cookie<'static> {
        let max_age =
            cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let mut b = Cookie::build((name.to_owned(), value))
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .path(self.path.clone())
            .max_age(max_age);
        if let Some(d) = &self.domain {
            b = b.domain(d.clone());
        }
        b.build()
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

/// The `name=value` pairs of a `Cookie` header value, in order. As the `cookie` crate
/// reads them: pairs are split on `;`, whitespace around names and values is dropped, a
/// pair without `=` or with an empty name is skipped, and values are taken raw (no
/// percent-decoding). Written out because this runs on every request and the general
/// parser cost more than the rest of the layer but the token itself.
fn pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let name = name.trim_ascii();
        (!name.is_empty()).then(|| (name, value.trim_ascii()))
    })
}

fn append(headers: &mut HeaderMap, c: &Cookie<'_>) {
    // Cookie values here are base64url and dots, names are checked tokens: always a valid
    // header value. Should that ever change, dropping the header is safer than a panic.
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
            let ours: Vec<(&str, &str)> = pairs(&header).collect();
            let theirs: Vec<(String, String)> = Cookie::split_parse(header.as_str())
                .flatten()
                .map(|c| (c.name().to_owned(), c.value_raw().unwrap_or_default().to_owned()))
                .collect();
            let theirs: Vec<(&str, &str)> =
                theirs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(ours, theirs);
        }
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

    fn as_request(set: &[String]) -> HeaderMap {
        let pairs: Vec<String> = set
            .iter()
            .map(|s| Cookie::parse(s.as_str()).unwrap())
            .filter(|c| !c.value().is_empty())
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::try_from(pairs.join("; ")).unwrap());
        h
    }

    #[test]
    fn every_written_cookie_fits_the_budget() {
        let s = settings(5);
        let token = "x".repeat(s.capacity());
        let mut h = HeaderMap::new();
        s.write(&mut h, &token, Duration::from_secs(86_400), 0);
        let written = set_cookies(&h);
        assert_eq!(written.len(), 5);
        for c in &written {
            assert!(c.len() <= COOKIE_BUDGET, "{} bytes", c.len());
            assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Lax"));
        }
        let request = as_request(&written);
        let back = s.read(&request, usize::MAX);
        assert_eq!(back.token.as_deref(), Some(token.as_str()));
        assert_eq!(back.present, 0b11111);
        assert!(h.get_all(SET_COOKIE).iter().all(HeaderValue::is_sensitive));
    }

    #[test]
    fn shrinking_clears_stale_chunks() {
        let s = settings(5);
        let mut h = HeaderMap::new();
        s.write(&mut h, "small", Duration::from_secs(60), 0b111);
        let written = set_cookies(&h);
        assert_eq!(written.len(), 3);
        assert!(written[0].starts_with("session=small;"));
        assert!(written[1].starts_with("session.1=;") && written[1].contains("Max-Age=0"));
        assert!(written[2].starts_with("session.2=;") && written[2].contains("Max-Age=0"));
    }

    #[test]
    fn clear_covers_main_and_present_chunks() {
        let s = settings(5);
        let mut h = HeaderMap::new();
        s.clear(&mut h, 0b1010);
        let names: Vec<String> = set_cookies(&h)
            .iter()
            .map(|c| Cookie::parse(c.as_str()).unwrap().name().to_owned())
            .collect();
        assert_eq!(names, ["session", "session.1", "session.3"]);
    }

    #[test]
    fn reading_is_bounded_and_ignores_foreign_cookies() {
        let s = settings(3);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static(
                "other=1; session=aa; sessionx=zz; session.01=no; session.1=bb; session.7=cc",
            ),
        );
        let t = s.read(&h, 100);
        assert_eq!(t.token.as_deref(), Some("aabb"));
        assert!(!t.oversized);
        assert_eq!(t.present, 0b11);
        let t = s.read(&h, 3);
        assert_eq!(t.token, None);
        assert!(t.oversized);
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("session.1=bb"));
        let t = s.read(&h, 100);
        assert_eq!(
            t.token, None,
            "chunks without the main cookie are not a token"
        );
        assert_eq!(t.present, 0b10);
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
