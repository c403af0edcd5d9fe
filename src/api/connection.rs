//! `ibstream.v1.ConnectionService`: thin handlers that validate, delegate to the session
//! or the store, and convert.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::auth::identity_of;
use super::context::ServerContext;
use super::convert;
use super::settings::{apply, mask_paths, to_settings};
use super::store_backend::{session_profile, state_of_kind};
use super::watch::{StatusStream, status_stream};
use crate::crypto::SealedCredentials;
use crate::ib::probe;
use crate::ib::{ConnectFailureKind, Endpoint, SessionStatus};
use crate::proto::ibstream::v1 as pb;
use crate::proto::ibstream::v1::connection_service_server::{
    ConnectionService, ConnectionServiceServer,
};
use crate::store::Profile;

/// Longest connection test a caller may ask for.
const MAX_TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The service implementation.
#[derive(Debug, Clone)]
pub struct ConnectionApi {
    ctx: ServerContext,
}

/// The service, ready to register, with the request size limit applied.
pub fn service(ctx: &ServerContext) -> ConnectionServiceServer<ConnectionApi> {
    ConnectionServiceServer::new(ConnectionApi { ctx: ctx.clone() })
        .max_decoding_message_size(ctx.max_request_bytes())
}

/// Events ListEvents returns when the request does not say.
const DEFAULT_EVENT_PAGE: i32 = 50;
/// Most events one ListEvents returns.
const MAX_EVENT_PAGE: i32 = 1000;

impl ConnectionApi {
    fn render(&self, status: &SessionStatus) -> pb::ConnectionStatus {
        convert::connection_status(status, &self.ctx.metrics, &self.ctx.session.pacer())
    }

