//! IB login credentials, sealed with the master key before they reach the store.

use zeroize::Zeroizing;

use super::{CryptoError, MasterKey};

/// The IB username and password, each sealed with [`MasterKey::seal`].
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials {
    /// Sealed username.
    pub username: Vec<u8>,
    /// Sealed password.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedCredentials(<sealed>)")
    }
}

/// Opened credentials. Both fields are wiped on drop and hidden from Debug.
pub struct Credentials {
    /// IB username.
    pub username: Zeroizing<String>,
    /// IB password.
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

impl SealedCredentials {
    /// Seals `username` and `password` with `key`.
    pub fn seal(key: &MasterKey, username: &str, password: &str) -> Result<Self, CryptoError> {
        Ok(SealedCredentials {
            username: key.seal(username.as_bytes())?,
            password: key.seal(password.as_bytes())?,
        })
    }

    /// Opens both fields with `key`.
    pub fn open(&self, key: &MasterKey) -> Result<Credentials, CryptoError> {
        Ok(Credentials {
            username: open_text(key, &self.username, "username")?,
            password: open_text(key, &self.password, "password")?,
        })
    }
}

fn open_text(
    key: &MasterKey,
    sealed: &[u8],
    what: &'static str,
) -> Result<Zeroizing<String>, CryptoError> {
    let bytes = key.open(sealed)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CryptoError::NotText(what))?;
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;

    #[test]
    fn credentials_round_trip_and_hide_the_password() {
        let params = KdfParams::CHEAP;
        let key = MasterKey::derive_with(b"secret", b"0123456789abcdef", params).unwrap();
        let sealed = SealedCredentials::seal(&key, "trader", "pa55word").unwrap();
        assert!(!format!("{sealed:?}").contains("trader"));
        let opened = sealed.open(&key).unwrap();
        assert_eq!(opened.username.as_str(), "trader");
        assert_eq!(opened.password.as_str(), "pa55word");
        let shown = format!("{opened:?}");
        assert!(
            !shown.contains("trader") && !shown.contains("pa55word"),
            "{shown}"
        );
    }
}
