//! The agent protocol's refusals, each through the real server: one agent's credential cannot
//! touch another host; expired, revoked, used-up and unknown enrollment tokens fail; replayed,
//! forged and stale requests fail; oversized and malformed bodies (gzip bombs included) get
//! 413/400 problem+json — and none of these changes anything (the audit chain's head, the
//! inventory held, the job, stay as they were).

use std::io::Write;

use jiff::SignedDuration;
use patchwarden_api::v1::agent::{CHECK_IN_PATH, CheckInRequest, INVENTORY_PATH, InventoryUpload};
use patchwarden_api::v1::jobs::{JobKind, JobOutcome, JobResult};
use patchwarden_api::v1::problem::{self, ProblemCode};
use patchwarden_client::{AgentClient, AgentKey, RawResponse, Signing};
use patchwarden_core::audit::Actor;
use patchwarden_core::inventory::{HostFacts, Inventory};
use patchwarden_server::admin;
use patchwarden_testkit::{TestServer, debian_facts, now};
use uuid::Uuid;

fn check_in_body(facts: &HostFacts, seq: u64) -> Vec<u8> {
    let inv = Inventory {
        host: facts.clone(),
        ..Inventory::default()
    };
    serde_json::to_vec(&CheckInRequest {
        seq,
        facts: facts.clone(),
        packages: inv.packages_digest(),
        agent_version: "t".into(),
    })
    .unwrap()
}

/// Asserts a refusal with `status` and `code`, as problem+json.
fn refused(raw: &RawResponse, status: u16, code: ProblemCode) {
    assert_eq!(
        raw.status,
        status,
        "{:?}",
        String::from_utf8_lossy(&raw.body)
    );
    assert_eq!(
        raw.content_type.as_deref(),
        Some(problem::CONTENT_TYPE),
        "a refusal is problem+json"
    );
    assert_eq!(raw.problem().code, code);
}

async fn two_hosts(server: &TestServer) -> ((AgentClient, HostFacts), (AgentClient, HostFacts)) {
    let fa = debian_facts("a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let fb = debian_facts("b", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    let (a, _) = server.enroll(fa.clone()).await;
    let (b, _) = server.enroll(fb.clone()).await;
    ((a, fa), (b, fb))
}

#[tokio::test]
async fn one_agents_credential_cannot_read_another_hosts_jobs_nor_write_its_inventory() {
    let server = TestServer::start().await;
    let ((a, fa), (b, _)) = two_hosts(&server).await;
    let host_a = Uuid::parse_str(a.host_id()).unwrap();
    let job = admin::queue_job(
        server.store().as_ref(),
        host_a,
        &JobKind::Reboot,
        Actor::Operator("alice".into()),
        now(),
    )
    .await
    .unwrap();
    let id = job.id.to_string();
    let head = server.store().audit_head().await.unwrap();

    // B asks for A's job, reports progress and a result on it: not found, every time.
    let err = b.job(&id).await.unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::NotFound));
    let err = b
        .job_result(&id, &JobResult::new(JobOutcome::Succeeded, "done"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::NotFound));

    // B signs with its own key but claims to be A: the signature does not verify.
    let b_key_claiming_a = Signing::now(Some(a.host_id()));
    let upload = serde_json::to_vec(&InventoryUpload::Full {
        inventory: Inventory {
            host: fa.clone(),
            ..Inventory::default()
        },
    })
    .unwrap();
    let raw = b
        .send_raw("POST", INVENTORY_PATH, upload, None, &b_key_claiming_a)
        .await
        .unwrap();
    refused(&raw, 401, ProblemCode::SignatureInvalid);

    assert_eq!(server.store().audit_head().await.unwrap(), head);
    assert!(
        server
            .store()
            .get_inventory(host_a)
            .await
            .unwrap()
            .is_none()
    );
    let job_after = server.store().get_job(job.id).await.unwrap().unwrap();
    assert_eq!(job_after.state, job.state);
}

