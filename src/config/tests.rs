use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn defaults_load_and_validate() {
    // A data dir that does not exist, so no default file is picked up.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let config = Config::load_from(None, Some(&missing), no_env).unwrap();
    let mut expected = Config::default();
    assert_eq!(config, expected);
    expected.validate().unwrap();
    assert_eq!(
        config.server.listen,
        "127.0.0.1:50051".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.market_data.linger, Duration::from_secs(5));
    assert_eq!(config.market_data.risk_free_rate, 0.045);
    assert_eq!(config.market_data.request_timeout, Duration::from_secs(10));
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.master_key_path(), PathBuf::from("./data/master.key"));
    expected.data_dir = PathBuf::new();
    assert!(expected.validate().is_err());
}

const FILE: &str = r#"
data_dir = "/from/file"
[server]
listen = "0.0.0.0:6000"
unary_timeout = "250ms"
max_streams_per_key = 7
[log]
format = "json"
[market_data]
linger = "1m30s"
risk_free_rate = 0.03
"#;

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(&file, FILE).unwrap();

    // File over defaults; untouched keys keep their defaults.
    let from_file = Config::load(Some(&file), no_env).unwrap();
    assert_eq!(from_file.server.listen.port(), 6000);
    assert_eq!(from_file.server.unary_timeout, Duration::from_millis(250));
    assert_eq!(from_file.server.max_streams_per_key, 7);
    assert_eq!(from_file.log.format, LogFormat::Json);
    assert_eq!(from_file.market_data.linger, Duration::from_secs(90));
    assert_eq!(from_file.market_data.risk_free_rate, 0.03);
    assert_eq!(from_file.data_dir, PathBuf::from("/from/file"));
    assert_eq!(from_file.server.max_instruments_per_request, 500);

    // Environment over file.
    let env = env_of(&[
        ("IBSTREAM_LISTEN", "127.0.0.1:7000"),
        ("IBSTREAM_DATA_DIR", "/from/env"),
        ("IBSTREAM_LOG_FORMAT", "text"),
        ("IBSTREAM_LINGER", "2s"),
        ("DATABASE_URL", "postgres://u:pw@db/ibstream"),
        ("IBSTREAM_INSECURE_NO_AUTH", "yes"),
    ]);
    let mut from_env = Config::load(Some(&file), env).unwrap();
    assert_eq!(from_env.server.listen.port(), 7000);
    assert_eq!(from_env.data_dir, PathBuf::from("/from/env"));
    assert_eq!(from_env.log.format, LogFormat::Text);
    assert_eq!(from_env.market_data.linger, Duration::from_secs(2));
    assert_eq!(
        from_env.server.unary_timeout,
        Duration::from_millis(250),
        "file value kept"
    );
    assert!(from_env.server.insecure_no_auth);
    assert_eq!(
        from_env.database_url.as_deref(),
        Some("postgres://u:pw@db/ibstream")
    );

    // Flags over environment; absent flags keep everything.
    from_env
        .apply(ConfigOverrides {
            listen: Some("127.0.0.1:8000".parse().unwrap()),
            data_dir: Some("/from/flag".into()),
            log_format: Some(LogFormat::Json),
            ..ConfigOverrides::default()
        })
        .unwrap();
    assert_eq!(from_env.server.listen.port(), 8000);
    assert_eq!(from_env.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(from_env.log.format, LogFormat::Json);
    assert_eq!(from_env.market_data.linger, Duration::from_secs(2));
}

#[test]
fn default_file_is_found_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(CONFIG_FILE_NAME),
        "[metrics]\nlisten = \"127.0.0.1:9100\"\n",
    )
    .unwrap();
    let data_dir = dir.path().to_str().unwrap();

    let via_env = Config::load(None, env_of(&[("IBSTREAM_DATA_DIR", data_dir)])).unwrap();
    assert_eq!(via_env.metrics.listen.unwrap().port(), 9100);
    assert_eq!(via_env.data_dir, Path::new(data_dir));

    let args = ConfigArgs {
        data_dir: Some(dir.path().to_owned()),
        ..ConfigArgs::default()
    };
    let via_flag = args
        .load_with_env(ConfigOverrides::default(), no_env)
        .unwrap();
    assert_eq!(via_flag.metrics.listen.unwrap().port(), 9100);
    assert_eq!(via_flag.data_dir, dir.path());
}

#[test]
fn errors_name_the_field_or_variable() {
    let err = Config::load_from(
        None,
        Some(Path::new("/nonexistent")),
        env_of(&[("IBSTREAM_LISTEN", "nowhere")]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Env {
                var: "IBSTREAM_LISTEN",
                ..
            }
        ),
        "{err}"
    );

    let err = Config::load_from(
        None,
        Some(Path::new("/nonexistent")),
        env_of(&[("IBSTREAM_MAX_STREAMS_PER_KEY", "0")]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "server.max_streams_per_key",
                ..
            }
        ),
        "{err}"
    );

    let mut config = Config::default();
    config.server.tls_cert = Some("cert.pem".into());
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Invalid {
            field: "server.tls_key",
            ..
        })
    ));
    let mut config = Config::default();
    config.market_data.risk_free_rate = f64::NAN;
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Invalid {
            field: "market_data.risk_free_rate",
            ..
        })
    ));
    let mut config = Config::default();
    config.log.filter = "info,=[".into();
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Invalid {
            field: "log.filter",
            ..
        })
    ));
    // Found by fuzzing: a multi-byte character made tracing-subscriber panic.
    let mut config = Config::default();
    config.log.filter = ", 1\u{fffd}[".into();
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Invalid {
            field: "log.filter",
            ..
        })
    ));
    let config = Config {
        database_url: Some("mysql://x".into()),
        ..Config::default()
    };
    assert!(matches!(
        config.validate(),
        Err(ConfigError::Invalid {
            field: "database_url",
            ..
        })
    ));
}

