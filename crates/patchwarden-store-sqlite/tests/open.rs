//! Opening SQLite files that are not sound databases, and the migration list.
//!
//! A damaged or foreign file must give a typed error naming the file, never a panic and never
//! a silently recreated database.

use std::path::Path;

use patchwarden_store::StoreError;
use patchwarden_store_sqlite::SqliteStore;

async fn open_error(path: &Path) -> StoreError {
    match SqliteStore::open(path).await {
        Ok(s) => panic!("{} opened as a database: {s:?}", path.display()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.db");
    // A real file that is not a database: a Debian host's dpkg status.
    let status =
        patchwarden_store::conformance::fixtures::shared_data().join("debian/debian12-host.status");
    std::fs::copy(&status, &path).unwrap();
    let e = open_error(&path).await;
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(e.to_string().contains("text.db"), "{e}");
}

#[tokio::test]
async fn a_database_damaged_after_its_header_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        drop(store);
    }
    // Checkpointed and closed: the schema is in the main file. Overwrite every page after the
    // first (the header page) with garbage.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 4096, "{} bytes", bytes.len());
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let e = open_error(&path).await;
    assert!(
        matches!(e, StoreError::Open { .. } | StoreError::Migration { .. }),
        "{e}"
    );
}

#[tokio::test]
async fn a_truncated_database_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.db");
    std::fs::write(&path, b"SQLite format 3\0garbage").unwrap();
    let e = open_error(&path).await;
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
}

#[tokio::test]
async fn a_missing_directory_is_a_typed_error() {
    let e = open_error(Path::new("/nonexistent/patchwarden/db.sqlite")).await;
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
}

#[tokio::test]
async fn open_by_url_refuses_other_backends() {
    let e = patchwarden_store_sqlite::open("postgres://u@h/db")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Url { .. }), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    let store = patchwarden_store_sqlite::open(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
}

#[test]
fn the_migration_list_holds_exactly_the_files_of_the_migrations_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let listed: Vec<String> = patchwarden_store_sqlite::migrate::MIGRATIONS
        .iter()
        .map(|(name, _)| format!("{name}.sql"))
        .collect();
    assert_eq!(files, listed);
}
