//! The exception routes refuse malformed and oversized bodies as problem documents (400 and
//! 413), and unknown exceptions as "not found", before anything is stored.

mod operator_support;

use operator_support::{PASSWORD, Req, Server};
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_store::Role;
use patchwarden_store::exception::ExceptionFilter;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_exception_bodies_are_problem_documents() {
    let server = Server::start(|_| {}).await;
    server.user("sam", &[Role::Security], &[]).await;
    let sam = server.login("sam", PASSWORD).await;
    let send = |r: Req| server.send(sam.apply(r));

    let mut bad = Req::post("/api/v1/exceptions").header("content-type", "application/json");
    bad.body = b"{\"justification\": ".to_vec();
    let a = send(bad).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.code(), Some(ProblemCode::MalformedBody));
    assert!(
        a.header("content-type")
            .unwrap()
            .starts_with("application/problem+json")
    );

    // An unknown field is refused, not ignored.
    let a = send(Req::post("/api/v1/exceptions").json(&json!({
        "justification": "no_vendor_patch", "explanation": "x",
        "controls": [{"kind": "other", "description": "y"}],
        "expires_at": "2099-01-01T00:00:00Z", "hosts": [], "approved": true,
    })))
    .await;
    assert_eq!(a.status, 400, "{}", a.text());

    let mut huge = Req::post("/api/v1/exceptions").header("content-type", "application/json");
    huge.body = vec![b' '; 1024 * 1024];
    let a = send(huge).await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(a.code(), Some(ProblemCode::PayloadTooLarge));

    // Names nothing: refused by the rules (422).
    let a = send(Req::post("/api/v1/exceptions").json(&json!({
        "justification": "no_vendor_patch", "explanation": "no fix from the vendor",
        "controls": [{"kind": "other", "description": "monitored"}],
        "expires_at": "2099-01-01T00:00:00Z",
    })))
    .await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert_eq!(a.code(), Some(ProblemCode::ExceptionRefused));

    // A reject without a reason field; an unknown exception.
    let a = send(Req::post("/api/v1/exceptions/EXC-2026-0001/reject").json(&json!({}))).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let a = send(Req::post("/api/v1/exceptions/EXC-2026-0001/approve")).await;
    assert_eq!(a.status, 404, "{}", a.text());

    assert!(
        server
            .store()
            .list_exceptions(&ExceptionFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}
