//! Sealed credentials (argon2id key derivation, AES-256-GCM) and API-key hashing.
