//! Cross-origin protection for the cookie transport, without tokens: Fetch Metadata
//! (`Sec-Fetch-Site`), and `Origin` against `Host` for browsers that do not send it. The
//! same rules as Go 1.25's `http.CrossOriginProtection`.
//!
//! A cookie is an ambient credential: a page on another site can make the browser send
//! it (or receive a new one) with a plain form post, which `SameSite=Lax` does not stop
//! for top-level navigations. Refusing unsafe cross-origin requests before the handler
//! runs closes login CSRF (the victim signed in as the attacker) and logout CSRF.

use std::fmt;

use http::header::{HOST, ORIGIN, UPGRADE};
use http::{HeaderName, Method, Request};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// The protection's settings: origins trusted to make cross-origin requests, and paths
/// that take them from anyone.
#[derive(Clone, Debug, Default)]
pub(crate) struct CrossOrigin {
    /// `scheme://host[:port]`, lowercase.
    trusted: Vec<String>,
    /// Exact paths, or subtrees when they end in `/`.
    exempt: Vec<String>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OriginRefusal {
    /// `Sec-Fetch-Site` said `cross-site` or `same-site`.
    SecFetchSite,
    /// No `Sec-Fetch-Site`, and `Origin` names another host than `Host`.
    Origin,
    /// A WebSocket handshake whose `Origin` is neither the request's own nor trusted.
    WebSocket,
}

impl fmt::Display for OriginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SecFetchSite => "cross-origin request (Sec-Fetch-Site)",
            Self::Origin => "cross-origin request (Origin does not match Host)",
            Self::WebSocket => "cross-origin WebSocket handshake (Origin does not match Host)",
        })
    }
}

impl CrossOrigin {
    /// Adds a trusted origin; `None` if it is not `http(s)://host[:port]`.
    pub(crate) fn trust(&mut self, origin: &str) -> Option<()> {
        let (_, host) = split_origin(origin.as_bytes())?;
        if host.is_empty()
            || !host
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
        {
            return None;
        }
        self.trusted.push(origin.to_ascii_lowercase());
        Some(())
    }

    /// Exempts a path (or, ending in `/`, a subtree); `None` unless it starts with `/`.
    pub(crate) fn exempt(&mut self, path: &str) -> Option<()> {
        path.starts_with('/')
            .then(|| self.exempt.push(path.to_owned()))
    }

    /// Whether the request may go on to the handler.
    pub(crate) fn check<B>(&self, req: &Request<B>) -> Result<(), OriginRefusal> {
        if is_websocket_handshake(req) {
            return self.check_handshake(req);
        }
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let headers = req.headers();
        match headers.get(SEC_FETCH_SITE).map(|v| v.as_bytes()) {
            Some(b"same-origin" | b"none") => return Ok(()),
            Some(_) if self.is_exempt(req) => return Ok(()),
            Some(_) => return Err(OriginRefusal::SecFetchSite),
            None => {}
        }
        // Browsers before Fetch Metadata (and some that omit it): compare Origin and Host.
        let Some(origin) = headers.get(ORIGIN) else {
            // Neither header: not a browser (curl, another server), no ambient credential.
            return Ok(());
        };
        if same_origin(req, origin.as_bytes()) || self.is_exempt(req) {
            return Ok(());
        }
        Err(OriginRefusal::Origin)
    }

    /// A WebSocket handshake is a `GET` that opens an authenticated two-way channel, and
    /// browsers send `SameSite=Lax` cookies on it from any same-site page (another port,
    /// a sibling subdomain): it passes only with its own origin, a trusted one, or no
    /// `Origin` at all (browsers always send one on a handshake; other clients need not).
    /// `Sec-Fetch-Site` is not enough here: `same-site` is exactly the hijacking case.
    fn check_handshake<B>(&self, req: &Request<B>) -> Result<(), OriginRefusal> {
        let Some(origin) = req.headers().get(ORIGIN) else {
            return Ok(());
        };
        if same_origin(req, origin.as_bytes()) || self.is_exempt(req) {
            return Ok(());
        }
        Err(OriginRefusal::WebSocket)
    }

    fn is_exempt<B>(&self, req: &Request<B>) -> bool {
        let path = req.uri().path();
        let path_exempt = self.exempt.iter().any(|p| {
            if p.ends_with('/') {
                path.starts_with(p.as_str())
            } else {
                path == p
            }
        });
        path_exempt
            || req.headers().get(ORIGIN).is_some_and(|o| {
                self.trusted
                    .iter()
                    .any(|t| t.as_bytes().eq_ignore_ascii_case(o.as_bytes()))
            })
    }
}

/// Whether `origin` names the host and port the request was sent to.
fn same_origin<B>(req: &Request<B>, origin: &[u8]) -> bool {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| req.headers().get(HOST).map(|h| h.as_bytes()));
    host.is_some_and(|h| same_host(origin, h))
}

