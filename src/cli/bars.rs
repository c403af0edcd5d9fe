//! `ibstream bars AAPL --size 1m --duration 1d`: historical bars from
//! `GetHistoricalBars` as a table (lines when piped); with `--follow`, the same history
//! and then live bars from `StreamBars`.

use super::live::{self, Limits, Printed, View};
use super::quotes::{is_failure, status_word, stock};
use super::remote::{Remote, RemoteArgs, RemoteError};
use super::table::{Align, Cell, Table};
use crate::bars::spec::{BarSize, parse_duration};
use crate::proto::ibstream::v1 as pb;
use pb::stream_bars_response::Event;

/// Bars of one stock: OHLC, volume, WAP and trade count per bar.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stock symbol, e.g. `AAPL`.
    #[arg(value_name = "SYMBOL")]
    pub symbol: String,
    /// Bar size: 1s 5s 10s 15s 30s 1m 2m 3m 5m 10m 15m 20m 30m 1h 2h 3h 4h 8h 1d 1w 1mo.
    #[arg(long, default_value = "1m")]
    pub size: String,
    /// How far back: 30s, 1d, 2w, 1mo, 1y (or IB's "1 D").
    #[arg(long, default_value = "1d")]
    pub duration: String,
    /// What the bars show: trades, midpoint, bid, ask, bid_ask, adjusted_last,
    /// historical_volatility, implied_volatility.
    #[arg(long, default_value = "trades")]
    pub what: String,
    /// Regular trading hours only.
    #[arg(long)]
    pub rth: bool,
    /// After the history, follow live bars (sizes that are multiples of 5 s).
    #[arg(long)]
    pub follow: bool,
    /// With `--follow`: exit after this many whole bars.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The wire value of a `--what` word.
fn what_to_show(word: &str) -> anyhow::Result<pb::WhatToShow> {
    let name = format!("WHAT_TO_SHOW_{}", word.trim().to_ascii_uppercase());
    pb::WhatToShow::from_str_name(&name)
        .filter(|w| *w != pb::WhatToShow::Unspecified)
        .ok_or_else(|| anyhow::anyhow!("unknown --what {word:?}"))
}

/// Runs `ibstream bars`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let instrument = stock(&args.symbol)?;
    let what = what_to_show(&args.what)?;
    let remote = Remote::connect(&args.remote).await?;
    let mut client = remote.market_data();
    if args.follow {
        let size = BarSize::parse(&args.size)
            .ok_or_else(|| anyhow::anyhow!("unknown --size {:?}", args.size))?;
        let span = parse_duration(&args.duration)
            .ok_or_else(|| anyhow::anyhow!("unreadable --duration {:?}", args.duration))?;
        let history_bars = u32::try_from(span.as_secs() / size.seconds()).unwrap_or(u32::MAX);
        let request = pb::StreamBarsRequest {
            instrument: Some(instrument),
            bar_size: args.size.clone(),
            what_to_show: what as i32,
            regular_hours: args.rth,
            history_bars,
        };
        let stream = client
            .stream_bars(request)
            .await
            .map_err(|status| RemoteError::call("StreamBars", status))?
            .into_inner();
        let mut view = BarsView::new(&args.symbol);
        let limits = Limits {
            count: args.count,
            duration: None,
        };
        return live::run(&mut view, stream, "StreamBars", limits).await;
    }
    let request = pb::GetHistoricalBarsRequest {
        instrument: Some(instrument),
        bar_size: args.size.clone(),
        duration: args.duration.clone(),
        what_to_show: what as i32,
        regular_hours: args.rth,
        wait_for_pacing: true,
        ..Default::default()
    };
    let answer = client
        .get_historical_bars(request)
        .await
        .map_err(|status| RemoteError::call("GetHistoricalBars", status))?
        .into_inner();
    let mut view = BarsView::new(&args.symbol);
    view.bars = answer.bars;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let lines = if ansi {
        view.frame(true)
    } else {
        view.bars
            .iter()
            .map(|b| bar_line(&args.symbol, b, "bar"))
            .collect()
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// A bar's start as `YYYY-MM-DD HH:MM:SS` (UTC).
fn when(bar: &pb::Bar) -> String {
    let secs = bar.time.as_ref().map_or(0, |t| t.seconds);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_default()
}

fn number(v: f64) -> String {
    if v < 0.0 { "-".into() } else { format!("{v}") }
}

/// One plain line for a bar.
fn bar_line(symbol: &str, b: &pb::Bar, kind: &str) -> String {
    format!(
        "{symbol} {kind} time={} open={} high={} low={} close={} volume={} wap={} count={}",
        when(b),
        b.open,
        b.high,
        b.low,
        b.close,
        number(b.volume),
        number(b.wap),
        b.count
    )
}

/// The bars of one stock, newest last, and the forming one.
#[derive(Debug)]
pub struct BarsView {
    symbol: String,
    bars: Vec<pb::Bar>,
    forming: Option<pb::Bar>,
    failed: Option<String>,
}

/// Rows a screen shows (the newest).
const SHOWN: usize = 30;

impl BarsView {
    pub fn new(symbol: &str) -> BarsView {
        BarsView {
            symbol: symbol.to_ascii_uppercase(),
            bars: Vec::new(),
            forming: None,
            failed: None,
        }
    }
}

impl View for BarsView {
    type Message = pb::StreamBarsResponse;

    fn apply(&mut self, message: pb::StreamBarsResponse) -> Vec<Printed> {
        match message.event {
            Some(Event::Bar(b)) => {
                let line = bar_line(&self.symbol, &b, "bar");
                self.forming = None;
                self.bars.push(b);
                vec![Printed::Update(line)]
            }
            Some(Event::Forming(b)) => {
                let line = bar_line(&self.symbol, &b, "forming");
                self.forming = Some(b);
                vec![Printed::Notice(line)]
            }
            Some(Event::Status(s)) => {
                if is_failure(s.kind) {
                    self.failed = Some(format!("{}: {}", self.symbol, s.message));
                }
                let word = status_word(s.kind).replace(' ', "_");
                vec![Printed::Notice(format!("{} status={word}", self.symbol))]
            }
            None => Vec::new(),
        }
    }

    fn frame(&self, ansi: bool) -> Vec<String> {
        let mut t = Table::new(&[
            ("TIME (UTC)", Align::Left),
            ("OPEN", Align::Right),
            ("HIGH", Align::Right),
            ("LOW", Align::Right),
            ("CLOSE", Align::Right),
            ("VOLUME", Align::Right),
            ("WAP", Align::Right),
            ("COUNT", Align::Right),
        ]);
        let start = self.bars.len().saturating_sub(SHOWN);
        let rows = self.bars[start..].iter().chain(self.forming.iter());
        for b in rows {
            t.push(vec![
                Cell::plain(when(b)),
                Cell::plain(format!("{}", b.open)),
                Cell::plain(format!("{}", b.high)),
                Cell::plain(format!("{}", b.low)),
                Cell::plain(format!("{}", b.close)),
                Cell::plain(number(b.volume)),
                Cell::plain(number(b.wap)),
                Cell::plain(b.count.to_string()),
            ]);
        }
        let mut lines = vec![format!("{} bars", self.symbol)];
        lines.extend(t.render(ansi));
        lines
    }

    fn hopeless(&self) -> Option<String> {
        self.failed.clone()
    }
}
