//! Settings profiles over the wire: `Profile` ⇄ `Settings`, and field-mask updates.

use super::convert;
use super::status::{InvalidField, invalid};
use crate::proto::ibstream::v1 as pb;
use crate::store::{MarketDataType, Profile};

/// Fields `UpdateSettings` may write, as named in a field mask.
pub const WRITABLE_FIELDS: [&str; 11] = [
    "host",
    "port",
    "client_id",
    "account",
    "connect_on_start",
    "connection_timeout",
    "retry_attempts",
    "market_data_type",
    "allow_delayed_fallback",
    "message_rate",
    "line_budget",
];

/// Fields a client cannot write, and where to change them instead.
const READ_ONLY_FIELDS: [(&str, &str); 5] = [
    (
        "name",
        "the profile's name selects it and cannot be changed",
    ),
    ("active", "use ActivateProfile"),
    ("credentials_set", "use SetCredentials or ClearCredentials"),
    ("create_time", "it is output only"),
    ("update_time", "it is output only"),
];

/// The wire form of a profile.
pub fn to_settings(profile: &Profile, credentials_set: bool) -> pb::Settings {
    pb::Settings {
        name: profile.name.clone(),
        host: profile.host.clone(),
        port: u32::from(profile.port),
        client_id: profile.client_id,
        account: profile.account.clone(),
        active: profile.active,
        connect_on_start: profile.connect_on_start,
        connection_timeout: Some(convert::duration(profile.connection_timeout)),
        retry_attempts: profile.retry_attempts,
        market_data_type: convert::market_data_type(profile.market_data_type) as i32,
        allow_delayed_fallback: profile.allow_delayed_fallback,
        message_rate: profile.message_rate,
        line_budget: profile.line_budget,
        credentials_set,
        create_time: Some(convert::timestamp(profile.created_at)),
        update_time: Some(convert::timestamp(profile.updated_at)),
    }
}

/// The mask's paths, with `*` expanded; errors name `update_mask`.
pub fn mask_paths(
    mask: Option<&prost_types::FieldMask>,
) -> Result<Vec<&'static str>, InvalidField> {
    let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() {
        return Err(invalid(
            "update_mask",
            "name the fields to update, e.g. \"port,client_id\", or \"*\" for all",
        ));
    }
    let mut fields = Vec::new();
    for path in paths {
        let path = path.trim();
        if path == "*" {
            return Ok(WRITABLE_FIELDS.to_vec());
        }
        if let Some((_, why)) = READ_ONLY_FIELDS.iter().find(|(f, _)| *f == path) {
            return Err(invalid(
                "update_mask",
                format!("{path:?} cannot be updated: {why}"),
            ));
        }
        match WRITABLE_FIELDS.iter().find(|f| **f == path) {
            Some(field) if !fields.contains(field) => fields.push(*field),
            Some(_) => {}
            None => {
                return Err(invalid(
                    "update_mask",
                    format!(
                        "unknown field {path:?}; writable fields are {}",
                        WRITABLE_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(fields)
}

/// Copies the masked fields of `settings` onto `profile`. Values are checked for their
/// wire range here; the profile's own validation checks the rest.
pub fn apply(
    profile: &mut Profile,
    settings: &pb::Settings,
    fields: &[&str],
) -> Result<(), InvalidField> {
    for field in fields {
        match *field {
            "host" => profile.host = settings.host.trim().to_owned(),
            "port" => {
                profile.port = u16::try_from(settings.port).map_err(|_| {
                    invalid(
                        "port",
                        format!("{} is not between 1 and 65535", settings.port),
                    )
                })?;
            }
            "client_id" => profile.client_id = settings.client_id,
            "account" => {
                profile.account = settings
                    .account
                    .as_deref()
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned);
            }
            "connect_on_start" => profile.connect_on_start = settings.connect_on_start,
            "connection_timeout" => {
                let timeout = settings
                    .connection_timeout
                    .as_ref()
                    .ok_or_else(|| invalid("connection_timeout", "must be set"))?;
                profile.connection_timeout = convert::std_duration(timeout)
                    .ok_or_else(|| invalid("connection_timeout", "must not be negative"))?;
            }
            "retry_attempts" => profile.retry_attempts = settings.retry_attempts,
            "market_data_type" => {
                profile.market_data_type = market_data_type(settings.market_data_type)?;
            }
            "allow_delayed_fallback" => {
                profile.allow_delayed_fallback = settings.allow_delayed_fallback;
            }
            "message_rate" => profile.message_rate = settings.message_rate,
            "line_budget" => profile.line_budget = settings.line_budget,
            _ => {}
        }
    }
    Ok(())
}

fn market_data_type(value: i32) -> Result<MarketDataType, InvalidField> {
    convert::market_data_type_from(value).ok_or_else(|| {
        invalid(
            "market_data_type",
            "must be LIVE, FROZEN, DELAYED or DELAYED_FROZEN",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> prost_types::FieldMask {
        prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn masks_expand_and_reject_read_only_or_unknown_fields() {
        assert_eq!(
            mask_paths(Some(&mask(&["*"]))).unwrap().len(),
            WRITABLE_FIELDS.len()
        );
        assert_eq!(
            mask_paths(Some(&mask(&["port", "port"]))).unwrap(),
            vec!["port"]
        );
        for bad in [&["active"][..], &["nope"], &[]] {
            let err = mask_paths(Some(&mask(bad))).unwrap_err();
            assert_eq!(err.field, "update_mask", "{err}");
        }
        assert!(mask_paths(None).is_err());
    }

    #[test]
    fn apply_copies_only_masked_fields_and_names_bad_ones() {
        let mut profile = Profile::default();
        let settings = pb::Settings {
            host: "gw.example".into(),
            port: 4001,
            client_id: 9,
            ..Default::default()
        };
        apply(&mut profile, &settings, &["port"]).unwrap();
        assert_eq!(profile.port, 4001);
        assert_eq!(profile.host, "127.0.0.1");
        let big = pb::Settings {
            port: 70000,
            ..Default::default()
        };
        let err = apply(&mut profile, &big, &["port"]).unwrap_err();
        assert_eq!(err.to_string(), "port: 70000 is not between 1 and 65535");
        let err = apply(
            &mut profile,
            &pb::Settings::default(),
            &["market_data_type"],
        )
        .unwrap_err();
        assert_eq!(err.field, "market_data_type");
    }
}
