//! The live IB client as the rest of the server sees it.
//!
//! The session owns the connection; everything that talks to IB (fan-out, contract
//! look-ups, option chains) borrows the current client through a [`LinkWatch`]. A new
//! `generation` means a fresh TWS session whose server-side state is empty, so every
//! market-data subscription must be requested again.

use std::sync::Arc;

use tokio::sync::watch;

/// A connected `ibapi` client and the connection generation it belongs to.
#[derive(Clone)]
pub struct Link {
    /// Increases by one every time a session (re)establishes, including reconnects done
    /// inside `ibapi`; subscriptions opened in an older generation are gone.
    pub generation: u64,
    pub client: Arc<ibapi::Client>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// `None` while there is no usable session.
pub type LinkWatch = watch::Receiver<Option<Link>>;
