//! The NATS subjects of one cluster, all under `ibstream.<cluster>.`.

/// Why a cluster name cannot name subjects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cluster name {0:?} must be non-empty and hold only letters, digits, '-' and '_' (it is a NATS subject token)"
)]
pub struct InvalidClusterName(pub String);

/// The subjects of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The subjects of cluster `cluster`; a name with '.', wildcards or spaces would
    /// reach into other clusters' subjects, so it is refused.
    pub fn new(cluster: &str) -> Result<Subjects, InvalidClusterName> {
        let valid = !cluster.is_empty()
            && cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(InvalidClusterName(cluster.to_owned()));
        }
        Ok(Subjects {
            prefix: format!("ibstream.{cluster}"),
        })
    }

    /// The leader's session state, on change and as a heartbeat.
    pub fn link(&self) -> String {
        format!("{}.link", self.prefix)
    }

    /// The leader session's data notices.
    pub fn notice(&self) -> String {
        format!("{}.notice", self.prefix)
    }

    /// Requests for instruments.
    pub fn interest(&self) -> String {
        format!("{}.interest", self.prefix)
    }

    /// Each node's interest set, renewed periodically.
    pub fn renew(&self) -> String {
        format!("{}.renew", self.prefix)
    }

    /// Contract look-ups and snapshots.
    pub fn lookup(&self) -> String {
        format!("{}.lookup", self.prefix)
    }

    /// Each node's presence.
    pub fn presence(&self) -> String {
        format!("{}.node", self.prefix)
    }

    /// Session commands forwarded to the leader.
    pub fn admin(&self) -> String {
        format!("{}.admin", self.prefix)
    }

    /// Requests for real-time bar feeds.
    pub fn bars_interest(&self) -> String {
        format!("{}.bars-interest", self.prefix)
    }

    /// The five-second bars of one feed.
    pub fn live_bars(&self, con_id: i64, what: &str, regular_hours: bool) -> String {
        let hours = if regular_hours { "rth" } else { "all" };
        format!("{}.bars.{con_id}.{what}.{hours}", self.prefix)
    }

    /// Every new value of one instrument.
    pub fn quote(&self, con_id: i64) -> String {
        format!("{}.quote.{con_id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_the_cluster_are_refused() {
        for bad in ["", "a.b", "a*", ">", "a b", "x\n"] {
            assert!(Subjects::new(bad).is_err(), "{bad:?}");
        }
        let s = Subjects::new("prod-1").unwrap();
        assert_eq!(s.quote(42), "ibstream.prod-1.quote.42");
    }
}
