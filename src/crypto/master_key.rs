//! The master key: argon2id derivation and AES-256-GCM sealing.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::CryptoError;

/// First byte of every sealed value. It is also authenticated (as associated data), so
/// it cannot be changed without the tag failing.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// argon2id cost parameters, stored beside the salt so a database keeps opening if the
/// defaults change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism.
    pub parallelism: u32,
}

#[cfg(test)]
impl KdfParams {
    /// The cheapest argon2id setting, for tests about sealing rather than argon2's cost.
    pub(crate) const CHEAP: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for KdfParams {
    /// OWASP's recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// A 256-bit AES-GCM key. Its bytes are wiped on drop and never printed.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Derives the key from `secret` and `salt` with argon2id and the default
    /// [`KdfParams`].
    pub fn derive(secret: &[u8], salt: &[u8]) -> Result<MasterKey, CryptoError> {
        MasterKey::derive_with(secret, salt, KdfParams::default())
    }

    /// Derives the key with explicit argon2id parameters.
    pub fn derive_with(
        secret: &[u8],
        salt: &[u8],
        params: KdfParams,
    ) -> Result<MasterKey, CryptoError> {
        if secret.is_empty() {
            return Err(CryptoError::EmptySecret);
        }
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|err| CryptoError::Kdf(err.to_string()))?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(secret, salt, bytes.as_mut())
            .map_err(|err| CryptoError::Kdf(err.to_string()))?;
        Ok(MasterKey { bytes })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.bytes.as_ref().into())
    }

    /// Encrypts `plaintext` with a fresh random 96-bit nonce. The result is
    /// `version || nonce || ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &[FORMAT_V1],
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`MasterKey::seal`] produced. A different key or any altered byte
    /// gives [`CryptoError::WrongKey`].
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or(CryptoError::Malformed("empty"))?;
        if version != FORMAT_V1 {
            return Err(CryptoError::UnsupportedVersion(version));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("shorter than nonce and tag"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &[FORMAT_V1],
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> MasterKey {
        MasterKey::derive_with(secret, b"0123456789abcdef", KdfParams::CHEAP).unwrap()
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key(b"secret");
        let sealed = k.seal(b"hunter2").unwrap();
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 7 + TAG_LEN);
        assert_eq!(k.open(&sealed).unwrap().as_slice(), b"hunter2");
        assert_eq!(k.open(&k.seal(b"").unwrap()).unwrap().as_slice(), b"");
    }

    #[test]
    fn sealing_twice_gives_different_bytes() {
        let k = key(b"secret");
        let a = k.seal(b"same plaintext").unwrap();
        let b = k.seal(b"same plaintext").unwrap();
        assert_ne!(a, b);
        assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN], "nonce reused");
    }

    #[test]
    fn any_tampered_byte_is_rejected() {
        let k = key(b"secret");
        let sealed = k.seal(b"hunter2").unwrap();
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(k.open(&bad), Err(CryptoError::WrongKey)),
                "byte {i}"
            );
        }
        let mut bad = sealed.clone();
        bad[0] = 2;
        assert!(matches!(
            k.open(&bad),
            Err(CryptoError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            k.open(&sealed[..10]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(k.open(&[]), Err(CryptoError::Malformed(_))));
    }

    #[test]
    fn another_key_cannot_open() {
        let sealed = key(b"secret").seal(b"hunter2").unwrap();
        let err = key(b"other").open(&sealed).unwrap_err();
        assert!(matches!(err, CryptoError::WrongKey));
        assert!(err.to_string().contains("different master key"));
    }

    #[test]
    fn derivation_is_deterministic_per_salt() {
        let params = KdfParams::CHEAP;
        let a = MasterKey::derive_with(b"s", b"saltsaltsalt", params).unwrap();
        let b = MasterKey::derive_with(b"s", b"saltsaltsalt", params).unwrap();
        let c = MasterKey::derive_with(b"s", b"othersaltsalt", params).unwrap();
        assert_eq!(*a.bytes, *b.bytes);
        assert_ne!(*a.bytes, *c.bytes);
        assert!(matches!(
            MasterKey::derive(b"", b"saltsaltsalt"),
            Err(CryptoError::EmptySecret)
        ));
        assert!(matches!(
            MasterKey::derive(b"s", b"short"),
            Err(CryptoError::Kdf(_))
        ));
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let k = key(b"secret");
        let shown = format!("{k:?} {k:#?}");
        assert!(shown.contains("redacted"));
        let hex: String = k.bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&hex));
        assert!(!shown.contains(&format!("{:?}", *k.bytes)));
    }
}
