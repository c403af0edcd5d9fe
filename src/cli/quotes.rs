//! `ibstream quotes AAPL MSFT SPY`: a live quote table from `StreamQuotes`.

use super::live::{self, LiveArgs, Printed, View};
use super::remote::{Remote, RemoteError};
use super::table::{self, Align, Cell, Table, Tint};
use crate::proto::ibstream::v1 as pb;
use pb::stream_quotes_response::Event;

/// Stream live quotes: bid/ask/last with sizes, change against the prior close, stale
/// marking. A refreshing table in a terminal; one line per update when piped.
#[derive(Debug, clap::Args)]
// `--count` counts this command's own kind of update.
#[command(mut_arg("count", |a| a.help("Exit after this many quote updates")))]
pub struct Args {
    /// Stock symbols, e.g. `AAPL MSFT SPY`.
    #[arg(required = true, value_name = "SYMBOL")]
    pub symbols: Vec<String>,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Runs `ibstream quotes`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let instruments = args
        .symbols
        .iter()
        .map(|s| stock(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let remote = Remote::connect(&args.live.remote).await?;
    let request = pb::StreamQuotesRequest {
        instruments: instruments.clone(),
        data_policy: args.live.data_policy() as i32,
    };
    let stream = remote
        .market_data()
        .stream_quotes(request)
        .await
        .map_err(|status| RemoteError::call("StreamQuotes", status))?
        .into_inner();
    let mut view = QuotesView::new(&instruments);
    live::run(&mut view, stream, "StreamQuotes", args.live.limits()).await
}

/// A stock instrument from a symbol typed on the command line.
pub(crate) fn stock(symbol: &str) -> anyhow::Result<pb::Instrument> {
    let symbol = symbol.trim();
    anyhow::ensure!(
        !symbol.is_empty() && symbol.chars().all(|c| c.is_ascii_graphic()),
        "invalid symbol {symbol:?}"
    );
    Ok(pb::Instrument {
        symbol: symbol.to_ascii_uppercase(),
        sec_type: pb::SecurityType::Stock as i32,
        ..Default::default()
    })
}

/// A status kind in lower-case words (`not found`, `delayed fallback`).
pub(crate) fn status_word(kind: i32) -> String {
    pb::InstrumentStatusKind::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("INSTRUMENT_STATUS_KIND_")
                .replace('_', " ")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("status {kind}"))
}

/// Whether a status kind means the instrument will send nothing.
pub(crate) fn is_failure(kind: i32) -> bool {
    use pb::InstrumentStatusKind as K;
    matches!(
        K::try_from(kind),
        Ok(K::NotFound | K::NoPermission | K::LineLimit | K::Failed)
    )
}

/// The type of data a quote came from, in one word.
pub(crate) fn data_type_word(kind: i32) -> &'static str {
    match pb::MarketDataType::try_from(kind) {
        Ok(pb::MarketDataType::Live) => "live",
        Ok(pb::MarketDataType::Frozen) => "frozen",
        Ok(pb::MarketDataType::Delayed) => "delayed",
        Ok(pb::MarketDataType::DelayedFrozen) => "delayed-frozen",
        _ => "-",
    }
}

/// Change of the last price (the mid when nothing traded) against the prior close.
pub(crate) fn change_vs_close(quote: &pb::Quote) -> (Option<f64>, Option<f64>) {
    let mid = quote.bid.zip(quote.ask).map(|(b, a)| (b + a) / 2.0);
    let now = quote.last.or(mid);
    match (now, quote.close) {
        (Some(now), Some(close)) if close != 0.0 => {
            let change = now - close;
            (Some(change), Some(change / close * 100.0))
        }
        _ => (None, None),
    }
}

/// One row of the view: the instrument as requested, its last quote and status.
#[derive(Debug, Clone)]
struct Row {
    symbol: String,
    quote: Option<pb::Quote>,
    /// The latest status word, with the server's message for failures.
    status: Option<(i32, String)>,
}

/// The quotes of a request, in request order.
#[derive(Debug)]
pub struct QuotesView {
    rows: Vec<Row>,
}

impl QuotesView {
    /// An empty view of `instruments`.
    pub fn new(instruments: &[pb::Instrument]) -> QuotesView {
        QuotesView {
            rows: instruments
                .iter()
                .map(|i| Row {
                    symbol: i.symbol.clone(),
                    quote: None,
                    status: None,
                })
                .collect(),
        }
    }

