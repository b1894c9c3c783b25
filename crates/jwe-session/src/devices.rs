//! "Your devices": the session registry as the layer writes and reads it. Written where a
//! session changes (its start and its `sid` moves when the response leaves, a renewal, an
//! end), never on an ordinary request; read when asked (a device list, the per-user cap).

use std::fmt;

use jwe_session_core::{
    Binding, Claims, Recorded, RegistryError, Revocation, RevokeError, SessionIds, SessionRecord,
    UnixTime,
};
use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::handle::{DeviceNote, SessionHandle};
use crate::options::OverCap;
use crate::shared::Shared;

/// One of a user's live sessions, as [`SessionHandle::devices`] lists them. Serializes as
/// `{"sid":…,"current":true,"started":…,"renewed":…,"bound":"none","label":…,"network":…}`
/// (times in seconds since the epoch, `label` and `network` `null` when not recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    record: SessionRecord,
    current: bool,
}

impl Device {
    /// The session id: what [`SessionHandle::end_device`] takes.
    #[must_use]
    pub fn sid(&self) -> &str {
        &self.record.sid
    }

    /// Whether this is the session of the request that asked.
    #[must_use]
    pub fn current(&self) -> bool {
        self.current
    }

    /// When the session began (the login).
    #[must_use]
    pub fn started(&self) -> UnixTime {
        self.record.started_secs()
    }

    /// When its token was last renewed (the last time the device was seen after a
    /// break of at least the access lifetime).
    #[must_use]
    pub fn renewed(&self) -> UnixTime {
        self.record.renewed
    }

    /// How the session is bound to a key its client holds.
    #[must_use]
    pub fn binding(&self) -> Binding {
        self.record.binding
    }

    /// The label the app gave at login, if any.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.record.label.as_deref()
    }

    /// The coarse network hint the app gave at login, if any.
    #[must_use]
    pub fn network(&self) -> Option<&str> {
        self.record.network.as_deref()
    }

    /// The registry's record.
    #[must_use]
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }
}

impl Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Device", 7)?;
        st.serialize_field("sid", self.sid())?;
        st.serialize_field("current", &self.current)?;
        st.serialize_field("started", &self.started().as_secs())?;
        st.serialize_field("renewed", &self.renewed().as_secs())?;
        st.serialize_field("bound", self.binding().label())?;
        st.serialize_field("label", &self.label())?;
        st.serialize_field("network", &self.network())?;
        st.end()
    }
}

/// Why [`SessionHandle::devices`] could not list the user's sessions.
#[derive(Debug)]
#[non_exhaustive]
pub enum DevicesError {
    /// The request has no session: there is no user to list the sessions of.
    NoSession,
    /// The registry could not answer, or the store keeps none
    /// ([`RegistryError::Unsupported`]).
    Registry(RegistryError),
}

impl fmt::Display for DevicesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => f.write_str("the request has no session"),
            Self::Registry(_) => f.write_str("the user's sessions could not be listed"),
        }
    }
}

impl std::error::Error for DevicesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Registry(e) => Some(e),
            Self::NoSession => None,
        }
    }
}

/// Why [`SessionHandle::end_device`] ended nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum EndDeviceError {
    /// The request has no session.
    NoSession,
    /// No live session of this user has that `sid`: it does not exist, has ended, or is
    /// another user's (which are never told apart). Nothing was revoked.
    NotFound,
    /// The registry could not be read, or the store keeps none; nothing was revoked.
    Registry(RegistryError),
    /// The revocation could not be recorded.
    Revoke(RevokeError),
}

impl fmt::Display for EndDeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => f.write_str("the request has no session"),
            Self::NotFound => f.write_str("no session of this user has that id"),
            Self::Registry(_) => f.write_str("the user's sessions could not be listed"),
            Self::Revoke(_) => f.write_str("the session could not be revoked"),
        }
    }
}

impl std::error::Error for EndDeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Registry(e) => Some(e),
            Self::Revoke(e) => Some(e),
            Self::NoSession | Self::NotFound => None,
        }
    }
}

