//! The settings profile: where the gateway is and how to talk to it.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

pub use crate::market_data_type::MarketDataType;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// The field name, as in [`Profile`] (and the gRPC settings message).
    pub field: &'static str,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl ValidationError {
    /// A validation failure of `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValidationError {
            field,
            reason: reason.into(),
        }
    }
}

/// A named set of connection settings. Exactly one profile is active at any time; the
/// session uses the active one.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Unique name, chosen by the user.
    pub name: String,
    /// Gateway host name or IP address.
    pub host: String,
    /// Gateway API port (4001/4002 for IB Gateway, 7496/7497 for TWS).
    pub port: u16,
    /// TWS API client id; must be unique among the gateway's clients.
    pub client_id: i32,
    /// Account to use when the login manages several.
    pub account: Option<String>,
    /// Whether this is the active profile.
    pub active: bool,
    /// Whether the server connects with this profile as soon as it starts.
    pub connect_on_start: bool,
    /// How long one connection attempt may take.
    pub connection_timeout: Duration,
    /// Failed attempts before the circuit breaker opens.
    pub retry_attempts: u32,
    /// Market data type requested from IB.
    pub market_data_type: MarketDataType,
    /// Whether to fall back to delayed data when live data is not permitted.
    pub allow_delayed_fallback: bool,
    /// Messages per second sent to the gateway (IB allows at most 50).
    pub message_rate: u32,
    /// Market-data lines this account may use at once.
    pub line_budget: u32,
    /// When the profile was first saved.
    pub created_at: OffsetDateTime,
    /// When the profile was last saved.
    pub updated_at: OffsetDateTime,
}

/// IB's hard limit on messages per second from all API clients together.
pub const MAX_MESSAGE_RATE: u32 = 50;
/// The name of the profile seeded into an empty database.
pub const DEFAULT_PROFILE_NAME: &str = "default";

impl Default for Profile {
    fn default() -> Self {
        let now = super::time_codec::truncate(OffsetDateTime::now_utc());
        Profile {
            name: DEFAULT_PROFILE_NAME.to_owned(),
            host: "127.0.0.1".to_owned(),
            port: 4002,
            client_id: 1,
            account: None,
            active: true,
            connect_on_start: true,
            connection_timeout: Duration::from_secs(10),
            retry_attempts: 5,
            market_data_type: MarketDataType::Live,
            allow_delayed_fallback: true,
            message_rate: MAX_MESSAGE_RATE,
            line_budget: 100,
            created_at: now,
            updated_at: now,
        }
    }
}

impl Profile {
    /// A profile named `name` with the default settings, not active.
    pub fn named(name: impl Into<String>) -> Profile {
        Profile {
            name: name.into(),
            active: false,
            ..Profile::default()
        }
    }

    /// Checks every field; the error names the first field that is out of bounds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name(&self.name)?;
        validate_host(&self.host)?;
        if self.port == 0 {
            return Err(ValidationError::new("port", "must be between 1 and 65535"));
        }
        if !(0..=999_999_999).contains(&self.client_id) {
            return Err(ValidationError::new(
                "client_id",
                format!("{} is not between 0 and 999999999", self.client_id),
            ));
        }
        if let Some(account) = &self.account {
            validate_account(account)?;
        }
        check_range(
            "connection_timeout",
            self.connection_timeout,
            Duration::from_secs(1)..=Duration::from_secs(300),
            "between 1 s and 5 min",
        )?;
        check_range(
            "retry_attempts",
            self.retry_attempts,
            0..=100,
            "between 0 and 100",
        )?;
        check_range(
            "message_rate",
            self.message_rate,
            1..=MAX_MESSAGE_RATE,
            "between 1 and 50 messages per second (IB's limit is 50)",
        )?;
        check_range(
            "line_budget",
            self.line_budget,
            1..=10_000,
            "between 1 and 10000",
        )?;
        Ok(())
    }
}

fn check_range<T: PartialOrd + fmt::Debug>(
    field: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    expected: &str,
) -> Result<(), ValidationError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("{value:?} is out of range: must be {expected}"),
        ))
    }
}

fn validate_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            "must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
        ))
    }
}

/// A host is an IP address (v4 or v6) or a DNS name: labels of letters, digits and
/// hyphens, separated by dots, 253 characters at most.
fn validate_host(host: &str) -> Result<(), ValidationError> {
    if host.is_empty() {
        return Err(ValidationError::new("host", "must not be empty"));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.len() <= 253 && host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "host",
            // The host is not repeated: it may be anything a client sent, of any length.
            "must be an IP address or a host name (labels of letters, digits and '-', \
             253 characters at most)",
        ))
    }
}

fn validate_account(account: &str) -> Result<(), ValidationError> {
    if !account.is_empty()
        && account.len() <= 32
        && account.chars().all(|c| c.is_ascii_alphanumeric())
    {
        Ok(())
    } else {
        Err(ValidationError::new(
            "account",
            "must be an IB account code: 1 to 32 letters and digits",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(change: impl FnOnce(&mut Profile)) -> &'static str {
        let mut profile = Profile::default();
        change(&mut profile);
        profile.validate().unwrap_err().field
    }

    #[test]
    fn default_profile_is_valid() {
        Profile::default().validate().unwrap();
        Profile::named("paper-2").validate().unwrap();
    }

    #[test]
    fn validation_names_the_offending_field() {
        assert_eq!(field_of(|p| p.name = "has space".into()), "name");
        assert_eq!(field_of(|p| p.host = String::new()), "host");
        assert_eq!(field_of(|p| p.host = "gate way".into()), "host");
        assert_eq!(field_of(|p| p.host = "-bad.example".into()), "host");
        assert_eq!(field_of(|p| p.port = 0), "port");
        assert_eq!(field_of(|p| p.client_id = -1), "client_id");
        assert_eq!(field_of(|p| p.client_id = 1_000_000_000), "client_id");
        assert_eq!(field_of(|p| p.account = Some("DU 1".into())), "account");
        assert_eq!(
            field_of(|p| p.connection_timeout = Duration::from_millis(999)),
            "connection_timeout"
        );
        assert_eq!(
            field_of(|p| p.connection_timeout = Duration::from_secs(301)),
            "connection_timeout"
        );
        assert_eq!(field_of(|p| p.retry_attempts = 101), "retry_attempts");
        assert_eq!(field_of(|p| p.message_rate = 0), "message_rate");
        assert_eq!(field_of(|p| p.message_rate = 51), "message_rate");
        assert_eq!(field_of(|p| p.line_budget = 0), "line_budget");
        assert_eq!(field_of(|p| p.line_budget = 10_001), "line_budget");
    }

    #[test]
    fn boundaries_are_accepted() {
        let mut p = Profile {
            host: "::1".into(),
            port: 65535,
            client_id: 999_999_999,
            connection_timeout: Duration::from_secs(300),
            retry_attempts: 0,
            message_rate: 1,
            line_budget: 10_000,
            account: Some("DU1234567".into()),
            ..Profile::default()
        };
        p.validate().unwrap();
        p.host = "gw-1.internal.example.com".into();
        p.validate().unwrap();
    }
}
