//! ibstream as a cluster over NATS: the nodes elect one leader, which alone holds the IB
//! session (see `lease`).

pub mod lease;

pub use lease::{Lease, LeaseConfig, LeaseError, Role};
