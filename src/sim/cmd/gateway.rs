//! Requests about the gateway itself: managed accounts, the next order id, the clock, and
//! the burst a gateway sends after StartApi (accounts, next order id, farm notices).

use std::collections::HashSet;

use time::OffsetDateTime;

use crate::proto::tws;
use crate::sim::frame::outbound;
use crate::sim::state::Outbox;

/// An error code and its message.
type Notice = (i32, &'static str);

/// Farm notices a real gateway sends right after the handshake: the farm's name and
/// the notice while it is OK and while it is broken.
const FARM_NOTICES: [(&str, Notice, Notice); 3] = [
    (
        "usfarm",
        (2104, "Market data farm connection is OK:usfarm"),
        (2103, "Market data farm connection is broken:usfarm"),
    ),
    (
        "ushmds",
        (2106, "HMDS data farm connection is OK:ushmds"),
        (2105, "HMDS data farm connection is broken:ushmds"),
    ),
    (
        "secdefnj",
        (2158, "Sec-def data farm connection is OK:secdefnj"),
        (2157, "Sec-def data farm connection is broken:secdefnj"),
    ),
];

/// ManagedAccounts with the comma-separated `accounts`; `false` when the connection is gone.
pub(crate) async fn managed_accounts(out: &Outbox, accounts: &str) -> bool {
    let msg = tws::ManagedAccounts {
        accounts_list: Some(accounts.to_string()),
    };
    out.send(outbound::MANAGED_ACCTS, &msg).await
}

/// NextValidId. The simulator takes no orders, so the next id is always 1.
pub(crate) async fn next_valid_id(out: &Outbox) -> bool {
    let msg = tws::NextValidId { order_id: Some(1) };
    out.send(outbound::NEXT_VALID_ID, &msg).await
}

/// CurrentTime in seconds.
pub(crate) async fn current_time(out: &Outbox) -> bool {
    let msg = tws::CurrentTime {
        current_time: Some(OffsetDateTime::now_utc().unix_timestamp()),
    };
    out.send(outbound::CURRENT_TIME, &msg).await
}

/// CurrentTimeInMillis.
pub(crate) async fn current_time_in_millis(out: &Outbox) -> bool {
    let ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let msg = tws::CurrentTimeInMillis {
        current_time_in_millis: Some(ms),
    };
    out.send(outbound::CURRENT_TIME_IN_MILLIS, &msg).await
}

/// What a gateway sends after StartApi: accounts, next order id, farm notices.
/// `broken` names the farms reported broken instead of OK; those are reported first,
/// before the accounts, so they reach a client while it is still in its handshake (the
/// hardest moment for it to tell which session they belong to).
pub(crate) async fn welcome(out: &Outbox, accounts: &str, broken: &HashSet<String>) -> bool {
    for (_, _, (code, msg)) in FARM_NOTICES.iter().filter(|f| broken.contains(f.0)) {
        if !out.error(-1, *code, msg).await {
            return false;
        }
    }
    if !(managed_accounts(out, accounts).await && next_valid_id(out).await) {
        return false;
    }
    for (_, (code, msg), _) in FARM_NOTICES.iter().filter(|f| !broken.contains(f.0)) {
        if !out.error(-1, *code, msg).await {
            return false;
        }
    }
    true
}
