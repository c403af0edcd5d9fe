//! Leadership of a cluster: one lease in a JetStream key-value bucket.
//!
//! The bucket's `max_age` is the lease's time to live, so a lease nobody renews ages out
//! on the NATS server itself, whatever became of its holder. Taking the lease is a
//! `create` (it fails while the key exists); renewing it is an `update` expecting the
//! revision the holder last wrote, so a holder that lost the lease cannot write over
//! its successor. The term is the bucket revision at which the lease was taken: stream
//! sequences never repeat, so a later leader always has a higher term, even after the
//! key aged out and history with it.
//!
//! A holder counts its lease from the moment it *sent* the last successful write, which
//! is before the server stamped it; it gives the lease up [`LeaseConfig::margin`] before
//! that count runs out, so it stops leading before anyone else can start.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Store, UpdateErrorKind};
use bytes::Bytes;
use tokio::time::Instant;

/// How one node takes part in the election.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The bucket's name (one per cluster).
    pub bucket: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// How long a lease lasts unrenewed.
    pub ttl: Duration,
}

impl LeaseConfig {
    /// How often the holder renews, and a follower tries to take a free lease.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }

    /// How long before the lease could age out its holder gives it up.
    pub fn margin(&self) -> Duration {
        self.ttl / 4
    }
}

/// The key holding the lease.
const KEY: &str = "leader";

/// Who holds the lease, as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This node holds the lease of `term` until `valid_until` unless renewed.
    Leader { term: u64, valid_until: Instant },
    /// Another node (`leader`, when known) leads in `term` (0 when nobody does).
    Follower { leader: Option<String>, term: u64 },
}

impl Role {
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    pub fn term(&self) -> u64 {
        match self {
            Role::Leader { term, .. } | Role::Follower { term, .. } => *term,
        }
    }
}

/// Why the lease could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot open the lease bucket {bucket:?}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("the lease bucket did not answer: {0}")]
    Bus(String),
}

/// One node's view of the lease, and its hand on it.
pub struct Lease {
    config: LeaseConfig,
    store: Store,
    /// While leading: the term and the revision this node last wrote.
    held: Option<(u64, u64, Instant)>,
}

impl Lease {
    /// Opens (or creates) the cluster's lease bucket.
    pub async fn open(
        js: &async_nats::jetstream::Context,
        config: LeaseConfig,
    ) -> Result<Lease, LeaseError> {
        let bucket_err = |reason: String| LeaseError::Bucket {
            bucket: config.bucket.clone(),
            reason,
        };
        let store = match js.get_key_value(config.bucket.clone()).await {
            Ok(store) => store,
            Err(_) => {
                js.get_or_create_stream(bucket_stream(&config))
                    .await
                    .map_err(|e| bucket_err(e.to_string()))?;
                js.get_key_value(config.bucket.clone())
                    .await
                    .map_err(|e| bucket_err(e.to_string()))?
            }
        };
        Ok(Lease {
            config,
            store,
            held: None,
        })
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One round of the election: renews the lease this node holds, or takes a free
    /// one, or reads who holds it. A node that cannot reach the bucket while leading
    /// keeps leading only until its lease could age out minus the margin.
    pub async fn step(&mut self) -> Result<Role, LeaseError> {
        match self.held {
            Some((term, revision, valid_until)) => self.renew(term, revision, valid_until).await,
            None => self.campaign().await,
        }
    }

    async fn renew(
        &mut self,
        term: u64,
        revision: u64,
        valid_until: Instant,
    ) -> Result<Role, LeaseError> {
        let sent = Instant::now();
        match self.store.update(KEY, self.value(term), revision).await {
            Ok(next) => {
                let valid_until = sent + self.config.ttl - self.config.margin();
                self.held = Some((term, next, valid_until));
                Ok(Role::Leader { term, valid_until })
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                // Someone else wrote the key: the lease aged out and was taken.
                self.held = None;
                self.read().await
            }
            Err(e) if Instant::now() >= valid_until => {
                self.held = None;
                Err(LeaseError::Bus(e.to_string()))
            }
            // Not renewed this time, but still good for a while: try again next step.
            Err(_) => Ok(Role::Leader { term, valid_until }),
        }
    }

    /// Whether this node's lease is still good now (a leader checks before acting).
    pub fn holds(&self) -> Option<u64> {
        match self.held {
            Some((term, _, valid_until)) if Instant::now() < valid_until => Some(term),
            _ => None,
        }
    }

    /// Until when this node may act as leader without another renewal.
    pub fn valid_until(&self) -> Option<Instant> {
        self.held.map(|(_, _, valid_until)| valid_until)
    }

    /// Gives the lease up at once (a clean shutdown), so a standby need not wait it out.
    pub async fn resign(&mut self) {
        if let Some((_, revision, _)) = self.held.take() {
            let _ = self.store.delete_expect_revision(KEY, Some(revision)).await;
        }
    }

    async fn campaign(&mut self) -> Result<Role, LeaseError> {
        let sent = Instant::now();
        match self.store.create(KEY, self.value(0)).await {
            Ok(revision) => {
                // The term is the revision that won; written back so followers read it.
                let term = revision;
                let valid_until = sent + self.config.ttl - self.config.margin();
                self.held = Some((term, revision, valid_until));
                // Stamping the term is a renewal like any other.
                self.renew(term, revision, valid_until).await
            }
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => self.read().await,
            Err(e) => Err(LeaseError::Bus(e.to_string())),
        }
    }

    async fn read(&self) -> Result<Role, LeaseError> {
        let entry = self
            .store
            .entry(KEY)
            .await
            .map_err(|e| LeaseError::Bus(e.to_string()))?;
        Ok(match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let (node, term) = parse_value(&e.value);
                Role::Follower {
                    leader: Some(node),
                    // A lease caught before its holder stamped the term: its revision is it.
                    term: if term == 0 { e.revision } else { term },
                }
            }
            _ => Role::Follower {
                leader: None,
                term: 0,
            },
        })
    }

    fn value(&self, term: u64) -> Bytes {
        Bytes::from(format!("{term} {}", self.config.node))
    }
}

/// The stream behind the lease bucket, as `async_nats` would make a key-value bucket
/// (`create_key_value` first asks for account fields NATS 2.9, Debian's, does not send).
fn bucket_stream(config: &LeaseConfig) -> async_nats::jetstream::stream::Config {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
    Config {
        name: format!("KV_{}", config.bucket),
        description: Some("ibstream cluster leadership".into()),
        subjects: vec![format!("$KV.{}.>", config.bucket)],
        max_messages_per_subject: 1,
        max_age: config.ttl,
        // Duplicates are told apart within a window no longer than a message lives.
        duplicate_window: config.ttl,
        storage: StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// Reads `"<term> <node>"`; an unreadable value names nobody in term 0.
fn parse_value(value: &[u8]) -> (String, u64) {
    let text = String::from_utf8_lossy(value);
    match text.split_once(' ') {
        Some((term, node)) => (node.to_owned(), term.parse().unwrap_or(0)),
        None => (String::new(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_value;

    #[test]
    fn a_value_names_its_term_and_node() {
        assert_eq!(parse_value(b"42 node-a"), ("node-a".to_owned(), 42));
        assert_eq!(
            parse_value(b"7 node with spaces"),
            ("node with spaces".to_owned(), 7)
        );
        assert_eq!(parse_value(b"garbage"), (String::new(), 0));
        assert_eq!(parse_value(b"x node"), ("node".to_owned(), 0));
    }
}
