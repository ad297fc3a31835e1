//! Notifications through a real server: a real webhook receiver on loopback checks every
//! signature with the configured secret (and that a changed byte fails), gets one delivery
//! refused with a 500 and then retried once — not duplicated; each event kind comes from a real
//! scenario (a change submitted and approved, a rollout the engine halts, findings past due,
//! due soon and Emergency, a window about to open, an exception about to end) and is queued
//! once across further sweeps, and again once when a second server shares the database (SQLite
//! always, PostgreSQL when `PATCHWARDEN_TEST_POSTGRES` names one); a standard change's rule
//! asks nobody for approval; mail goes through a real SMTP server (Python's aiosmtpd, storing
//! into a maildir) and is read back with Python's own mail parser; a relay that is down is
//! retried and given up with its error; no secret appears in any log line; and a malformed
//! `[notifications]` section is a clear configuration error.

mod operator_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use operator_support::{PASSWORD, Req, Server, Session};
use patchwarden_api::v1::agent::{
    CheckInRequest, EnrollRequest, EnrollmentSecret, InventoryUpload,
};
use patchwarden_api::v1::changes::ChangeView;
use patchwarden_client::{AgentKey, Client, Trust};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::exception::{
    Control, ControlKind, DEFAULT_MAX_TERM, ExceptionRequest, Justification,
};
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, OsInfo, Package, PackageStatus};
use patchwarden_core::policy::Class;
use patchwarden_server::admin::{self, TokenRequest};
use patchwarden_server::clock;
use patchwarden_server::notify::NotificationsConfig;
use patchwarden_server::notify::config::{EmailRoute, SmtpTls, WebhookConfig};
use patchwarden_store::exception::{ExceptionAction, ExceptionScope, FindingRef, NewException};
use patchwarden_store::notification::{DeliveryState, Notification, NotificationFilter};
use patchwarden_store::{Classification, CurrentFinding, HostPlacement, Role, Store};
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "a webhook secret for the tests";
const SMTP_PASSWORD: &str = "the relay's password, never logged";

/// Everything the process logs at every level, captured for the tests that look for secrets in
/// it. One subscriber per process, so every test installs it through this.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(buffer.clone());
        tracing_subscriber::fmt()
            .with_writer(writer)
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .init();
        buffer
    })
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}
const PUBLIC: &str = "https://patchwarden.example.org";

// ---------------------------------------------------------------------------------------------
// A webhook receiver: records every request; answers 500 to the first one, 200 after.

#[derive(Debug, Clone)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    status: u16,
}

#[derive(Debug, Clone, Default)]
struct Receiver {
    log: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        let r = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let r = r.clone();
                async move {
                    let n = r.count.fetch_add(1, Ordering::SeqCst);
                    let status = if n == 0 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let headers = headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_owned(),
                                v.to_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                    r.log.lock().unwrap().push(Received {
                        headers,
                        body: body.to_vec(),
                        status: status.as_u16(),
                    });
                    (status, "thanks")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (receiver, addr)
    }

