//! The port through which bars come from IB ([`HistorySource`]), and its production
//! implementation over the session's `ibapi` client ([`IbHistory`]). Pacing is not
//! done here: the caller has its turn from the historical pacer before it asks.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use ibapi::market_data::TradingHours;
use ibapi::market_data::historical::{
    BarSize as IbBarSize, BarTimestamp, Duration as IbDuration, WhatToShow as IbWhat,
};
use ibapi::subscriptions::SubscriptionItem;
use time::OffsetDateTime;

use super::spec::{BarSize, WhatToShow, ib_duration};
use crate::fanout::ib_convert::{contract_to_ib, error_from_ib};
use crate::fanout::ib_source::Paced;
use crate::fanout::{ContractSpec, SourceError};
use crate::ib::{LinkWatch, MessagePacer};
use crate::store::StoredBar;

/// One historical request as IB takes it.
#[derive(Debug, Clone)]
pub struct HistoryAsk {
    pub contract: ContractSpec,
    pub size: BarSize,
    pub what: WhatToShow,
    pub regular_hours: bool,
    /// Unix seconds.
    pub start: i64,
    pub end: i64,
}

/// Five-second bars as IB sends them; the stream ends (after an error, if IB ended it)
/// when the subscription does, e.g. with the session. Dropping it cancels at IB.
pub type BarStream = BoxStream<'static, Result<StoredBar, SourceError>>;

