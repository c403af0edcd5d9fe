//! The `ibstream` command line: one module per subcommand.
