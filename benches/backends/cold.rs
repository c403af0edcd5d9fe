//! Cold start: a fresh server (empty contract cache) against a fresh simulator, and many
//! clients asking for the same stocks at the same moment.

use std::time::Duration;

use crate::fleet::ClientProcess;
use crate::job::{Inst, Job, Report, Work};
use crate::plan::Plan;
use crate::servers;
use crate::sim::{self, SimProcess};

#[derive(Debug, Clone, Default)]
pub struct ColdStart {
    pub symbols: usize,
    /// When the last stream had a quote of every symbol, and the spread over streams.
    pub report: Report,
    /// `reqContractDetails` and `reqMktData` the simulator received.
    pub contract_details: u64,
    pub market_data: u64,
}

/// `plan.cold_clients` clients, each on its own connection, open a stream of every
/// stock the simulator lists at once.
pub async fn cold_start(plan: &Plan) -> ColdStart {
    let mut sim = SimProcess::start(Duration::from_millis(1), 100).await;
    let server = servers::against_gateway(sim.gateway.port(), 100).await;
    let instruments: Vec<Inst> = sim::stock_symbols()
        .iter()
        .map(|s| Inst::stock(s))
        .collect();
    let job = Job {
        url: server.url.clone(),
        work: Work::ColdStart {
            subscribers: plan.cold_clients,
            instruments: instruments.clone(),
        },
    };
    let (mut client, _) = ClientProcess::start(&job).await;
    let report = client.ask("go").await;
    let contract_details = sim.requests("RequestContractData").await;
    let market_data = sim.requests("RequestMarketData").await;
    client.stop().await;
    server.handle.shutdown().await.expect("clean shutdown");
    sim.stop().await;
    ColdStart {
        symbols: instruments.len(),
        report,
        contract_details,
        market_data,
    }
}
