//! The simulated IB Gateway: framing, per-client sessions, market model, option chains, control service, faults.
