//! `ConnectionService` requests read into checked values: every field check of the
//! service is here, each failing with [`InvalidField`] (`field: reason`).

use std::time::Duration;

use zeroize::Zeroizing;

use super::convert;
use super::settings::mask_paths;
use super::status::{InvalidField, invalid};
use crate::ib::probe;
use crate::ib::{ConnectionState, Endpoint, SessionProfile, SessionStatus};
use crate::proto::ibstream::v1 as pb;

/// Longest connection test a caller may ask for.
const MAX_TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Events ListEvents returns when the request does not say.
const DEFAULT_EVENT_PAGE: i32 = 50;
/// Most events one ListEvents returns.
const MAX_EVENT_PAGE: i32 = 1000;

/// A checked `UpdateSettingsRequest`.
#[derive(Debug, Clone)]
pub struct SettingsUpdate {
    pub settings: pb::Settings,
    /// The writable fields the mask names, `*` expanded.
    pub fields: Vec<&'static str>,
    /// Whether a missing profile is created.
    pub allow_missing: bool,
}

impl TryFrom<pb::UpdateSettingsRequest> for SettingsUpdate {
    type Error = InvalidField;

    fn try_from(request: pb::UpdateSettingsRequest) -> Result<Self, InvalidField> {
        let settings = request
            .settings
            .ok_or_else(|| invalid("settings", "must be set"))?;
        let fields = mask_paths(request.update_mask.as_ref())?;
        Ok(SettingsUpdate {
            settings,
            fields,
            allow_missing: request.allow_missing,
        })
    }
}

/// A checked `SetCredentialsRequest`.
pub struct NewCredentials {
    /// The profile named, `None` for the active one.
    pub profile: Option<String>,
    pub username: String,
    pub password: Zeroizing<String>,
}

impl TryFrom<pb::SetCredentialsRequest> for NewCredentials {
    type Error = InvalidField;

    fn try_from(request: pb::SetCredentialsRequest) -> Result<Self, InvalidField> {
        let username = request.username.trim();
        if username.is_empty() {
            return Err(invalid("username", "must not be empty"));
        }
        if request.password.is_empty() {
            return Err(invalid("password", "must not be empty"));
        }
        Ok(NewCredentials {
            profile: request.profile,
            username: username.to_owned(),
            password: Zeroizing::new(request.password),
        })
    }
}

/// The profile an `ActivateProfile` names.
pub fn profile_to_activate(request: &pb::ActivateProfileRequest) -> Result<&str, InvalidField> {
    let name = request.profile.trim();
    if name.is_empty() {
        return Err(invalid("profile", "must name a profile"));
    }
    Ok(name)
}

/// How many events a `ListEvents` asks for.
pub fn event_page_size(request: &pb::ListEventsRequest) -> Result<u64, InvalidField> {
    match request.page_size {
        0 => Ok(DEFAULT_EVENT_PAGE as u64),
        n if (1..=MAX_EVENT_PAGE).contains(&n) => Ok(n as u64),
        n => Err(invalid(
            "page_size",
            format!("{n} is not between 1 and {MAX_EVENT_PAGE}"),
        )),
    }
}

/// Where and how long a connection test runs.
#[derive(Debug, Clone, PartialEq)]
pub struct TestTarget {
    pub endpoint: Endpoint,
    pub timeout: Duration,
    /// Whether the client id was derived, to keep clear of the live session's.
    pub client_id_derived: bool,
}

impl TestTarget {
    /// The endpoint and timeout of a connection test from the request, falling back to
    /// the profile's values; a test of the live session's gateway without a client id
    /// uses a derived one.
    pub fn read(
        request: &pb::TestConnectionRequest,
        profile: &SessionProfile,
        live: &SessionStatus,
    ) -> Result<TestTarget, InvalidField> {
        let host = match &request.host {
            Some(host) if host.trim().is_empty() => {
                return Err(invalid("host", "must not be empty"));
            }
            Some(host) => host.trim().to_owned(),
            None => profile.endpoint.host.clone(),
        };
        let port = match request.port {
            Some(port) => u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid("port", "must be between 1 and 65535"))?,
            None => profile.endpoint.port,
        };
        let timeout = match &request.timeout {
            Some(t) => convert::std_duration(t)
                .filter(|d| !d.is_zero() && *d <= MAX_TEST_TIMEOUT)
                .ok_or_else(|| invalid("timeout", "must be positive and at most 300s"))?,
            None => profile.connection_timeout,
        };
        let (client_id, client_id_derived) = match request.client_id {
            Some(id) if !(0..=999_999_999).contains(&id) => {
                return Err(invalid("client_id", "must be between 0 and 999999999"));
            }
            Some(id) => (id, false),
            None => {
                let id = profile.endpoint.client_id;
                let live_gateway = live.state != ConnectionState::Disconnected
                    && live.host == host
                    && live.port == port
                    && live.client_id == id;
                match live_gateway {
                    true => (probe::derived_client_id(id), true),
                    false => (id, false),
                }
            }
        };
        Ok(TestTarget {
            endpoint: Endpoint {
                host,
                port,
                client_id,
            },
            timeout,
            client_id_derived,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_name_the_field_as_field_colon_reason() {
        let blank = pb::SetCredentialsRequest {
            username: " ".into(),
            password: "pw".into(),
            ..Default::default()
        };
        let err = NewCredentials::try_from(blank).err().expect("refused");
        assert_eq!(err.to_string(), "username: must not be empty");
        let err = SettingsUpdate::try_from(pb::UpdateSettingsRequest::default()).unwrap_err();
        assert_eq!(err.to_string(), "settings: must be set");
        let page = pb::ListEventsRequest { page_size: 5000 };
        assert_eq!(
            event_page_size(&page).unwrap_err().to_string(),
            "page_size: 5000 is not between 1 and 1000"
        );
        let unnamed = pb::ActivateProfileRequest::default();
        assert_eq!(profile_to_activate(&unnamed).unwrap_err().field, "profile");
    }
}