    fn row(&mut self, index: u32) -> Option<&mut Row> {
        self.rows.get_mut(index as usize)
    }
}

/// One plain line for a quote.
pub(crate) fn quote_line(symbol: &str, q: &pb::Quote) -> String {
    let (chg, pct) = change_vs_close(q);
    let mut line = format!(
        "{symbol} bid={} ask={} last={} bid_size={} ask_size={} last_size={} chg={} chg%={} volume={} type={} seq={}",
        table::price(q.bid),
        table::price(q.ask),
        table::price(q.last),
        table::size(q.bid_size),
        table::size(q.ask_size),
        table::size(q.last_size),
        table::change(chg),
        table::percent(pct),
        table::size(q.volume),
        data_type_word(q.market_data_type),
        q.sequence,
    );
    if q.stale {
        line.push_str(" STALE");
    }
    line
}

impl View for QuotesView {
    type Message = pb::StreamQuotesResponse;

    fn apply(&mut self, message: pb::StreamQuotesResponse) -> Vec<Printed> {
        let index = message.index;
        let Some(row) = self.row(index) else {
            return Vec::new();
        };
        match message.event {
            Some(Event::Quote(quote)) => {
                let line = quote_line(&row.symbol, &quote);
                row.quote = Some(quote);
                vec![Printed::Update(line)]
            }
            Some(Event::Status(status)) => {
                let word = status_word(status.kind);
                let mut line = format!("{} status={}", row.symbol, word.replace(' ', "_"));
                if !status.message.is_empty() {
                    line.push_str(&format!(" message={:?}", status.message));
                }
                let shown = if status.message.is_empty() {
                    word
                } else {
                    format!("{word}: {}", status.message)
                };
                row.status = Some((status.kind, shown));
                vec![Printed::Notice(line)]
            }
            None => Vec::new(),
        }
    }

    fn frame(&self, ansi: bool) -> Vec<String> {
        let mut t = Table::new(&[
            ("SYMBOL", Align::Left),
            ("BID", Align::Right),
            ("ASK", Align::Right),
            ("LAST", Align::Right),
            ("BID SZ", Align::Right),
            ("ASK SZ", Align::Right),
            ("LAST SZ", Align::Right),
            ("CHG", Align::Right),
            ("CHG%", Align::Right),
            ("VOLUME", Align::Right),
            ("DATA", Align::Left),
            ("STATE", Align::Left),
        ]);
        for row in &self.rows {
            t.push(row_cells(row));
        }
        let mut lines = vec![
            format!(
                "ibstream quotes — {} instruments — Ctrl-C to quit",
                self.rows.len()
            ),
            String::new(),
        ];
        lines.extend(t.render(ansi));
        lines
    }

    fn hopeless(&self) -> Option<String> {
        let failed: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| match &r.status {
                Some((kind, text)) if is_failure(*kind) => Some(format!("{}: {text}", r.symbol)),
                _ => None,
            })
            .collect();
        (failed.len() == self.rows.len())
            .then(|| format!("no instrument can be streamed: {}", failed.join("; ")))
    }
}

/// Widest state shown in the table (the full reason is in the plain lines and the error).
const STATE_WIDTH: usize = 48;

