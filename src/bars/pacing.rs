//! What IB's historical pacing rules compare of a request: the whole request (identical
//! requests within 15 s) and its contract, exchange and data type (bursts). One place,
//! so a request paced on one node and again at a cluster's leader counts as the same.

use super::source::HistoryAsk;
use super::spec::WhatToShow;
use crate::fanout::ContractSpec;
use crate::ib::historical_pacer::PacingKey;

fn group(contract: &ContractSpec, what: WhatToShow) -> String {
    format!(
        "{}:{}:{}",
        contract.con_id,
        contract.exchange,
        what.ib_text()
    )
}

/// The pacing key of a bars request.
pub fn bars_key(ask: &HistoryAsk) -> PacingKey {
    PacingKey {
        request: format!(
            "bars:{}:{}:{}:{}:{}:{}",
            ask.contract.con_id,
            ask.what.ib_text(),
            ask.size.short(),
            if ask.regular_hours { "rth" } else { "all" },
            ask.start,
            ask.end
        ),
        group: group(&ask.contract, ask.what),
    }
}

/// The pacing key of a head-timestamp request.
pub fn head_key(contract: &ContractSpec, what: WhatToShow, regular_hours: bool) -> PacingKey {
    PacingKey {
        request: format!(
            "head:{}:{}:{regular_hours}",
            contract.con_id,
            what.ib_text()
        ),
        group: group(contract, what),
    }
}
