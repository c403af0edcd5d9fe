//! API keys: create, authenticate, revoke, list, and never expose the hash.

use ibstream::crypto::{Scope, generate_api_key, verify_api_key};
use ibstream::store::{NewApiKey, StoreError};

use crate::backend::TestDb;

on_both_backends! {
    api_keys_create_verify_revoke_and_list => api_keys_lifecycle;
}

async fn api_keys_lifecycle(db: &TestDb) {
    let store = db.open().await;
    assert!(!store.has_api_keys().await.unwrap());

    let admin = generate_api_key();
    let reader = generate_api_key();
    let record = store
        .insert_api_key(&NewApiKey::from_generated(
            &admin,
            Some("ops".into()),
            Scope::Admin,
        ))
        .await
        .unwrap();
    assert_eq!(
        (record.id.as_str(), record.scope),
        (admin.id.as_str(), Scope::Admin)
    );
    assert_eq!(record.name.as_deref(), Some("ops"));
    assert!(record.last_used_at.is_none() && record.revoked_at.is_none());
    store
        .insert_api_key(&NewApiKey::from_generated(&reader, None, Scope::Read))
        .await
        .unwrap();
    assert!(store.has_api_keys().await.unwrap());
    assert!(matches!(
        store
            .insert_api_key(&NewApiKey::from_generated(&admin, None, Scope::Read))
            .await,
        Err(StoreError::Conflict(_))
    ));

    // Only the hash is stored, and it verifies the token.
    let rows = db.query("SELECT id, hash FROM api_keys").await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let hash: String = row.try_get("", "hash").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains(admin.secret.as_str()) && !hash.contains(reader.secret.as_str()));
    }
    assert!(verify_api_key(&admin.secret, &admin.hash));

    // authenticate: right token → its record; wrong secret or unknown id → none.
    let found = store
        .authenticate(&admin.secret)
        .await
        .unwrap()
        .expect("valid");
    assert_eq!(found.scope, Scope::Admin);
    let forged = format!("ibs_{}_{}", admin.id, "A".repeat(43));
    assert!(store.authenticate(&forged).await.unwrap().is_none());
    assert!(
        store
            .authenticate(&reader.secret.replace(&reader.id, &admin.id))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.authenticate("garbage").await.unwrap().is_none());
    let by_id = store.api_key_by_id(&reader.id).await.unwrap().unwrap();
    assert!(by_id.verify(&reader.secret) && !by_id.verify(&admin.secret));

    store.touch_api_key(&admin.id).await.unwrap();
    assert!(
        store
            .api_key_by_id(&admin.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some()
    );
    assert!(matches!(
        store.touch_api_key("nonexistent0").await,
        Err(StoreError::NotFound { .. })
    ));

    // Listing shows metadata only; neither Debug nor any field reveals hash or token.
    let listed = store.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    let shown = format!("{listed:?} {listed:#?}");
    for secret in [&admin.hash, &reader.hash, &*admin.secret, &*reader.secret] {
        assert!(!shown.contains(secret.as_str()));
    }
    assert!(!shown.contains("argon2"));

    // Revoked keys stop authenticating; has_api_keys counts only live ones.
    store.revoke_api_key(&admin.id).await.unwrap();
    let revoked = store.api_key_by_id(&admin.id).await.unwrap().unwrap();
    assert!(revoked.is_revoked() && !revoked.verify(&admin.secret));
    assert!(store.authenticate(&admin.secret).await.unwrap().is_none());
    store.revoke_api_key(&admin.id).await.unwrap();
    assert_eq!(
        store
            .api_key_by_id(&admin.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        revoked.revoked_at,
        "revoking twice keeps the first time"
    );
    assert!(store.has_api_keys().await.unwrap());
    store.revoke_api_key(&reader.id).await.unwrap();
    assert!(!store.has_api_keys().await.unwrap());
    assert!(matches!(
        store.revoke_api_key("nonexistent0").await,
        Err(StoreError::NotFound { .. })
    ));
}
