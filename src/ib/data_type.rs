//! The market-data type the session asks the gateway for (`reqMarketDataType`): the one
//! place that sends it, remembers what was last sent in which session, and shows that in
//! the session's status. IB applies the type to every market-data request that follows,
//! session-wide, so a caller that relies on it holds the switch across its request.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard, watch};

use super::link::Link;
use super::pacer::MessagePacer;
use super::state::SessionStatus;
use crate::market_data_type::MarketDataType;

/// Shared handle; clones switch one session's type.
#[derive(Clone)]
pub struct DataTypeSwitch {
    /// The type last sent and the link generation it was sent in.
    last: Arc<Mutex<Option<(u64, MarketDataType)>>>,
    pacer: MessagePacer,
    status: Arc<watch::Sender<SessionStatus>>,
}

impl std::fmt::Debug for DataTypeSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataTypeSwitch").finish_non_exhaustive()
    }
}

/// Exclusive use of the switch: no one else changes the type while it is held.
pub struct DataTypeGuard<'a> {
    last: MutexGuard<'a, Option<(u64, MarketDataType)>>,
    switch: &'a DataTypeSwitch,
}

impl DataTypeSwitch {
    pub(crate) fn new(pacer: MessagePacer, status: Arc<watch::Sender<SessionStatus>>) -> Self {
        DataTypeSwitch {
            last: Arc::new(Mutex::new(None)),
            pacer,
            status,
        }
    }

    /// Waits for exclusive use of the switch.
    pub async fn hold(&self) -> DataTypeGuard<'_> {
        DataTypeGuard {
            last: self.last.lock().await,
            switch: self,
        }
    }
}

impl DataTypeGuard<'_> {
    /// Makes `kind` the type of `link`'s session, sending `reqMarketDataType` (paced)
    /// unless it was already sent in that session.
    pub async fn ensure(&mut self, link: &Link, kind: MarketDataType) -> Result<(), ibapi::Error> {
        if *self.last == Some((link.generation, kind)) {
            return Ok(());
        }
        self.switch.pacer.acquire().await;
        link.client.switch_market_data_type(to_ibapi(kind)).await?;
        *self.last = Some((link.generation, kind));
        self.switch
            .status
            .send_modify(|s| s.market_data_type = Some(kind));
        Ok(())
    }
}

/// `ibapi`'s name for a type.
pub fn to_ibapi(kind: MarketDataType) -> ibapi::market_data::MarketDataType {
    use ibapi::market_data::MarketDataType as T;
    match kind {
        MarketDataType::Live => T::Realtime,
        MarketDataType::Frozen => T::Frozen,
        MarketDataType::Delayed => T::Delayed,
        MarketDataType::DelayedFrozen => T::DelayedFrozen,
    }
}

/// The type `ibapi` reports (in a market-data tick), if it is one of ours.
pub fn from_ibapi(kind: ibapi::market_data::MarketDataType) -> Option<MarketDataType> {
    use ibapi::market_data::MarketDataType as T;
    match kind {
        T::Realtime => Some(MarketDataType::Live),
        T::Frozen => Some(MarketDataType::Frozen),
        T::Delayed => Some(MarketDataType::Delayed),
        T::DelayedFrozen => Some(MarketDataType::DelayedFrozen),
        T::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibapi_names_round_trip() {
        for kind in MarketDataType::ALL {
            assert_eq!(from_ibapi(to_ibapi(kind)), Some(kind));
        }
        assert_eq!(
            from_ibapi(ibapi::market_data::MarketDataType::Unknown),
            None
        );
    }
}
