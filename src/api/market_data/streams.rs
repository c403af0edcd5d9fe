//! The data of `MarketDataService`'s server streams: fan-out readers and chain events
//! turned into protobuf messages (their lifetime comes from [`crate::api::lifetime`]).

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::convert::{
    MAX_CODE_CHARS, data_policy_from_pb, duration, greeks_to_pb, ib_text, instrument_to_spec,
    quote_to_pb, spec_to_pb,
};
use crate::api::lifetime::BoxedStream;
use crate::api::status::fanout_code;
use crate::fanout::{
    ChainEvent, ChainRequest, Fanout, FanoutError, Right, StatusKind, StrikeSelection,
};
use crate::metrics::Metrics;
use crate::proto::ibstream::v1 as pb;

/// Default strikes per expiration of a window around the money.
const DEFAULT_STRIKE_COUNT: usize = 10;
/// Most strikes per expiration of a window around the money (`strike_count`).
pub const MAX_CHAIN_STRIKES: u32 = 200;
/// Most distinct expirations of one window, named (`expirations`) or counted
/// (`expiration_count`).
pub const MAX_CHAIN_EXPIRATIONS: usize = 24;

pub(crate) fn status_pb(
    index: usize,
    instrument: pb::Instrument,
    kind: &StatusKind,
) -> pb::InstrumentStatus {
    use pb::InstrumentStatusKind as K;
    let (k, code, message, gap) = match kind {
        StatusKind::Subscribed => (K::Subscribed, 0, String::new(), None),
        StatusKind::Stale => (
            K::Stale,
            0,
            "the IB session or the data farm serving this instrument is down".to_owned(),
            None,
        ),
        StatusKind::Resumed { gap } => (K::Resumed, 0, String::new(), gap.map(duration)),
        StatusKind::DelayedFallback => (
            K::DelayedFallback,
            0,
            "no live-data permission: delayed data follows".to_owned(),
            None,
        ),
        StatusKind::Failed(e) => {
            let k = match e {
                FanoutError::NotFound(_) => K::NotFound,
                FanoutError::NoPermission(_) => K::NoPermission,
                FanoutError::LineBudget { .. } | FanoutError::IbLineLimit(_) => K::LineLimit,
                _ => K::Failed,
            };
            (k, fanout_code(e) as i32, e.to_string(), None)
        }
    };
    pb::InstrumentStatus {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        instrument: Some(instrument),
        kind: k as i32,
        code,
        message,
        gap,
    }
}

/// Reads a `StreamOptionChain` request.
pub fn chain_request(
    req: &pb::StreamOptionChainRequest,
    fanout: &Fanout,
) -> Result<ChainRequest, FanoutError> {
    let underlying = req
        .underlying
        .as_ref()
        .ok_or_else(|| FanoutError::invalid("underlying", "required"))?;
    let underlying = instrument_to_spec(underlying, "underlying")?;
    let strikes = match &req.strike_range {
        Some(r) => {
            if !(r.min.is_finite() && r.max.is_finite() && r.min > 0.0 && r.max >= r.min) {
                return Err(FanoutError::invalid(
                    "strike_range",
                    "min and max must be positive with min <= max",
                ));
            }
            StrikeSelection::Range {
                min: r.min,
                max: r.max,
            }
        }
        None => StrikeSelection::AroundMoney {
            count: match req.strike_count {
                0 => DEFAULT_STRIKE_COUNT,
                n => n as usize,
            },
        },
    };
    if req.strike_count > MAX_CHAIN_STRIKES {
        return Err(FanoutError::invalid(
            "strike_count",
            format!("at most {MAX_CHAIN_STRIKES}"),
        ));
    }
    if req.expiration_count as usize > MAX_CHAIN_EXPIRATIONS {
        return Err(FanoutError::invalid(
            "expiration_count",
            format!("at most {MAX_CHAIN_EXPIRATIONS}"),
        ));
    }
    let expirations = distinct_expirations(&req.expirations)?;
    let rights = match pb::Rights::try_from(req.rights) {
        Ok(pb::Rights::Calls) => vec![Right::Call],
        Ok(pb::Rights::Puts) => vec![Right::Put],
        Ok(pb::Rights::Both | pb::Rights::Unspecified) => vec![Right::Call, Right::Put],
        Err(_) => return Err(FanoutError::invalid("rights", "unknown value")),
    };
    let allow_delayed = fanout.allows_delayed(data_policy_from_pb(req.data_policy)?);
    Ok(ChainRequest {
        underlying,
        expirations,
        expiration_count: req.expiration_count.max(1) as usize,
        strikes,
        rights,
        trading_class: ib_text("trading_class", &req.trading_class, MAX_CODE_CHARS)?
            .to_ascii_uppercase(),
        allow_delayed,
    })
}

