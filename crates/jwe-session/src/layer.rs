//! [`SessionLayer`]: the tower layer, what it hands out (the key ring, the store, the
//! admin operations) and the services it makes.

use std::fmt;
use std::sync::Arc;

use jwe_session_core::{KeyRingHandle, RevocationStore};
use tower_layer::Layer;

use crate::admin::SessionAdmin;
use crate::service::SessionService;
use crate::shared::Shared;

/// The tower layer: opens the session on the way in, writes it back on the way out.
///
/// Cheap to clone (the configuration is behind an `Arc`). `T` is the application's own
/// claims type, flattened into the token beside the registered claims.
///
/// # Deployment caveat
///
/// - The cookie is `Secure` by default, so browsers send it only over HTTPS. Chromium and
///   Firefox also accept it from `http://localhost`; Safari (WebKit) does not. Behind a
///   TLS-terminating proxy that is what you want; for plain-HTTP development use
///   `.dangerous().allow_insecure_cookie()`.
/// - The cookie is `__Host-session` by default: no subdomain can set or shadow it. That
///   rules out `Domain` and a `Path` other than `/`; a cookie shared with subdomains needs
///   `.dangerous().no_host_prefix()`. The name (and the purpose bound into tokens, which
///   derives from it) changed from `session`: after upgrading, users log in once.
/// - With the cookie transport, unsafe requests (`POST`, `PUT`, `DELETE`, …) that a browser
///   marks as cross-origin are refused with `403` before the handler runs (see
///   [`SessionLayerBuilder::trusted_origin`](crate::SessionLayerBuilder::trusted_origin)). The check compares `Origin` with `Host`
///   when `Sec-Fetch-Site` is absent: behind a proxy that rewrites `Host`, trust the public
///   origin. Safe methods are not checked, so `GET` handlers must not change state. A
///   WebSocket handshake (`Upgrade: websocket`) is a `GET` but is checked: it passes only
///   with the request's own `Origin`, a trusted one, or none (a non-browser client).
/// - Apps that share a key ring need distinct purposes (a distinct issuer is enough: it is
///   part of the default purpose), or each accepts the other's tokens.
/// - Several instances need one key ring and a shared revocation store
///   (`jwe-session-redis`); the in-memory default only revokes on the instance that
///   logged out.
pub struct SessionLayer<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl<T> SessionLayer<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    /// The key ring handle: call [`KeyRingHandle::replace`] to rotate without a restart.
    #[must_use]
    pub fn key_ring(&self) -> &KeyRingHandle {
        &self.shared.ring
    }

    /// The revocation store, for revoking outside a request (an admin action, say).
    #[must_use]
    pub fn revocation_store(&self) -> &Arc<dyn RevocationStore> {
        &self.shared.store
    }

    /// The store-wide operations: refresh a user's claims, end a user's sessions, end
    /// everyone's (see [`SessionAdmin`]).
    #[must_use]
    pub fn admin(&self) -> SessionAdmin<T> {
        SessionAdmin::new(Arc::clone(&self.shared))
    }

    /// The live sessions of `sub` ("their devices"), oldest first, for admin tools:
    /// [`SessionAdmin::devices_of`].
    ///
    /// # Errors
    /// As [`SessionAdmin::devices_of`].
    pub async fn devices_of(
        &self,
        sub: &str,
    ) -> Result<Vec<jwe_session_core::SessionRecord>, jwe_session_core::RegistryError> {
        self.admin().devices_of(sub).await
    }

    /// The cookie name, prefix included.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        self.shared.cookie.name()
    }

    /// The purpose tokens are bound to.
    #[must_use]
    pub fn purpose(&self) -> &str {
        self.shared.opts.purpose().unwrap_or_default()
    }
}

impl<S, T> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.shared))
    }
}

#[cfg(test)]
mod tests {
    use jwe_session_core::{Key, KeyRing};

    use super::*;
    use crate::handle::{Pending, SessionHandle};

    const KEY: [u8; 32] = [0xa5; 32];

    fn ring() -> KeyRing {
        let mut k = KEY;
        k[0] = 0x11;
        KeyRing::new(vec![Key::from_bytes("t1", &k).unwrap()], None).unwrap()
    }

    fn layer() -> SessionLayer<()> {
        SessionLayer::builder(ring()).build().unwrap()
    }

    #[test]
    fn debug_never_shows_keys() {
        let layer = layer();
        let handle = SessionHandle::<()>::new(Arc::clone(&layer.shared), None, Pending::Nothing);
        let b64 = |b: &[u8]| {
            use std::fmt::Write;
            b.iter().fold(String::new(), |mut s, x| {
                let _ = write!(s, "{x:02x}");
                s
            })
        };
        for dbg in [
            format!("{layer:?}"),
            format!("{handle:?}"),
            format!("{:?}", SessionLayer::<()>::builder(ring())),
        ] {
            assert!(!dbg.contains(&b64(&KEY[1..])), "{dbg}");
            assert!(!dbg.contains("paWlpaWl"), "{dbg}");
        }
        assert!(format!("{layer:?}").contains("t1"));
    }
}
