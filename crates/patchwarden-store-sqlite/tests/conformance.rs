//! The conformance story on SQLite: every test on its own temporary database file. Always
//! runs; SQLite needs nothing installed.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use patchwarden_store::conformance::TestDatabase;
use patchwarden_store::{Result, Store};
use patchwarden_store_sqlite::SqliteStore;

struct SqliteTestDatabase {
    // Held so the directory lives as long as the test; removed when the value drops.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

#[async_trait]
impl TestDatabase for SqliteTestDatabase {
    async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(SqliteStore::open(&self.path).await?))
    }
}

async fn sqlite() -> Option<Arc<dyn TestDatabase>> {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot make a temporary directory: {e}"),
    };
    let path = dir.path().join("patchwarden.db");
    Some(Arc::new(SqliteTestDatabase { _dir: dir, path }))
}

patchwarden_store::conformance_tests!(sqlite);
