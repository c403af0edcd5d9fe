//! Credentials sealed at rest, the master-key check, and the master key file.

use ibstream::crypto::{
    CryptoError, KdfParams, MasterKey, MasterKeySource, MasterSecret, SealedCredentials,
};
use ibstream::store::Profile;

use crate::backend::TestDb;

on_both_backends! {
    credentials_are_sealed_at_rest => credentials_sealed_at_rest;
    wrong_master_key_is_a_clear_startup_error => wrong_master_key;
    master_key_file_is_created_private_and_reused => key_file_created_and_reused;
}

const USERNAME: &str = "trader-joe";
const PASSWORD: &str = "correct horse battery staple";

fn secret(text: &str) -> MasterSecret {
    MasterSecret::load(&MasterKeySource::Secret(text.to_owned())).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn credentials_sealed_at_rest(db: &TestDb) {
    let store = db.open().await;
    let key = ibstream::store::unlock(&store, &secret("master secret one"))
        .await
        .unwrap();
    let sealed = SealedCredentials::seal(&key, USERNAME, PASSWORD).unwrap();
    store.set_credentials("default", &sealed).await.unwrap();

    let rows = db
        .query("SELECT username, password FROM profile_credentials")
        .await;
    assert_eq!(rows.len(), 1);
    for column in ["username", "password"] {
        let raw: Vec<u8> = rows[0].try_get("", column).unwrap();
        assert!(raw.len() > 28, "{column} holds nonce, ciphertext and tag");
        assert!(
            !contains(&raw, USERNAME.as_bytes()),
            "{column} leaks the username"
        );
        assert!(
            !contains(&raw, PASSWORD.as_bytes()),
            "{column} leaks the password"
        );
        assert!(
            !contains(&raw, b"horse"),
            "{column} leaks part of the password"
        );
    }

    let stored = store.credentials("default").await.unwrap().expect("set");
    let opened = stored.open(&key).unwrap();
    assert_eq!(opened.username.as_str(), USERNAME);
    assert_eq!(opened.password.as_str(), PASSWORD);

    // Replacing seals afresh; a second profile has its own row.
    let again = SealedCredentials::seal(&key, USERNAME, PASSWORD).unwrap();
    assert_ne!(again, sealed, "fresh nonce per write");
    store.set_credentials("default", &again).await.unwrap();
    store.save_profile(&Profile::named("other")).await.unwrap();
    assert!(store.credentials("other").await.unwrap().is_none());
    store.set_credentials("other", &again).await.unwrap();
    assert_eq!(
        db.query("SELECT profile_id FROM profile_credentials")
            .await
            .len(),
        2
    );

    // Deleting a profile takes its credentials with it.
    store.delete_profile("other").await.unwrap();
    assert_eq!(
        db.query("SELECT profile_id FROM profile_credentials")
            .await
            .len(),
        1
    );
    store.clear_credentials("default").await.unwrap();
    assert!(store.credentials("default").await.unwrap().is_none());
    assert!(store.set_credentials("missing", &again).await.is_err());
}

async fn wrong_master_key(db: &TestDb) {
    let store = db.open().await;
    let right = ibstream::store::unlock(&store, &secret("the right secret"))
        .await
        .unwrap();
    let sealed = SealedCredentials::seal(&right, USERNAME, PASSWORD).unwrap();
    store.set_credentials("default", &sealed).await.unwrap();
    let check = store
        .key_check()
        .await
        .unwrap()
        .expect("key check recorded");
    assert_eq!(check.salt.len(), 16);
    assert_eq!(check.memory_kib, KdfParams::default().memory_kib);
    store.close().await.unwrap();

    // A restart with another secret fails at unlock, with a message naming the cause.
    let store = db.open().await;
    let err = ibstream::store::unlock(&store, &secret("a wrong secret"))
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::MasterKeyMismatch), "{err:?}");
    assert!(
        err.to_string()
            .contains("master key does not match the one this database was sealed with"),
        "{err}"
    );
    assert!(!err.to_string().contains("a wrong secret"));

    // A key derived from the wrong secret (with the database's own salt) cannot open
    // the credentials either.
    let wrong = MasterKey::derive(b"a wrong secret", &check.salt).unwrap();
    let stored = store.credentials("default").await.unwrap().unwrap();
    let err = stored.open(&wrong).unwrap_err();
    assert!(matches!(err, CryptoError::WrongKey));
    assert!(err.to_string().contains("different master key"), "{err}");

    // The right secret still unlocks and opens, and the check is not rewritten.
    let again = ibstream::store::unlock(&store, &secret("the right secret"))
        .await
        .unwrap();
    assert_eq!(stored.open(&again).unwrap().password.as_str(), PASSWORD);
    assert_eq!(store.key_check().await.unwrap().unwrap(), check);
}

#[cfg(unix)]
async fn key_file_created_and_reused(db: &TestDb) {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("master.key");
    let source = MasterKeySource::File(path.clone());
    let store = db.open().await;

    let first = ibstream::store::unlock_from(&store, &source).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode");
    let sealed = first.seal(b"sealed with the file key").unwrap();
    let content = std::fs::read(&path).unwrap();

    let second = ibstream::store::unlock_from(&store, &source).await.unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        content,
        "file reused, not rewritten"
    );
    assert_eq!(
        second.open(&sealed).unwrap().as_slice(),
        b"sealed with the file key"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = ibstream::store::unlock_from(&store, &source)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CryptoError::KeyFilePermissions { .. }),
        "{err:?}"
    );

    // Another key file is another secret: the database refuses it.
    let other = MasterKeySource::File(dir.path().join("other.key"));
    assert!(matches!(
        ibstream::store::unlock_from(&store, &other).await,
        Err(CryptoError::MasterKeyMismatch)
    ));
}

#[cfg(not(unix))]
async fn key_file_created_and_reused(_db: &TestDb) {}
