//! `ibstream keys`: create, list and revoke API keys in the server's database.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{ConfigArgs, ConfigOverrides};
use crate::crypto::{Scope, generate_api_key};
use crate::store::{ApiKeyRecord, NewApiKey, Store};

/// Manage the API keys that clients send as `authorization: Bearer <key>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Create a key and print it once; only its hash is stored.
    Create {
        /// `read` (market data, status) or `admin` (everything).
        #[arg(long)]
        scope: Scope,
        /// A label to recognise the key by.
        #[arg(long, value_name = "LABEL")]
        name: Option<String>,
    },
    /// List keys: id, name, scope, created, last used, revoked.
    List,
    /// Revoke a key by its id; clients using it are refused from then on.
    Revoke {
        /// The key's id, as shown by `keys list`.
        id: String,
    },
}

/// Runs `ibstream keys …`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load(ConfigOverrides::default())?;
    let store = Store::open_configured(config.database_url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the database")?;
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::Create { scope, name } => create(&store, scope, name, &mut out).await,
        Action::List => list(&store, &mut out).await,
        Action::Revoke { id } => {
            store.revoke_api_key(&id).await?;
            writeln!(out, "revoked {id}")?;
            Ok(())
        }
    }
}

async fn create(
    store: &Store,
    scope: Scope,
    name: Option<String>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let key = generate_api_key();
    let record = store
        .insert_api_key(&NewApiKey::from_generated(&key, name, scope))
        .await?;
    // The token alone goes to stdout so scripts can capture it; the note goes to
    // stderr.
    eprintln!(
        "created {} key {}{}; it is shown only once, store it now:",
        record.scope,
        record.id,
        record
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    writeln!(out, "{}", key.secret.as_str())?;
    Ok(())
}

async fn list(store: &Store, out: &mut impl Write) -> anyhow::Result<()> {
    let keys = store.list_api_keys().await?;
    if keys.is_empty() {
        eprintln!("no API keys; create one with `ibstream keys create --scope read`");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = keys.iter().map(row).collect();
    let header = ["ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn row(key: &ApiKeyRecord) -> [String; 6] {
    [
        key.id.clone(),
        key.name.clone().unwrap_or_else(|| "-".into()),
        key.scope.to_string(),
        when(Some(key.created_at)),
        when(key.last_used_at),
        when(key.revoked_at),
    ]
}

fn when(at: Option<OffsetDateTime>) -> String {
    at.map(|t| {
        t.replace_nanosecond(0)
            .unwrap_or(t)
            .format(&Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    })
    .unwrap_or_else(|| "-".into())
}
