//! Public requests from arbitrary bytes: the first byte picks the request and how the rest
//! makes it, either as its protobuf encoding or field by field (which reaches long and odd
//! field values that protobuf's nested length prefixes hide from mutation). Validation must answer Ok or an invalid-argument error, never panic;
//! an accepted instrument becomes an `ibapi` contract whose every string stays within
//! [`MAX_GATEWAY_FIELD`], so no client can make ibstream send the gateway an oversized
//! request.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

// The benchmark's source: chain requests need a fan-out, never a live session.
#[path = "../../benches/fanout/synthetic.rs"]
mod synthetic;
use synthetic::Synthetic;

use ibapi::contracts::Contract;
use ibstream::api::market_data::convert::instrument_to_spec;
use ibstream::api::market_data::streams::chain_request;
use ibstream::api::requests::SettingsUpdate;
use ibstream::api::settings;
use ibstream::fanout::ib_convert::contract_to_ib;
use ibstream::fanout::{ContractSpec, Fanout, FanoutError, FanoutSettings};
use ibstream::metrics::Metrics;
use ibstream::proto::ibstream::v1 as pb;
use ibstream::store::Profile;
use prost::Message;

use super::input::Input;

/// Longest string ibstream may put in one field of a request to the gateway. IB's own
/// fields are short (symbols, exchange codes, a multiplier); 64 bytes is generous.
pub const MAX_GATEWAY_FIELD: usize = 64;

/// Validates the request `bytes` encode.
pub fn check(bytes: &[u8]) {
    let Some((&which, payload)) = bytes.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            if let Ok(req) = pb::GetQuotesRequest::decode(payload) {
                instruments(&req.instruments);
            }
        }
        1 => {
            if let Ok(req) = pb::StreamQuotesRequest::decode(payload) {
                instruments(&req.instruments);
            }
        }
        2 => {
            if let Ok(req) = pb::StreamOptionChainRequest::decode(payload) {
                option_chain(&req);
            }
        }
        3 => {
            if let Ok(req) = pb::UpdateSettingsRequest::decode(payload) {
                update_settings(req);
            }
        }
        4 => {
            let mut input = Input::new(payload);
            let n = input.byte() % 4;
            let list: Vec<pb::Instrument> = (0..n).map(|_| instrument(&mut input)).collect();
            instruments(&list);
        }
        5 => option_chain(&chain_fields(&mut Input::new(payload))),
        _ => update_settings(settings_fields(&mut Input::new(payload))),
    }
}

fn instrument(input: &mut Input) -> pb::Instrument {
    pb::Instrument {
        symbol: input.string(),
        // 0..=9 are the enum's values; 10 is not.
        sec_type: i32::from(input.byte() % 11),
        exchange: input.string(),
        currency: input.string(),
        con_id: if input.bool() { input.i64() } else { 0 },
        expiry: input.string(),
        strike: input.opt_f64(),
        right: i32::from(input.byte() % 4),
        multiplier: input.string(),
        trading_class: input.string(),
        primary_exchange: input.string(),
        local_symbol: input.string(),
    }
}

fn chain_fields(input: &mut Input) -> pb::StreamOptionChainRequest {
    pb::StreamOptionChainRequest {
        underlying: input.bool().then(|| instrument(input)),
        expirations: input.strings(3),
        expiration_count: input.i32() as u32,
        strike_count: input.i32() as u32,
        strike_range: input.bool().then(|| pb::StrikeRange {
            min: input.f64(),
            max: input.f64(),
        }),
        rights: i32::from(input.byte() % 5),
        trading_class: input.string(),
        data_policy: i32::from(input.byte() % 4),
    }
}

/// Mask paths: the real field names (writable and read-only, `*`, one padded) most of
/// the time, anything otherwise.
fn mask_path(input: &mut Input) -> String {
    const ODD: [&str; 7] = [
        "*",
        " port ",
        "name",
        "active",
        "credentials_set",
        "create_time",
        "update_time",
    ];
    let i = usize::from(input.byte());
    settings::WRITABLE_FIELDS
        .iter()
        .chain(ODD.iter())
        .nth(i)
        .map_or_else(|| input.string(), |n| (*n).to_owned())
}

