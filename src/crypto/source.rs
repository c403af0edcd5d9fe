//! Where the master secret comes from: the environment, or a key file that is created
//! with random content and owner-only permissions on first run.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use zeroize::Zeroizing;

use super::CryptoError;

/// The environment variable holding the master secret.
pub const MASTER_KEY_ENV: &str = "IBSTREAM_MASTER_KEY";
/// The key file's name inside the data directory, when no other path is configured.
pub const MASTER_KEY_FILE_NAME: &str = "master.key";
/// Random bytes in a new key file (written base64-encoded).
const KEY_FILE_BYTES: usize = 32;
/// A key file with fewer characters than this was not written by ibstream and is too
/// weak to trust.
const KEY_FILE_MIN_CHARS: usize = 16;

/// Where to read the master secret.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// The secret itself, from `IBSTREAM_MASTER_KEY`.
    Secret(String),
    /// A key file, created with random content (mode 0600) if missing.
    File(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Secret(_) => f.write_str("Secret(<redacted>)"),
            MasterKeySource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl MasterKeySource {
    /// `IBSTREAM_MASTER_KEY` when set and non-empty, else the key file `file` (usually
    /// [`crate::config::Config::master_key_path`]).
    pub fn resolve(env: impl Fn(&str) -> Option<String>, file: PathBuf) -> MasterKeySource {
        match env(MASTER_KEY_ENV) {
            Some(secret) if !secret.is_empty() => MasterKeySource::Secret(secret),
            _ => MasterKeySource::File(file),
        }
    }
}

/// The master secret, as read from its source: input to [`super::MasterKey::derive`].
/// Wiped on drop, never printed.
pub struct MasterSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret(<redacted>)")
    }
}

impl MasterSecret {
    /// Reads the secret from `source`, creating the key file if it does not exist.
    pub fn load(source: &MasterKeySource) -> Result<MasterSecret, CryptoError> {
        match source {
            MasterKeySource::Secret(secret) if secret.is_empty() => Err(CryptoError::EmptySecret),
            MasterKeySource::Secret(secret) => {
                Ok(MasterSecret(Zeroizing::new(secret.as_bytes().to_vec())))
            }
            MasterKeySource::File(path) => load_or_create_file(path),
        }
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

fn load_or_create_file(path: &Path) -> Result<MasterSecret, CryptoError> {
    let io_err = |source| CryptoError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match create_key_file(path) {
        Ok(()) => {}
        // Already there (possibly created a moment ago by another process): read it.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(io_err(err)),
    }
    check_permissions(path)?;
    let content = Zeroizing::new(fs::read_to_string(path).map_err(io_err)?);
    let secret = content.trim();
    if secret.len() < KEY_FILE_MIN_CHARS {
        return Err(CryptoError::KeyFileTooShort {
            path: path.to_owned(),
        });
    }
    Ok(MasterSecret(Zeroizing::new(secret.as_bytes().to_vec())))
}

/// Creates `path`, owner read/write only, with a random base64 secret, or fails with
/// `AlreadyExists`. The secret is written to a private file beside it first and linked
/// into place whole: nodes starting at once on one data directory never read a key file
/// another is still writing, and never replace one.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    if path.exists() {
        return Err(ErrorKind::AlreadyExists.into());
    }
    let mut draft = path.as_os_str().to_owned();
    draft.push(format!(".{:016x}.new", OsRng.next_u64()));
    let draft = std::path::PathBuf::from(draft);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&draft).and_then(|mut file| {
        let mut raw = Zeroizing::new([0u8; KEY_FILE_BYTES]);
        OsRng.fill_bytes(raw.as_mut());
        let mut encoded =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_ref()));
        encoded.push('\n');
        file.write_all(encoded.as_bytes())?;
        file.sync_all()
    });
    // A link fails if the name exists: the first whole key wins.
    let linked = written.and_then(|()| fs::hard_link(&draft, path));
    let _ = fs::remove_file(&draft);
    linked
}

/// Creates `dir` and its parents; new directories are mode 0700 on Unix. An existing
/// directory keeps its permissions.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|source| CryptoError::KeyFile {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), CryptoError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_prefers_the_environment() {
        let file = PathBuf::from("/data/master.key");
        let env = |name: &str| (name == MASTER_KEY_ENV).then(|| "s3cret".to_owned());
        assert_eq!(
            MasterKeySource::resolve(env, file.clone()),
            MasterKeySource::Secret("s3cret".into())
        );
        let empty = |_: &str| Some(String::new());
        assert_eq!(
            MasterKeySource::resolve(empty, file.clone()),
            MasterKeySource::File(file.clone())
        );
        assert_eq!(
            MasterKeySource::resolve(|_| None, file.clone()),
            MasterKeySource::File(file)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let source = MasterKeySource::Secret("s3cret-value".into());
        assert!(!format!("{source:?}").contains("s3cret"));
        let secret = MasterSecret::load(&source).unwrap();
        assert!(!format!("{secret:?}").contains("s3cret"));
        assert_eq!(secret.expose(), b"s3cret-value");
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(
            MasterSecret::load(&MasterKeySource::Secret(String::new())),
            Err(CryptoError::EmptySecret)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn processes_starting_at_once_share_one_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data").join("master.key");
            let secrets: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || load_or_create_file(&path).map(|s| s.0.to_vec()))
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap().expect("every starter reads a whole key"))
                .collect();
            assert!(secrets.windows(2).all(|w| w[0] == w[1]), "two keys");
            let left: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
            assert_eq!(left.len(), 1, "drafts left behind");
        }
    }

    #[test]
    fn key_file_is_created_private_reused_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(MASTER_KEY_FILE_NAME);
        let source = MasterKeySource::File(path.clone());
        let first = MasterSecret::load(&source).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(first.expose().len() >= 43, "32 random bytes, base64");
        let second = MasterSecret::load(&source).unwrap();
        assert_eq!(first.expose(), second.expose());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterSecret::load(&source).unwrap_err();
        assert!(matches!(
            err,
            CryptoError::KeyFilePermissions { mode: 0o644, .. }
        ));
        assert!(err.to_string().contains("chmod 600"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            MasterSecret::load(&source),
            Err(CryptoError::KeyFileTooShort { .. })
        ));
    }
}
