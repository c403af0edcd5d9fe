//! Persistence with sea-orm: settings profiles, sealed credentials, API keys, connection events, contract cache.