fn settings_fields(input: &mut Input) -> pb::UpdateSettingsRequest {
    let settings = pb::Settings {
        name: input.string(),
        host: input.string(),
        port: input.i32() as u32,
        client_id: input.i32(),
        account: input.bool().then(|| input.string()),
        connect_on_start: input.bool(),
        connection_timeout: input.bool().then(|| prost_types::Duration {
            seconds: input.i64(),
            nanos: input.i32(),
        }),
        retry_attempts: input.i32() as u32,
        market_data_type: i32::from(input.byte() % 6),
        allow_delayed_fallback: input.bool(),
        message_rate: input.i32() as u32,
        line_budget: input.i32() as u32,
        ..Default::default()
    };
    let n = input.byte() % 4;
    let paths = (0..n).map(|_| mask_path(input)).collect();
    pb::UpdateSettingsRequest {
        settings: input.bool().then_some(settings),
        update_mask: input.bool().then_some(prost_types::FieldMask { paths }),
        allow_missing: input.bool(),
    }
}

fn instruments(list: &[pb::Instrument]) {
    for (i, instrument) in list.iter().enumerate() {
        let spec = instrument_to_spec(instrument, &format!("instruments[{i}]"));
        accepted_or_invalid(spec.as_ref().err());
        if let Ok(spec) = spec {
            gateway_bound(&spec);
        }
    }
}

fn option_chain(req: &pb::StreamOptionChainRequest) {
    static FANOUT: OnceLock<Fanout> = OnceLock::new();
    let fanout = FANOUT.get_or_init(|| {
        Fanout::new(
            Synthetic::new(Duration::from_secs(3600)),
            FanoutSettings::default(),
            Arc::new(Metrics::default()),
        )
    });
    match chain_request(req, fanout) {
        Ok(chain) => {
            gateway_bound(&chain.underlying);
            assert!(
                chain.trading_class.len() <= MAX_GATEWAY_FIELD,
                "trading_class of {} bytes accepted",
                chain.trading_class.len()
            );
            assert!(chain.expirations.iter().all(|e| e.len() == 8));
        }
        Err(e) => accepted_or_invalid(Some(&e)),
    }
}

fn update_settings(req: pb::UpdateSettingsRequest) {
    // InvalidField is the invalid-argument error of this service by construction.
    let Ok(update) = SettingsUpdate::try_from(req) else {
        return;
    };
    let mut profile = Profile::default();
    if settings::apply(&mut profile, &update.settings, &update.fields).is_ok() {
        // The profile's own validation decides the rest; it must not panic either.
        let _ = profile.validate();
    }
}

fn accepted_or_invalid(error: Option<&FanoutError>) {
    if let Some(e) = error {
        assert!(
            matches!(e, FanoutError::InvalidArgument { .. }),
            "a malformed request must be an invalid argument, got {e:?}"
        );
    }
}

/// Every string of the `ibapi` contract built for `spec` is within [`MAX_GATEWAY_FIELD`].
fn gateway_bound(spec: &ContractSpec) {
    let c: Contract = contract_to_ib(spec);
    let fields = [
        ("symbol", c.symbol.to_string()),
        ("exchange", c.exchange.to_string()),
        ("primary_exchange", c.primary_exchange.to_string()),
        ("currency", c.currency.to_string()),
        ("expiry", c.last_trade_date_or_contract_month.clone()),
        ("multiplier", c.multiplier.clone()),
        ("local_symbol", c.local_symbol.clone()),
        ("trading_class", c.trading_class.clone()),
    ];
    for (name, value) in fields {
        assert!(
            value.len() <= MAX_GATEWAY_FIELD,
            "{name} of {} bytes accepted and sent to the gateway",
            value.len()
        );
    }
    assert!(
        c.strike.is_finite() && c.strike >= 0.0,
        "strike {}",
        c.strike
    );
}
