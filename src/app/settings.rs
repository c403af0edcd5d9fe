//! The market-data settings in force: from the configuration and the active profile,
//! and followed as the profile changes.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::api::market_data::{MarketDataSettings, SettingsHandle};
use crate::config::Config;
use crate::fanout::{Fanout, FanoutSettings, GreeksParams};
use crate::ib::LinkWatch;
use crate::store::{Profile, Store};

impl MarketDataSettings {
    /// The settings from the configuration and the active profile.
    pub fn from_config(config: &Config, profile: &Profile) -> MarketDataSettings {
        MarketDataSettings {
            fanout: FanoutSettings {
                line_budget: profile.line_budget as usize,
                linger: config.market_data.linger,
                data_type: profile.market_data_type,
                allow_delayed_fallback: profile.allow_delayed_fallback,
            },
            request_timeout: config.market_data.request_timeout,
            greeks: GreeksParams {
                risk_free_rate: config.market_data.risk_free_rate,
                dividend_yield: config.market_data.dividend_yield,
            },
            max_instruments_per_request: config.server.max_instruments_per_request as usize,
            max_streams_per_key: config.server.max_streams_per_key as usize,
            message_rate: profile.message_rate,
            historical_pacing_scale: config.market_data.historical_pacing_scale,
        }
    }
}

/// Who applies new settings: the handle the service reads and the fan-out (the
/// session's pacer takes the profile's message rate itself).
pub struct SettingsFollower {
    pub config: Arc<Config>,
    pub store: Store,
    pub link: LinkWatch,
    pub settings: SettingsHandle,
    pub fanout: Fanout,
    pub shutdown: CancellationToken,
}

/// Applies the active profile's limits whenever a new session comes up, so a changed
/// profile applies from its next connect; ends at shutdown.
pub async fn follow_profile(follower: SettingsFollower) {
    let mut link = follower.link.clone();
    let mut generation = None;
    loop {
        tokio::select! {
            _ = follower.shutdown.cancelled() => return,
            changed = link.changed() => if changed.is_err() { return },
        }
        let current = link.borrow_and_update().as_ref().map(|l| l.generation);
        if current.is_none() || current == generation {
            continue;
        }
        generation = current;
        match follower.store.active_profile().await {
            Ok(profile) => {
                let settings = MarketDataSettings::from_config(&follower.config, &profile);
                follower.fanout.update_settings(settings.fanout);
                follower.settings.set(settings);
            }
            Err(e) => tracing::warn!(error = %e, "market-data limits not refreshed"),
        }
    }
}
