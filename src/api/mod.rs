//! The tonic services, the auth layer and the one place where errors become `tonic::Status`.
pub mod market_data;
pub mod market_data_convert;
pub mod market_data_status;
pub mod market_data_store;
pub mod market_data_stream;
