//! The `ibsim.v1.SimulatorControl` gRPC service: thin handlers over [`SimControl`].

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::config::MAX_DURATION;
use super::control::SimControl;
use crate::proto::ibsim::v1 as pb;
use crate::proto::ibsim::v1::simulator_control_server::SimulatorControl;

/// gRPC adapter of [`SimControl`].
#[derive(Debug, Clone)]
pub struct ControlService {
    control: SimControl,
}

impl ControlService {
    /// Serves the operations of `control`.
    pub fn new(control: SimControl) -> Self {
        Self { control }
    }
}

/// A required, non-negative duration field of at most [`MAX_DURATION`].
fn duration(value: Option<prost_types::Duration>, field: &str) -> Result<Duration, Status> {
    let invalid = |reason: &str| Status::invalid_argument(format!("{field} {reason}"));
    let d = value.ok_or_else(|| invalid("is required"))?;
    let d = Duration::try_from(d).map_err(|_| invalid("must be a non-negative duration"))?;
    if d > MAX_DURATION {
        return Err(invalid(&format!(
            "must be at most {} seconds",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(d)
}

#[tonic::async_trait]
impl SimulatorControl for ControlService {
    async fn get_stats(
        &self,
        _: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        let s = self.control.stats();
        Ok(Response::new(pb::Stats {
            connections: s.connections,
            market_data_requests: s.market_data_requests,
            active_market_data_subscriptions: s.active_market_data_subscriptions,
            peak_messages_per_second: s.peak_messages_per_second,
            requests_by_type: s.requests_by_type,
            errors_sent: s.errors_sent,
            connections_accepted: s.connections_accepted,
            connections_refused: s.connections_refused,
            active_instruments: s.active_instruments,
        }))
    }

    async fn reset_stats(
        &self,
        _: Request<pb::ResetStatsRequest>,
    ) -> Result<Response<pb::ResetStatsResponse>, Status> {
        self.control.reset_stats();
        Ok(Response::new(pb::ResetStatsResponse {}))
    }

    async fn drop_connections(
        &self,
        _: Request<pb::DropConnectionsRequest>,
    ) -> Result<Response<pb::DropConnectionsResponse>, Status> {
        let dropped = self.control.drop_connections() as u32;
        Ok(Response::new(pb::DropConnectionsResponse { dropped }))
    }

    async fn set_availability(
        &self,
        req: Request<pb::SetAvailabilityRequest>,
    ) -> Result<Response<pb::SetAvailabilityResponse>, Status> {
        self.control
            .set_availability(duration(req.into_inner().refuse_for, "refuse_for")?);
        Ok(Response::new(pb::SetAvailabilityResponse {}))
    }

    async fn stall(
        &self,
        req: Request<pb::StallRequest>,
    ) -> Result<Response<pb::StallResponse>, Status> {
        self.control
            .stall(duration(req.into_inner().duration, "duration")?);
        Ok(Response::new(pb::StallResponse {}))
    }

    async fn inject_error(
        &self,
        req: Request<pb::InjectErrorRequest>,
    ) -> Result<Response<pb::InjectErrorResponse>, Status> {
        let req = req.into_inner();
        if req.code == 0 {
            return Err(Status::invalid_argument(
                "code must be a non-zero IB error code",
            ));
        }
        let delivered = self
            .control
            .inject_error(req.code, &req.message, req.request_id) as u32;
        Ok(Response::new(pb::InjectErrorResponse { delivered }))
    }

    async fn set_tick_interval(
        &self,
        req: Request<pb::SetTickIntervalRequest>,
    ) -> Result<Response<pb::SetTickIntervalResponse>, Status> {
        let interval = duration(req.into_inner().interval, "interval")?;
        if interval.is_zero() {
            return Err(Status::invalid_argument("interval must be positive"));
        }
        self.control.set_tick_interval(interval);
        Ok(Response::new(pb::SetTickIntervalResponse {}))
    }

    async fn set_line_limit(
        &self,
        req: Request<pb::SetLineLimitRequest>,
    ) -> Result<Response<pb::SetLineLimitResponse>, Status> {
        self.control.set_line_limit(req.into_inner().line_limit);
        Ok(Response::new(pb::SetLineLimitResponse {}))
    }

    async fn set_live_permission(
        &self,
        req: Request<pb::SetLivePermissionRequest>,
    ) -> Result<Response<pb::SetLivePermissionResponse>, Status> {
        let req = req.into_inner();
        if req.symbol.trim().is_empty() {
            return Err(Status::invalid_argument("symbol is required"));
        }
        self.control
            .set_live_permission(req.symbol.trim(), req.live);
        Ok(Response::new(pb::SetLivePermissionResponse {}))
    }
}
