//! `ibstream chain SPY --expirations 2 --strikes 10`: a live option-chain table (calls |
//! strike | puts, with bid/ask/IV/delta) from `StreamOptionChain`.

use std::collections::{BTreeMap, HashMap};

use super::live::{self, LiveArgs, Printed, View};
use super::quotes::{status_word, stock};
use super::remote::{Remote, RemoteError};
use super::table::{self, Align, Cell, Table, Tint};
use crate::proto::ibstream::v1 as pb;
use pb::stream_option_chain_response::Event;

/// Stream a window of an option chain with quotes and Greeks: calls | strike | puts per
/// expiration, centred on the underlying. One line per option update when piped.
#[derive(Debug, clap::Args)]
// `--count` counts this command's own kind of update.
#[command(mut_arg("count", |a| a.help("Exit after this many option updates")))]
pub struct Args {
    /// The underlying's symbol, e.g. `SPY`.
    #[arg(value_name = "SYMBOL")]
    pub symbol: String,
    /// Nearest expirations to show (ignored with --expiry).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub expirations: u32,
    /// Explicit expirations (YYYYMMDD), repeatable.
    #[arg(long = "expiry", value_name = "YYYYMMDD")]
    pub expiries: Vec<String>,
    /// Strikes per expiration around the money.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub strikes: u32,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Runs `ibstream chain`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let underlying = stock(&args.symbol)?;
    let remote = Remote::connect(&args.live.remote).await?;
    let request = pb::StreamOptionChainRequest {
        underlying: Some(underlying.clone()),
        expirations: args.expiries.clone(),
        expiration_count: args.expirations,
        strike_count: args.strikes,
        rights: pb::Rights::Both as i32,
        data_policy: args.live.data_policy() as i32,
        ..Default::default()
    };
    let stream = remote
        .market_data()
        .stream_option_chain(request)
        .await
        .map_err(|status| RemoteError::call("StreamOptionChain", status))?
        .into_inner();
    let mut view = ChainView::new(underlying.symbol);
    live::run(&mut view, stream, "StreamOptionChain", args.live.limits()).await
}

/// Strikes as map keys: prices in hundredths of a cent are exact enough for any listed
/// strike.
type StrikeKey = i64;

fn strike_key(strike: f64) -> StrikeKey {
    (strike * 10_000.0).round() as i64
}

/// One strike of one expiration: the con ids of its call and put in the window.
#[derive(Debug, Clone, Copy)]
struct StrikeRow {
    strike: f64,
    call: Option<i64>,
    put: Option<i64>,
}

/// Expiration → strike → row, both sorted.
type Grid = BTreeMap<String, BTreeMap<StrikeKey, StrikeRow>>;

/// The latest quote and Greeks of one option.
#[derive(Debug, Clone, Default)]
struct OptionData {
    quote: Option<pb::Quote>,
    greeks: Option<pb::Greeks>,
    status: Option<String>,
}

/// The chain window and the latest data of each option in it.
#[derive(Debug)]
pub struct ChainView {
    symbol: String,
    underlying: Option<pb::Quote>,
    center: Option<f64>,
    /// The window: con id → option contract.
    window: HashMap<i64, pb::Instrument>,
    data: HashMap<i64, OptionData>,
    snapshot_complete: bool,
}

impl ChainView {
    /// An empty view of `symbol`'s chain.
    pub fn new(symbol: String) -> ChainView {
        ChainView {
            symbol,
            underlying: None,
            center: None,
            window: HashMap::new(),
            data: HashMap::new(),
            snapshot_complete: false,
        }
    }

    fn set_window(&mut self, window: pb::ChainWindow) -> Printed {
        for removed in &window.removed_con_ids {
            self.window.remove(removed);
            self.data.remove(removed);
        }
        for option in window.options {
            self.window.insert(option.con_id, option);
        }
        self.center = window.center_price;
        Printed::Notice(format!(
            "{} window options={} center={}",
            self.symbol,
            self.window.len(),
            table::price(self.center)
        ))
    }

