//! Subscriptions shared by every stream: reference counts, last-value cache, conflation, resubscription after reconnect, line budget.