#[tokio::test]
async fn expired_revoked_used_up_and_unknown_tokens_fail() {
    let server = TestServer::start().await;
    let facts = |n: &str| debian_facts(n, &format!("{n:0>32}"));

    let (_, used) = server.token("web", 1, SignedDuration::from_hours(1)).await;
    server.try_enroll(&used, facts("1")).await.unwrap();
    let err = server.try_enroll(&used, facts("2")).await.unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::EnrollmentTokenRefused));
    assert!(err.to_string().contains("used up"), "{err}");

    let (revoked_token, revoked) = server.token("web", 5, SignedDuration::from_hours(1)).await;
    admin::revoke_enrollment_token(
        server.store().as_ref(),
        revoked_token.id,
        Actor::Operator("alice".into()),
        now(),
    )
    .await
    .unwrap();
    let err = server.try_enroll(&revoked, facts("3")).await.unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::EnrollmentTokenRefused));
    assert!(err.to_string().contains("revoked"), "{err}");

    let (_, short) = server.token("web", 5, SignedDuration::from_secs(1)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let err = server.try_enroll(&short, facts("4")).await.unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::EnrollmentTokenRefused));
    assert!(err.to_string().contains("expired"), "{err}");

    let err = server
        .try_enroll("pwe_0000000000000000", facts("5"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ProblemCode::EnrollmentTokenRefused));

    // Several tokens may be valid at once (rotation): a second live token still works, and a
    // host enrolled with it joins the token's group.
    let (_, a) = server.token("db", 1, SignedDuration::from_hours(24)).await;
    let (_, b) = server.token("db", 1, SignedDuration::from_hours(24)).await;
    assert_eq!(
        server.try_enroll(&b, facts("6")).await.unwrap().1.group,
        "db"
    );
    assert_eq!(
        server.try_enroll(&a, facts("7")).await.unwrap().1.group,
        "db"
    );
}

#[tokio::test]
async fn replayed_forged_and_stale_requests_fail() {
    let server = TestServer::start().await;
    let ((a, fa), _) = two_hosts(&server).await;

    // A replay: the same signed request (same nonce) sent twice.
    let signing = Signing::now(Some(a.host_id()));
    let body = check_in_body(&fa, 1);
    let first = a
        .send_raw("POST", CHECK_IN_PATH, body.clone(), None, &signing)
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    let head = server.store().audit_head().await.unwrap();
    let replay = a
        .send_raw("POST", CHECK_IN_PATH, body.clone(), None, &signing)
        .await
        .unwrap();
    refused(&replay, 401, ProblemCode::Replayed);

    // A forged request: signed by a key the server never saw, in A's name.
    let stranger = server
        .client
        .agent(a.host_id(), AgentKey::generate().unwrap());
    let raw = stranger
        .send_raw(
            "POST",
            CHECK_IN_PATH,
            check_in_body(&fa, 2),
            None,
            &Signing::now(Some(a.host_id())),
        )
        .await
        .unwrap();
    refused(&raw, 401, ProblemCode::SignatureInvalid);

    // A's own signature, re-pointed at another route: the path is signed.
    let mut moved = Signing::now(Some(a.host_id()));
    moved.nonce = "0".repeat(32);
    let raw = a
        .send_raw(
            "POST",
            "/api/v1/agent/check-in?x=1",
            check_in_body(&fa, 3),
            None,
            &moved,
        )
        .await
        .unwrap();
    assert_eq!(
        raw.status, 200,
        "a query string is part of what is signed, and fine"
    );

    // A stale request (outside the window) and one from the future.
    for offset in [-3600, 3600] {
        let mut stale = Signing::now(Some(a.host_id()));
        stale.timestamp += offset;
        let raw = a
            .send_raw("POST", CHECK_IN_PATH, check_in_body(&fa, 9), None, &stale)
            .await
            .unwrap();
        refused(&raw, 401, ProblemCode::ClockSkew);
    }
    // A wrong method and an unknown route: problem documents too.
    let raw = a
        .send_raw(
            "GET",
            CHECK_IN_PATH,
            Vec::new(),
            None,
            &Signing::now(Some(a.host_id())),
        )
        .await
        .unwrap();
    refused(&raw, 405, ProblemCode::MethodNotAllowed);
    let raw = server.client.get_raw("/api/v1/nothing-here").await.unwrap();
    refused(&raw, 404, ProblemCode::NotFound);
    // A request with no signature at all.
    let plain = server.client.get_raw("/api/v1/agent/jobs/x").await.unwrap();
    refused(&plain, 401, ProblemCode::Unauthenticated);
    let after = server.store().audit_head().await.unwrap();
    // Only the successful re-pointed check-in may have changed anything (its facts are the
    // same, so it appends nothing).
    assert_eq!(after, head);
}

