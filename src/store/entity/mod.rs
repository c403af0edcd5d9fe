//! sea-orm entities, one per table. They stay inside the store: the rest of the crate
//! sees the domain types of [`crate::store`] instead.

pub mod api_key;
pub mod bar;
pub mod bar_coverage;
pub mod connection_event;
pub mod contract;
pub mod credentials;
pub mod key_check;
pub mod profile;
