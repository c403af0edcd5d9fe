//! ibstream as a cluster over NATS: the nodes elect one leader, which alone holds the IB
//! session (see `lease`).

pub mod lease;
pub mod node;

pub use lease::{Lease, LeaseConfig, LeaseError, Role};
pub use node::{Leadership, run as run_node};
