//! Layered configuration: defaults < TOML file < `IBSTREAM_*` environment < flags.
