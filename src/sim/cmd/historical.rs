//! `reqHistoricalData`, `reqHeadTimestamp` and `reqRealTimeBars`: validated as IB
//! validates them (error 321 for a malformed request, 162 for one the data service
//! refuses, 200 for an unknown contract), paced by IB's historical rules (error 162 and
//! nothing served when broken), answered from the market's [`History`] so historical
//! and real-time bars agree.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::format_description;
use tokio::task::JoinHandle;

use super::reference::{query_from, resolve_one};
use crate::bars::spec::{BarSize, WhatToShow, parse_duration};
use crate::ib::historical_pacer::PacingKey;
use crate::proto::tws;
use crate::sim::catalog::Kind;
use crate::sim::feed::Feed;
use crate::sim::frame::outbound;
use crate::sim::historical_pacing::{HistoricalPacing, VIOLATION};
use crate::sim::history::{SLOT, SimBar};
use crate::sim::state::{Outbox, Shared};
use crate::sim::universe::Match;

/// The prefix of IB's data-service refusals (error 162).
const HMDS: &str = "Historical Market Data Service error message:";

/// A refusal: the error code and message to answer with.
type Refusal = (i32, String);

fn invalid(cause: &str) -> Refusal {
    (
        321,
        format!("Error validating request.-'bP' : cause - {cause}"),
    )
}

/// The underlying a bar request names, or the refusal.
fn underlying(shared: &Shared, contract: Option<&tws::Contract>) -> Result<Match, Refusal> {
    let query = query_from(contract);
    let found = resolve_one(&shared.universe, &query).map_err(|m| (200, m))?;
    if shared.universe.get(found.index).option.is_some() {
        return Err((162, format!("{HMDS}HMDS query returned no data")));
    }
    Ok(found)
}

fn what_to_show(text: Option<&str>, m: &Match, shared: &Shared) -> Result<WhatToShow, Refusal> {
    let what = WhatToShow::parse(text.unwrap_or(""))
        .ok_or_else(|| invalid("Historical data what to show is invalid"))?;
    let kind = shared.universe.get(m.index).entry.kind;
    if what.has_volume() && kind == Kind::Forex {
        return Err((
            162,
            format!("{HMDS}No historical market data for {} TRADES", m.exchange),
        ));
    }
    Ok(what)
}

/// IB's end time: empty for now, else `YYYYMMDD HH:MM:SS UTC` or `YYYYMMDD-HH:MM:SS`.
fn end_time(text: &str, now: i64) -> Result<i64, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(now);
    }
    let spaced = format_description!("[year][month][day] [hour]:[minute]:[second]");
    let dashed = format_description!("[year][month][day]-[hour]:[minute]:[second]");
    let bare = text.strip_suffix(" UTC").unwrap_or(text);
    time::PrimitiveDateTime::parse(bare, spaced)
        .or_else(|_| time::PrimitiveDateTime::parse(bare, dashed))
        .map(|t| t.assume_utc().unix_timestamp().min(now))
        .map_err(|_| invalid("Historical data end date/time is invalid"))
}

/// The pacing key of a request: all of it, and its contract, exchange and type.
fn pacing_key(kind: &str, m: &Match, what: WhatToShow, rest: &str) -> PacingKey {
    let group = format!("{}:{}:{}", m.index, m.exchange, what.ib_text());
    PacingKey {
        request: format!("{kind}:{group}:{rest}"),
        group,
    }
}