    fn all(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// The payloads answered with 200, by event name.
    fn delivered(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|r| r.status == 200)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The world: a server, three operators, a host in group `web`, ring `wave-1`.

struct World {
    server: Server,
    officer: Session,
    approver: Session,
    authoriser: Session,
    host: Uuid,
}

fn notifications(tweak: impl FnOnce(&mut NotificationsConfig)) -> NotificationsConfig {
    let mut n = NotificationsConfig {
        poll_secs: 1,
        sweep_secs: 1,
        retry_base_secs: 1,
        retry_max_secs: 1,
        due_soon_days: 3,
        window_lead_minutes: 60,
        exception_lead_days: 7,
        ..NotificationsConfig::default()
    };
    tweak(&mut n);
    n
}

async fn world(n: NotificationsConfig) -> World {
    world_with(n, |_| {}).await
}

async fn world_with(
    n: NotificationsConfig,
    tweak: impl FnOnce(&mut patchwarden_server::Config),
) -> World {
    logs();
    let server = Server::start(|c| {
        c.public_url = PUBLIC.into();
        c.notifications = n;
        tweak(c);
    })
    .await;
    server.user("olive", &[Role::Officer], &[]).await;
    server.user("amos", &[Role::Approver], &[]).await;
    server.user("dora", &[Role::Authoriser], &[]).await;
    let officer = server.login("olive", PASSWORD).await;
    let approver = server.login("amos", PASSWORD).await;
    let authoriser = server.login("dora", PASSWORD).await;
    let host = enroll(&server, "web-1").await;
    World {
        server,
        officer,
        approver,
        authoriser,
        host,
    }
}

fn package(name: &str, version: &str) -> Package {
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

fn installed() -> Vec<Package> {
    vec![
        package("openssl", "3.0.11-1~deb12u2"),
        package("bash", "5.2.15-2+b7"),
        package("curl", "7.88.1-10+deb12u5"),
    ]
}

/// Enrolls a host through the agent protocol, places it in `web`/`wave-1`, and uploads its
/// inventory.
async fn enroll(server: &Server, name: &str) -> Uuid {
    let store = server.store();
    let (_, secret) = admin::create_enrollment_token(
        store.as_ref(),
        TokenRequest {
            group: "web".into(),
            valid_for: SignedDuration::from_hours(1),
            max_uses: 1,
            note: None,
        },
        Actor::Operator("test".into()),
        clock::now(),
    )
    .await
    .unwrap();
    let client = Client::new(&server.url, &Trust::PlainHttp).unwrap();
    let key = AgentKey::generate().unwrap();
    let facts = HostFacts {
        hostname: name.into(),
        os: OsInfo {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
            id_like: Vec::new(),
            ecosystem: Some("Debian:12".into()),
        },
        machine_id: Some(format!("{:032x}", Uuid::new_v4().as_u128())),
        ..HostFacts::default()
    };
    let response = client
        .enroll(
            &key,
            &EnrollRequest {
                token: EnrollmentSecret(secret),
                public_key: key.public_hex(),
                facts: facts.clone(),
                replace: false,
                agent_version: "test".into(),
            },
        )
        .await
        .unwrap();
    let id = Uuid::parse_str(&response.host_id).unwrap();
    let now = clock::now();
    store
        .set_host_placement(
            id,
            HostPlacement {
                group: "web".into(),
                ring: Some("wave-1".into()),
                labels: BTreeMap::new(),
            },
            now,
            AuditEntry::new(
                now,
                Actor::Operator("test".into()),
                "host.place",
                format!("host:{id}"),
            ),
        )
        .await
        .unwrap();
    let agent = client.agent(&response.host_id, key);
    let mut inv = Inventory {
        host: facts,
        packages: installed(),
        ..Inventory::default()
    };
    inv.canonicalize();
    let answer = agent
        .check_in(&CheckInRequest {
            seq: 1,
            facts: inv.host.clone(),
            packages: inv.packages_digest(),
            agent_version: "test".into(),
        })
        .await
        .unwrap();
    if answer.inventory != patchwarden_api::v1::agent::InventoryWanted::Nothing {
        agent
            .upload_inventory(&InventoryUpload::Full { inventory: inv })
            .await
            .unwrap();
    }
    id
}

impl World {
    fn store(&self) -> Arc<dyn Store> {
        self.server.store()
    }

    async fn act(&self, who: &Session, number: &str, action: &str) -> ChangeView {
        let a =
            self.server
                .send(who.apply(
                    Req::post(&format!("/api/v1/changes/{number}/{action}")).json(&json!({})),
                ))
                .await;
        assert_eq!(a.status, 200, "{action} {number}: {}", a.text());
        a.json()
    }

    async fn window(&self, name: &str, spec: Value) {
        let a = self
            .server
            .send(
                self.officer
                    .apply(Req::new("PUT", &format!("/api/v1/calendar/{name}")).json(&spec)),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }

    async fn create(&self, title: &str, testing: Value) -> String {
        let a = self
            .server
            .send(
                self.officer
                    .apply(Req::post("/api/v1/changes").json(&json!({
                        "kind": "normal",
                        "title": title,
                        "justification": "CVE-2024-5535 on the web tier",
                        "risk": "medium",
                        "priority": "high",
                        "testing": testing,
                        "rollback_plan": "reinstall the previous openssl from the agent's cache",
                        "targets": {"groups": ["web"]},
                        "patches": [{"package": "openssl", "version": "3.0.15-1~deb12u1",
                                     "ecosystem": "Debian:12"}],
                    }))),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text());
        a.json::<ChangeView>().number
    }

    /// Opens findings on the host directly in the store, as a sync after an advisory import
    /// would: past due (High), due in a day (Medium) and a new Emergency due in two days.
    async fn findings(&self) -> BTreeMap<&'static str, i64> {
        let now = clock::now();
        let p = installed();
        let f = |pkg: &Package, vuln: &str, class: Class, due: SignedDuration| CurrentFinding {
            body: None,
            finding: patchwarden_store::conformance::fixtures::finding(pkg, vuln, None).into(),
            classification: Classification {
                class: Some(class),
                due_at: Some(now.checked_add(due).unwrap()),
                policy: Some("seed-default".into()),
                rule: Some("test".into()),
            },
        };
        let current = [
            f(
                &p[0],
                "CVE-2026-1001",
                Class::High,
                SignedDuration::from_hours(-24),
            ),
            f(
                &p[1],
                "CVE-2026-1002",
                Class::Medium,
                SignedDuration::from_hours(24),
            ),
            f(
                &p[2],
                "CVE-2026-1003",
                Class::Emergency,
                SignedDuration::from_hours(48),
            ),
        ];
        self.store()
            .sync_findings(
                self.host,
                &current,
                &p,
                now,
                AuditEntry::new(
                    now,
                    Actor::System("matcher".into()),
                    "findings.sync",
                    format!("host:{}", self.host),
                ),
            )
            .await
            .unwrap();
        let open = self
            .store()
            .list_findings(&patchwarden_store::FindingFilter {
                host: Some(self.host),
                ..Default::default()
            })
            .await
            .unwrap();
        let id = |v: &str| {
            open.iter()
                .find(|f| f.finding.vulnerability == v)
                .unwrap()
                .id
        };
        BTreeMap::from([
            ("breached", id("CVE-2026-1001")),
            ("due_soon", id("CVE-2026-1002")),
            ("emergency", id("CVE-2026-1003")),
        ])
    }

    /// An approved exception for another finding of the host, ending in two days.
    async fn expiring_exception(&self) -> String {
        let now = clock::now();
        let store = self.store();
        let request = ExceptionRequest {
            justification: Justification::PatchCausesInstability,
            explanation: "the vendor's fix breaks the SAN driver; case 4411".into(),
            controls: vec![Control {
                kind: ControlKind::NetworkSegmentation,
                description: "reachable only from the app tier".into(),
            }],
            protected_data: false,
            requester: "olive".into(),
            requested_at: now,
            expires_at: now.checked_add(SignedDuration::from_hours(48)).unwrap(),
        };
        let id = Uuid::new_v4();
        let created = store
            .create_exception(
                NewException {
                    id,
                    scope: ExceptionScope {
                        findings: vec![FindingRef {
                            host: self.host,
                            advisory: "CVE-2026-1999".into(),
                            package: "bash".into(),
                        }],
                        hosts: Vec::new(),
                    },
                    exception: request.check(DEFAULT_MAX_TERM).unwrap(),
                },
                now,
                AuditEntry::new(
                    now,
                    Actor::Operator("olive".into()),
                    "exception.request",
                    "",
                ),
            )
            .await
            .unwrap();
        store
            .change_exception(
                id,
                "amos",
                ExceptionAction::Approve,
                now,
                AuditEntry::new(now, Actor::Operator("amos".into()), "exception.approve", ""),
            )
            .await
            .unwrap();
        created.number
    }

    fn sweeps(&self) -> u64 {
        self.server
            .running()
            .state
            .metrics
            .notification_sweeps
            .get()
    }

    async fn outbox(&self) -> Vec<Notification> {
        self.store()
            .list_notifications(&NotificationFilter::default())
            .await
            .unwrap()
    }

    /// Waits (polling, up to a minute) until `done` holds; panics saying what never happened.
    async fn until<T>(&self, what: &str, mut done: impl FnMut() -> Option<T>) -> T {
        for _ in 0..600 {
            if let Some(t) = done() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what} never happened; outbox: {:#?}", self.outbox().await);
    }
}

/// The window spec of a daily half-hour window opening `minutes` from now (UTC).
fn window_in(minutes: i64) -> (Value, Timestamp) {
    let start = clock::now()
        .checked_add(SignedDuration::from_mins(minutes))
        .unwrap();
    let zoned = start.to_zoned(TimeZone::UTC);
    let text = zoned.strftime("%Y-%m-%dT%H:%M").to_string();
    let exact: Timestamp = format!("{text}:00Z").parse().unwrap();
    (
        json!({"kind": "window", "rrule": "FREQ=DAILY", "start": text, "time_zone": "UTC",
               "duration_minutes": 30}),
        exact,
    )
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers.get(name).map_or_else(
        || panic!("no {name} header in {:?}", r.headers),
        String::as_str,
    )
}

fn event_of(v: &Value) -> &str {
    v["event"].as_str().unwrap()
}

/// The delivered payloads of `event` whose `data[key]` is `value`.
fn matching<'a>(got: &'a [Value], event: &str, key: &str, value: &Value) -> Vec<&'a Value> {
    got.iter()
        .filter(|v| event_of(v) == event && &v["data"][key] == value)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_a_signed_webhook_once_and_a_refused_delivery_is_retried_once() {
    // SQLite in the server's data directory.
    webhook_story(String::new()).await;
}

/// The same story on PostgreSQL (two servers sharing one database is its usual set-up), on a
/// fresh schema, whenever `PATCHWARDEN_TEST_POSTGRES` names a database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_every_event_reaches_a_signed_webhook_once() {
    const VAR: &str = "PATCHWARDEN_TEST_POSTGRES";
    let Ok(url) = std::env::var(VAR) else {
        eprintln!(
            "skipped: notifications on PostgreSQL need {VAR} set to a database URL; CI sets \
             postgres://postgres@127.0.0.1:5432/test"
        );
        return;
    };
    let schema = format!("pw_notify_{}", Uuid::new_v4().simple());
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{VAR} is set but PostgreSQL cannot be reached: {e}"));
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let outcome = tokio::spawn(webhook_story(format!(
        "{url}{sep}options=-c%20search_path%3D{schema}"
    )))
    .await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn webhook_story(database_url: String) {
    let (receiver, addr) = Receiver::start().await;
    let db = database_url.clone();
    let w = world_with(
        notifications(|n| {
            n.webhooks = vec![WebhookConfig {
                name: "receiver".into(),
                url: format!("http://{addr}/hook"),
                secret: SECRET.into(),
                events: Vec::new(),
            }];
        }),
        |c| c.database_url = db,
    )
    .await;
    let backend = if database_url.is_empty() {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(w.store().backend(), backend);

    // A window open all day (for the rollout below) and one opening in 30 minutes.
    w.window(
        "always",
        json!({"kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T00:00",
               "time_zone": "UTC", "duration_minutes": 1440}),
    )
    .await;
    let (soon_spec, soon_start) = window_in(30);
    w.window("soon", soon_spec).await;

    // Approval needed: submitted (approvers), then approved (authorisers).
    let approval = w
        .create("OpenSSL security update", json!({"required": "required"}))
        .await;
    w.act(&w.officer, &approval, "submit").await;
    w.act(&w.approver, &approval, "approve").await;

    // Rollout halted: a change that must test first, on hosts none of which is in the test
    // ring — the real rollout engine halts it when its window opens.
    let halted = w
        .create(
            "Halts for want of a test ring",
            json!({"required": "required"}),
        )
        .await;
    w.act(&w.officer, &halted, "submit").await;
    w.act(&w.approver, &halted, "approve").await;
    w.act(&w.authoriser, &halted, "authorise").await;
    w.act(&w.officer, &halted, "schedule").await;

    // Findings: breached, due soon, a new Emergency.
    let findings = w.findings().await;
    // An exception ending in two days.
    let exception = w.expiring_exception().await;

    let wanted: BTreeSet<&str> = [
        "approval_needed",
        "rollout_halted",
        "finding_breached",
        "finding_due_soon",
        "emergency_finding",
        "window_starting",
        "exception_expiring",
    ]
    .into();
    let got = w
        .until("a delivery of every event kind", || {
            let got = receiver.delivered();
            let kinds: BTreeSet<&str> = got.iter().map(event_of).collect();
            let settled = futures_now(w.outbox())
                .iter()
                .all(|n| n.state != DeliveryState::Queued);
            (wanted.iter().all(|k| kinds.contains(k))
                && matching(&got, "approval_needed", "change", &json!(approval)).len() == 2
                && settled)
                .then_some(got)
        })
        .await;

    // Exactly once across further sweeps: let two more sweeps (and polls) run.
    let sweeps = w.sweeps();
    w.until("two more sweeps", || {
        (w.sweeps() >= sweeps + 2).then_some(())
    })
    .await;
    // And let anything those sweeps might have queued be delivered.
    w.until("an empty queue", || {
        let outbox = futures_now(w.outbox());
        outbox
            .iter()
            .all(|n| n.state != DeliveryState::Queued)
            .then_some(())
    })
    .await;
    let got_after = receiver.delivered();
    assert_eq!(
        got_after.len(),
        got.len(),
        "later sweeps delivered more: {:#?}",
        &got_after[got.len()..]
    );

    // Every event, once, with what a person needs.
    let approvals = matching(&got, "approval_needed", "change", &json!(approval));
    let needs: BTreeSet<&str> = approvals
        .iter()
        .map(|v| v["data"]["needs"].as_str().unwrap())
        .collect();
    assert_eq!(needs, BTreeSet::from(["approver", "authoriser"]));
    for a in &approvals {
        assert_eq!(a["link"], json!(format!("{PUBLIC}/changes/{approval}")));
        assert!(
            a["summary"]
                .as_str()
                .unwrap()
                .contains("OpenSSL security update")
        );
    }
    let halts = matching(&got, "rollout_halted", "change", &json!(halted));
    assert_eq!(halts.len(), 1, "{halts:#?}");
    assert!(
        halts[0]["summary"].as_str().unwrap().contains("test ring"),
        "{}",
        halts[0]["summary"]
    );
    for (event, which) in [
        ("finding_breached", "breached"),
        ("finding_due_soon", "due_soon"),
        ("emergency_finding", "emergency"),
    ] {
        let id = json!(findings[which]);
        let these = matching(&got, event, "finding", &id);
        assert_eq!(these.len(), 1, "{event}: {these:#?}");
        assert_eq!(these[0]["data"]["hostname"], json!("web-1"));
        assert!(
            these[0]["link"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{PUBLIC}/findings?host={}", w.host)),
            "{}",
            these[0]["link"]
        );
    }
    // The breached one is not also due soon; the Emergency one (due in two days) is.
    assert!(
        matching(
            &got,
            "finding_due_soon",
            "finding",
            &json!(findings["breached"])
        )
        .is_empty()
    );
    assert_eq!(
        matching(
            &got,
            "finding_due_soon",
            "finding",
            &json!(findings["emergency"])
        )
        .len(),
        1
    );
    let windows = matching(&got, "window_starting", "window", &json!("soon"));
    assert_eq!(windows.len(), 1, "{windows:#?}");
    assert_eq!(windows[0]["data"]["start"], json!(soon_start));
    // The window open now is not "starting": it started.
    assert!(matching(&got, "window_starting", "window", &json!("always")).is_empty());
    let exceptions = matching(&got, "exception_expiring", "exception", &json!(exception));
    assert_eq!(exceptions.len(), 1, "{exceptions:#?}");

    // The outbox: one row per event; the first delivery took two attempts, every other one.
    let outbox = w.outbox().await;
    let keys: BTreeSet<&str> = outbox.iter().map(|n| n.dedup_key.as_str()).collect();
    assert_eq!(keys.len(), outbox.len(), "a dedup key queued twice");
    assert!(keys.contains(format!("finding:{}:breached", findings["breached"]).as_str()));
    assert!(outbox.iter().all(|n| n.state == DeliveryState::Delivered));

    // Signatures: every request verifies with the secret; a changed byte does not.
    let all = receiver.all();
    assert_eq!(
        all.len(),
        got_after.len() + 1,
        "one refused request, the rest delivered once"
    );
    for r in &all {
        let ts: i64 = header(r, "x-patchwarden-timestamp").parse().unwrap();
        let sig = header(r, "x-patchwarden-signature");
        assert!(
            patchwarden_server::notify::verify(SECRET.as_bytes(), ts, &r.body, sig),
            "the signature of {} does not verify",
            String::from_utf8_lossy(&r.body)
        );
        let mut tampered = r.body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 1;
        assert!(!patchwarden_server::notify::verify(
            SECRET.as_bytes(),
            ts,
            &tampered,
            sig
        ));
        assert!(!patchwarden_server::notify::verify(
            b"not the secret!!",
            ts,
            &r.body,
            sig
        ));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(header(r, "x-patchwarden-event"), event_of(&body));
        assert_eq!(header(r, "content-type"), "application/json");
    }
    // The refused one came again, under the same delivery id, and was then delivered once.
    let first = &all[0];
    assert_eq!(first.status, 500);
    let id = header(first, "x-patchwarden-delivery");
    let same: Vec<&Received> = all
        .iter()
        .filter(|r| header(r, "x-patchwarden-delivery") == id)
        .collect();
    assert_eq!(same.len(), 2);
    assert_eq!(same[1].status, 200);
    assert_eq!(same[0].body, same[1].body);
    let row = outbox
        .iter()
        .find(|n| n.id.to_string() == id)
        .expect("the refused delivery's row");
    assert_eq!(row.attempts, 2);
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("500"),
        "{:?}",
        row.last_error
    );
    let ids: Vec<&str> = all
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| header(r, "x-patchwarden-delivery"))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "a delivery arrived twice");

    // The secret signed every request and appears in no log line.
    let log = logged();
    assert!(log.contains("notification delivered"), "the capture works");
    assert!(!log.contains(SECRET));

    // The same check written in Python, as docs/notifications.md shows a receiver doing it.
    python_verifies(first);

    // The metrics count by channel and outcome.
    let m = w.server.running().state.metrics.render();
    assert!(
        m.contains(&format!(
            "patchwarden_notifications_total{{channel=\"webhook\",outcome=\"delivered\"}} {}",
            unique.len()
        )),
        "{m}"
    );
    assert!(
        m.contains("patchwarden_notifications_total{channel=\"webhook\",outcome=\"retried\"} 1"),
        "{m}"
    );

    // A second server on the same database, with the same settings: it follows the same audit
    // chain and sweeps the same findings (with nothing remembered in memory), and both claim
    // deliveries. What was notified is not queued again; a new event goes out once.
    let mut config = patchwarden_server::Config {
        data_dir: w.server.dir.path().to_owned(),
        database_url,
        public_url: PUBLIC.into(),
        ..patchwarden_server::Config::default()
    };
    config.listen.api = "127.0.0.1:0".into();
    config.listen.metrics = String::new();
    config.tls.mode = patchwarden_server::config::TlsMode::PlainHttp;
    config.notifications = notifications(|n| {
        n.webhooks = vec![WebhookConfig {
            name: "receiver".into(),
            url: format!("http://{addr}/hook"),
            secret: SECRET.into(),
            events: Vec::new(),
        }];
    });
    let second = patchwarden_server::start(&config).await.unwrap();
    let rows_before = w.outbox().await.len();
    let delivered_before = receiver.delivered().len();
    let third = w
        .create("Both servers see this", json!({"required": "required"}))
        .await;
    w.act(&w.officer, &third, "submit").await;
    let second_sweeps = || second.state.metrics.notification_sweeps.get();
    let sweeps = second_sweeps();
    w.until(
        "two sweeps by the second server and the new change delivered",
        || {
            let new = receiver.delivered();
            (second_sweeps() >= sweeps + 2
                && !matching(&new, "approval_needed", "change", &json!(third)).is_empty()
                && futures_now(w.outbox())
                    .iter()
                    .all(|n| n.state != DeliveryState::Queued))
            .then_some(())
        },
    )
    .await;
    // One more poll of each, for anything late.
    let polls = w.sweeps();
    w.until("another sweep", || (w.sweeps() > polls).then_some(()))
        .await;
    let outbox = w.outbox().await;
    assert_eq!(outbox.len(), rows_before + 1, "{outbox:#?}");
    let after = receiver.delivered();
    assert_eq!(
        after.len(),
        delivered_before + 1,
        "{:#?}",
        &after[delivered_before..]
    );
    assert_eq!(
        matching(&after, "approval_needed", "change", &json!(third)).len(),
        1
    );
    // The second server stops gracefully, its notifier with it.
    second.shutdown(Duration::from_secs(5)).await;
}

/// Polls a store future to completion from a synchronous closure (the waiting loop's checks
/// are closures).
fn futures_now<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Verifies `r`'s signature with the Python receiver of docs/notifications.md, when python3 is
/// here (it is one of the tools the suite needs; see `scripts/install-test-deps`).
fn python_verifies(r: &Received) {
    let Some(python) = tool("python3", &["-c", "import hmac"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, &r.body).unwrap();
    let script = r#"
import hashlib, hmac, sys
secret, timestamp, signature, path = sys.argv[1:5]
body = open(path, "rb").read()
expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
ok = hmac.compare_digest(expected, signature)
tampered = hmac.compare_digest(
    "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body + b" ",
                         hashlib.sha256).hexdigest(), signature)
print("ok" if ok and not tampered else "bad")
"#;
    let out = std::process::Command::new(python)
        .args([
            "-c",
            script,
            SECRET,
            header(r, "x-patchwarden-timestamp"),
            header(r, "x-patchwarden-signature"),
        ])
        .arg(&body)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `name` when it runs with `args`; otherwise fails under `PATCHWARDEN_REQUIRE_TOOLS`, or says
/// what is skipped.
fn tool(name: &str, args: &[&str]) -> Option<PathBuf> {
    let ok = std::process::Command::new(name)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(PathBuf::from(name));
    }
    let what = format!("`{name} {}` does not run", args.join(" "));
    if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
        panic!(
            "{what}, and PATCHWARDEN_REQUIRE_TOOLS is set: install python3 and aiosmtpd \
             (scripts/install-test-deps: python3-aiosmtpd)"
        );
    }
    eprintln!("SKIPPED (part of) this test: {what}");
    None
}

// ---------------------------------------------------------------------------------------------
// Mail through a real SMTP server.

/// `python3 -m aiosmtpd` storing every message into a maildir, stopped when dropped.
struct Smtp {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start() -> Option<Smtp> {
        let python = tool("python3", &["-c", "import aiosmtpd, mailbox, email"])?;
        // A free port: bound, noted, released for the server to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let smtp = Smtp {
            child,
            port,
            maildir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(smtp);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("aiosmtpd did not listen on 127.0.0.1:{port}");
    }