impl<T> Shared<T> {
    /// The registry's record of the session in `claims`, renewed at `renewed`; `None` for
    /// claims without `sid`, `sub` or lifetimes (not a session of this layer).
    pub(crate) fn record_of(&self, claims: &Claims<T>, renewed: UnixTime) -> Option<SessionRecord> {
        let ids = SessionIds::from(claims);
        let (sid, sub, started) = (ids.sid?, ids.sub?, ids.started?);
        let until = self.lifetimes.renewable_end(claims)?;
        let binding = match &claims.cnf {
            None => Binding::None,
            Some(c) if c.is_device_bound() => Binding::Dbsc,
            Some(_) => Binding::Dpop,
        };
        Some(
            SessionRecord::new(sid, sub, started, until)
                .renewed_at(renewed, until)
                .with_binding(binding),
        )
    }

    /// Writes `record` to the registry, if the store keeps one; a failure is logged and
    /// counted, never the request's: the registry is what a device list shows, not what
    /// a session's validity rests on.
    pub(crate) async fn record_device(&self, record: SessionRecord, now: UnixTime) {
        let Some(registry) = self.store.registry() else {
            return;
        };
        if let Err(e) = registry.record(record, now).await {
            crate::metrics::store_error("registry");
            tracing::warn!(error = ?e, "the session registry did not take a session");
        }
    }

    /// Removes a session's record, if the store keeps a registry (logged on failure).
    pub(crate) async fn forget_device(&self, sub: &str, sid: &str, now: UnixTime) {
        let Some(registry) = self.store.registry() else {
            return;
        };
        if let Err(e) = registry.remove(sub, sid, now).await {
            crate::metrics::store_error("registry");
            tracing::warn!(error = ?e, "the session registry did not drop an ended session");
        }
    }

    /// A renewal: the record's `renewed` and `until` move on.
    pub(crate) async fn note_renewal(&self, claims: &Claims<T>, now: UnixTime) {
        if let Some(record) = self.record_of(claims, now) {
            self.record_device(record, now).await;
        }
    }

    /// Ends a session the registry listed: its `sid` revoked (on every instance sharing
    /// the store), then its record removed.
    pub(crate) async fn end_listed(
        &self,
        record: &SessionRecord,
        now: UnixTime,
    ) -> Result<Recorded, RevokeError> {
        let revocation = Revocation::session(
            record.sid.clone(),
            Some(record.started_secs()),
            now,
            &self.lifetimes,
        );
        let recorded = self.revoke(revocation, now).await?;
        self.forget_device(&record.sub, &record.sid, now).await;
        Ok(recorded)
    }

    /// The live sessions of `sub`, oldest first ([`RevocationStore::sessions_of`](jwe_session_core::RevocationStore::sessions_of)).
    pub(crate) async fn live_sessions(
        &self,
        sub: &str,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, RegistryError> {
        let result = self.store.sessions_of(sub, now).await;
        if matches!(
            result,
            Err(RegistryError::Timeout { .. } | RegistryError::Unavailable { .. })
        ) {
            crate::metrics::store_error("registry");
        }
        result
    }

    /// The cap's [`OverCap::EndOldest`]: after `keep` (the session just started) was
    /// recorded, ends the oldest of `sub`'s other sessions beyond the cap.
    async fn end_over_cap(&self, sub: &str, keep: &str, now: UnixTime) {
        let Some(cap) = self.cap.filter(|c| c.policy == OverCap::EndOldest) else {
            return;
        };
        let live = match self.live_sessions(sub, now).await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = ?e, "the session cap could not count a user's sessions");
                return;
            }
        };
        let over = live.len().saturating_sub(cap.max);
        for record in live.iter().filter(|r| r.sid != keep).take(over) {
            match self.end_listed(record, now).await {
                Ok(_) => crate::metrics::capped(),
                Err(e) => {
                    tracing::warn!(error = ?e, "a session over the cap could not be ended");
                }
            }
        }
    }
}

