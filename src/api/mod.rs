//! The tonic services, the auth layer and the one place where errors become `tonic::Status`.
pub mod market_data_convert;
