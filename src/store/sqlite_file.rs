//! SQLite database files private to their owner: the database holds sealed credentials
//! and API-key hashes, so a file the store creates is mode 0600 from its first byte, and
//! SQLite gives its `-wal` and `-shm` files the mode of the database file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sea_orm::sqlx::sqlite::SqliteConnectOptions;

use super::error::StoreError;

/// Creates, owner-only, the file of a SQLite `url` that asks for creation
/// (`mode=rwc`) when it does not exist yet. Other URLs (in memory, PostgreSQL, an
/// existing file) are left alone.
pub(super) fn create_private(url: &str) -> Result<(), StoreError> {
    let Some(path) = file_to_create(url) else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(_) => Ok(()),
        // Another process created it first; it owns the mode.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::DatabaseFile { path, source }),
    }
}

/// The file a SQLite URL would create, if it would create one.
fn file_to_create(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let (_, query) = url.split_once('?')?;
    if !query.split('&').any(|param| param == "mode=rwc") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path: &Path = options.get_filename();
    (!path.as_os_str().is_empty() && !path.exists()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SQLITE_FILE_NAME, Store, sqlite_url};

    #[test]
    fn only_files_to_be_created_are_prepared() {
        assert_eq!(file_to_create("sqlite::memory:"), None);
        assert_eq!(file_to_create("postgres://db/x?mode=rwc"), None);
        assert_eq!(file_to_create("sqlite:///nowhere/x.sqlite"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite");
        assert_eq!(file_to_create(&sqlite_url(&path)), Some(path));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_and_shm_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("data");
        let store = Store::open_in_data_dir(&dir).await.unwrap();
        let mut profile = store.active_profile().await.unwrap();
        profile.port += 1;
        store.save_profile(&profile).await.unwrap();
        let db = dir.join(SQLITE_FILE_NAME);
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", db.display()));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
        }
        store.close().await.unwrap();
    }
}
