//! `ibstream keys` as a user runs it: the built binary on a temporary data directory.

use std::path::Path;
use std::process::{Command, Output};

fn ibstream(data_dir: &Path, args: &[&str]) -> Output {
    ibstream_with_env(data_dir, args, &[])
}

fn ibstream_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ibstream"));
    command.args(args).arg("--data-dir").arg(data_dir);
    // The test must not pick up a database or data directory from its environment.
    for (name, _) in std::env::vars() {
        if name.starts_with("IBSTREAM_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("run ibstream")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_create_prints_once_list_never_shows_it_and_revoke_sticks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let created = ibstream(
        &data,
        &["keys", "create", "--scope", "admin", "--name", "ops"],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let token = text(&created.stdout).trim().to_owned();
    let id = ibstream::crypto::parse_api_key_id(&token)
        .expect("stdout is exactly the token")
        .to_owned();
    assert!(
        !text(&created.stderr).contains(&token),
        "token printed twice"
    );
    assert!(text(&created.stderr).contains(&id));
    assert!(data.join("ibstream.sqlite").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "data dir is private");
    }

    let listed = ibstream(&data, &["keys", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let out = text(&listed.stdout) + &text(&listed.stderr);
    assert!(
        out.contains(&id) && out.contains("ops") && out.contains("admin"),
        "{out}"
    );
    assert!(!out.contains(&token), "list shows the token");
    // The random part may itself contain '_': cut after the id, not at the last '_'.
    let secret_part = &token[format!("ibs_{id}_").len()..];
    assert!(secret_part.len() >= 40);
    assert!(!out.contains(secret_part), "list shows the secret part");
    assert!(!out.contains("argon2"), "list shows the hash");

    let revoked = ibstream(&data, &["keys", "revoke", &id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let listed = text(&ibstream(&data, &["keys", "list"]).stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("key listed");
    assert_eq!(line.split_whitespace().count(), 6, "{line}");
    assert!(!line.ends_with('-'), "revoked time shown: {line}");

    let unknown = ibstream(&data, &["keys", "revoke", "nosuchkey000"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("not found"),
        "{}",
        text(&unknown.stderr)
    );

    let bad_scope = ibstream(&data, &["keys", "create", "--scope", "write"]);
    assert!(!bad_scope.status.success());
    assert!(text(&bad_scope.stderr).contains("read"));
}

/// `DATABASE_URL` in the environment sends the CLI to PostgreSQL, as it does the server.
#[tokio::test]
async fn keys_follow_database_url_to_postgres() {
    let Some(db) = crate::backend::TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let created = ibstream_with_env(
        dir.path(),
        &["keys", "create", "--scope", "read"],
        &[("DATABASE_URL", db.url.as_str())],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let token = text(&created.stdout).trim().to_owned();

    let store = db.open().await;
    let found = store
        .authenticate(&token)
        .await
        .unwrap()
        .expect("key in PostgreSQL");
    assert_eq!(found.scope, ibstream::crypto::Scope::Read);
    assert!(
        !dir.path().join("ibstream.sqlite").exists(),
        "no SQLite file was made"
    );
    store.close().await.unwrap();
}
