//! `reqMktData`: validation, permissions and market-data types, snapshots, and streaming
//! subscriptions (lines) that forward an instrument's shared updates to one connection;
//! `cancelMktData` and `reqMarketDataType`, which change what a session holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::reference::{query_from, resolve_one};
use crate::proto::tws;
use crate::sim::feed::Feed;
use crate::sim::frame::outbound;
use crate::sim::state::{Outbox, Outgoing, Shared};
use crate::sim::ticks::{Generics, TickUpdate};
use crate::sim::universe::{Instrument, SecType};

/// Generic tick codes IB accepts (those outside [`Generics::CODES`] are accepted and
/// produce nothing, as on a real gateway for data the account does not carry).
const IB_GENERIC_CODES: &[u16] = &[
    100, 101, 104, 105, 106, 162, 165, 225, 232, 233, 236, 256, 258, 292, 293, 294, 295, 318, 375,
    411, 456, 460, 577, 586, 588, 595, 614, 619, 623, 787,
];

/// A streaming subscription of one connection; dropping it stops the forwarding.
#[derive(Debug)]
pub(crate) struct Subscription {
    forwarder: JoinHandle<()>,
    _feed: Arc<Feed>,
    shared: Arc<Shared>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.forwarder.abort();
        self.shared
            .counters
            .active_subscriptions
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The streaming subscriptions (market-data lines) of one connection, by ticker id.
#[derive(Debug, Default)]
pub(crate) struct Lines(HashMap<i32, Subscription>);

impl Lines {
    /// `cancelMktData`: stops the subscription of `req_id`, if there is one.
    pub(crate) fn cancel(&mut self, req_id: i32) {
        if self.0.remove(&req_id).is_none() {
            debug!(req_id, "cancel for an unknown or finished ticker id");
        }
    }
}

/// The market-data type a session asked for last (1 live, 2 frozen, 3 delayed, 4 delayed
/// frozen); a session starts live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataType(i32);

impl Default for DataType {
    fn default() -> Self {
        DataType(1)
    }
}

impl DataType {
    /// `reqMarketDataType`: takes a valid type, ignores anything else.
    pub(crate) fn set(&mut self, requested: Option<i32>) {
        match requested {
            Some(t @ 1..=4) => self.0 = t,
            other => warn!(?other, "ignoring invalid market data type"),
        }
    }

    /// Whether the type asks for delayed data.
    fn delayed(self) -> bool {
        self.0 >= 3
    }
}

/// How a request is served.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    req_id: i32,
    delayed: bool,
    announced_type: i32,
    generics: Generics,
}

fn parse_generics(list: &str) -> Result<Generics, String> {
    let mut generics = Generics::default();
    for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match code.parse::<u16>() {
            Ok(n) if IB_GENERIC_CODES.contains(&n) => {
                generics.insert(n);
            }
            _ => return Err(code.to_string()),
        }
    }
    Ok(generics)
}

/// Handles one `reqMktData` of a session holding `lines` and asking for `data_type`;
/// `false` when the connection is gone.
pub(crate) async fn request(
    shared: &Arc<Shared>,
    out: &Outbox,
    lines: &mut Lines,
    data_type: DataType,
    req: tws::MarketDataRequest,
) -> bool {
    shared
        .counters
        .market_data_requests
        .fetch_add(1, Ordering::Relaxed);
    let req_id = req.req_id.unwrap_or(-1);
    if lines.0.contains_key(&req_id) {
        return out
            .error(
                req_id,
                322,
                &format!("Error processing request. Duplicate ticker id {req_id}"),
            )
            .await;
    }
    let generics = match parse_generics(req.generic_tick_list.as_deref().unwrap_or("")) {
        Ok(g) => g,
        Err(code) => {
            let msg = format!(
                "Error validating request.-'bW' : cause - Incorrect generic tick list of {code}"
            );
            return out.error(req_id, 321, &msg).await;
        }
    };
    let query = query_from(req.contract.as_ref());
    let index = match resolve_one(&shared.universe, &query) {
        Ok(m) => m.index,
        Err(msg) => return out.error(req_id, 200, &msg).await,
    };
    let inst = shared.universe.get(index);
    let snapshot = req.snapshot.unwrap_or(false) || req.regulatory_snapshot.unwrap_or(false);
    let Some(delivery) = permission(shared, out, inst, data_type, req_id, generics).await else {
        return true;
    };
    if !snapshot && lines.0.len() >= shared.line_limit.load(Ordering::Relaxed) as usize {
        return out
            .error(req_id, 101, "Max number of tickers has been reached")
            .await;
    }
    // Subscribe before reading the current values so no update falls between them.
    let feed = (!snapshot).then(|| shared.feeds.lease(index));
    let rx = feed.as_ref().map(|f| f.subscribe());
    if !send_opening(shared, out, inst, index, delivery).await {
        return false;
    }
    match (feed, rx) {
        (Some(feed), Some(rx)) => {
            let forwarder = tokio::spawn(forward(rx, out.clone(), delivery));
            shared
                .counters
                .active_subscriptions
                .fetch_add(1, Ordering::Relaxed);
            lines.0.insert(
                req_id,
                Subscription {
                    forwarder,
                    _feed: feed,
                    shared: shared.clone(),
                },
            );
            true
        }
        _ => {
            out.send(
                outbound::TICK_SNAPSHOT_END,
                &tws::TickSnapshotEnd {
                    req_id: Some(req_id),
                },
            )
            .await
        }
    }
}

