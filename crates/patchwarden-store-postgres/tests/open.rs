//! Opening by URL: the PostgreSQL backend refuses other URLs with a typed error, and an
//! unreachable server is a typed error naming the database without its password.

use patchwarden_store::StoreError;

#[tokio::test]
async fn open_by_url_refuses_sqlite_urls() {
    let e = patchwarden_store_postgres::open("sqlite:///tmp/x.db")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Url { .. }), "{e}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_typed_error_without_the_password() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let e = patchwarden_store_postgres::open("postgres://u:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn a_malformed_url_is_a_typed_error() {
    let e = patchwarden_store_postgres::open("postgres://u@h:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Url { .. }), "{e}");
}

#[tokio::test]
async fn a_bad_pool_size_is_a_typed_error_without_the_password() {
    let e =
        patchwarden_store_postgres::open("postgres://u:hunter2@127.0.0.1:1/db?pool_max_conns=0")
            .await
            .unwrap_err();
    assert!(matches!(e, StoreError::Url { .. }), "{e}");
    assert!(
        e.to_string().contains("pool_max_conns must be a number"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

/// `pool_max_conns` in the URL bounds the connections the store opens, however many calls
/// run at once; without it the store opens up to its default.
#[tokio::test]
async fn the_url_sets_the_most_connections_the_store_opens() {
    const VAR: &str = "PATCHWARDEN_TEST_POSTGRES";
    let Ok(url) = std::env::var(VAR) else {
        eprintln!("skipped: the pool size test needs {VAR} set to a PostgreSQL URL");
        return;
    };
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{VAR} is set but PostgreSQL cannot be reached: {e}"));
    tokio::spawn(connection);
    let schema = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let opened = |pool: Option<usize>| {
        let app = format!("pw_pool_{}", uuid::Uuid::new_v4().simple());
        let mut u = format!("{url}{sep}application_name={app}&options=-c%20search_path%3D{schema}");
        if let Some(n) = pool {
            u.push_str(&format!("&pool_max_conns={n}"));
        }
        (u, app)
    };
    let connections = |app: String| {
        let admin = &admin;
        async move {
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&app],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };
    for (pool, most) in [
        (Some(3), 3),
        (None, patchwarden_store_postgres::DEFAULT_POOL_SIZE),
    ] {
        let (u, app) = opened(pool);
        let store = patchwarden_store_postgres::PgStore::open(&u).await.unwrap();
        assert_eq!(store.pool_size(), most);
        let calls: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    use patchwarden_store::Store as _;
                    store
                        .list_hosts(&patchwarden_store::HostFilter::default())
                        .await
                        .map(|h| h.len())
                })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap().unwrap(), 0);
        }
        let n = connections(app).await;
        assert!(
            (1..=most as i64).contains(&n),
            "{n} connections open for a pool of {most}"
        );
        drop(store);
    }
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
