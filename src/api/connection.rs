//! `ibstream.v1.ConnectionService`: thin handlers that validate, delegate to the session
//! or the store, and convert.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::auth::identity_of;
use super::context::ServerContext;
use super::convert;
use super::watch::{StatusStream, status_stream};
use crate::ib::probe;
use crate::ib::{ConnectFailureKind, Endpoint, SessionStatus};
use crate::proto::ibstream::v1 as pb;
use crate::proto::ibstream::v1::connection_service_server::{
    ConnectionService, ConnectionServiceServer,
};

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
        .max_decoding_message_size(ctx.max_request_bytes)
}

impl ConnectionApi {
    fn render(&self, status: &SessionStatus) -> pb::ConnectionStatus {
        convert::connection_status(status, &self.ctx.metrics, &self.ctx.session.pacer())
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
        _request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        Err(Status::unimplemented(
            "settings are not available in this build",
        ))
    }

    async fn update_settings(
        &self,
        _request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        Err(Status::unimplemented(
            "settings are not available in this build",
        ))
    }

    async fn list_profiles(
        &self,
        _request: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        Err(Status::unimplemented(
            "profiles are not available in this build",
        ))
    }

    async fn activate_profile(
        &self,
        _request: Request<pb::ActivateProfileRequest>,
    ) -> Result<Response<pb::Settings>, Status> {
        Err(Status::unimplemented(
            "profiles are not available in this build",
        ))
    }

    async fn set_credentials(
        &self,
        _request: Request<pb::SetCredentialsRequest>,
    ) -> Result<Response<pb::CredentialsState>, Status> {
        Err(Status::unimplemented(
            "credentials are not available in this build",
        ))
    }

    async fn clear_credentials(
        &self,
        _request: Request<pb::ClearCredentialsRequest>,
    ) -> Result<Response<pb::CredentialsState>, Status> {
        Err(Status::unimplemented(
            "credentials are not available in this build",
        ))
    }

    async fn test_connection(
        &self,
        request: Request<pb::TestConnectionRequest>,
    ) -> Result<Response<pb::TestConnectionResponse>, Status> {
        let request = request.into_inner();
        let profile = self.ctx.backend.active_profile().await.map_err(|e| {
            Status::failed_precondition(format!("cannot read the active profile: {e}"))
        })?;
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
        _request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        Err(Status::unimplemented(
            "connection history is not available in this build",
        ))
    }
}
