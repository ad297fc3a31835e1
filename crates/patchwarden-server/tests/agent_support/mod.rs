//! Simulated hosts for the server's tests of changes and what follows from them (reports, the
//! status page): each a real enrolled agent identity speaking the real signed protocol, with
//! its facts, the openssl version it runs, bash, and a security update its repository offers
//! for bash. What a host reports for a job stands for what the privileged executor did (its
//! own tests run real apt; `rollout_real_apt` runs the two together).

#![allow(dead_code)] // each test binary uses its own part of the support

use jiff::SignedDuration;
use patchwarden_api::v1::agent::{
    CheckInRequest, EnrollRequest, EnrollmentSecret, InventoryUpload, InventoryWanted,
};
use patchwarden_api::v1::jobs::{Job, JobKind, JobOutcome, JobResult, PackageChange};
use patchwarden_api::v1::manifest::ManifestAction;
use patchwarden_client::{AgentClient, AgentKey, Client};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::{
    AvailableUpdate, HostFacts, Inventory, Manager, OsInfo, Package, PackageStatus, UpdateKind,
};
use patchwarden_server::admin::{self, TokenRequest};
use patchwarden_store::HostPlacement;
use uuid::Uuid;

use crate::operator_support::Server;

/// The openssl a host runs at first, and the version that fixes it.
pub(crate) const OLD: &str = "3.0.11-1~deb12u2";
pub(crate) const NEW: &str = "3.0.15-1~deb12u1";

pub(crate) fn facts(name: &str) -> HostFacts {
    HostFacts {
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
    }
}