    fn set_option(&mut self, option: pb::OptionQuote) -> Printed {
        let contract = option.option.unwrap_or_default();
        let line = option_line(
            &self.symbol,
            &contract,
            option.quote.as_ref(),
            option.greeks.as_ref(),
        );
        let entry = self.data.entry(contract.con_id).or_default();
        entry.quote = option.quote;
        entry.greeks = option.greeks;
        entry.status = None;
        self.window.entry(contract.con_id).or_insert(contract);
        Printed::Update(line)
    }

    fn set_status(&mut self, status: pb::InstrumentStatus) -> Printed {
        let word = status_word(status.kind);
        let instrument = status.instrument.unwrap_or_default();
        let name = if instrument.con_id != 0 && self.window.contains_key(&instrument.con_id) {
            contract_name(&instrument)
        } else {
            self.symbol.clone()
        };
        if instrument.con_id != 0 && self.window.contains_key(&instrument.con_id) {
            self.data.entry(instrument.con_id).or_default().status = Some(word.clone());
        }
        let mut line = format!("{name} status={}", word.replace(' ', "_"));
        if !status.message.is_empty() {
            line.push_str(&format!(" message={:?}", status.message));
        }
        Printed::Notice(line)
    }

    /// Expirations in the window, each with its strikes and the call and put there.
    fn grid(&self) -> Grid {
        let mut grid = Grid::new();
        for (con_id, option) in &self.window {
            let Some(strike) = option.strike else {
                continue;
            };
            let slot = grid
                .entry(option.expiry.clone())
                .or_default()
                .entry(strike_key(strike))
                .or_insert(StrikeRow {
                    strike,
                    call: None,
                    put: None,
                });
            match pb::OptionRight::try_from(option.right) {
                Ok(pb::OptionRight::Call) => slot.call = Some(*con_id),
                Ok(pb::OptionRight::Put) => slot.put = Some(*con_id),
                _ => {}
            }
        }
        grid
    }

    fn side_cells(&self, con_id: Option<i64>) -> [Cell; 4] {
        let data = con_id.and_then(|id| self.data.get(&id));
        let quote = data.and_then(|d| d.quote.as_ref());
        let greeks = data.and_then(|d| d.greeks.as_ref());
        let tint = if quote.is_some_and(|q| q.stale) || quote.is_none() {
            Tint::Dim
        } else {
            Tint::Plain
        };
        if let Some(status) = data
            .and_then(|d| d.status.as_ref())
            .filter(|_| quote.is_none())
        {
            return [
                Cell::tinted(table::truncate(status, 16), Tint::Red),
                Cell::plain(""),
                Cell::plain(""),
                Cell::plain(""),
            ];
        }
        [
            Cell::tinted(table::price(quote.and_then(|q| q.bid)), tint),
            Cell::tinted(table::price(quote.and_then(|q| q.ask)), tint),
            Cell::tinted(
                table::ratio_percent(greeks.and_then(|g| g.implied_volatility)),
                tint,
            ),
            Cell::tinted(table::greek(greeks.and_then(|g| g.delta)), tint),
        ]
    }

    fn underlying_price(&self) -> Option<f64> {
        let q = self.underlying.as_ref()?;
        q.last.or(q.bid.zip(q.ask).map(|(b, a)| (b + a) / 2.0))
    }
}

/// An option's short name: `SPY 20261127 590 C`.
fn contract_name(option: &pb::Instrument) -> String {
    let right = match pb::OptionRight::try_from(option.right) {
        Ok(pb::OptionRight::Call) => "C",
        Ok(pb::OptionRight::Put) => "P",
        _ => "?",
    };
    let strike = option.strike.map_or_else(|| "-".into(), |s| format!("{s}"));
    format!("{} {} {strike} {right}", option.symbol, option.expiry)
}

