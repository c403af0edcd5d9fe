use bytes::Bytes;
use prost::Message;

use super::*;
use crate::sim::frame::{PROTOBUF_OFFSET, inbound};

fn frame(logical_id: i32, payload: impl Into<Bytes>) -> InboundFrame {
    InboundFrame {
        wire_id: logical_id + PROTOBUF_OFFSET,
        payload: payload.into(),
    }
}

/// Tag 1 = 42, then tag 2 (the contract) as a varint, which a message field cannot be.
const ID_THEN_BROKEN_CONTRACT: &[u8] = &[0x08, 42, 0x10, 1];

#[test]
fn a_request_decodes_once_into_its_variant() {
    let req = tws::MarketDataRequest {
        req_id: Some(7),
        ..Default::default()
    };
    let command = Command::from_frame(frame(inbound::REQ_MKT_DATA, req.encode_to_vec()));
    assert!(matches!(&command, Command::MarketData(r) if r.req_id == Some(7)));
    assert_eq!(command.name(), "RequestMarketData");
    assert_eq!(command.req_id(), 7);
}

#[test]
fn an_undecodable_request_is_malformed_and_keeps_its_request_id() {
    let command = Command::from_frame(frame(inbound::REQ_CONTRACT_DATA, ID_THEN_BROKEN_CONTRACT));
    assert!(matches!(
        &command,
        Command::Invalid(Invalid::Malformed {
            kind: RequestKind::ContractData,
            ..
        })
    ));
    assert_eq!(command.name(), "RequestContractData");
    assert_eq!(command.req_id(), 42, "pacing errors name the request");
}

#[test]
fn requests_without_a_request_id_report_minus_one() {
    let ids = Command::from_frame(frame(inbound::REQ_IDS, &[0x08, 42, 0x0a][..]));
    assert!(matches!(ids, Command::Invalid(Invalid::Malformed { .. })));
    assert_eq!(ids.req_id(), -1);
}

#[test]
fn payloads_of_requests_without_fields_are_not_read() {
    for id in [
        inbound::REQ_CURRENT_TIME,
        inbound::REQ_CURRENT_TIME_IN_MILLIS,
        inbound::REQ_MANAGED_ACCTS,
        inbound::START_API,
    ] {
        let command = Command::from_frame(frame(id, &[0xff, 0xff][..]));
        assert!(!matches!(command, Command::Invalid(_)), "{id}: {command:?}");
    }
}

#[test]
fn unknown_ids_are_unsupported() {
    for wire_id in [i32::MIN, 49, 999, i32::MAX] {
        let command = Command::from_frame(InboundFrame {
            wire_id,
            payload: Bytes::new(),
        });
        assert!(matches!(
            command,
            Command::Invalid(Invalid::Unsupported { wire_id: w }) if w == wire_id
        ));
        assert_eq!(command.name(), "Unknown");
        assert_eq!(command.req_id(), -1);
    }
}
