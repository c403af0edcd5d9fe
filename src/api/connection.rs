//! `ibstream.v1.ConnectionService`: thin handlers that validate, delegate to the session
//! or the store, and convert.

use tonic::{Request, Response, Status};

use super::auth::identity_of;
use super::context::ServerContext;
use super::convert;
use super::lifetime::BoxedStream;
use super::requests::{
    NewCredentials, SettingsUpdate, TestTarget, event_page_size, profile_to_activate,
};
use super::settings::{apply, to_settings};
use super::watch::{cluster_status_stream, status_stream};
use crate::cluster::SessionOp;
use crate::crypto::SealedCredentials;
use crate::ib::{SessionStatus, probe};
use crate::proto::ibstream::v1 as pb;
use crate::proto::ibstream::v1::connection_service_server::{
    ConnectionService, ConnectionServiceServer,
};
use crate::store::Profile;

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
    /// This node's session, and in a cluster the cluster's part.
    fn render(&self, status: &SessionStatus) -> pb::ConnectionStatus {
        self.in_cluster(convert::connection_status(
            status,
            &self.ctx.metrics,
            &self.ctx.session.pacer(),
        ))
    }

    fn in_cluster(&self, status: pb::ConnectionStatus) -> pb::ConnectionStatus {
        match &self.ctx.cluster {
            Some(cluster) => cluster.with_view(status),
            None => status,
        }
    }

    /// The session the clients are served from: in a cluster, the leader's.
    fn current(&self) -> pb::ConnectionStatus {
        match self.ctx.cluster.as_ref().and_then(|c| c.leader_status()) {
            Some(leaders) => self.in_cluster(leaders),
            None => self.render(&self.ctx.session.status()),
        }
    }

    /// Carries out a session command here, or at the leader when another node leads.
    async fn command(&self, op: SessionOp) -> Result<pb::ConnectionStatus, Status> {
        if let Some(cluster) = self.ctx.cluster.as_ref().filter(|c| !c.leads()) {
            return Ok(self.in_cluster(cluster.forward(op).await?));
        }
        let session = &self.ctx.session;
        let status = match op {
            SessionOp::Connect => session.connect().await?,
            SessionOp::Disconnect => session.disconnect().await?,
            SessionOp::Reconnect => session.reconnect().await?,
        };
        Ok(self.render(&status))
    }

    /// The named profile, or the active one.
    async fn profile(&self, name: Option<&str>) -> Result<Profile, Status> {
        Ok(match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => self.ctx.store.profile(name).await?,
            None => self.ctx.store.active_profile().await?,
        })
    }

    /// The named profile, or a new one by that name when `allow_missing`.
    async fn profile_or_new(&self, name: &str, allow_missing: bool) -> Result<Profile, Status> {
        match self.profile(Some(name)).await {
            Err(status) if status.code() == tonic::Code::NotFound && allow_missing => {
                Ok(Profile::named(name))
            }
            found => found,
        }
    }

    async fn settings_of(&self, profile: &Profile) -> Result<pb::Settings, Status> {
        let credentials_set = self.ctx.store.credentials(&profile.name).await?.is_some();
        Ok(to_settings(profile, credentials_set))
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
        let update = SettingsUpdate::try_from(request.into_inner())?;
        let name = update.settings.name.trim();
        let mut profile = self.profile_or_new(name, update.allow_missing).await?;
        apply(&mut profile, &update.settings, &update.fields)?;
        let saved = self.ctx.store.save_profile(&profile).await?;
        tracing::info!(profile = saved.name.as_str(), fields = ?update.fields, "settings updated");
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
        let name = profile_to_activate(request.get_ref())?;
        let profile = self.ctx.store.activate_profile(name).await?;
        tracing::info!(profile = profile.name.as_str(), "profile activated");
        Ok(Response::new(self.settings_of(&profile).await?))
    }

    async fn set_credentials(
        &self,
        request: Request<pb::SetCredentialsRequest>,
    ) -> Result<Response<pb::CredentialsState>, Status> {
        let new = NewCredentials::try_from(request.into_inner())?;
        let profile = self.profile(new.profile.as_deref()).await?;
        let sealed = SealedCredentials::seal(&self.ctx.master_key, &new.username, &new.password)?;
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
        let profile = self.profile(request.profile.as_deref()).await?;
        let profile = convert::session_profile(&profile);
        let target = TestTarget::read(&request, &profile, &self.ctx.session.status())?;
        let outcome = probe::probe(&target.endpoint, target.timeout).await;
        Ok(Response::new(pb::TestConnectionResponse {
            address: target.endpoint.address(),
            client_id: target.endpoint.client_id,
            client_id_derived: target.client_id_derived,
            result: Some(convert::test_result(outcome)),
        }))
    }

    async fn connect(
        &self,
        _request: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        Ok(Response::new(self.command(SessionOp::Connect).await?))
    }

    async fn disconnect(
        &self,
        _request: Request<pb::DisconnectRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        Ok(Response::new(self.command(SessionOp::Disconnect).await?))
    }

    async fn reconnect(
        &self,
        _request: Request<pb::ReconnectRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        Ok(Response::new(self.command(SessionOp::Reconnect).await?))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ConnectionStatus>, Status> {
        Ok(Response::new(self.current()))
    }

    type WatchStatusStream = BoxedStream<pb::ConnectionStatus>;

    async fn watch_status(
        &self,
        request: Request<pb::WatchStatusRequest>,
    ) -> Result<Response<Self::WatchStatusStream>, Status> {
        let guard = self.ctx.streams.admit(&request)?;
        let statuses = match &self.ctx.cluster {
            Some(cluster) => {
                let api = self.clone();
                cluster_status_stream(
                    cluster.changes(),
                    self.ctx.session.watch_status(),
                    move || api.current(),
                )
            }
            None => status_stream(
                self.ctx.session.watch_status(),
                self.ctx.metrics.clone(),
                self.ctx.session.pacer(),
            ),
        };
        Ok(Response::new(guard.wrap(statuses)))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let size = event_page_size(request.get_ref())?;
        let events = self.ctx.store.recent_events(size).await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(pb::ConnectionEvent::from).collect(),
        }))
    }

    async fn get_access(
        &self,
        request: Request<pb::GetAccessRequest>,
    ) -> Result<Response<pb::Access>, Status> {
        Ok(Response::new(convert::access(&identity_of(&request))))
    }
}