/// The named expirations, each checked, duplicates dropped (in request order), at most
/// [`MAX_CHAIN_EXPIRATIONS`] distinct: a request repeating one date thousands of times
/// costs no more than naming it once.
fn distinct_expirations(requested: &[String]) -> Result<Vec<String>, FanoutError> {
    let mut seen = std::collections::HashSet::new();
    let mut distinct = Vec::new();
    for (i, e) in requested.iter().enumerate() {
        if e.len() != 8 || !e.chars().all(|c| c.is_ascii_digit()) {
            return Err(FanoutError::invalid(
                format!("expirations[{i}]"),
                "must be YYYYMMDD",
            ));
        }
        if seen.insert(e.as_str()) {
            if distinct.len() == MAX_CHAIN_EXPIRATIONS {
                return Err(FanoutError::invalid(
                    "expirations",
                    format!("more than {MAX_CHAIN_EXPIRATIONS} distinct expirations"),
                ));
            }
            distinct.push(e.clone());
        }
    }
    Ok(distinct)
}

/// The stream of `StreamOptionChain`.
pub(crate) fn chain_stream(
    metrics: Arc<Metrics>,
    events: mpsc::Receiver<ChainEvent>,
) -> BoxedStream<pb::StreamOptionChainResponse> {
    use pb::stream_option_chain_response::Event;
    let s = ReceiverStream::new(events).map(move |event| {
        metrics.updates_out.inc();
        let event = match event {
            ChainEvent::Window {
                options,
                center,
                removed,
            } => Event::Window(pb::ChainWindow {
                options: options.iter().map(|c| spec_to_pb(c)).collect(),
                center_price: center,
                removed_con_ids: removed,
            }),
            ChainEvent::Option {
                contract,
                view,
                greeks,
            } => Event::Options(pb::OptionQuotes {
                options: vec![pb::OptionQuote {
                    option: Some(spec_to_pb(&contract)),
                    quote: Some(quote_to_pb(&view.quote)),
                    greeks: greeks.as_ref().map(greeks_to_pb),
                    open_interest: view.extras.open_interest,
                    option_volume: view.extras.option_volume.or(view.quote.volume),
                }],
            }),
            ChainEvent::Underlying(view) => Event::Underlying(quote_to_pb(&view.quote)),
            ChainEvent::Status { contract, kind } => {
                Event::Status(status_pb(0, spec_to_pb(&contract), &kind))
            }
            ChainEvent::SnapshotComplete { options } => {
                Event::SnapshotComplete(pb::SnapshotComplete {
                    options: u32::try_from(options).unwrap_or(u32::MAX),
                })
            }
        };
        Ok(pb::StreamOptionChainResponse { event: Some(event) })
    });
    Box::pin(s)
}

/// Starts one client's bar stream; its events end when the client leaves.
pub fn bar_events(
    bars: crate::bars::Bars,
    lease: crate::bars::live::LiveLease,
    contract: crate::fanout::ContractSpec,
    query: crate::bars::stream::StreamQuery,
) -> tokio::sync::mpsc::Receiver<crate::bars::stream::BarEvent> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(crate::bars::stream::run(bars, lease, contract, query, tx));
    rx
}

/// A bar stream's events as responses: SUBSCRIBED first, FAILED last if it fails.
pub fn bar_stream(
    instrument: pb::Instrument,
    events: tokio::sync::mpsc::Receiver<crate::bars::stream::BarEvent>,
) -> BoxedStream<pb::StreamBarsResponse> {
    use crate::bars::stream::BarEvent;
    use pb::stream_bars_response::Event;
    let status = move |kind: StatusKind| {
        Ok(pb::StreamBarsResponse {
            event: Some(Event::Status(Box::new(status_pb(
                0,
                instrument.clone(),
                &kind,
            )))),
        })
    };
    let first = status(StatusKind::Subscribed);
    let rest = tokio_stream::wrappers::ReceiverStream::new(events).map(move |e| match e {
        BarEvent::Completed(b) => Ok(pb::StreamBarsResponse {
            event: Some(Event::Bar(super::convert::bar_to_pb(&b))),
        }),
        BarEvent::Forming(b) => Ok(pb::StreamBarsResponse {
            event: Some(Event::Forming(super::convert::bar_to_pb(&b))),
        }),
        BarEvent::Stale => status(StatusKind::Stale),
        BarEvent::Resumed { gap } => status(StatusKind::Resumed { gap: Some(gap) }),
        BarEvent::Failed(e) => status(StatusKind::Failed(e)),
    });
    Box::pin(futures::stream::once(async move { first }).chain(rest))
}
