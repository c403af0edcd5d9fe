//! API keys: `ibs_<id>_<secret>` tokens. The id is public (it names the key in lists
//! and logs); the whole token is hashed with argon2id and only the hash is stored.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use zeroize::Zeroizing;

/// Every token starts with this, so leaked tokens are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "ibs_";
const ID_LEN: usize = 12;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES: usize = 32;

/// What an API key may do. `Admin` implies `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Market data and status.
    Read,
    /// Everything: settings, connect/disconnect, plus all of `Read`.
    Admin,
}

impl Scope {
    /// Whether a key with this scope may do what `needed` guards.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was neither `read` nor `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected \"read\" or \"admin\"")]
pub struct UnknownScope(String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            _ => Err(UnknownScope(s.to_owned())),
        }
    }
}

/// A freshly generated key. `secret` is the full token: show it once, never store it.
pub struct GeneratedKey {
    /// Public id, the token's prefix.
    pub id: String,
    /// The full token, `ibs_<id>_<random>`.
    pub secret: Zeroizing<String>,
    /// argon2id PHC string of the token, to store.
    pub hash: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// argon2id with light parameters. The token carries 256 random bits, so no work
/// factor is needed against guessing; argon2id is kept for a uniform, salted format
/// while every authenticated request stays cheap (about a millisecond).
fn hasher() -> Argon2<'static> {
    // 4 MiB, 1 pass, 1 lane: valid argon2 parameters, so `new` cannot fail.
    let params = Params::new(4 * 1024, 1, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Generates a new random API key and its hash.
pub fn generate_api_key() -> GeneratedKey {
    let mut rng = OsRng;
    let id: String = (0..ID_LEN)
        .map(|_| char::from(ID_ALPHABET[(rng.next_u32() as usize) % ID_ALPHABET.len()]))
        .collect();
    let mut raw = Zeroizing::new([0u8; SECRET_BYTES]);
    rng.fill_bytes(raw.as_mut());
    let random =
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()));
    let secret = Zeroizing::new(format!("{API_KEY_PREFIX}{id}_{}", random.as_str()));
    let salt = SaltString::generate(&mut rng);
    let hash = hasher()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing with a valid salt and parameters does not fail; an empty hash would
        // simply never verify.
        .unwrap_or_default();
    GeneratedKey { id, secret, hash }
}

/// Whether `token` matches the argon2id PHC string `hash`. Malformed input is `false`.
pub fn verify_api_key(token: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // The parameters come from the PHC string itself.
    Argon2::default()
        .verify_password(token.as_bytes(), &parsed)
        .is_ok()
}

/// The public id of a well-formed token (`ibs_<id>_<secret>`), without checking it.
pub fn parse_api_key_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix(API_KEY_PREFIX)?.split_once('_')?;
    let id_ok = id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b));
    (id_ok && !secret.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_verifies_and_parses() {
        let key = generate_api_key();
        assert!(key.secret.starts_with("ibs_"));
        assert_eq!(parse_api_key_id(&key.secret), Some(key.id.as_str()));
        assert!(key.hash.starts_with("$argon2id$"));
        assert!(!key.hash.contains(key.secret.as_str()));
        assert!(verify_api_key(&key.secret, &key.hash));
    }

    #[test]
    fn wrong_or_malformed_tokens_do_not_verify() {
        let key = generate_api_key();
        let other = generate_api_key();
        assert_ne!(key.id, other.id);
        assert!(!verify_api_key(&other.secret, &key.hash));
        let mut altered = key.secret.to_string();
        altered.pop();
        assert!(!verify_api_key(&altered, &key.hash));
        assert!(!verify_api_key(&key.secret, "not a phc string"));
        assert!(!verify_api_key("", &key.hash));
    }

    #[test]
    fn parse_rejects_malformed_tokens() {
        assert_eq!(parse_api_key_id("ibs_abcdefghijkl_x"), Some("abcdefghijkl"));
        assert_eq!(parse_api_key_id("ibs_abcdefghijkl_"), None);
        assert_eq!(parse_api_key_id("ibs_abc_secret"), None);
        assert_eq!(parse_api_key_id("xyz_abcdefghijkl_secret"), None);
        assert_eq!(parse_api_key_id("ibs_ABCDEFGHIJKL_secret"), None);
        assert_eq!(parse_api_key_id("Bearer ibs_abcdefghijkl_x"), None);
        assert_eq!(parse_api_key_id(""), None);
    }

    #[test]
    fn debug_hides_the_token() {
        let key = generate_api_key();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.id));
        assert!(!shown.contains(key.secret.as_str()));
        assert!(!shown.contains(&key.hash));
    }

    #[test]
    fn scopes_parse_display_and_order() {
        for scope in [Scope::Read, Scope::Admin] {
            assert_eq!(scope.to_string().parse::<Scope>().unwrap(), scope);
        }
        assert_eq!("ADMIN".parse::<Scope>().unwrap(), Scope::Admin);
        assert!("write".parse::<Scope>().is_err());
        assert!(Scope::Admin.allows(Scope::Read));
        assert!(Scope::Admin.allows(Scope::Admin));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Admin));
    }
}
