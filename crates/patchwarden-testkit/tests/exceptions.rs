//! Exceptions (risk acceptance) through the real server and the real client: the requester
//! cannot approve their own exception, a provider or an auditor cannot approve at all, an
//! approved exception makes its finding `excepted` (in the findings list, under
//! `state=excepted`, and out of "breached"), and once it expires the finding is breached again
//! on its original due date.
//!
//! One test function: it moves the server's process-wide clock (the seeding offset the demo
//! uses), which no other test of this binary may see.

use jiff::SignedDuration;
use patchwarden_api::v1::agent::{CheckInRequest, InventoryUpload};
use patchwarden_api::v1::exceptions::{
    ExceptionFinding, ExceptionQuery, ExceptionStateName, FindingStanding, NewExceptionRequest,
};
use patchwarden_api::v1::fleet::{FindingQuery, FindingStateFilter};
use patchwarden_api::v1::operator::NewApiTokenRequest;
use patchwarden_api::v1::problem::ProblemCode;
use patchwarden_client::{ClientError, OperatorClient};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::exception::{Control, ControlKind, Justification};
use patchwarden_core::inventory::{Inventory, Manager, Package, PackageStatus};
use patchwarden_server::clock;
use patchwarden_store::{NewUser, Role};
use patchwarden_testkit::{TestServer, debian_facts};
use serde_json::json;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

fn pkg(name: &str, version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: Some("amd64".into()),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        epoch: None,
        module: None,
        status: PackageStatus::Installed,
    }
}

async fn user(server: &TestServer, hash: &str, name: &str, role: Role) -> OperatorClient {
    user_in(server, hash, name, role, "default").await
}

/// A user whose provider role (if it has one) covers `group`.
async fn user_in(
    server: &TestServer,
    hash: &str,
    name: &str,
    role: Role,
    group: &str,
) -> OperatorClient {
    let now = clock::now();
    server
        .store()
        .create_user(
            NewUser {
                id: Uuid::new_v4(),
                username: name.into(),
                password_hash: hash.into(),
                roles: [role].into(),
                groups: if role == Role::Provider {
                    [group.to_owned()].into()
                } else {
                    Default::default()
                },
                must_change_password: false,
                created_by: "test".into(),
            },
            now,
            AuditEntry::new(now, Actor::System("test".into()), "user.create", name),
        )
        .await
        .unwrap();
    // An API token: it outlives the moves of the clock below (a session would expire).
    let (session, _) = server.client.login(name, PASSWORD).await.unwrap();
    let token = session
        .create_api_token(&NewApiTokenRequest {
            name: "exceptions test".into(),
            roles: None,
            expires_in_days: Some(90),
        })
        .await
        .unwrap();
    server.client.operator(&token.secret)
}

/// Moves the server's clock `days` ahead of the real one (0: back to real time).
fn days_ahead(days: i64) {
    clock::set_seeding_offset(SignedDuration::from_hours(-24 * days));
}

fn problem(e: ClientError) -> (u16, ProblemCode, String) {
    match e {
        ClientError::Problem(p) => (p.status, p.code, p.detail.unwrap_or_default()),
        other => panic!("expected a problem document, got {other}"),
    }
}