    /// The named profile, or the active one.
    async fn profile(&self, name: Option<&str>) -> Result<Profile, Status> {
        Ok(match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => self.ctx.store.profile(name).await?,
            None => self.ctx.store.active_profile().await?,
        })
    }

    async fn settings_of(&self, profile: &Profile) -> Result<pb::Settings, Status> {
        let credentials_set = self.ctx.store.credentials(&profile.name).await?.is_some();
        Ok(to_settings(profile, credentials_set))
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

/// Builds the endpoint and timeout of a connection test from the request, falling back
/// to the profile's values. Returns whether the client id was derived.
fn test_target(
    request: &pb::TestConnectionRequest,
    profile: &crate::ib::SessionProfile,
    live: &SessionStatus,
) -> Result<(Endpoint, Duration, bool), Status> {
    let host = match &request.host {
        Some(host) if host.trim().is_empty() => return Err(invalid("host", "must not be empty")),
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
    let (client_id, derived) = match request.client_id {
        Some(id) if !(0..=999_999_999).contains(&id) => {
            return Err(invalid("client_id", "must be between 0 and 999999999"));
        }
        Some(id) => (id, false),
        None => {
            let id = profile.endpoint.client_id;
            let live_gateway = live.state != crate::ib::ConnectionState::Disconnected
                && live.host == host
                && live.port == port
                && live.client_id == id;
            if live_gateway {
                (probe::derived_client_id(id), true)
            } else {
                (id, false)
            }
        }
    };
    Ok((
        Endpoint {
            host,
            port,
            client_id,
        },
        timeout,
        derived,
    ))
}

fn failure_reason(kind: ConnectFailureKind) -> pb::TestConnectionFailure {
    match kind {
        ConnectFailureKind::Refused => pb::TestConnectionFailure::Refused,
        ConnectFailureKind::Timeout => pb::TestConnectionFailure::Timeout,
        ConnectFailureKind::ClientIdInUse => pb::TestConnectionFailure::ClientIdInUse,
        ConnectFailureKind::VersionMismatch => pb::TestConnectionFailure::VersionMismatch,
        ConnectFailureKind::Other => pb::TestConnectionFailure::Other,
    }
}

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let profile = self.profile(request.get_ref().profile.as_deref()).await?;
        Ok(Response::new(self.settings_of(&profile).await?))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let request = request.into_inner();
        let settings = request
            .settings
            .ok_or_else(|| Status::invalid_argument("invalid settings: must be set"))?;
        let fields = mask_paths(request.update_mask.as_ref())?;
        let name = settings.name.trim();
        let mut profile = match self.profile(Some(name)).await {
            Ok(profile) => profile,
            Err(status) if status.code() == tonic::Code::NotFound && request.allow_missing => {
                Profile::named(name)
            }
            Err(status) => return Err(status),
        };
        apply(&mut profile, &settings, &fields)?;
        let saved = self.ctx.store.save_profile(&profile).await?;
        tracing::info!(profile = saved.name.as_str(), fields = ?fields, "settings updated");
        Ok(Response::new(self.settings_of(&saved).await?))
    }

    async fn list_profiles(
        &self,
        _request: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        let mut profiles = Vec::new();
        for profile in self.ctx.store.list_profiles().await? {
            profiles.push(self.settings_of(&profile).await?);
        }
        Ok(Response::new(pb::ListProfilesResponse { profiles }))
    }

    async fn activate_profile(
        &self,
        request: Request<pb::ActivateProfileRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        let name = request.get_ref().profile.trim();
        if name.is_empty() {
            return Err(Status::invalid_argument(
                "invalid profile: must name a profile",
            ));
        }
        let profile = self.ctx.store.activate_profile(name).await?;
        tracing::info!(profile = profile.name.as_str(), "profile activated");
        Ok(Response::new(self.settings_of(&profile).await?))
    }

    async fn set_credentials(
        &self,
        request: Request<pb::SetCredentialsRequest>,
    ) -> Result<Response<pb::CredentialsState>, Status> {
        let request = request.into_inner();
        if request.username.trim().is_empty() {
            return Err(Status::invalid_argument(
                "invalid username: must not be empty",
            ));
        }
        if request.password.is_empty() {
            return Err(Status::invalid_argument(
                "invalid password: must not be empty",
            ));
        }
        let profile = self.profile(request.profile.as_deref()).await?;
        let sealed = SealedCredentials::seal(
            &self.ctx.master_key,
            request.username.trim(),
            &request.password,
        )?;
        self.ctx
            .store
            .set_credentials(&profile.name, &sealed)
            .await?;
        tracing::info!(profile = profile.name.as_str(), "credentials stored");
        Ok(Response::new(pb::CredentialsState {
            profile: profile.name,
            credentials_set: true,
        }))
    }

    async fn clear_credentials(
        &self,
        request: Request<pb::ClearCredentialsRequest>,
    ) -> Result<Response<pb::CredentialsState>, Status> {
        let profile = self.profile(request.get_ref().profile.as_deref()).await?;
        self.ctx.store.clear_credentials(&profile.name).await?;
        tracing::info!(profile = profile.name.as_str(), "credentials cleared");
        Ok(Response::new(pb::CredentialsState {
            profile: profile.name,
            credentials_set: false,
        }))
    }

    async fn test_connection(
        &self,
        request: Request<pb::TestConnectionRequest>,
    ) -> Result<Response<pb::TestConnectionResponse>, Status> {
        let request = request.into_inner();
        let profile = session_profile(&self.profile(request.profile.as_deref()).await?);
        let live = self.ctx.session.status();
        let (endpoint, timeout, derived) = test_target(&request, &profile, &live)?;
        let result = match probe::probe(&endpoint, timeout).await {
            Ok(ok) => pb::test_connection_response::Result::Success(pb::TestConnectionSuccess {
                server_version: ok.server_version,
                server_time: Some(convert::timestamp(ok.server_time)),
                managed_accounts: ok.managed_accounts,
                round_trip_time: Some(convert::duration(ok.round_trip)),
            }),
            Err(failure) => {
                pb::test_connection_response::Result::Failure(pb::TestConnectionError {
                    reason: failure_reason(failure.kind) as i32,
                    message: failure.message,
                })
            }
        };
        Ok(Response::new(pb::TestConnectionResponse {
            address: endpoint.address(),
            client_id: endpoint.client_id,
            client_id_derived: derived,
            result: Some(result),
        }))
    }

    async fn connect(
        &self,
        _request: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        let status = self.ctx.session.connect().await?;
        Ok(Response::new(self.render(&status)))
    }

    async fn disconnect(
        &self,
        _request: Request<pb::DisconnectRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        let status = self.ctx.session.disconnect().await?;
        Ok(Response::new(self.render(&status)))
    }

    async fn reconnect(
        &self,
        _request: Request<pb::ReconnectRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        let status = self.ctx.session.reconnect().await?;
        Ok(Response::new(self.render(&status)))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        Ok(Response::new(self.render(&self.ctx.session.status())))
    }

    type WatchStatusStream = StatusStream;

    async fn watch_status(
        &self,
        request: Request<pb::WatchStatusRequest>,
    ) -> Result<Response<Self::WatchStatusStream>, Status> {
        let permit = self.ctx.streams.acquire(&identity_of(&request))?;
        Ok(Response::new(status_stream(
            self.ctx.session.watch_status(),
            self.ctx.shutdown.clone(),
            self.ctx.metrics.clone(),
            self.ctx.session.pacer(),
            permit,
        )))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let size = match request.get_ref().page_size {
            0 => DEFAULT_EVENT_PAGE,
            n if (1..=MAX_EVENT_PAGE).contains(&n) => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "invalid page_size: {n} is not between 1 and {MAX_EVENT_PAGE}"
                )));
            }
        };
        let events = self.ctx.store.recent_events(size as u64).await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(event).collect(),
        }))
    }
}

fn event(e: crate::store::ConnectionEvent) -> pb::ConnectionEvent {
    let state = state_of_kind(&e.kind);
    let kind = match (state, e.kind.as_str()) {
        (Some(_), _) => pb::ConnectionEventKind::StateChanged,
        (None, "error") => pb::ConnectionEventKind::Error,
        (None, "notice") => pb::ConnectionEventKind::Notice,
        (None, _) => pb::ConnectionEventKind::Unspecified,
    };
    pb::ConnectionEvent {
        time: Some(convert::timestamp(e.at)),
        kind: kind as i32,
        state: state.map_or(pb::ConnectionState::Unspecified, convert::connection_state) as i32,
        profile: e.profile.unwrap_or_default(),
        code: e.code,
        message: e.message,
    }
}
