//! The conformance story on PostgreSQL, whenever `PATCHWARDEN_TEST_POSTGRES` names a database
//! (CI sets `postgres://postgres@127.0.0.1:5432/test`). Each test gets a fresh schema with a
//! random name, reached through the connection's `search_path`, and drops it at the end, so
//! runs never see each other's rows. Without the variable every test says it skipped, and why.

use std::sync::Arc;

use async_trait::async_trait;
use patchwarden_store::conformance::TestDatabase;
use patchwarden_store::{Result, Store};
use patchwarden_store_postgres::PgStore;

const VAR: &str = "PATCHWARDEN_TEST_POSTGRES";

struct PgTestDatabase {
    url: String,
    schema: String,
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!("{VAR} is set but PostgreSQL cannot be reached: {e}"),
    };
    tokio::spawn(connection);
    client
}

#[async_trait]
impl TestDatabase for PgTestDatabase {
    async fn open(&self) -> Result<Arc<dyn Store>> {
        let mut config: tokio_postgres::Config = match self.url.parse() {
            Ok(c) => c,
            Err(e) => panic!("{VAR} is not a PostgreSQL URL: {e}"),
        };
        config.options(format!("-c search_path={}", self.schema));
        let store = PgStore::connect(config, format!("{VAR} schema {}", self.schema)).await?;
        Ok(Arc::new(store))
    }

    async fn teardown(&self) {
        let client = admin(&self.url).await;
        if let Err(e) = client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
        {
            panic!("cannot drop the test schema {}: {e}", self.schema);
        }
    }
}

async fn postgres() -> Option<Arc<dyn TestDatabase>> {
    let Ok(url) = std::env::var(VAR) else {
        // Written to the process's stderr directly, not through `eprintln!`, which the test
        // harness captures and hides for passing tests: a skip must be seen. Once per run.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the store conformance suite on PostgreSQL needs {VAR} set to a \
                 database URL; CI sets postgres://postgres@127.0.0.1:5432/test"
            );
        });
        return None;
    };
    let schema = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
    let client = admin(&url).await;
    if let Err(e) = client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
    {
        panic!("cannot create the test schema {schema}: {e}");
    }
    Some(Arc::new(PgTestDatabase { url, schema }))
}

patchwarden_store::conformance_tests!(postgres);
