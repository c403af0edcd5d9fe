//! The simulated gateway in a process of its own (`ibstream sim`, ports chosen by the
//! system and read from what it prints), observed and steered through its control plane.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ibstream::proto::ibsim::v1 as sim_pb;
use ibstream::proto::ibsim::v1::simulator_control_client::SimulatorControlClient;
use ibstream::sim::universe::{SecType, Universe};
use tonic::transport::Channel;

use crate::child::Piped;
use crate::job::Inst;

const GATEWAY_LINE: &str = "simulated IB Gateway on ";
const CONTROL_LINE: &str = "control plane (ibsim.v1.SimulatorControl) on ";

/// A running simulator process; dropping it kills it.
pub struct SimProcess {
    child: Piped,
    pub gateway: SocketAddr,
    control: SimulatorControlClient<Channel>,
}

impl SimProcess {
    /// Starts `ibstream sim` stepping every instrument every `tick`, with `lines`
    /// market-data lines per connection.
    pub async fn start(tick: Duration, lines: u32) -> SimProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ibstream"));
        command
            .args(["sim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .args(["--tick-interval-ms", &tick.as_millis().to_string()])
            .args(["--line-limit", &lines.to_string()])
            .env("RUST_LOG", "warn");
        let mut child = Piped::start(command, false);
        let (mut gateway, mut control) = (None, None);
        while gateway.is_none() || control.is_none() {
            let line = child.line(Duration::from_secs(60)).await;
            if let Some(a) = line.strip_prefix(GATEWAY_LINE) {
                gateway = a.trim().parse::<SocketAddr>().ok();
            } else if let Some(a) = line.strip_prefix(CONTROL_LINE) {
                control = a.trim().parse::<SocketAddr>().ok();
            }
        }
        // Its log goes to stdout too.
        child.ignore_output();
        let control = format!("http://{}", control.expect("control address"));
        let channel = tonic::transport::Endpoint::from_shared(control)
            .expect("url")
            .connect()
            .await
            .expect("the control plane answers");
        SimProcess {
            child,
            gateway: gateway.expect("gateway address"),
            control: SimulatorControlClient::new(channel),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub async fn stats(&mut self) -> sim_pb::Stats {
        self.control
            .get_stats(sim_pb::GetStatsRequest {})
            .await
            .expect("stats")
            .into_inner()
    }

    /// Requests of one kind the simulator received, e.g. `RequestContractData`.
    pub async fn requests(&mut self, kind: &str) -> u64 {
        self.stats()
            .await
            .requests_by_type
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    pub async fn set_tick_interval(&mut self, tick: Duration) {
        self.control
            .set_tick_interval(sim_pb::SetTickIntervalRequest {
                interval: Some(tick.try_into().expect("duration")),
            })
            .await
            .expect("tick interval set");
    }

    pub async fn stop(self) {
        drop(self.child);
    }
}

/// The simulator's stock symbols (ETFs included), each once.
pub fn stock_symbols() -> Vec<String> {
    let universe = Universe::build(time::OffsetDateTime::now_utc().date());
    let mut symbols: Vec<String> = universe
        .underlyings()
        .map(|i| universe.get(i))
        .filter(|inst| inst.sec_type == SecType::Stock)
        .map(|inst| inst.symbol.clone())
        .collect();
    symbols.dedup();
    symbols
}

/// `n` instruments the simulator knows: its stocks, then listed options nearest the
/// money of its nearest expirations (by conId, as the simulator lists them today).
pub fn instruments(n: usize) -> Vec<Inst> {
    let universe = Universe::build(time::OffsetDateTime::now_utc().date());
    let mut out: Vec<Inst> = stock_symbols().iter().map(|s| Inst::stock(s)).collect();
    let mut options: Vec<(time::Date, f64, i32)> = (0..universe.len())
        .map(|i| universe.get(i))
        .filter_map(|inst| {
            let terms = inst.option.as_ref()?;
            let spot = universe.get(terms.underlying).entry.price;
            let away = (terms.strike / spot - 1.0).abs();
            Some((terms.expiry, away, inst.con_id))
        })
        .collect();
    options.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    out.extend(options.iter().map(|o| Inst::option(i64::from(o.2))));
    out.truncate(n);
    out
}
