//! Reference-data requests: contract details, option chain parameters, symbol search.

use tracing::debug;

use crate::proto::tws;
use crate::sim::contract_data;
use crate::sim::frame::outbound;
use crate::sim::state::Outbox;
use crate::sim::universe::{ContractQuery, Match, SecType, Universe, yyyymmdd};

const NOT_FOUND: &str = "No security definition has been found for the request";
/// Most results a symbol search returns, as IB.
const SEARCH_LIMIT: usize = 16;

/// The query a request's contract describes.
pub(crate) fn query_from(contract: Option<&tws::Contract>) -> ContractQuery {
    let Some(c) = contract else {
        return ContractQuery::default();
    };
    let text = |s: &Option<String>| s.as_deref().unwrap_or("").trim().to_string();
    ContractQuery {
        con_id: c.con_id.unwrap_or(0),
        symbol: text(&c.symbol),
        sec_type: text(&c.sec_type),
        exchange: text(&c.exchange),
        currency: text(&c.currency),
        expiry: text(&c.last_trade_date_or_contract_month),
        strike: c.strike.unwrap_or(0.0),
        right: text(&c.right),
        multiplier: c.multiplier.unwrap_or(0.0),
        trading_class: text(&c.trading_class),
        local_symbol: text(&c.local_symbol),
    }
}

/// Exactly one instrument, or the error 200 text to answer with.
pub(crate) fn resolve_one(universe: &Universe, query: &ContractQuery) -> Result<Match, String> {
    let mut matches = universe.resolve(query).into_iter();
    match (matches.next(), matches.next()) {
        (Some(only), None) => Ok(only),
        (None, _) => Err(NOT_FOUND.to_string()),
        (Some(_), Some(_)) => Err(format!(
            "The contract description specified for {} is ambiguous.",
            query.symbol
        )),
    }
}

/// `reqContractDetails`: every match, then ContractDataEnd; error 200 when none.
pub(crate) async fn contract_details(
    universe: &Universe,
    out: &Outbox,
    req: tws::ContractDataRequest,
) -> bool {
    let req_id = req.req_id.unwrap_or(-1);
    let query = query_from(req.contract.as_ref());
    let matches = universe.resolve(&query);
    debug!(req_id, ?query, found = matches.len(), "contract details");
    if matches.is_empty() {
        return out.error(req_id, 200, NOT_FOUND).await;
    }
    for m in matches {
        let inst = universe.get(m.index);
        let msg = tws::ContractData {
            req_id: Some(req_id),
            contract: Some(contract_data::contract(inst, &m.exchange)),
            contract_details: Some(contract_data::details(universe, inst)),
        };
        if !out.send(outbound::CONTRACT_DATA, &msg).await {
            return false;
        }
    }
    out.send(
        outbound::CONTRACT_DATA_END,
        &tws::ContractDataEnd {
            req_id: Some(req_id),
        },
    )
    .await
}

/// `reqSecDefOptParams`: one SecDefOptParameter per exchange and trading class, then End.
pub(crate) async fn sec_def_opt_params(
    universe: &Universe,
    out: &Outbox,
    req: tws::SecDefOptParamsRequest,
) -> bool {
    let req_id = req.req_id.unwrap_or(-1);
    let con_id = req.underlying_con_id.unwrap_or(0);
    let symbol = req.underlying_symbol.unwrap_or_default();
    let sec_type = req.underlying_sec_type.unwrap_or_default();
    let underlying = universe.underlyings().find(|&i| {
        let inst = universe.get(i);
        let id_ok = con_id == 0 || inst.con_id == con_id;
        let symbol_ok = symbol.is_empty() || inst.symbol.eq_ignore_ascii_case(&symbol);
        let type_ok = sec_type.is_empty() || SecType::from_code(&sec_type) == Some(inst.sec_type);
        id_ok && symbol_ok && type_ok && !universe.chain(i).is_empty()
    });
    let Some(underlying) = underlying else {
        return out.error(req_id, 200, NOT_FOUND).await;
    };
    let exchange_filter = req.fut_fop_exchange.unwrap_or_default();
    let under_con_id = universe.get(underlying).con_id;
    for class in universe.chain(underlying) {
        let expirations: Vec<String> = class.expiries.iter().map(|e| yyyymmdd(e.date)).collect();
        let strikes = class.strike_union();
        for exchange in class.exchanges {
            if !exchange_filter.is_empty() && !exchange.eq_ignore_ascii_case(&exchange_filter) {
                continue;
            }
            let msg = tws::SecDefOptParameter {
                req_id: Some(req_id),
                exchange: Some(exchange.to_string()),
                underlying_con_id: Some(under_con_id),
                trading_class: Some(class.trading_class.clone()),
                multiplier: Some(format!("{}", class.multiplier)),
                expirations: expirations.clone(),
                strikes: strikes.clone(),
            };
            if !out.send(outbound::SEC_DEF_OPT_PARAM, &msg).await {
                return false;
            }
        }
    }
    out.send(
        outbound::SEC_DEF_OPT_PARAM_END,
        &tws::SecDefOptParameterEnd {
            req_id: Some(req_id),
        },
    )
    .await
}

/// `reqMatchingSymbols`: one SymbolSamples frame with every match (possibly none).
pub(crate) async fn matching_symbols(
    universe: &Universe,
    out: &Outbox,
    req: tws::MatchingSymbolsRequest,
) -> bool {
    let found = universe.search(req.pattern.as_deref().unwrap_or(""), SEARCH_LIMIT);
    let msg = tws::SymbolSamples {
        req_id: req.req_id,
        contract_descriptions: found
            .into_iter()
            .map(|i| contract_data::description(universe, universe.get(i)))
            .collect(),
    };
    out.send(outbound::SYMBOL_SAMPLES, &msg).await
}
