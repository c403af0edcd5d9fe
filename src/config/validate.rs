//! Bounds on every configuration value, checked after each layer is applied.

use std::time::Duration;

use super::{Config, ConfigError};

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn positive(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        Err(invalid(field, "must be longer than zero"))
    } else {
        Ok(())
    }
}

fn at_least_one(field: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(invalid(field, "must be at least 1"))
    } else {
        Ok(())
    }
}

impl Config {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.tls_cert.is_some() != server.tls_key.is_some() {
            let field = if server.tls_cert.is_some() {
                "server.tls_key"
            } else {
                "server.tls_cert"
            };
            return Err(invalid(field, "TLS needs both a certificate and a key"));
        }
        if !(1024..=256 * 1024 * 1024).contains(&server.max_request_bytes) {
            return Err(invalid(
                "server.max_request_bytes",
                "must be between 1 KiB and 256 MiB",
            ));
        }
        at_least_one(
            "server.max_instruments_per_request",
            server.max_instruments_per_request.into(),
        )?;
        at_least_one(
            "server.max_streams_per_key",
            server.max_streams_per_key.into(),
        )?;
        positive("server.unary_timeout", server.unary_timeout)?;
        positive("server.keepalive_interval", server.keepalive_interval)?;
        positive("server.keepalive_timeout", server.keepalive_timeout)?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if let Some(url) = &self.database_url {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(invalid(
                    "database_url",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
        }
        // tracing-subscriber 0.3.23 panics slicing a directive at a byte that is inside a
        // multi-byte character; filter directives are ASCII, so others are refused first.
        if !self.log.filter.is_ascii() {
            return Err(invalid("log.filter", "must be ASCII"));
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(invalid("log.filter", err.to_string()));
        }
        self.validate_market_data()?;
        self.validate_web()?;
        self.validate_cluster()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let cluster = &self.cluster;
        if let Some(url) = &cluster.url
            && !["nats://", "tls://"].iter().any(|s| url.starts_with(s))
        {
            return Err(invalid("cluster.url", "must start with nats:// or tls://"));
        }
        if let Err(e) = crate::cluster::Subjects::new(&cluster.name) {
            return Err(invalid("cluster.name", e.to_string()));
        }
        if let Some(node) = &cluster.node
            && !crate::cluster::valid_node_name(node)
        {
            return Err(invalid(
                "cluster.node",
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&cluster.lease_ttl) {
            return Err(invalid("cluster.lease_ttl", "must be between 1 s and 60 s"));
        }
        Ok(())
    }

    fn validate_web(&self) -> Result<(), ConfigError> {
        for origin in &self.web.allowed_origins {
            if let Err(reason) = crate::api::web::origin::check_origin(origin) {
                return Err(invalid("web.allowed_origins", reason));
            }
        }
        Ok(())
    }

    fn validate_market_data(&self) -> Result<(), ConfigError> {
        let md = &self.market_data;
        if md.linger > Duration::from_secs(3600) {
            return Err(invalid("market_data.linger", "must be at most 1 h"));
        }
        if !(md.risk_free_rate.is_finite() && (-1.0..=1.0).contains(&md.risk_free_rate)) {
            return Err(invalid(
                "market_data.risk_free_rate",
                "must be an annual rate between -1 and 1 (0.045 is 4.5 %)",
            ));
        }
        if !(md.dividend_yield.is_finite() && (0.0..=1.0).contains(&md.dividend_yield)) {
            return Err(invalid(
                "market_data.dividend_yield",
                "must be an annual yield between 0 and 1",
            ));
        }
        if !(md.historical_pacing_scale > 0.0 && md.historical_pacing_scale <= 1.0) {
            return Err(invalid(
                "market_data.historical_pacing_scale",
                "must be above 0 and at most 1",
            ));
        }
        positive("market_data.request_timeout", md.request_timeout)
    }
}