/// Applies the session's market-data type and the symbol's permission: `None` when the
/// request was rejected (354), otherwise how to deliver (with a 10167 notice sent when
/// delayed data stands in for a missing subscription).
async fn permission(
    shared: &Shared,
    out: &Outbox,
    inst: &Instrument,
    data_type: DataType,
    req_id: i32,
    generics: Generics,
) -> Option<Delivery> {
    let live = shared.has_live_permission(&inst.symbol);
    let delayed = data_type.delayed();
    if !live && !delayed {
        let msg = format!(
            "Requested market data is not subscribed. Check API status by selecting the Account menu then under Management choose Market Data Subscription Manager and/or enable delayed-frozen data.Delayed market data is available.{} {}/TOP/ALL",
            inst.symbol, inst.primary_exchange
        );
        out.error(req_id, 354, &msg).await;
        return None;
    }
    if !live {
        let msg = format!(
            "Requested market data is not subscribed. Displaying delayed market data for {}.",
            inst.symbol
        );
        out.error(req_id, 10167, &msg).await;
    }
    Some(Delivery {
        req_id,
        delayed,
        announced_type: data_type.0,
        generics,
    })
}

/// TickReqParams, MarketDataType, then every current value.
async fn send_opening(
    shared: &Shared,
    out: &Outbox,
    inst: &Instrument,
    index: usize,
    d: Delivery,
) -> bool {
    let params = tws::TickReqParams {
        req_id: Some(d.req_id),
        min_tick: Some(format_tick(inst.min_tick)),
        bbo_exchange: Some(
            if inst.sec_type == SecType::Option {
                "a60001"
            } else {
                "9c0001"
            }
            .into(),
        ),
        snapshot_permissions: Some(3),
        last_price_precision: None,
        last_size_precision: None,
    };
    let kind = tws::MarketDataType {
        req_id: Some(d.req_id),
        market_data_type: Some(d.announced_type),
    };
    let current = TickUpdate::new(
        0.0,
        shared.market.full_ticks(index, OffsetDateTime::now_utc()),
    );
    out.send(outbound::TICK_REQ_PARAMS, &params).await
        && out.send(outbound::MARKET_DATA_TYPE, &kind).await
        && out
            .ticks(Outgoing::Ticks {
                req_id: d.req_id,
                update: Arc::new(current),
                delayed: d.delayed,
                generics: d.generics,
            })
            .await
}

fn format_tick(tick: f64) -> String {
    let s = format!("{tick:.8}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

async fn forward(mut rx: broadcast::Receiver<Arc<TickUpdate>>, out: Outbox, d: Delivery) {
    loop {
        match rx.recv().await {
            Ok(update) => {
                let item = Outgoing::Ticks {
                    req_id: d.req_id,
                    update,
                    delayed: d.delayed,
                    generics: d.generics,
                };
                if !out.ticks(item).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                debug!(
                    req_id = d.req_id,
                    skipped, "slow subscriber skipped updates"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_lists_parse_and_reject_unknown_codes() {
        let g = parse_generics("100, 101,106").unwrap();
        assert!(g.admits(100) && g.admits(106) && !g.admits(104));
        assert!(parse_generics("").is_ok());
        assert!(parse_generics("233").is_ok());
        assert_eq!(parse_generics("100,999").unwrap_err(), "999");
    }

    #[test]
    fn ticks_format_without_trailing_zeros() {
        assert_eq!(format_tick(0.01), "0.01");
        assert_eq!(format_tick(0.00005), "0.00005");
        assert_eq!(format_tick(1.0), "1");
    }
}
