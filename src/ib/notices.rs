//! IB notices that change what the session reports, and how.

/// What a notice means for the session's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEffect {
    /// 1100: the gateway lost its own link to IB's servers.
    IbConnectivityLost,
    /// 1101/1102: that link is back; with 1101 IB dropped every market-data
    /// subscription, so they must be requested again.
    IbConnectivityRestored { subscriptions_lost: bool },
    /// 2103/2105/2157: a data farm is down.
    FarmDown { farm: String },
    /// 2104/2106/2158: a data farm is OK.
    FarmOk { farm: String },
    /// 10197: a competing live session holds the market data.
    CompetingSession,
    /// 326: another connection holds the client id.
    ClientIdInUse,
    /// `ibapi`'s synthetic notice after it re-established the socket itself.
    TransportReconnected,
    /// Nothing the status shows.
    Other,
}

/// Classifies a request-less notice by its code (and, for farms, its text).
pub fn classify(code: i32, message: &str) -> NoticeEffect {
    match code {
        1100 => NoticeEffect::IbConnectivityLost,
        1101 => NoticeEffect::IbConnectivityRestored {
            subscriptions_lost: true,
        },
        1102 => NoticeEffect::IbConnectivityRestored {
            subscriptions_lost: false,
        },
        2103 | 2105 | 2157 => NoticeEffect::FarmDown {
            farm: farm_name(message),
        },
        2104 | 2106 | 2158 => NoticeEffect::FarmOk {
            farm: farm_name(message),
        },
        10197 => NoticeEffect::CompetingSession,
        326 => NoticeEffect::ClientIdInUse,
        ibapi::TRANSPORT_RECONNECT_CODE => NoticeEffect::TransportReconnected,
        _ => NoticeEffect::Other,
    }
}

/// IB names the farm after the last colon ("Market data farm connection is OK:usfarm").
fn farm_name(message: &str) -> String {
    let name = message.rsplit(':').next().unwrap_or(message).trim();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farm_notices_carry_the_farm_name() {
        assert_eq!(
            classify(2104, "Market data farm connection is OK:usfarm"),
            NoticeEffect::FarmOk {
                farm: "usfarm".into()
            }
        );
        assert_eq!(
            classify(2157, "Sec-def data farm connection is broken:secdefnj"),
            NoticeEffect::FarmDown {
                farm: "secdefnj".into()
            }
        );
        assert_eq!(
            classify(2105, "HMDS data farm connection is broken: "),
            NoticeEffect::FarmDown {
                farm: "unknown".into()
            }
        );
    }

    #[test]
    fn connectivity_codes() {
        assert_eq!(classify(1100, "lost"), NoticeEffect::IbConnectivityLost);
        assert_eq!(
            classify(1101, "restored, data lost"),
            NoticeEffect::IbConnectivityRestored {
                subscriptions_lost: true
            }
        );
        assert_eq!(
            classify(1102, "restored, data maintained"),
            NoticeEffect::IbConnectivityRestored {
                subscriptions_lost: false
            }
        );
        assert_eq!(classify(10197, "competing"), NoticeEffect::CompetingSession);
        assert_eq!(classify(326, "in use"), NoticeEffect::ClientIdInUse);
        assert_eq!(
            classify(-8, "reconnected"),
            NoticeEffect::TransportReconnected
        );
        assert_eq!(classify(2108, "inactive"), NoticeEffect::Other);
    }
}
