//! The one reading of IB's request-less notices: codes (and, for farms, the farm name)
//! become typed [`NoticeEffect`]s. The session applies them to its status and
//! broadcasts them, stamped with the session they belong to ([`SessionNotice`]), to
//! whoever else follows them (the fan-out's stale marking and resubscription).

/// Families of IB market-data farms (`usfarm`, `usopt`, `cashfarm`, `usfuture` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FarmKind {
    Equities,
    Options,
    Forex,
    Futures,
}

impl FarmKind {
    /// Classifies a farm name as IB reports it in notices 2103–2106/2157/2158.
    pub fn from_farm_name(name: &str) -> Option<FarmKind> {
        let name = name.trim().to_ascii_lowercase();
        if name.contains("opt") {
            Some(FarmKind::Options)
        } else if name.starts_with("cash") {
            Some(FarmKind::Forex)
        } else if name.contains("fut") {
            Some(FarmKind::Futures)
        } else if name.contains("farm") {
            Some(FarmKind::Equities)
        } else {
            // Historical (hmds) and sec-def farms serve no streaming quotes.
            None
        }
    }
}

/// A data farm named in a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Farm {
    /// As IB names it (`usfarm`), "unknown" when the notice names none.
    pub name: String,
    /// The quotes it serves; `None` for farms that serve no streaming quotes.
    pub kind: Option<FarmKind>,
}

/// What a notice means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeEffect {
    /// 1100: the gateway lost its own link to IB's servers.
    IbConnectivityLost,
    /// 1101/1102: that link is back; with 1101 IB dropped every market-data
    /// subscription, so they must be requested again; with 1102 it kept them.
    IbConnectivityRestored { subscriptions_lost: bool },
    /// 2103/2105/2157: a data farm is down.
    FarmDown { farm: Farm },
    /// 2104/2106/2158: a data farm is OK.
    FarmOk { farm: Farm },
    /// 10197: a competing live session holds the market data.
    CompetingSession,
    /// 326: another connection holds the client id.
    ClientIdInUse,
    /// `ibapi`'s synthetic notice after it re-established the socket itself.
    TransportReconnected,
    /// Nothing anyone acts on.
    Other,
}

/// A classified notice as the session broadcasts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionNotice {
    /// The link generation the notice arrived in: a notice of an older session says
    /// nothing about the current one.
    pub generation: u64,
    pub code: i32,
    pub effect: NoticeEffect,
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
            farm: farm(message),
        },
        2104 | 2106 | 2158 => NoticeEffect::FarmOk {
            farm: farm(message),
        },
        10197 => NoticeEffect::CompetingSession,
        326 => NoticeEffect::ClientIdInUse,
        ibapi::TRANSPORT_RECONNECT_CODE => NoticeEffect::TransportReconnected,
        _ => NoticeEffect::Other,
    }
}

/// IB names the farm after the last colon ("Market data farm connection is OK:usfarm").
fn farm(message: &str) -> Farm {
    let name = message.rsplit(':').next().unwrap_or(message).trim();
    let name = if name.is_empty() { "unknown" } else { name };
    Farm {
        name: name.to_owned(),
        kind: FarmKind::from_farm_name(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn farm_of(name: &str, kind: Option<FarmKind>) -> Farm {
        Farm {
            name: name.into(),
            kind,
        }
    }

    #[test]
    fn farm_notices_carry_the_farm_name_and_kind() {
        assert_eq!(
            classify(2104, "Market data farm connection is OK:usfarm"),
            NoticeEffect::FarmOk {
                farm: farm_of("usfarm", Some(FarmKind::Equities))
            }
        );
        assert_eq!(
            classify(2103, "Market data farm connection is broken:usopt"),
            NoticeEffect::FarmDown {
                farm: farm_of("usopt", Some(FarmKind::Options))
            }
        );
        assert_eq!(
            classify(2157, "Sec-def data farm connection is broken:secdefnj"),
            NoticeEffect::FarmDown {
                farm: farm_of("secdefnj", None)
            }
        );
        assert_eq!(
            classify(2105, "HMDS data farm connection is broken: "),
            NoticeEffect::FarmDown {
                farm: farm_of("unknown", None)
            }
        );
    }

    #[test]
    fn farm_names_map_to_the_instruments_they_serve() {
        assert_eq!(FarmKind::from_farm_name("usfarm"), Some(FarmKind::Equities));
        assert_eq!(
            FarmKind::from_farm_name("usfarm.nj"),
            Some(FarmKind::Equities)
        );
        assert_eq!(FarmKind::from_farm_name("usopt"), Some(FarmKind::Options));
        assert_eq!(FarmKind::from_farm_name("cashfarm"), Some(FarmKind::Forex));
        assert_eq!(
            FarmKind::from_farm_name("usfuture"),
            Some(FarmKind::Futures)
        );
        assert_eq!(FarmKind::from_farm_name("ushmds"), None);
        assert_eq!(FarmKind::from_farm_name("secdefnj"), None);
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
        assert_eq!(classify(10167, "delayed"), NoticeEffect::Other);
    }
}
