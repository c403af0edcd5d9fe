//! The web console on the gRPC port: browsers call the API through gRPC-web over
//! HTTP/1 (tonic-web), and every request that is not gRPC is a GET for the console's
//! assets, embedded in the binary.
//!
//! - [`origin`]: which web pages may call the API (same origin, or configured).
//! - [`assets`]: the built bundle (`web/dist`), served with content type and ETag.

pub mod assets;
pub mod origin;

pub use assets::ConsoleAssets;
pub use origin::{OriginGuard, OriginPolicy};
