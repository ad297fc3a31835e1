//! A scratch schema for the tests that reach PostgreSQL below the `Store` trait.
// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

/// The variable that names the test database (CI sets
/// `postgres://postgres@127.0.0.1:5432/test`).
pub(crate) const VAR: &str = "PATCHWARDEN_TEST_POSTGRES";

/// A fresh schema with a random name, a client whose `search_path` is that schema, and the
/// configuration to open more connections to it. `None`, said on stderr with `what` needs,
/// when `VAR` is not set.
pub(crate) async fn scratch_schema(
    what: &str,
) -> Option<(tokio_postgres::Client, tokio_postgres::Config, String)> {
    let Ok(url) = std::env::var(VAR) else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {what} needs {VAR} set to a PostgreSQL URL"
        );
        return None;
    };
    let schema = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
    let mut config: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(e) => panic!("{VAR} is not a PostgreSQL URL: {e}"),
    };
    config.options(format!("-c search_path={schema}"));
    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!("{VAR} is set but PostgreSQL cannot be reached: {e}"),
    };
    tokio::spawn(connection);
    if let Err(e) = client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
    {
        panic!("cannot create the test schema {schema}: {e}");
    }
    Some((client, config, schema))
}

/// A High finding on `before`'s package `i` for `vuln`, fixed by `after`'s version of it.
pub(crate) fn high_finding(
    before: &patchwarden_core::inventory::Inventory,
    after: &patchwarden_core::inventory::Inventory,
    i: usize,
    vuln: &str,
) -> patchwarden_store::CurrentFinding {
    use patchwarden_store::conformance::fixtures::{at, finding};
    patchwarden_store::CurrentFinding {
        body: None,
        finding: finding(&before.packages[i], vuln, Some(&after.packages[i])).into(),
        classification: patchwarden_store::Classification {
            class: Some(patchwarden_core::policy::Class::High),
            due_at: Some(at(1000)),
            policy: Some("seed-default".into()),
            rule: Some("high".into()),
        },
    }
}

/// Applies every migration before `name` to the scratch schema and records them as applied,
/// as a release of that time left its database (for the upgrade tests).
pub(crate) async fn migrate_before(client: &tokio_postgres::Client, name: &str) {
    use patchwarden_store_postgres::migrate::MIGRATIONS;
    use sha2::{Digest, Sha256};
    client
        .batch_execute(
            "CREATE TABLE patchwarden_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)",
        )
        .await
        .unwrap();
    let before = MIGRATIONS
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no migration {name}"));
    for (i, (name, sql)) in MIGRATIONS[..before].iter().enumerate() {
        client.batch_execute(sql).await.unwrap();
        let checksum = patchwarden_store::codec::hex(&Sha256::digest(sql.as_bytes()));
        let version = i as i64 + 1;
        client
            .execute(
                "INSERT INTO patchwarden_migrations VALUES ($1, $2, $3)",
                &[&version, name, &checksum],
            )
            .await
            .unwrap();
    }
}

/// Drops the scratch schema `client` was made for (its `search_path`), at the end of a test
/// that passed; a failed test leaves its schema for a look.
pub(crate) async fn drop_schema(client: &tokio_postgres::Client) {
    let schema: String = client
        .query_one("SELECT current_schema()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        schema.starts_with("pw_test_"),
        "not a scratch schema: {schema}"
    );
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