/// One plain line for an option update.
fn option_line(
    symbol: &str,
    option: &pb::Instrument,
    quote: Option<&pb::Quote>,
    greeks: Option<&pb::Greeks>,
) -> String {
    let name = if option.symbol.is_empty() {
        contract_name(&pb::Instrument {
            symbol: symbol.to_owned(),
            ..option.clone()
        })
    } else {
        contract_name(option)
    };
    let source = greeks
        .and_then(|g| pb::GreeksSource::try_from(g.source).ok())
        .map(|s| match s {
            pb::GreeksSource::IbModel => "ib",
            pb::GreeksSource::Computed => "computed",
            pb::GreeksSource::Unspecified => "-",
        })
        .unwrap_or("-");
    let mut line = format!(
        "{name} bid={} ask={} last={} iv={} delta={} gamma={} vega={} theta={} und={} greeks={source}",
        table::price(quote.and_then(|q| q.bid)),
        table::price(quote.and_then(|q| q.ask)),
        table::price(quote.and_then(|q| q.last)),
        table::ratio_percent(greeks.and_then(|g| g.implied_volatility)),
        table::greek(greeks.and_then(|g| g.delta)),
        table::greek(greeks.and_then(|g| g.gamma)),
        table::greek(greeks.and_then(|g| g.vega)),
        table::greek(greeks.and_then(|g| g.theta)),
        table::price(greeks.and_then(|g| g.underlying_price)),
    );
    if quote.is_some_and(|q| q.stale) {
        line.push_str(" STALE");
    }
    line
}

impl View for ChainView {
    type Message = pb::StreamOptionChainResponse;

    fn apply(&mut self, message: pb::StreamOptionChainResponse) -> Vec<Printed> {
        let printed = match message.event {
            Some(Event::Window(window)) => self.set_window(window),
            Some(Event::Options(batch)) => {
                return batch
                    .options
                    .into_iter()
                    .map(|option| self.set_option(option))
                    .collect();
            }
            Some(Event::Underlying(quote)) => {
                let line = super::quotes::quote_line(&self.symbol, &quote);
                self.underlying = Some(quote);
                Printed::Notice(format!("underlying {line}"))
            }
            Some(Event::Status(status)) => self.set_status(status),
            Some(Event::SnapshotComplete(done)) => {
                self.snapshot_complete = true;
                Printed::Notice(format!(
                    "{} snapshot complete options={}",
                    self.symbol, done.options
                ))
            }
            None => return Vec::new(),
        };
        vec![printed]
    }