/// The response phase's part: tells the registry what this request changed (a session
/// started, or moved to a new `sid`), and applies the cap to a start. Nothing for an
/// ordinary request.
pub(crate) async fn settle<T>(shared: &Shared<T>, handle: &SessionHandle<T>) {
    let now = shared.clock.now();
    let (note, info, record) = {
        let mut st = handle.raw();
        if st.note == DeviceNote::None {
            return;
        }
        let note = std::mem::take(&mut st.note);
        let info = st.device.take();
        let Some(record) = st.current.as_ref().and_then(|c| shared.record_of(c, now)) else {
            return;
        };
        (note, info, record)
    };
    if shared.store.registry().is_none() {
        return;
    }
    let (sub, sid) = (record.sub.clone(), record.sid.clone());
    match note {
        DeviceNote::None => {}
        DeviceNote::Started => {
            let mut record = record;
            if let Some(info) = info {
                if let Some(label) = info.label_text() {
                    record = record.with_label(label);
                }
                if let Some(network) = info.network_text() {
                    record = record.with_network(network);
                }
            }
            shared.record_device(record, now).await;
            shared.end_over_cap(&sub, &sid, now).await;
        }
        DeviceNote::Moved { from } => {
            // The device is the same: its label and hint move with it.
            let mut record = record;
            if let Some(registry) = shared.store.registry() {
                if let Ok(kept) = registry.records_of(&sub, now).await {
                    if let Some(old) = kept.into_iter().find(|r| r.sid == from) {
                        record.label = old.label;
                        record.network = old.network;
                        record.started = record.started.min(old.started);
                    }
                }
            }
            shared.record_device(record, now).await;
            shared.forget_device(&sub, &from, now).await;
        }
    }
}

impl<T> SessionHandle<T> {
    /// The `sub` and `sid` of this request's session.
    fn owner(&self) -> Option<(String, String)> {
        let st = self.lock();
        let claims = st.current.as_ref()?;
        claims.sub.clone().zip(claims.sid.clone())
    }

    /// The live sessions of this request's user ("your devices"), oldest first, this one
    /// marked [`current`](Device::current): every session the registry knows that is
    /// neither revoked (on any instance) nor past renewal. This session is listed even if
    /// the registry has no record of it (it began before the registry did).
    ///
    /// Reads the store's registry (and, on Redis, asks it about each session); it is not
    /// meant for every request, but for the page that shows the list.
    ///
    /// ```
    /// # async fn page(handle: jwe_session::SessionHandle<()>) -> Result<String, jwe_session::DevicesError> {
    /// let devices = handle.devices().await?;
    /// let json = serde_json::to_string(&devices).unwrap_or_default();
    /// # Ok(json) }
    /// ```
    ///
    /// # Errors
    /// [`DevicesError::NoSession`] without a session; [`DevicesError::Registry`] when the
    /// store keeps no registry ([`RegistryError::Unsupported`]) or could not answer.
    pub async fn devices(&self) -> Result<Vec<Device>, DevicesError> {
        self.load().await;
        let (sub, sid) = self.owner().ok_or(DevicesError::NoSession)?;
        let now = self.shared.clock.now();
        let live = self
            .shared
            .live_sessions(&sub, now)
            .await
            .map_err(DevicesError::Registry)?;
        let mut devices: Vec<Device> = live
            .into_iter()
            .map(|record| Device {
                current: record.sid == sid,
                record,
            })
            .collect();
        if !devices.iter().any(Device::current) {
            let own = self
                .lock()
                .current
                .as_ref()
                .and_then(|c| self.shared.record_of(c, c.iat.unwrap_or(now)));
            if let Some(record) = own {
                devices.push(Device {
                    record,
                    current: true,
                });
                devices.sort_by_key(|d| d.record.started);
            }
        }
        Ok(devices)
    }

