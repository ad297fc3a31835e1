//! The demo's exceptions (risk acceptance), recorded in the store as the seeding clock moves
//! forward: a few approved ones in force for hosts of the oldest cohort (so their breached
//! findings are reported as excepted), and one that expired ten days ago (so its host's
//! findings are breached again, on their original due dates). Each is requested by the demo's
//! security officer and approved by its change approver — four eyes, as the rules require.

use jiff::{SignedDuration, Timestamp};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::exception::{
    Control, ControlKind, DEFAULT_MAX_TERM, ExceptionRequest, Justification,
};
use patchwarden_store::Store;
use patchwarden_store::exception::{
    ExceptionAction, ExceptionFilter, ExceptionScope, FindingRef, NewException,
};
use patchwarden_store::finding::{FindingFilter, FindingState};
use uuid::Uuid;

/// The demo's requester and approver.
pub(crate) const REQUESTER: &str = "thandi.security";
pub(crate) const APPROVER: &str = "pieter.approver";

/// Which exceptions to record now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Requested at `now`, expiring 30 days later (ten days before today, when `now` is 40 days
    /// back).
    Expiring,
    /// Requested at `now`, in force for 90 days.
    InForce,
}

struct Plan {
    justification: Justification,
    explanation: &'static str,
    controls: &'static [(ControlKind, &'static str)],
    /// The whole host, or its first open finding.
    whole_host: bool,
}

const EXPIRING: Plan = Plan {
    justification: Justification::PatchCausesInstability,
    explanation: "The glibc update broke the label printers' vendor driver on this host during \
                  the pilot (vendor ticket ZB-20931); the fixed driver was promised within the \
                  month.",
    controls: &[(
        ControlKind::AccessControlList,
        "Inbound limited to the two print servers by the host firewall; no SSH from the user LAN",
    )],
    whole_host: true,
};

const IN_FORCE: [Plan; 3] = [
    Plan {
        justification: Justification::NoVendorPatch,
        explanation: "The building-management appliance runs a vendor image; the vendor ships \
                      its fixes in the quarterly firmware, next due in February.",
        controls: &[
            (
                ControlKind::NetworkSegmentation,
                "OT VLAN 12: no route from the office LAN, reachable only from the BMS jump host",
            ),
            (
                ControlKind::IntrusionPrevention,
                "IPS signatures for the open CVEs enabled on the OT uplink, alerts to the SOC",
            ),
        ],
        whole_host: true,
    },
    Plan {
        justification: Justification::PatchCausesInstability,
        explanation: "The payroll application is certified only against the installed library \
                      version; the certified update is scheduled with the vendor for the \
                      month-end freeze window.",
        controls: &[(
            ControlKind::AccessControlList,
            "Only the payroll clerks' subnet reaches the host, on port 443 alone",
        )],
        whole_host: false,
    },
    Plan {
        justification: Justification::Other,
        explanation: "Lab system due for decommissioning at the end of the quarter; patching it \
                      would need a rebuild that the retirement makes pointless.",
        controls: &[(
            ControlKind::NetworkSegmentation,
            "Isolated lab VLAN with no internet egress",
        )],
        whole_host: true,
    },
];

fn actor(name: &str) -> Actor {
    Actor::Operator(name.into())
}

/// Records the phase's exceptions for `hosts` (host ids of the oldest cohort, in order) at
/// `now`; returns how many. Nothing when the store already has exceptions of this phase's
/// kind (a second start).
pub(crate) async fn seed(
    store: &dyn Store,
    phase: Phase,
    hosts: &[Uuid],
    now: Timestamp,
) -> anyhow::Result<usize> {
    let existing = store
        .list_exceptions(&ExceptionFilter::default())
        .await?
        .len();
    let (plans, term, skip): (&[Plan], i64, usize) = match phase {
        Phase::Expiring if existing == 0 => (std::slice::from_ref(&EXPIRING), 30, 0),
        // The in-force ones go to the next hosts, after the expiring one's.
        Phase::InForce if existing == 1 => (&IN_FORCE, 90, 1),
        _ => return Ok(0),
    };
    let mut made = 0;
    for (plan, host) in plans.iter().zip(hosts.iter().skip(skip)) {
        let scope = if plan.whole_host {
            ExceptionScope {
                findings: vec![],
                hosts: vec![*host],
            }
        } else {
            let open = store
                .list_findings(&FindingFilter {
                    host: Some(*host),
                    state: Some(FindingState::Open),
                    limit: Some(1),
                    ..FindingFilter::default()
                })
                .await?;
            let Some(f) = open.first() else { continue };
            ExceptionScope {
                findings: vec![FindingRef {
                    host: *host,
                    advisory: f.finding.vulnerability.clone(),
                    package: f.finding.package.clone(),
                }],
                hosts: vec![],
            }
        };
        let exception = ExceptionRequest {
            justification: plan.justification,
            explanation: plan
                .explanation
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            controls: plan
                .controls
                .iter()
                .map(|(kind, d)| Control {
                    kind: *kind,
                    description: (*d).into(),
                })
                .collect(),
            protected_data: false,
            requester: REQUESTER.into(),
            requested_at: now,
            expires_at: now + SignedDuration::from_hours(24 * term),
        }
        .check(DEFAULT_MAX_TERM)
        .map_err(|e| anyhow::anyhow!("the demo's exception: {e}"))?;
        let stored = store
            .create_exception(
                NewException {
                    id: Uuid::new_v4(),
                    scope,
                    exception,
                },
                now,
                AuditEntry::new(now, actor(REQUESTER), "exception.request", ""),
            )
            .await?;
        let approved_at = now + SignedDuration::from_secs(1);
        store
            .change_exception(
                stored.id,
                APPROVER,
                ExceptionAction::Approve,
                approved_at,
                AuditEntry::new(approved_at, actor(APPROVER), "exception.approve", ""),
            )
            .await?;
        made += 1;
    }
    Ok(made)
}