#[test]
fn file_errors_point_at_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
    let err = Config::load(Some(&file), no_env).unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
    std::fs::write(&file, "[server]\nunary_timeout = \"soon\"\n").unwrap();
    let err = Config::load(Some(&file), no_env).unwrap_err();
    assert!(err.to_string().contains("soon"), "{err}");
    let err = Config::load(Some(&dir.path().join("missing.toml")), no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
}

#[test]
fn every_env_var_is_read() {
    let values: HashMap<&str, &str> = [
        ("server.listen", "127.0.0.1:1"),
        ("metrics.listen", "127.0.0.1:2"),
        ("server.insecure_no_auth", "true"),
        ("log.format", "json"),
        ("log.filter", "debug"),
        ("database_url", "sqlite::memory:"),
        ("market_data.risk_free_rate", "0.01"),
        ("market_data.dividend_yield", "0.02"),
        ("server.max_request_bytes", "2048"),
        ("cluster.url", "nats://127.0.0.1:4222"),
        ("cluster.name", "prod"),
        ("cluster.node", "n1"),
        ("cluster.lease_ttl", "5s"),
    ]
    .into_iter()
    .collect();
    for var in ENV_VARS {
        let value = values.get(var.field).copied().unwrap_or(match var.field {
            f if f.ends_with("timeout") || f.ends_with("interval") || f.ends_with("linger") => "3s",
            f if f.starts_with("server.max") => "3",
            _ => "/x/y",
        });
        let name = var.name;
        // TLS needs both halves; the other half alone is tested to change nothing else.
        let partner = match name {
            "IBSTREAM_TLS_CERT" => "IBSTREAM_TLS_KEY",
            "IBSTREAM_TLS_KEY" => "IBSTREAM_TLS_CERT",
            _ => name,
        };
        let with = Config::load_from(None, Some(Path::new("/nonexistent")), |n: &str| {
            (n == name || n == partner).then(|| value.to_owned())
        })
        .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_ne!(with, Config::default(), "{name} changed nothing");
    }
}

#[test]
fn debug_redacts_the_database_password() {
    let config = Config {
        database_url: Some("postgres://user:hunter2@db:5432/ibstream?sslmode=require".into()),
        ..Config::default()
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://user:***@db:5432/ibstream?sslmode=require"));
    assert_eq!(redact_url_password("sqlite::memory:"), "sqlite::memory:");
    assert_eq!(redact_url_password("postgres://u@h/d"), "postgres://u@h/d");
}

#[test]
fn allowed_origins_come_from_the_file_or_the_flag_and_are_checked() {
    let config =
        Config::from_toml("[web]\nallowed_origins = [\"https://dash.example.com\"]\n").unwrap();
    assert_eq!(config.web.allowed_origins, ["https://dash.example.com"]);
    config.validate().unwrap();
    assert!(Config::default().web.allowed_origins.is_empty());

    let mut flagged = config.clone();
    flagged
        .apply(ConfigOverrides {
            allowed_origins: Some(vec!["http://127.0.0.1:3000".into()]),
            ..ConfigOverrides::default()
        })
        .unwrap();
    assert_eq!(flagged.web.allowed_origins, ["http://127.0.0.1:3000"]);

    let mut bad = config;
    let err = bad
        .apply(ConfigOverrides {
            allowed_origins: Some(vec!["dash.example.com/app".into()]),
            ..ConfigOverrides::default()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "web.allowed_origins",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_cluster_comes_from_the_file_or_the_flags_and_is_checked() {
    let config = Config::from_toml(
        "[cluster]\nurl = \"nats://10.0.0.5:4222\"\nname = \"prod-1\"\nnode = \"a.b-1\"\nlease_ttl = \"4s\"\n",
    )
    .unwrap();
    config.validate().unwrap();
    assert_eq!(config.cluster.url.as_deref(), Some("nats://10.0.0.5:4222"));
    assert_eq!(config.cluster.lease_ttl, Duration::from_secs(4));
    assert_eq!(
        Config::default().cluster.url,
        None,
        "no cluster unless asked"
    );

    let mut flagged = Config::default();
    flagged
        .apply(ConfigOverrides {
            cluster_url: Some("nats://127.0.0.1:4222".into()),
            cluster_node: Some("n2".into()),
            ..ConfigOverrides::default()
        })
        .unwrap();
    assert_eq!(flagged.cluster.node.as_deref(), Some("n2"));

    for (toml, field) in [
        ("url = \"http://x:4222\"", "cluster.url"),
        ("name = \"a.b\"", "cluster.name"),
        ("name = \"\"", "cluster.name"),
        ("node = \"n 1\"", "cluster.node"),
        ("lease_ttl = \"100ms\"", "cluster.lease_ttl"),
        ("lease_ttl = \"2m\"", "cluster.lease_ttl"),
    ] {
        let err = Config::from_toml(&format!("[cluster]\n{toml}\n"))
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field: f, .. } if *f == field),
            "{toml}: {err}"
        );
    }
}