    /// Ends one of this user's sessions by its `sid` ("sign out this device"), on every
    /// instance sharing the store: its token is refused on its next request, and a
    /// [`watch`](Self::watch) of it completes. Ending this request's own session is
    /// [`end`](Self::end).
    ///
    /// A `sid` that is not one of this user's live sessions (another user's, an ended one,
    /// a made-up one) is refused with [`EndDeviceError::NotFound`] and nothing is revoked:
    /// one user can neither end nor learn of another user's session through it.
    ///
    /// # Errors
    /// [`EndDeviceError::NoSession`], [`EndDeviceError::NotFound`],
    /// [`EndDeviceError::Registry`] (nothing revoked), [`EndDeviceError::Revoke`].
    pub async fn end_device(&self, sid: &str) -> Result<Recorded, EndDeviceError> {
        self.load().await;
        let (sub, own) = self.owner().ok_or(EndDeviceError::NoSession)?;
        if sid == own {
            return self.end().await.map_err(EndDeviceError::Revoke);
        }
        let now = self.shared.clock.now();
        let live = self
            .shared
            .live_sessions(&sub, now)
            .await
            .map_err(EndDeviceError::Registry)?;
        let record = live
            .into_iter()
            .find(|r| r.sid == sid)
            .ok_or(EndDeviceError::NotFound)?;
        self.shared
            .end_listed(&record, now)
            .await
            .map_err(EndDeviceError::Revoke)
    }

    /// Starts a session, as [`start`](Self::start), after counting the user's live
    /// sessions against the layer's cap
    /// ([`SessionLayerBuilder::max_sessions_per_user`](crate::SessionLayerBuilder::max_sessions_per_user)).
    /// Under [`OverCap::RefuseNew`] a login beyond the cap is refused; under
    /// [`OverCap::EndOldest`] (or without a cap) it is [`start`](Self::start). A session
    /// this request replaces does not count.
    ///
    /// # Errors
    /// As [`start`](Self::start); [`StartError::TooManySessions`](crate::StartError::TooManySessions)
    /// at the cap; [`StartError::Registry`](crate::StartError::Registry) when the registry
    /// could not be read (nothing starts: a cap that cannot count does not let logins
    /// through).
    pub async fn start_checked(
        &self,
        sub: impl Into<String>,
        app: T,
    ) -> Result<(), crate::StartError>
    where
        T: Serialize,
    {
        self.load().await;
        let sub = sub.into();
        if let Some(cap) = self.shared.cap.filter(|c| c.policy == OverCap::RefuseNew) {
            let now = self.shared.clock.now();
            let replaced = self.owner().filter(|(s, _)| *s == sub).map(|(_, sid)| sid);
            let live = self
                .shared
                .live_sessions(&sub, now)
                .await
                .map_err(crate::StartError::Registry)?;
            let count = live
                .iter()
                .filter(|r| Some(&r.sid) != replaced.as_ref())
                .count();
            if count >= cap.max {
                crate::metrics::capped();
                return Err(crate::StartError::TooManySessions { max: cap.max });
            }
        }
        self.begin_unchecked(sub, app, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::DeviceInfo;

    #[test]
    fn user_agents_become_coarse_labels() {
        for (ua, label) in [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", Some("Firefox on Linux")),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0", Some("Edge on Windows")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1", Some("Safari on iOS")),
            ("Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36", Some("Chrome on Android")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15", Some("Safari on macOS")),
            ("curl/8.14.1", Some("curl")),
            ("", None),
        ] {
            assert_eq!(DeviceInfo::from_user_agent(ua).label_text(), label, "{ua}");
        }
    }

    #[test]
    fn network_hints_keep_the_network_only() {
        let info = DeviceInfo::new().network("2001:db8:1234:5678::1".parse().unwrap());
        assert_eq!(info.network_text(), Some("2001:db8:1234::/48"));
        let info = DeviceInfo::new().network("198.51.100.200".parse().unwrap());
        assert_eq!(info.network_text(), Some("198.51.100.0/24"));
        let info = DeviceInfo::new().exact_network("198.51.100.200".parse().unwrap());
        assert_eq!(info.network_text(), Some("198.51.100.200"));
    }

    #[test]
    fn devices_serialize_as_the_demo_shows_them() {
        let record = SessionRecord::new(
            "s1",
            "alice",
            UnixTime::from_secs(100).into(),
            UnixTime::from_secs(900),
        )
        .renewed_at(UnixTime::from_secs(200), UnixTime::from_secs(900))
        .with_label("Phone");
        let json = serde_json::to_string(&Device {
            record,
            current: true,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"sid":"s1","current":true,"started":100,"renewed":200,"bound":"none","label":"Phone","network":null}"#
        );
    }
}