pub(crate) fn package(name: &str, version: &str) -> Package {
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

/// A host's inventory with `openssl` at that version.
pub(crate) fn inventory(facts: &HostFacts, openssl: &str) -> Inventory {
    let mut inv = Inventory {
        host: facts.clone(),
        packages: vec![package("openssl", openssl), package("bash", "5.2.15-2+b7")],
        // The host's own repository offers a security update of bash.
        updates: vec![AvailableUpdate {
            name: "bash".into(),
            installed: "5.2.15-2+b7".into(),
            candidate: "5.2.15-2+b9".into(),
            origin: Some("Debian:bookworm-security".into()),
            kind: UpdateKind::Security,
            severity: None,
            advisories: vec!["DSA-9998-1".into()],
        }],
        ..Inventory::default()
    };
    inv.canonicalize();
    inv
}

/// A simulated host: a real enrolled agent identity, its facts, its check-in counter.
pub(crate) struct Host {
    pub(crate) agent: AgentClient,
    pub(crate) facts: HostFacts,
    pub(crate) seq: u64,
    pub(crate) openssl: String,
}

impl Host {
    /// Enrolls `name` into `group` (with a ring and labels), as the API's enrollment does,
    /// then checks in once with its inventory; it has no job yet.
    pub(crate) async fn enroll(
        server: &Server,
        client: &Client,
        name: &str,
        group: &str,
        ring: Option<&str>,
        labels: &[(&str, &str)],
    ) -> Host {
        let (_, secret) = admin::create_enrollment_token(
            server.store().as_ref(),
            TokenRequest {
                group: group.into(),
                valid_for: SignedDuration::from_hours(1),
                max_uses: 1,
                note: None,
            },
            Actor::Operator("test".into()),
            patchwarden_server::clock::now(),
        )
        .await
        .unwrap();
        let key = AgentKey::generate().unwrap();
        let facts = facts(name);
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
        let now = patchwarden_server::clock::now();
        let id = Uuid::parse_str(&response.host_id).unwrap();
        server
            .store()
            .set_host_placement(
                id,
                HostPlacement {
                    group: group.into(),
                    ring: ring.filter(|r| !r.is_empty()).map(str::to_owned),
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
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
        let mut host = Host {
            agent: client.agent(&response.host_id, key),
            facts,
            seq: 0,
            openssl: OLD.into(),
        };
        assert!(host.check_in().await.is_empty());
        host
    }

    pub(crate) fn id(&self) -> Uuid {
        Uuid::parse_str(self.agent.host_id()).unwrap()
    }

    /// Checks in (uploading the inventory when asked) and returns the jobs leased.
    pub(crate) async fn check_in(&mut self) -> Vec<Job> {
        self.seq += 1;
        let inv = inventory(&self.facts, &self.openssl);
        let answer = self
            .agent
            .check_in(&CheckInRequest {
                seq: self.seq,
                facts: inv.host.clone(),
                packages: inv.packages_digest(),
                agent_version: "test".into(),
            })
            .await
            .unwrap();
        if answer.inventory != InventoryWanted::Nothing {
            self.agent
                .upload_inventory(&InventoryUpload::Full { inventory: inv })
                .await
                .unwrap();
        }
        answer
            .jobs
            .into_iter()
            .filter(|j| !j.state.is_final())
            .collect()
    }

    /// Does what an agent's executor would with an install or rollback job: checks the
    /// manifest, then reports `outcome` with the package change (openssl to the job's
    /// version, which the host then runs when the job succeeded).
    pub(crate) async fn run(&mut self, job: &Job, outcome: JobOutcome) {
        let (packages, manifest, action) = match &job.work {
            JobKind::Install { packages, manifest } => {
                (packages, manifest, ManifestAction::Install)
            }
            JobKind::Rollback {
                packages, manifest, ..
            } => (packages, manifest, ManifestAction::Rollback),
            other => panic!("unexpected job {other:?}"),
        };
        manifest
            .check(
                self.agent.host_id(),
                action,
                packages,
                patchwarden_server::clock::now(),
            )
            .unwrap_or_else(|e| panic!("the manifest of {} does not check: {e}", job.id));
        let target = packages[0].version.clone();
        let mut result = JobResult::new(outcome, format!("{outcome:?}"));
        result.changes = vec![PackageChange {
            name: "openssl".into(),
            arch: None,
            from: Some(self.openssl.clone()),
            to: Some(target.clone()),
        }];
        if outcome == JobOutcome::Succeeded {
            self.openssl = target;
        }
        self.agent.job_result(&job.id, &result).await.unwrap();
    }

    /// Checks in until a job comes, runs it with `outcome`, and checks in again so the server
    /// has the new inventory (which closes the findings the install fixed).
    pub(crate) async fn install(&mut self, outcome: JobOutcome) {
        for _ in 0..100 {
            let jobs = self.check_in().await;
            if let Some(job) = jobs.first() {
                self.run(job, outcome).await;
                self.check_in().await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{} never got a job", self.facts.hostname);
    }
}

/// Posts the change event `action` (an empty body) as `who`; the change, or a panic with the
/// answer.
pub(crate) async fn act(
    server: &Server,
    who: &crate::operator_support::Session,
    number: &str,
    action: &str,
) -> patchwarden_api::v1::changes::ChangeView {
    use crate::operator_support::Req;
    let a = server
        .send(who.apply(
            Req::post(&format!("/api/v1/changes/{number}/{action}")).json(&serde_json::json!({})),
        ))
        .await;
    assert_eq!(a.status, 200, "{action} {number}: {}", a.text());
    a.json()
}

/// The change `number` as `who` sees it.
pub(crate) async fn show(
    server: &Server,
    who: &crate::operator_support::Session,
    number: &str,
) -> patchwarden_api::v1::changes::ChangeView {
    use crate::operator_support::Req;
    let a = server
        .send(who.apply(Req::get(&format!("/api/v1/changes/{number}"))))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

/// Waits until the change reaches `state` (the rollout engine runs in the server); panics
/// with the change after a bounded wait.
pub(crate) async fn until(
    server: &Server,
    who: &crate::operator_support::Session,
    number: &str,
    state: patchwarden_core::change::ChangeState,
) -> patchwarden_api::v1::changes::ChangeView {
    for _ in 0..100 {
        let c = show(server, who, number).await;
        if c.state == state {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{number} never reached {state}: {:#?}",
        show(server, who, number).await
    );
}