/// What the bar service needs from IB.
pub trait HistorySource: Send + Sync + 'static {
    /// A real-time (five-second) bar subscription. `what` is trades, midpoint, bid or ask.
    fn realtime_bars(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
    ) -> BoxFuture<'static, Result<BarStream, SourceError>>;

    /// The bars IB has for the window (IB may send some outside it).
    fn bars(
        &self,
        ask: HistoryAsk,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<StoredBar>, SourceError>>;

    /// The earliest time IB has data of `what` for `contract` (unix seconds).
    fn head_timestamp(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<i64, SourceError>>;
}

/// [`HistorySource`] over the live `ibapi` client.
#[derive(Clone)]
pub struct IbHistory {
    links: LinkWatch,
    /// Cancels of real-time bars wait here like every other message.
    pacer: MessagePacer,
}

impl IbHistory {
    pub fn new(links: LinkWatch, pacer: MessagePacer) -> Arc<IbHistory> {
        Arc::new(IbHistory { links, pacer })
    }

    fn client(&self) -> Result<Arc<ibapi::Client>, SourceError> {
        self.links
            .borrow()
            .as_ref()
            .map(|l| l.client.clone())
            .ok_or(SourceError::LinkDown)
    }
}

fn size_to_ib(size: BarSize) -> IbBarSize {
    use BarSize as B;
    match size {
        B::Sec1 => IbBarSize::Sec,
        B::Sec5 => IbBarSize::Sec5,
        B::Sec10 => IbBarSize::Sec10,
        B::Sec15 => IbBarSize::Sec15,
        B::Sec30 => IbBarSize::Sec30,
        B::Min1 => IbBarSize::Min,
        B::Min2 => IbBarSize::Min2,
        B::Min3 => IbBarSize::Min3,
        B::Min5 => IbBarSize::Min5,
        B::Min10 => IbBarSize::Min10,
        B::Min15 => IbBarSize::Min15,
        B::Min20 => IbBarSize::Min20,
        B::Min30 => IbBarSize::Min30,
        B::Hour1 => IbBarSize::Hour,
        B::Hour2 => IbBarSize::Hour2,
        B::Hour3 => IbBarSize::Hour3,
        B::Hour4 => IbBarSize::Hour4,
        B::Hour8 => IbBarSize::Hour8,
        B::Day1 => IbBarSize::Day,
        B::Week1 => IbBarSize::Week,
        B::Month1 => IbBarSize::Month,
    }
}

fn what_to_ib(what: WhatToShow) -> IbWhat {
    match what {
        WhatToShow::Trades => IbWhat::Trades,
        WhatToShow::Midpoint => IbWhat::MidPoint,
        WhatToShow::Bid => IbWhat::Bid,
        WhatToShow::Ask => IbWhat::Ask,
        WhatToShow::BidAsk => IbWhat::BidAsk,
        WhatToShow::AdjustedLast => IbWhat::AdjustedLast,
        WhatToShow::HistoricalVolatility => IbWhat::HistoricalVolatility,
        WhatToShow::ImpliedVolatility => IbWhat::OptionImpliedVolatility,
    }
}

fn hours(regular: bool) -> TradingHours {
    if regular {
        TradingHours::Regular
    } else {
        TradingHours::Extended
    }
}

/// A bar's start in unix seconds (a daily bar's date at midnight UTC).
fn bar_time(t: &BarTimestamp) -> i64 {
    match t {
        BarTimestamp::Date(d) => d.midnight().assume_utc().unix_timestamp(),
        BarTimestamp::DateTime(dt) => dt.unix_timestamp(),
    }
}

fn realtime_what(what: WhatToShow) -> ibapi::market_data::realtime::WhatToShow {
    use ibapi::market_data::realtime::WhatToShow as W;
    match what {
        WhatToShow::Midpoint => W::MidPoint,
        WhatToShow::Bid => W::Bid,
        WhatToShow::Ask => W::Ask,
        _ => W::Trades,
    }
}

impl HistorySource for IbHistory {
    fn realtime_bars(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
    ) -> BoxFuture<'static, Result<BarStream, SourceError>> {
        let client = self.client();
        let contract = contract_to_ib(contract);
        let pacer = self.pacer.clone();
        async move {
            let client = client?;
            let sub = client
                .realtime_bars(&contract)
                .what_to_show(realtime_what(what))
                .trading_hours(hours(regular_hours))
                .subscribe()
                .await
                .map_err(|e| error_from_ib(&e))?;
            let paced = Paced::new(sub, &pacer);
            let stream = futures::stream::unfold(Some(paced), |state| async move {
                let mut paced = state?;
                loop {
                    let item = paced.get_mut()?.next().await;
                    match item {
                        Some(Ok(SubscriptionItem::Data(b))) => {
                            let bar = StoredBar {
                                time: b.date.unix_timestamp(),
                                open: b.open,
                                high: b.high,
                                low: b.low,
                                close: b.close,
                                volume: b.volume,
                                wap: b.wap,
                                count: i64::from(b.count),
                            };
                            return Some((Ok(bar), Some(paced)));
                        }
                        Some(Ok(SubscriptionItem::Notice(_))) => continue,
                        Some(Err(e)) => return Some((Err(error_from_ib(&e)), None)),
                        None => return None,
                    }
                }
            });
            Ok(stream.boxed())
        }
        .boxed()
    }

    fn bars(
        &self,
        ask: HistoryAsk,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<Vec<StoredBar>, SourceError>> {
        let client = self.client();
        async move {
            let client = client?;
            let contract = contract_to_ib(&ask.contract);
            let span = Duration::from_secs(u64::try_from(ask.end - ask.start).unwrap_or(1));
            let duration: IbDuration = ib_duration(span).parse().map_err(|e| SourceError::Ib {
                code: 0,
                message: format!("{e}"),
            })?;
            let end =
                OffsetDateTime::from_unix_timestamp(ask.end).map_err(|e| SourceError::Ib {
                    code: 0,
                    message: e.to_string(),
                })?;
            let fetch = client
                .historical_data(&contract, size_to_ib(ask.size))
                .what_to_show(what_to_ib(ask.what))
                .trading_hours(hours(ask.regular_hours))
                .duration(duration)
                .ending(end)
                .fetch();
            let data = tokio::time::timeout(deadline, fetch)
                .await
                .map_err(|_| SourceError::Deadline(deadline))?
                .map_err(|e| error_from_ib(&e))?;
            Ok(data
                .bars
                .iter()
                .map(|b| StoredBar {
                    time: bar_time(&b.date),
                    open: b.open,
                    high: b.high,
                    low: b.low,
                    close: b.close,
                    volume: b.volume,
                    wap: b.wap,
                    count: i64::from(b.count),
                })
                .collect())
        }
        .boxed()
    }

    fn head_timestamp(
        &self,
        contract: &ContractSpec,
        what: WhatToShow,
        regular_hours: bool,
        deadline: Duration,
    ) -> BoxFuture<'static, Result<i64, SourceError>> {
        let client = self.client();
        let contract = contract_to_ib(contract);
        async move {
            let client = client?;
            let head = client.head_timestamp(&contract, what_to_ib(what), hours(regular_hours));
            let at = tokio::time::timeout(deadline, head)
                .await
                .map_err(|_| SourceError::Deadline(deadline))?
                .map_err(|e| error_from_ib(&e))?;
            Ok(at.unix_timestamp())
        }
        .boxed()
    }
}
