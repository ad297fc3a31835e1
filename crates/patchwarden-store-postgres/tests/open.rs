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