    /// Every stored message, read with Python's own mail parser: To, Subject, plain body.
    fn messages(&self) -> Vec<Value> {
        let dir = self.maildir.path().join("mail");
        if !dir.join("new").is_dir() {
            return Vec::new();
        }
        let script = r#"
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = []
for key in box.iterkeys():
    with box.get_file(key) as f:
        msg = BytesParser(policy=policy.default).parse(f)
    out.append({"to": [str(a.addr_spec) for a in msg["to"].addresses],
                "from": str(msg["from"]), "subject": str(msg["subject"]),
                "body": msg.get_body(preferencelist=("plain",)).get_content()})
print(json.dumps(out))
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_reaches_the_right_people_through_a_real_smtp_server() {
    let Some(smtp) = Smtp::start() else { return };
    let route = |to: &[&str], events: &[&str], roles: &[&str]| EmailRoute {
        name: String::new(),
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        events: events.iter().map(|s| (*s).to_owned()).collect(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
    };
    let port = smtp.port;
    let w = world(notifications(|n| {
        n.smtp.host = "127.0.0.1".into();
        n.smtp.port = port;
        n.smtp.tls = SmtpTls::None;
        n.smtp.from = "Patchwarden <patchwarden@example.org>".into();
        n.email = vec![
            route(
                &["cab@example.org", "change-board@example.org"],
                &["approval_needed"],
                &["approver"],
            ),
            route(
                &["directors@example.org"],
                &["approval_needed"],
                &["authoriser"],
            ),
            route(&["security@example.org"], &["finding_breached"], &[]),
        ];
    }))
    .await;
    let number = w
        .create("OpenSSL security update", json!({"required": "required"}))
        .await;
    w.act(&w.officer, &number, "submit").await;
    w.act(&w.approver, &number, "approve").await;
    let findings = w.findings().await;

    let mails = w
        .until("three mails", || {
            let m = smtp.messages();
            (m.len() >= 3).then_some(m)
        })
        .await;
    let sweeps = w.sweeps();
    w.until("two more sweeps", || {
        (w.sweeps() >= sweeps + 2).then_some(())
    })
    .await;
    let later = smtp.messages();
    assert_eq!(later.len(), 3, "{later:#?}");
    let to = |addr: &str| -> Vec<&Value> {
        mails
            .iter()
            .filter(|m| m["to"].as_array().unwrap().contains(&json!(addr)))
            .collect()
    };

    let cab = to("cab@example.org");
    assert_eq!(cab.len(), 1, "{mails:#?}");
    assert_eq!(
        cab[0]["to"],
        json!(["cab@example.org", "change-board@example.org"])
    );
    assert_eq!(
        cab[0]["from"],
        json!("Patchwarden <patchwarden@example.org>")
    );
    assert_eq!(
        cab[0]["subject"],
        json!(format!(
            "[Patchwarden] Approval needed: {number} OpenSSL security update"
        ))
    );
    let body = cab[0]["body"].as_str().unwrap();
    for needle in [
        "was submitted by olive and waits for an approver's decision",
        "openssl 3.0.15-1~deb12u1",
        &format!("{PUBLIC}/changes/{number}"),
    ] {
        assert!(body.contains(needle), "{needle:?} not in:\n{body}");
    }

    let directors = to("directors@example.org");
    assert_eq!(directors.len(), 1, "{mails:#?}");
    assert_eq!(
        directors[0]["subject"],
        json!(format!(
            "[Patchwarden] Authorisation needed: {number} OpenSSL security update"
        ))
    );
    assert!(
        directors[0]["body"]
            .as_str()
            .unwrap()
            .contains("waits for an authoriser's decision")
    );

    let security = to("security@example.org");
    assert_eq!(security.len(), 1, "{mails:#?}");
    assert_eq!(
        security[0]["subject"],
        json!("[Patchwarden] Finding past its due date: CVE-2026-1001 on web-1")
    );
    let body = security[0]["body"].as_str().unwrap();
    for needle in [
        "CVE-2026-1001 in openssl 3.0.11-1~deb12u2 on host web-1 (group web)",
        "Class: high. Due: ",
        &format!(
            "{PUBLIC}/findings?host={}&vulnerability=CVE-2026-1001",
            w.host
        ),
        &format!("finding: {}", findings["breached"]),
    ] {
        assert!(body.contains(needle), "{needle:?} not in:\n{body}");
    }

    let m = w.server.running().state.metrics.render();
    assert!(
        m.contains("patchwarden_notifications_total{channel=\"email\",outcome=\"delivered\"} 3"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_relay_that_is_down_is_retried_then_given_up_with_its_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = world(notifications(|n| {
        n.max_attempts = 2;
        n.timeout_secs = 2;
        n.smtp.host = "127.0.0.1".into();
        n.smtp.port = port;
        n.smtp.tls = SmtpTls::None;
        n.smtp.from = "patchwarden@example.org".into();
        n.smtp.username = "patchwarden".into();
        n.smtp.password = SMTP_PASSWORD.into();
        n.email = vec![EmailRoute {
            name: "board".into(),
            to: vec!["cab@example.org".into()],
            events: vec!["approval_needed".into()],
            roles: Vec::new(),
        }];
    }))
    .await;
    let number = w
        .create("Goes nowhere", json!({"required": "required"}))
        .await;
    w.act(&w.officer, &number, "submit").await;
    let failed = w
        .until("the delivery given up", || {
            let outbox = futures_now(w.outbox());
            outbox
                .into_iter()
                .find(|n| n.state == DeliveryState::Failed)
        })
        .await;
    assert_eq!(failed.destination, "email:board");
    assert_eq!(failed.attempts, 2);
    let error = failed.last_error.unwrap();
    assert!(error.starts_with("after 2 attempts: SMTP"), "{error}");
    let log = logged();
    assert!(log.contains("notification given up"), "the capture works");
    assert!(!log.contains(SMTP_PASSWORD));
    assert!(!error.contains(SMTP_PASSWORD));
}

// ---------------------------------------------------------------------------------------------
// Configuration.

fn load(toml: &str) -> Result<patchwarden_server::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml).unwrap();
    patchwarden_server::Config::load(Some(&path), Vec::new())
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
}

#[test]
fn malformed_notification_settings_are_clear_configuration_errors() {
    let hook = |url: &str, events: &str| {
        format!(
            "[[notifications.webhooks]]\nurl = {url:?}\nsecret = \"0123456789abcdef0123\"\n\
             events = {events}\n"
        )
    };
    let cases = [
        (hook("not a url", "[]"), "webhooks[0].url \"not a url\""),
        (
            hook("ftp://example.org/x", "[]"),
            "is not an https:// or http:// URL",
        ),
        (
            hook("https://example.org/x", "[\"finding_breeched\"]"),
            "webhooks[0].events: \"finding_breeched\" is not an event (one of: emergency_finding",
        ),
        (
            "[[notifications.webhooks]]\nurl = \"https://example.org/x\"\nsecret = \"short\"\n"
                .to_owned(),
            "webhooks[0].secret must be at least 16 characters",
        ),
        (
            "[[notifications.email]]\nto = [\"a@example.org\"]\n".to_owned(),
            "mail routes are configured but smtp.host is empty",
        ),
        (
            "[notifications.smtp]\nhost = \"mail\"\nfrom = \"pw@example.org\"\n\
             [[notifications.email]]\nto = [\"not an address\"]\n"
                .to_owned(),
            "email[0].to: \"not an address\" is not a mail address",
        ),
        (
            "[notifications.smtp]\nhost = \"mail\"\nfrom = \"pw@example.org\"\n\
             [[notifications.email]]\nto = [\"a@example.org\"]\nevents = [\"everything\"]\n"
                .to_owned(),
            "email[0].events: \"everything\" is not an event",
        ),
        (
            "[notifications.smtp]\nhost = \"mail\"\ntls = \"ssl\"\n".to_owned(),
            "unknown variant `ssl`",
        ),
        (
            "[notifications]\nsweep_every = 5\n".to_owned(),
            "unknown field `sweep_every`",
        ),
        (
            "[notifications]\npoll_secs = 0\n".to_owned(),
            "poll_secs must be at least 1",
        ),
    ];
    for (toml, expected) in cases {
        let err = load(&toml).expect_err(&toml);
        assert!(
            err.contains(expected),
            "{toml}\n→ {err}\n(wanted {expected:?})"
        );
    }

    // A good section loads, and its secrets stay out of the Debug form.
    let good = format!(
        "{}[notifications.smtp]\nhost = \"mail\"\nusername = \"pw\"\npassword = \"smtp-password-xyz\"\n\
         from = \"Patchwarden <pw@example.org>\"\n[[notifications.email]]\nto = [\"a@example.org\"]\n\
         events = [\"approval_needed\"]\nroles = [\"approver\"]\n",
        hook("https://hooks.example.org/pw", "[\"rollout_halted\"]")
    );
    let config = load(&good).unwrap();
    assert_eq!(config.notifications.webhooks.len(), 1);
    // The relay's credentials may come from the environment instead.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        good.replace("password = \"smtp-password-xyz\"\n", ""),
    )
    .unwrap();
    let (from_env, _) = patchwarden_server::Config::load(
        Some(&path),
        vec![(
            "PATCHWARDEN_NOTIFICATIONS_SMTP_PASSWORD".to_owned(),
            "smtp-password-from-env".to_owned(),
        )],
    )
    .unwrap();
    assert_eq!(
        from_env.notifications.smtp.password,
        "smtp-password-from-env"
    );
    assert!(!format!("{from_env:?}").contains("smtp-password-from-env"));
    let debug = format!("{config:?}");
    assert!(!debug.contains("0123456789abcdef0123"), "{debug}");
    assert!(!debug.contains("smtp-password-xyz"), "{debug}");
    assert!(debug.contains("<hidden>"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_change_raised_by_its_rule_asks_nobody_for_approval() {
    let (receiver, addr) = Receiver::start().await;
    let w = world_with(
        notifications(|n| {
            n.webhooks = vec![WebhookConfig {
                name: String::new(),
                url: format!("http://{addr}/hook"),
                secret: SECRET.into(),
                events: vec!["approval_needed".into()],
            }];
        }),
        |c| {
            c.changes.standard_every_secs = 1;
            c.changes.standard = vec![patchwarden_server::changes::standard::StandardRule {
                name: "web-curl".into(),
                groups: vec!["web".into()],
                packages: vec!["curl".into()],
                max_criticality: "high".into(),
                testing: false,
            }];
        },
    )
    .await;
    w.window(
        "always",
        json!({"kind": "window", "rrule": "FREQ=DAILY", "start": "2026-01-01T00:00",
               "time_zone": "UTC", "duration_minutes": 1440}),
    )
    .await;
    // A finding of curl with a fixed version: the rule raises, submits, approves, authorises
    // and schedules a change for it.
    let now = clock::now();
    let p = installed();
    let fixed = package("curl", "7.88.1-10+deb12u8");
    w.store()
        .sync_findings(
            w.host,
            &[CurrentFinding {
                body: None,
                finding: patchwarden_store::conformance::fixtures::finding(
                    &p[2],
                    "CVE-2026-2001",
                    Some(&fixed),
                )
                .into(),
                classification: Classification {
                    class: Some(Class::Medium),
                    due_at: Some(
                        now.checked_add(SignedDuration::from_hours(24 * 30))
                            .unwrap(),
                    ),
                    policy: Some("seed-default".into()),
                    rule: Some("test".into()),
                },
            }],
            &p,
            now,
            AuditEntry::new(
                now,
                Actor::System("matcher".into()),
                "findings.sync",
                format!("host:{}", w.host),
            ),
        )
        .await
        .unwrap();
    let store = w.store();
    let by_rule = w
        .until("the rule's change, authorised", || {
            futures_now(store.list_changes(&Default::default()))
                .unwrap()
                .into_iter()
                .find(|c| {
                    c.requester == "rule:web-curl"
                        && !matches!(c.state.as_str(), "draft" | "submitted" | "approved")
                })
        })
        .await;
    // A person's change after it, as the control: its notice comes after the rule's events in
    // the audit chain, so once it arrives the rule's events were read.
    let number = w
        .create("A person's change", json!({"required": "required"}))
        .await;
    w.act(&w.officer, &number, "submit").await;
    let got = w
        .until("the person's change notified", || {
            let got = receiver.delivered();
            (!matching(&got, "approval_needed", "change", &json!(number)).is_empty()).then_some(got)
        })
        .await;
    assert!(
        matching(&got, "approval_needed", "change", &json!(by_rule.number)).is_empty(),
        "{got:#?}"
    );
    let outbox = w.outbox().await;
    assert!(
        outbox.iter().all(|n| !n
            .dedup_key
            .starts_with(&format!("change:{}:", by_rule.number))),
        "{outbox:#?}"
    );
}