fn paced(shared: &Shared, pacing: &mut HistoricalPacing, key: PacingKey) -> Result<(), Refusal> {
    let at = pacing.arrival();
    if pacing.admit(&shared.historical_rules, key, at) {
        shared
            .counters
            .historical_requests
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    } else {
        shared
            .counters
            .historical_pacing_violations
            .fetch_add(1, Ordering::Relaxed);
        Err((162, VIOLATION.to_string()))
    }
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `YYYYMMDD-HH:MM:SS` in UTC, as HistoricalDataEnd carries it.
fn dashed(t: i64) -> String {
    let fmt = format_description!("[year][month][day]-[hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_default()
}

fn bar_to_tws(bar: &SimBar, daily: bool) -> tws::HistoricalDataBar {
    let date = if daily {
        let fmt = format_description!("[year][month][day]");
        OffsetDateTime::from_unix_timestamp(bar.time)
            .ok()
            .and_then(|t| t.format(fmt).ok())
            .unwrap_or_default()
    } else {
        bar.time.to_string()
    };
    tws::HistoricalDataBar {
        date: Some(date),
        open: Some(bar.open),
        high: Some(bar.high),
        low: Some(bar.low),
        close: Some(bar.close),
        volume: Some(bar.volume.to_string()),
        wap: Some(bar.wap.to_string()),
        bar_count: Some(bar.count),
    }
}

/// `reqHistoricalData`: every bar in one HistoricalData, then HistoricalDataEnd.
pub(crate) async fn historical_data(
    shared: &Arc<Shared>,
    out: &Outbox,
    pacing: &mut HistoricalPacing,
    req: tws::HistoricalDataRequest,
) -> bool {
    let req_id = req.req_id.unwrap_or(-1);
    match bars_for(shared, pacing, &req) {
        Ok((bars, start, end, daily)) => {
            let data = tws::HistoricalData {
                req_id: Some(req_id),
                historical_data_bars: bars.iter().map(|b| bar_to_tws(b, daily)).collect(),
            };
            let window = tws::HistoricalDataEnd {
                req_id: Some(req_id),
                start_date_str: Some(dashed(start)),
                end_date_str: Some(dashed(end)),
            };
            out.send(outbound::HISTORICAL_DATA, &data).await
                && out.send(outbound::HISTORICAL_DATA_END, &window).await
        }
        Err((code, message)) => out.error(req_id, code, &message).await,
    }
}

type Answer = (Vec<SimBar>, i64, i64, bool);

fn bars_for(
    shared: &Shared,
    pacing: &mut HistoricalPacing,
    req: &tws::HistoricalDataRequest,
) -> Result<Answer, Refusal> {
    let m = underlying(shared, req.contract.as_ref())?;
    let size = BarSize::parse(req.bar_size_setting.as_deref().unwrap_or(""))
        .ok_or_else(|| invalid("Historical data bar size setting is invalid"))?;
    let what = what_to_show(req.what_to_show.as_deref(), &m, shared)?;
    let duration = parse_duration(req.duration.as_deref().unwrap_or(""))
        .ok_or_else(|| invalid("Historical data query duration is invalid"))?;
    if duration > size.max_duration() {
        return Err((162, format!("{HMDS}Time length exceed max.")));
    }
    if req.keep_up_to_date == Some(true) {
        return Err(invalid("keepUpToDate is not served by this gateway"));
    }
    let now = now_secs();
    let end = end_time(req.end_date_time.as_deref().unwrap_or(""), now)?;
    let start = end - duration.as_secs() as i64;
    let rest = format!(
        "{}:{}:{}:{}",
        req.end_date_time.as_deref().unwrap_or(""),
        size.short(),
        duration.as_secs(),
        req.use_rth.unwrap_or(false)
    );
    paced(shared, pacing, pacing_key("bars", &m, what, &rest))?;
    let inst = shared.universe.get(m.index);
    let step = size.seconds() as i64;
    let bars = shared
        .market
        .history()
        .bars(inst, m.index, what, step, start, end, now);
    if bars.is_empty() {
        return Err((162, format!("{HMDS}HMDS query returned no data")));
    }
    Ok((bars, start, end, step >= 86_400))
}

/// `reqHeadTimestamp`: the earliest bar time, unix seconds.
pub(crate) async fn head_timestamp(
    shared: &Arc<Shared>,
    out: &Outbox,
    pacing: &mut HistoricalPacing,
    req: tws::HeadTimestampRequest,
) -> bool {
    let req_id = req.req_id.unwrap_or(-1);
    let answer = underlying(shared, req.contract.as_ref()).and_then(|m| {
        let what = what_to_show(req.what_to_show.as_deref(), &m, shared)?;
        let rest = req.use_rth.unwrap_or(false).to_string();
        paced(shared, pacing, pacing_key("head", &m, what, &rest))
    });
    match answer {
        Ok(()) => {
            let head = tws::HeadTimestamp {
                req_id: Some(req_id),
                head_timestamp: Some(shared.market.history().head().to_string()),
            };
            out.send(outbound::HEAD_TIMESTAMP, &head).await
        }
        Err((code, message)) => out.error(req_id, code, &message).await,
    }
}

/// A real-time bar subscription; dropping it stops the bars.
#[derive(Debug)]
struct BarFeed {
    task: JoinHandle<()>,
    _feed: Arc<Feed>,
}

impl Drop for BarFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real-time bar subscriptions of one connection, by request id.
#[derive(Debug, Default)]
pub(crate) struct RealtimeBars(HashMap<i32, BarFeed>);

impl RealtimeBars {
    /// `cancelRealTimeBars`.
    pub(crate) fn cancel(&mut self, req_id: i32) {
        self.0.remove(&req_id);
    }
}

/// How long after a five-second boundary its bar is sent: the steps of the slot have
/// been recorded by then.
const SETTLE: Duration = Duration::from_millis(100);

/// `reqRealTimeBars`: five-second bars of the market's record, every five seconds.
pub(crate) async fn realtime_bars(
    shared: &Arc<Shared>,
    out: &Outbox,
    subs: &mut RealtimeBars,
    pacing: &mut HistoricalPacing,
    req: tws::RealTimeBarsRequest,
) -> bool {
    let req_id = req.req_id.unwrap_or(-1);
    if subs.0.contains_key(&req_id) {
        let msg = format!("Error processing request. Duplicate ticker id {req_id}");
        return out.error(req_id, 322, &msg).await;
    }
    let checked = underlying(shared, req.contract.as_ref()).and_then(|m| {
        // IB ignores the bar size (ibapi sends 0): real-time bars are five seconds.
        let what = what_to_show(req.what_to_show.as_deref(), &m, shared)?;
        if !matches!(
            what,
            WhatToShow::Trades | WhatToShow::Midpoint | WhatToShow::Bid | WhatToShow::Ask
        ) {
            return Err(invalid("Invalid what to show for real-time bars"));
        }
        let rest = format!("{req_id}:{}", req.use_rth.unwrap_or(false));
        paced(shared, pacing, pacing_key("realtime", &m, what, &rest))?;
        Ok((m, what))
    });
    let (m, what) = match checked {
        Ok(found) => found,
        Err((code, message)) => return out.error(req_id, code, &message).await,
    };
    let feed = shared.feeds.lease(m.index);
    let task = tokio::spawn(send_bars(shared.clone(), out.clone(), req_id, m, what));
    subs.0.insert(req_id, BarFeed { task, _feed: feed });
    true
}

async fn send_bars(shared: Arc<Shared>, out: Outbox, req_id: i32, m: Match, what: WhatToShow) {
    loop {
        let now = OffsetDateTime::now_utc();
        let secs = now.unix_timestamp();
        let next = (secs.div_euclid(SLOT) + 1) * SLOT;
        let wait = time::Duration::seconds(next - secs)
            - time::Duration::nanoseconds(i64::from(now.nanosecond()));
        let wait = Duration::try_from(wait).unwrap_or_default() + SETTLE;
        tokio::time::sleep(wait).await;
        let inst = shared.universe.get(m.index);
        let bars = shared
            .market
            .history()
            .bars(inst, m.index, what, SLOT, next - SLOT, next, next);
        let Some(bar) = bars.first() else { continue };
        let tick = tws::RealTimeBarTick {
            req_id: Some(req_id),
            time: Some(bar.time),
            open: Some(bar.open),
            high: Some(bar.high),
            low: Some(bar.low),
            close: Some(bar.close),
            volume: Some(bar.volume.to_string()),
            wap: Some(bar.wap.to_string()),
            count: Some(bar.count),
        };
        if !out.send(outbound::REAL_TIME_BARS, &tick).await {
            return;
        }
    }
}
