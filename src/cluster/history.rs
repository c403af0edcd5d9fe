//! Historical data for the whole cluster: the leader answers the other nodes' bars and
//! head-timestamp requests from its session, through its own historical pacer, so IB's
//! pacing rules (which count per account) are kept for the cluster, not per node.

use std::sync::Arc;
use std::time::Duration;

use super::wire::{self, WireError};
use crate::bars::LiveBars;
use crate::bars::pacing::{bars_key, head_key};
use crate::bars::source::HistorySource;
use crate::fanout::SourceError;
use crate::ib::historical_pacer::{HistoricalPacer, PacingKey};
use crate::proto::ibstream::cluster::v1 as pb;

/// IB's code for a historical request that broke the pacing rules.
const PACING_VIOLATION: i32 = 162;

/// The leader's historical data and the pacer every historical request of its session
/// goes through.
#[derive(Clone)]
pub struct HistoryPort {
    pub source: Arc<dyn HistorySource>,
    pub pacer: HistoricalPacer,
    /// The leader's shared real-time bar feeds, when it serves them to the others.
    pub live: Option<LiveBars>,
}

impl HistoryPort {
    /// Waits for a turn (within `deadline`), then asks for the bars.
    pub async fn bars(
        &self,
        q: &pb::HistoryQuery,
        deadline: Duration,
    ) -> Result<pb::lookup_reply::Result, SourceError> {
        let ask = wire::history_from_pb(q).map_err(undecodable)?;
        let left = self.turn(&bars_key(&ask), deadline).await?;
        let bars = self.source.bars(ask, left).await?;
        Ok(pb::lookup_reply::Result::Bars(pb::BarList {
            items: bars.iter().map(wire::bar_to_pb).collect(),
        }))
    }

    /// Waits for a turn (within `deadline`), then asks for the head timestamp.
    pub async fn head(
        &self,
        q: &pb::HeadQuery,
        deadline: Duration,
    ) -> Result<pb::lookup_reply::Result, SourceError> {
        let (contract, what, regular_hours) = wire::head_from_pb(q).map_err(undecodable)?;
        let left = self
            .turn(&head_key(&contract, what, regular_hours), deadline)
            .await?;
        let head = self
            .source
            .head_timestamp(&contract, what, regular_hours, left)
            .await?;
        Ok(pb::lookup_reply::Result::Head(head))
    }

    /// Waits for the pacer's turn; what is left of `deadline` afterwards.
    async fn turn(&self, key: &PacingKey, deadline: Duration) -> Result<Duration, SourceError> {
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(deadline, self.pacer.admit(key, true)).await {
            Ok(Ok(())) => Ok(deadline.saturating_sub(started.elapsed())),
            Ok(Err(full)) => Err(pacing_full(
                full.retry_at
                    .saturating_duration_since(tokio::time::Instant::now()),
            )),
            Err(_) => Err(pacing_full(self.pacer.delay(key))),
        }
    }
}

fn pacing_full(retry_after: Duration) -> SourceError {
    SourceError::Ib {
        code: PACING_VIOLATION,
        message: format!(
            "the cluster's historical pacing window is full; retry in {} s",
            retry_after.as_secs().max(1)
        ),
    }
}

fn undecodable(e: WireError) -> SourceError {
    SourceError::Ib {
        code: 0,
        message: format!("undecodable history request: {e}"),
    }
}