/// The answer to a request the protection refused: `403` with an empty body, counted and
/// logged (at `debug`) with the reason. The handler never runs.
pub(crate) fn forbidden<B, ResB: Default>(
    refusal: OriginRefusal,
    req: &Request<B>,
) -> http::Response<ResB> {
    crate::metrics::cross_origin_refused();
    tracing::debug!(
        reason = %refusal,
        method = %req.method(),
        path = req.uri().path(),
        "request refused"
    );
    let mut res = http::Response::new(ResB::default());
    *res.status_mut() = http::StatusCode::FORBIDDEN;
    res
}

/// A WebSocket opening handshake: `Upgrade` lists `websocket` (RFC 6455 §4.1; the list is
/// comma-separated and case-insensitive), or the browser says so in `Sec-Fetch-Mode`.
/// (Over HTTP/2, RFC 8441's extended `CONNECT` is not a safe method, so it is checked as
/// any other unsafe request.)
pub(crate) fn is_websocket_handshake<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    let upgrade = headers.get_all(UPGRADE).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    });
    upgrade
        || headers
            .get(SEC_FETCH_MODE)
            .is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// `scheme://rest` with scheme `http` or `https`, and no path, query or user info.
fn split_origin(origin: &[u8]) -> Option<(&'static str, &[u8])> {
    let (scheme, rest) = if origin.len() > 8 && origin[..8].eq_ignore_ascii_case(b"https://") {
        ("https", &origin[8..])
    } else if origin.len() > 7 && origin[..7].eq_ignore_ascii_case(b"http://") {
        ("http", &origin[7..])
    } else {
        return None;
    };
    (!rest.iter().any(|b| b"/?#@".contains(b))).then_some((scheme, rest))
}

/// Whether the `Origin` header names the host (and port) the request was sent to. A
/// `Host` that spells out the scheme's default port matches an `Origin` without it.
fn same_host(origin: &[u8], host: &[u8]) -> bool {
    let Some((scheme, origin_host)) = split_origin(origin) else {
        return false; // `null`, or not an origin at all
    };
    let default_port: &[u8] = if scheme == "https" { b":443" } else { b":80" };
    let host = host.strip_suffix(default_port).unwrap_or(host);
    origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn origin_against_host() {
        for (origin, host, same) in [
            ("http://app.example", "app.example", true),
            ("https://app.example", "app.example:443", true),
            ("http://app.example", "app.example:80", true),
            ("https://app.example", "app.example:80", false),
            ("http://localhost:3000", "localhost:3000", true),
            ("http://127.0.0.2:3000", "localhost:3000", false),
            ("http://[::1]:3000", "[::1]:3000", true),
            ("http://app.example.evil", "app.example", false),
            ("null", "app.example", false),
            ("app.example", "app.example", false),
            ("http://app.example/", "app.example", false),
            ("http://u@app.example", "app.example", false),
            ("ftp://app.example", "app.example", false),
        ] {
            assert_eq!(
                same_host(origin.as_bytes(), host.as_bytes()),
                same,
                "{origin} {host}"
            );
        }
    }

    #[test]
    fn trusted_origins_and_exempt_paths() {
        let mut c = CrossOrigin::default();
        assert!(c.trust("https://Partner.example").is_some());
        assert!(c.trust("partner.example").is_none());
        assert!(c.trust("https://partner.example/path").is_none());
        assert!(c.trust("https://").is_none());
        assert!(c.exempt("/webhooks/").is_some());
        assert!(c.exempt("/stripe").is_some());
        assert!(c.exempt("webhooks").is_none());
        let cross = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://partner.example"),
        ];
        assert_eq!(c.check(&req("POST", "/login", &cross)), Ok(()));
        let old_browser = [
            ("origin", "https://partner.example"),
            ("host", "app.example"),
        ];
        assert_eq!(c.check(&req("POST", "/login", &old_browser)), Ok(()));
        let evil = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(
            c.check(&req("POST", "/login", &evil)),
            Err(OriginRefusal::SecFetchSite)
        );
        assert_eq!(c.check(&req("POST", "/webhooks/github", &evil)), Ok(()));
        assert_eq!(c.check(&req("POST", "/stripe", &evil)), Ok(()));
        assert_eq!(
            c.check(&req("POST", "/stripe/x", &evil)),
            Err(OriginRefusal::SecFetchSite)
        );
        assert_eq!(
            c.check(&req("PUT", "/webhooks", &evil)),
            Err(OriginRefusal::SecFetchSite)
        );
        let evil_old = [("origin", "https://evil.example"), ("host", "app.example")];
        assert_eq!(
            c.check(&req("DELETE", "/x", &evil_old)),
            Err(OriginRefusal::Origin)
        );
    }

    #[test]
    fn the_request_target_authority_counts_as_host() {
        let c = CrossOrigin::default();
        let r = req(
            "POST",
            "http://app.example/login",
            &[("origin", "http://app.example")],
        );
        assert_eq!(c.check(&r), Ok(()));
        let r = req(
            "POST",
            "http://app.example/login",
            &[("origin", "http://evil.example")],
        );
        assert_eq!(c.check(&r), Err(OriginRefusal::Origin));
    }
}