fn row_cells(row: &Row) -> Vec<Cell> {
    let state = match (&row.status, &row.quote) {
        (Some((kind, text)), _) if is_failure(*kind) => {
            Cell::tinted(table::truncate(text, STATE_WIDTH), Tint::Red)
        }
        (_, Some(q)) if q.stale => Cell::tinted("STALE", Tint::Red),
        (_, Some(_)) => Cell::plain("ok"),
        (Some((_, text)), None) => Cell::tinted(table::truncate(text, STATE_WIDTH), Tint::Dim),
        (None, None) => Cell::tinted("waiting", Tint::Dim),
    };
    let Some(q) = &row.quote else {
        let mut cells = vec![Cell::plain(row.symbol.clone())];
        cells.resize(11, Cell::tinted("-", Tint::Dim));
        cells.push(state);
        return cells;
    };
    let (chg, pct) = change_vs_close(q);
    let base = if q.stale { Tint::Dim } else { Tint::Plain };
    let cell = |text: String| Cell::tinted(text, base);
    let moved = if q.stale {
        Tint::Dim
    } else {
        Tint::of_change(chg)
    };
    vec![
        cell(row.symbol.clone()),
        cell(table::price(q.bid)),
        cell(table::price(q.ask)),
        cell(table::price(q.last)),
        cell(table::size(q.bid_size)),
        cell(table::size(q.ask_size)),
        cell(table::size(q.last_size)),
        Cell::tinted(table::change(chg), moved),
        Cell::tinted(table::percent(pct), moved),
        cell(table::size(q.volume)),
        cell(data_type_word(q.market_data_type).to_owned()),
        state,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(bid: f64, ask: f64, last: f64, close: f64) -> pb::Quote {
        pb::Quote {
            symbol: "AAPL".into(),
            bid: Some(bid),
            ask: Some(ask),
            last: Some(last),
            close: Some(close),
            bid_size: Some(100.0),
            market_data_type: pb::MarketDataType::Live as i32,
            sequence: 3,
            ..Default::default()
        }
    }

    fn message(index: u32, event: Event) -> pb::StreamQuotesResponse {
        pb::StreamQuotesResponse {
            event: Some(event),
            index,
        }
    }

    #[test]
    fn quote_updates_print_one_plain_line_with_prices() {
        let mut view = QuotesView::new(&[stock("aapl").unwrap(), stock("MSFT").unwrap()]);
        let printed = view.apply(message(0, Event::Quote(quote(100.0, 100.1, 100.05, 99.0))));
        assert_eq!(
            printed,
            vec![Printed::Update(
                "AAPL bid=100.00 ask=100.10 last=100.05 bid_size=100 ask_size=- last_size=- chg=+1.05 chg%=+1.06% volume=- type=live seq=3"
                    .into()
            )]
        );
    }

    #[test]
    fn stale_quotes_are_marked_in_lines_and_table() {
        let mut view = QuotesView::new(&[stock("AAPL").unwrap()]);
        let mut q = quote(1.0, 2.0, 1.5, 1.0);
        q.stale = true;
        let printed = view.apply(message(0, Event::Quote(q)));
        assert!(matches!(&printed[0], Printed::Update(l) if l.ends_with(" STALE")));
        let frame = view.frame(false);
        assert!(frame.last().unwrap().ends_with("STALE"), "{frame:?}");
    }

    #[test]
    fn view_is_hopeless_only_when_every_instrument_failed() {
        let mut view = QuotesView::new(&[stock("AAPL").unwrap(), stock("NOPE").unwrap()]);
        let failed = pb::InstrumentStatus {
            index: 1,
            kind: pb::InstrumentStatusKind::NotFound as i32,
            code: 5,
            message: "no such stock".into(),
            ..Default::default()
        };
        let printed = view.apply(message(1, Event::Status(failed.clone())));
        assert_eq!(
            printed,
            vec![Printed::Notice(
                "NOPE status=not_found message=\"no such stock\"".into()
            )]
        );
        assert!(view.hopeless().is_none());
        view.apply(message(
            0,
            Event::Status(pb::InstrumentStatus { index: 0, ..failed }),
        ));
        let reason = view.hopeless().unwrap();
        assert!(
            reason.contains("NOPE: not found: no such stock"),
            "{reason}"
        );
    }

    #[test]
    fn messages_for_unknown_indices_are_ignored() {
        let mut view = QuotesView::new(&[stock("AAPL").unwrap()]);
        assert!(
            view.apply(message(7, Event::Quote(quote(1.0, 2.0, 1.5, 1.0))))
                .is_empty()
        );
    }

    #[test]
    fn change_uses_the_mid_when_nothing_traded() {
        let mut q = quote(10.0, 12.0, 0.0, 10.0);
        q.last = None;
        assert_eq!(change_vs_close(&q), (Some(1.0), Some(10.0)));
        q.close = None;
        assert_eq!(change_vs_close(&q), (None, None));
    }

    #[test]
    fn symbols_are_validated_and_upper_cased() {
        assert_eq!(stock(" spy ").unwrap().symbol, "SPY");
        assert!(stock("").is_err());
        assert!(stock("A B").is_err());
    }
}