fn request(host: Uuid, expires_in_days: i64) -> NewExceptionRequest {
    NewExceptionRequest {
        justification: Justification::PatchCausesInstability,
        explanation: "bash 5.2.15-3 breaks the SCADA vendor's login scripts; vendor case 7781"
            .into(),
        controls: vec![Control {
            kind: ControlKind::NetworkSegmentation,
            description: "OT VLAN 12, no route from the office LAN".into(),
        }],
        protected_data: false,
        expires_at: clock::now() + SignedDuration::from_hours(24 * expires_in_days),
        findings: vec![ExceptionFinding {
            host,
            advisory: "CVE-2099-35".into(),
            package: "bash".into(),
        }],
        hosts: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_exception_excepts_its_finding_until_it_expires() {
    let feeds = tempfile::tempdir().unwrap();
    // A critical advisory: High under the demo policy, due 30 days after detection.
    let record = json!({
        "schema_version": "1.6.0", "id": "ADV-1", "upstream": ["CVE-2099-35"],
        "published": "2025-06-01T00:00:00Z", "modified": "2025-06-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "bash"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.2.15-3"}]}]}]
    });
    std::fs::write(feeds.path().join("ADV-1.json"), record.to_string()).unwrap();
    let feed = feeds.path().to_str().unwrap().to_owned();
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/demo/demo-policy.toml");
    let server = TestServer::start_with(|c| {
        c.advisories.files = vec![format!("osv:{feed}")];
        c.policy.policies = vec![policy.display().to_string()];
    })
    .await;

    // Detected now: its finding is due in 30 days.
    let facts = debian_facts("scada-1", "5ca0a0a0a0a0a0a0a0a0a0a0a0a0a0a0");
    let (agent, _) = server.enroll(facts.clone()).await;
    let host = Uuid::parse_str(agent.host_id()).unwrap();
    let mut inv = Inventory {
        host: facts.clone(),
        packages: vec![pkg("bash", "5.2.15-2")],
        ..Inventory::default()
    };
    inv.canonicalize();
    agent
        .check_in(&CheckInRequest {
            seq: 1,
            facts: facts.clone(),
            packages: inv.packages_digest(),
            agent_version: "t".into(),
        })
        .await
        .unwrap();
    agent
        .upload_inventory(&InventoryUpload::Full { inventory: inv })
        .await
        .unwrap();

    let hash = patchwarden_server::secrets::hash_password(PASSWORD).unwrap();
    // Security may both request and approve: only the four-eyes rule stops alice.
    let alice = user(&server, &hash, "alice", Role::Security).await;
    let bob = user(&server, &hash, "bob", Role::Approver).await;
    let paula = user(&server, &hash, "paula", Role::Provider).await;
    let avery = user(&server, &hash, "avery", Role::Auditor).await;

    let open = FindingQuery::default();
    let page = alice.findings(&open).await.unwrap();
    assert_eq!(page.items.len(), 1, "{page:?}");
    assert_eq!(page.items[0].standing, Some(FindingStanding::OnTime));

    // Requested for 20 days: it expires 10 days before the finding is due.
    let e = alice.request_exception(&request(host, 20)).await.unwrap();
    assert!(e.number.starts_with("EXC-"), "{}", e.number);
    assert_eq!(e.state, ExceptionStateName::Requested);
    assert_eq!(e.requester, "alice");

    // Four eyes: the requester is refused with the rule's words, and nothing changes.
    let (status, code, detail) = problem(alice.approve_exception(&e.number).await.unwrap_err());
    assert_eq!((status, code), (409, ProblemCode::ExceptionRefused));
    assert_eq!(detail, "the requester cannot approve their own exception");
    // A provider and an auditor may not approve at all.
    for who in [&paula, &avery] {
        let (status, code, _) = problem(who.approve_exception(&e.number).await.unwrap_err());
        assert_eq!((status, code), (403, ProblemCode::Forbidden));
    }
    assert_eq!(
        avery.exception(&e.number).await.unwrap().state,
        ExceptionStateName::Requested
    );

    let approved = bob.approve_exception(&e.number).await.unwrap();
    assert_eq!(approved.state, ExceptionStateName::Approved);
    assert!(approved.in_force);
    assert_eq!(approved.decided_by.as_deref(), Some("bob"));

    // Excepted, listed under state=excepted with its exception.
    let excepted = FindingQuery {
        state: Some(FindingStateFilter::Excepted),
        ..FindingQuery::default()
    };
    let page = avery.findings(&excepted).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let f = &page.items[0];
    assert_eq!(f.standing, Some(FindingStanding::Excepted));
    assert_eq!(
        f.exception.as_ref().map(|x| x.number.as_str()),
        Some(e.number.as_str())
    );
    let detail = alice.host(host).await.unwrap();
    assert_eq!(detail.findings[0].standing, Some(FindingStanding::Excepted));

    // 25 days on, the exception has expired: the finding is back on its own clock, due in 5
    // days.
    days_ahead(25);
    let page = alice.findings(&open).await.unwrap();
    assert_eq!(page.items[0].standing, Some(FindingStanding::DueSoon));
    // 35 days on, its due date (never moved) has passed: breached.
    days_ahead(35);
    let page = alice.findings(&open).await.unwrap();
    assert_eq!(page.items[0].standing, Some(FindingStanding::Breached));
    assert!(page.items[0].exception.is_none());
    assert!(alice.findings(&excepted).await.unwrap().items.is_empty());
    let shown = avery.exception(&e.id.to_string()).await.unwrap();
    assert!(shown.expired && !shown.in_force);

    // A new exception in force now takes the finding out of "breached" again; revoking it
    // puts it back at once.
    let again = alice.request_exception(&request(host, 30)).await.unwrap();
    bob.approve_exception(&again.number).await.unwrap();
    let page = alice.findings(&open).await.unwrap();
    assert_eq!(page.items[0].standing, Some(FindingStanding::Excepted));
    let revoked = bob
        .revoke_exception(&again.number, "the vendor fixed the scripts")
        .await
        .unwrap();
    assert_eq!(revoked.state, ExceptionStateName::Revoked);
    let page = alice.findings(&open).await.unwrap();
    assert_eq!(page.items[0].standing, Some(FindingStanding::Breached));

    // Lists filter by state and host.
    days_ahead(0);
    let listed = avery
        .exceptions(&ExceptionQuery {
            state: Some(ExceptionStateName::Revoked),
            host: Some(host),
        })
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].number, again.number);

    // The rules refuse a request without a control (422, in the rules' words), and a term
    // past the longest allowed.
    let mut bad = request(host, 30);
    bad.controls.clear();
    let (status, code, detail) = problem(alice.request_exception(&bad).await.unwrap_err());
    assert_eq!((status, code), (422, ProblemCode::ExceptionRefused));
    assert!(detail.starts_with("no compensating control"), "{detail}");
    let (status, _, detail) = problem(
        alice
            .request_exception(&request(host, 400))
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 422);
    assert!(detail.contains("longest term allowed"), "{detail}");
    // An oversized body: 413 as a problem document.
    let mut huge = request(host, 30);
    huge.explanation = "x".repeat(300 * 1024);
    let (status, code, _) = problem(alice.request_exception(&huge).await.unwrap_err());
    assert_eq!((status, code), (413, ProblemCode::PayloadTooLarge));
    // A reason is required to reject.
    let third = alice.request_exception(&request(host, 30)).await.unwrap();
    let (status, _, detail) = problem(bob.reject_exception(&third.number, " ").await.unwrap_err());
    assert_eq!(status, 409);
    assert_eq!(detail, "the reason is empty");

    // Protected data: the data owner (not the requester) acknowledges before approval.
    let dana = user(&server, &hash, "dana", Role::Authoriser).await;
    let mut protected = request(host, 30);
    protected.protected_data = true;
    let p = alice.request_exception(&protected).await.unwrap();
    let (status, _, detail) = problem(bob.approve_exception(&p.number).await.unwrap_err());
    assert_eq!(status, 409);
    assert!(detail.contains("data owner acknowledges"), "{detail}");
    let (_, _, detail) = problem(alice.acknowledge_exception(&p.number).await.unwrap_err());
    assert_eq!(detail, "the requester cannot acknowledge as data owner");
    let acked = dana.acknowledge_exception(&p.number).await.unwrap();
    assert_eq!(
        acked
            .exception
            .data_owner_ack
            .as_ref()
            .map(|(w, _)| w.as_str()),
        Some("dana")
    );
    // An authoriser acknowledges but may not approve.
    let (status, _, _) = problem(dana.approve_exception(&p.number).await.unwrap_err());
    assert_eq!(status, 403);
    assert_eq!(
        bob.approve_exception(&p.number).await.unwrap().state,
        ExceptionStateName::Approved
    );

    // A provider of another group sees none of it and cannot name the host.
    let otto = user_in(&server, &hash, "otto", Role::Provider, "elsewhere").await;
    assert!(
        otto.exceptions(&ExceptionQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let (status, _, _) = problem(otto.exception(&p.number).await.unwrap_err());
    assert_eq!(status, 404);
    let (status, _, _) = problem(
        otto.request_exception(&request(host, 30))
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 404);
    // The host's own provider sees them.
    assert!(
        !paula
            .exceptions(&ExceptionQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Every change is in the audit chain.
    let actions: Vec<String> = server
        .store()
        .audit_events(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .filter(|a| a.starts_with("exception."))
        .collect();
    assert_eq!(
        actions,
        [
            "exception.request",
            "exception.approve",
            "exception.request",
            "exception.approve",
            "exception.revoke",
            "exception.request",
            "exception.request",
            "exception.acknowledge",
            "exception.approve"
        ]
    );
}