/// An inventory upload replayed: refused whether the inventory it carries is the one held (the
/// nonce recorded on its own) or an older one after a newer upload (the nonce recorded in the
/// upload's transaction, which a replay then fails as a whole) — the newer inventory stands,
/// nothing is appended.
#[tokio::test]
async fn a_replayed_inventory_upload_is_refused_and_changes_nothing() {
    use patchwarden_core::inventory::{Manager, Package, PackageStatus};
    let server = TestServer::start().await;
    let ((a, fa), _) = two_hosts(&server).await;
    let host_a = Uuid::parse_str(a.host_id()).unwrap();
    let upload = |version: &str| {
        let mut inventory = Inventory {
            host: fa.clone(),
            packages: vec![Package {
                manager: Manager::Dpkg,
                name: "openssl".into(),
                version: version.into(),
                arch: Some("amd64".into()),
                source_name: Some("openssl".into()),
                source_version: Some(version.into()),
                epoch: None,
                module: None,
                status: PackageStatus::Installed,
            }],
            ..Inventory::default()
        };
        inventory.canonicalize();
        let digest = inventory.packages_digest();
        let body = serde_json::to_vec(&InventoryUpload::Full { inventory }).unwrap();
        (body, digest)
    };
    let held = || async {
        server
            .store()
            .get_inventory(host_a)
            .await
            .unwrap()
            .unwrap()
            .digest
    };
    let (old_body, old_digest) = upload("3.0.11-1~deb12u1");
    let old_signing = Signing::now(Some(a.host_id()));
    let first = a
        .send_raw("POST", INVENTORY_PATH, old_body.clone(), None, &old_signing)
        .await
        .unwrap();
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(held().await, old_digest);

    // Replayed at once: the inventory is the one held.
    let head = server.store().audit_head().await.unwrap();
    let replay = a
        .send_raw("POST", INVENTORY_PATH, old_body.clone(), None, &old_signing)
        .await
        .unwrap();
    refused(&replay, 401, ProblemCode::Replayed);
    assert_eq!(server.store().audit_head().await.unwrap(), head);

    // A newer inventory, then the old request replayed to put the old one back.
    let (new_body, new_digest) = upload("3.0.15-1~deb12u1");
    let second = a
        .send_raw(
            "POST",
            INVENTORY_PATH,
            new_body,
            None,
            &Signing::now(Some(a.host_id())),
        )
        .await
        .unwrap();
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    assert_eq!(held().await, new_digest);
    let head = server.store().audit_head().await.unwrap();
    let replay = a
        .send_raw("POST", INVENTORY_PATH, old_body, None, &old_signing)
        .await
        .unwrap();
    refused(&replay, 401, ProblemCode::Replayed);
    assert_eq!(held().await, new_digest);
    assert_eq!(server.store().audit_head().await.unwrap(), head);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_413_or_400_and_change_nothing() {
    let server = TestServer::start_with(|c| {
        c.limits.max_body_bytes = 64 * 1024;
        c.limits.max_inventory_bytes = 1024 * 1024;
    })
    .await;
    let ((a, fa), _) = two_hosts(&server).await;
    let host_a = Uuid::parse_str(a.host_id()).unwrap();
    let head = server.store().audit_head().await.unwrap();
    let send = |body: Vec<u8>, encoding: Option<&'static str>, path: &'static str| {
        let a = a.clone();
        async move {
            a.send_raw(
                "POST",
                path,
                body,
                encoding,
                &Signing::now(Some(a.host_id())),
            )
            .await
            .unwrap()
        }
    };

    // Larger than the route reads, as sent.
    let raw = send(vec![b' '; 65 * 1024], None, INVENTORY_PATH).await;
    refused(&raw, 413, ProblemCode::PayloadTooLarge);
    let raw = send(vec![b' '; 300 * 1024], None, CHECK_IN_PATH).await;
    refused(&raw, 413, ProblemCode::PayloadTooLarge);

    // A gzip bomb: 40 KiB that inflate to 64 MiB of zeros.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let raw = send(bomb, Some("gzip"), INVENTORY_PATH).await;
    refused(&raw, 413, ProblemCode::PayloadTooLarge);

    // Damaged gzip, an unknown encoding, JSON that is not an upload, a job kind outside the
    // closed set, text that is not JSON.
    let raw = send(
        b"\x1f\x8b\x08\x00garbage".to_vec(),
        Some("gzip"),
        INVENTORY_PATH,
    )
    .await;
    refused(&raw, 400, ProblemCode::MalformedBody);
    let raw = send(b"{}".to_vec(), Some("br"), INVENTORY_PATH).await;
    refused(&raw, 415, ProblemCode::UnsupportedMediaType);
    let raw = send(br#"{"kind":"full"}"#.to_vec(), None, INVENTORY_PATH).await;
    refused(&raw, 400, ProblemCode::MalformedBody);
    let raw = send(
        br#"{"kind":"script","run":"rm -rf /"}"#.to_vec(),
        None,
        INVENTORY_PATH,
    )
    .await;
    refused(&raw, 400, ProblemCode::MalformedBody);
    let raw = send(b"\xff\xfe not json".to_vec(), None, CHECK_IN_PATH).await;
    refused(&raw, 400, ProblemCode::MalformedBody);
    // Facts far larger than the store keeps (a 100 KiB hostname), inside the body limit.
    let mut huge = fa.clone();
    huge.hostname = "h".repeat(100 * 1024);
    let raw = send(check_in_body(&huge, 1), None, CHECK_IN_PATH).await;
    refused(&raw, 400, ProblemCode::MalformedBody);

    // Nothing changed: no inventory, no audit event.
    assert!(
        server
            .store()
            .get_inventory(host_a)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.store().audit_head().await.unwrap(), head);
}
