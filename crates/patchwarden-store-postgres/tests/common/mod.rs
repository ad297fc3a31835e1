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