    fn frame(&self, ansi: bool) -> Vec<String> {
        let stale = self.underlying.as_ref().is_some_and(|q| q.stale);
        let mut lines = vec![format!(
            "ibstream chain {} — underlying {}{} — {} options{} — Ctrl-C to quit",
            self.symbol,
            table::price(self.underlying_price()),
            if stale { " STALE" } else { "" },
            self.window.len(),
            if self.snapshot_complete {
                ""
            } else {
                " (loading)"
            },
        )];
        let at_money = self.underlying_price().or(self.center);
        for (expiry, strikes) in self.grid() {
            lines.push(String::new());
            lines.push(format!("expiry {expiry}"));
            let mut t = Table::new(&[
                ("C BID", Align::Right),
                ("C ASK", Align::Right),
                ("C IV", Align::Right),
                ("C DELTA", Align::Right),
                ("STRIKE", Align::Right),
                ("P BID", Align::Right),
                ("P ASK", Align::Right),
                ("P IV", Align::Right),
                ("P DELTA", Align::Right),
            ]);
            let nearest = at_money.and_then(|p| {
                strikes
                    .values()
                    .map(|row| row.strike)
                    .min_by(|a, b| (a - p).abs().total_cmp(&(b - p).abs()))
            });
            for row in strikes.values() {
                let mut cells: Vec<Cell> = self.side_cells(row.call).into();
                let strike_tint = if Some(row.strike) == nearest {
                    Tint::Bold
                } else {
                    Tint::Plain
                };
                cells.push(Cell::tinted(format!("{}", row.strike), strike_tint));
                cells.extend(self.side_cells(row.put));
                t.push(cells);
            }
            lines.extend(t.render(ansi));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(con_id: i64, strike: f64, right: pb::OptionRight) -> pb::Instrument {
        pb::Instrument {
            symbol: "SPY".into(),
            sec_type: pb::SecurityType::Option as i32,
            con_id,
            expiry: "20261127".into(),
            strike: Some(strike),
            right: right as i32,
            ..Default::default()
        }
    }

    fn window(options: Vec<pb::Instrument>) -> pb::StreamOptionChainResponse {
        pb::StreamOptionChainResponse {
            event: Some(Event::Window(pb::ChainWindow {
                options,
                center_price: Some(590.0),
                removed_con_ids: vec![],
            })),
        }
    }

    fn option_quote(contract: pb::Instrument, bid: f64, delta: f64) -> pb::OptionQuote {
        pb::OptionQuote {
            option: Some(contract),
            quote: Some(pb::Quote {
                bid: Some(bid),
                ask: Some(bid + 0.1),
                ..Default::default()
            }),
            greeks: Some(pb::Greeks {
                implied_volatility: Some(0.2),
                delta: Some(delta),
                gamma: Some(0.01),
                vega: Some(0.3),
                theta: Some(-0.05),
                underlying_price: Some(590.0),
                source: pb::GreeksSource::Computed as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn update(options: Vec<pb::OptionQuote>) -> pb::StreamOptionChainResponse {
        pb::StreamOptionChainResponse {
            event: Some(Event::Options(pb::OptionQuotes { options })),
        }
    }

    #[test]
    fn option_updates_print_greeks_and_fill_the_grid() {
        let call = option(1, 590.0, pb::OptionRight::Call);
        let put = option(2, 590.0, pb::OptionRight::Put);
        let mut view = ChainView::new("SPY".into());
        let notice = view.apply(window(vec![call.clone(), put.clone()]));
        assert_eq!(
            notice,
            vec![Printed::Notice("SPY window options=2 center=590.00".into())]
        );
        let printed = view.apply(update(vec![option_quote(call, 5.0, 0.52)]));
        assert_eq!(
            printed,
            vec![Printed::Update(
                "SPY 20261127 590 C bid=5.00 ask=5.10 last=- iv=20.0% delta=0.520 gamma=0.010 vega=0.300 theta=-0.050 und=590.00 greeks=computed".into()
            )]
        );
        view.apply(update(vec![option_quote(put, 4.0, -0.48)]));
        let frame = view.frame(false);
        let row = frame.iter().find(|l| l.contains(" 590 ")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "5.00", "5.10", "20.0%", "0.520", "590", "4.00", "4.10", "20.0%", "-0.480"
            ]
        );
        assert!(frame.iter().any(|l| l == "expiry 20261127"), "{frame:?}");
    }

    #[test]
    fn a_batch_prints_one_line_per_option() {
        let mut view = ChainView::new("SPY".into());
        view.apply(window(vec![]));
        let printed = view.apply(update(vec![
            option_quote(option(1, 590.0, pb::OptionRight::Call), 5.0, 0.5),
            option_quote(option(2, 590.0, pb::OptionRight::Put), 4.0, -0.5),
        ]));
        assert_eq!(printed.len(), 2);
        assert!(printed.iter().all(|p| matches!(p, Printed::Update(_))));
        assert_eq!(view.window.len(), 2);
    }

    #[test]
    fn re_centring_drops_options_that_left_the_window() {
        let mut view = ChainView::new("SPY".into());
        view.apply(window(vec![option(1, 580.0, pb::OptionRight::Call)]));
        view.apply(pb::StreamOptionChainResponse {
            event: Some(Event::Window(pb::ChainWindow {
                options: vec![option(3, 600.0, pb::OptionRight::Call)],
                center_price: Some(600.0),
                removed_con_ids: vec![1],
            })),
        });
        let strikes: Vec<f64> = view
            .grid()
            .values()
            .flat_map(|s| s.values().map(|row| row.strike))
            .collect();
        assert_eq!(strikes, vec![600.0]);
    }
}
