//! Findings kept current: what a host is exposed to now, since when, how urgently, and when and
//! by which version each exposure ended (the per-host patch history the policies ask for).
//!
//! A finding is keyed by (host, package, architecture, vulnerability). Each sync compares the
//! host's open findings with what the matcher found now: new keys open (first seen now), known
//! keys stay open with their first-seen time, a changed classification is recorded with a
//! history entry, and keys no longer found close with the time and the installed version that
//! fixed them. A closed finding stays closed; if the exposure comes back (a downgrade), a new
//! finding opens, so the history shows both. The comparison is [`plan_sync`], a pure function
//! both backends apply, so they cannot disagree on what a sync means.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{Manager, Package};
use patchwarden_core::policy::{Assessment, Class, Decision};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::limits::{MAX_FINDING_JSON, MAX_ID, check_name, check_opt};

/// How urgent a finding is and when it is due, under which policy and rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    pub class: Option<Class>,
    pub due_at: Option<Timestamp>,
    pub policy: Option<String>,
    pub rule: Option<String>,
}

impl Classification {
    /// The parts of an assessment the store keeps: its class, its due date and the policy and
    /// rule that set the class.
    pub fn from_assessment(a: &Assessment) -> Classification {
        let (policy, rule) = match &a.class_set_by {
            Some(Decision::Rule { policy, rule }) => (Some(policy.clone()), Some(rule.clone())),
            Some(Decision::Scope { policy }) => (Some(policy.clone()), None),
            Some(Decision::Override { policy, .. }) => (policy.clone(), Some("override".into())),
            Some(Decision::ClassDeadline { policy, .. }) => (Some(policy.clone()), None),
            None => (None, None),
        };
        Classification {
            class: a.class,
            due_at: a.due_at,
            policy,
            rule,
        }
    }

    pub fn check(&self) -> Result<()> {
        check_opt("finding policy", self.policy.as_deref(), MAX_ID)?;
        check_opt("finding rule", self.rule.as_deref(), MAX_ID)
    }
}

/// A finding as the matcher and the policy produced it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentFinding {
    pub finding: Finding,
    pub classification: Classification,
}

/// Open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    Open,
    Closed,
}

impl FindingState {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<FindingState> {
        match s {
            "open" => Some(FindingState::Open),
            "closed" => Some(FindingState::Closed),
            _ => None,
        }
    }
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFinding {
    pub id: i64,
    pub host: Uuid,
    pub finding: Finding,
    pub classification: Classification,
    pub state: FindingState,
    pub first_seen: Timestamp,
    /// The last sync that found it (or closed it).
    pub last_seen: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// The version installed when it closed; `None` while open, or when it closed because the
    /// package was removed.
    pub fixed_version: Option<String>,
}

/// One classification a finding had, from `at` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassificationChange {
    pub at: Timestamp,
    pub classification: Classification,
}

/// Which findings to list; the default lists all, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub host: Option<Uuid>,
    pub state: Option<FindingState>,
    pub class: Option<Class>,
    /// Findings due before this time (findings without a due date are left out).
    pub due_before: Option<Timestamp>,
    pub vulnerability: Option<String>,
    /// Only findings whose id is greater (paging).
    pub after_id: Option<i64>,
    pub limit: Option<u32>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingSync {
    pub opened: u32,
    pub kept: u32,
    pub reclassified: u32,
    pub closed: u32,
}

impl FindingSync {
    pub fn changed(&self) -> bool {
        self.opened + self.reclassified + self.closed > 0
    }
}

/// A finding's key, with no architecture spelt as the empty string (a unique index treats
/// NULLs as distinct, which would let the same key open twice).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FindingKey {
    pub package: String,
    pub arch: String,
    pub vulnerability: String,
}

impl FindingKey {
    pub fn of(f: &Finding) -> FindingKey {
        FindingKey {
            package: f.package.clone(),
            arch: f.arch.clone().unwrap_or_default(),
            vulnerability: f.vulnerability.clone(),
        }
    }
}

/// An open finding as a backend reads it for a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRow {
    pub id: i64,
    pub key: FindingKey,
    pub finding_json: String,
    pub classification: Classification,
}

/// A finding to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenNew {
    pub key: FindingKey,
    pub finding_json: String,
    /// [`body_digest`] of `finding_json`: the key of the deduplicated body row.
    pub digest: [u8; 32],
    pub classification: Classification,
}

/// The key under which a finding's JSON body is stored once for every host that has it (the
/// same advisory, package and versions give the same body on every host): its SHA-256.
pub fn body_digest(finding_json: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(finding_json.as_bytes()).into()
}

/// The writes a sync makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    pub open: Vec<OpenNew>,
    /// Kept findings whose details (fixed version, advisories, explanation) changed: the new
    /// body and its [`body_digest`].
    pub refresh: Vec<(i64, String, [u8; 32])>,
    /// Kept findings whose classification changed; each gets a history entry.
    pub reclassify: Vec<(i64, Classification)>,
    /// Findings no longer found, with the version now installed.
    pub close: Vec<(i64, Option<String>)>,
    pub summary: FindingSync,
}

/// Compares the open findings with the current ones. `installed` is the host's inventory, used
/// to record the version that closed a finding.
pub fn plan_sync(
    open: Vec<OpenRow>,
    current: &[CurrentFinding],
    installed: &[Package],
) -> Result<SyncPlan> {
    let mut plan = SyncPlan::default();
    let mut by_key: HashMap<FindingKey, OpenRow> =
        open.into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut seen: HashSet<FindingKey> = HashSet::new();
    for c in current {
        let f = &c.finding;
        check_name("finding package", &f.package, MAX_ID)?;
        check_name("finding vulnerability", &f.vulnerability, MAX_ID)?;
        check_opt("finding arch", f.arch.as_deref(), MAX_ID)?;
        c.classification.check()?;
        let key = FindingKey::of(f);
        // The matcher gives one finding per key; should a caller repeat one, the first wins
        // rather than the sync failing for the whole host.
        if !seen.insert(key.clone()) {
            continue;
        }
        let json = crate::codec::to_json("finding", f, MAX_FINDING_JSON)?;
        match by_key.remove(&key) {
            None => {
                plan.summary.opened += 1;
                plan.open.push(OpenNew {
                    key,
                    digest: body_digest(&json),
                    finding_json: json,
                    classification: c.classification.clone(),
                });
            }
            Some(row) => {
                plan.summary.kept += 1;
                if row.finding_json != json {
                    let digest = body_digest(&json);
                    plan.refresh.push((row.id, json, digest));
                }
                if row.classification != c.classification {
                    plan.summary.reclassified += 1;
                    plan.reclassify.push((row.id, c.classification.clone()));
                }
            }
        }
    }
    let mut gone: Vec<OpenRow> = by_key.into_values().collect();
    gone.sort_by_key(|r| r.id);
    for row in gone {
        plan.summary.closed += 1;
        let fixed = fixing_version(&row, installed);
        plan.close.push((row.id, fixed));
    }
    Ok(plan)
}

/// The installed version of the finding's package, in the form its finding compared: the
/// source version for dpkg (Debian advisories are about source packages), the EVR for rpm.
fn fixing_version(row: &OpenRow, installed: &[Package]) -> Option<String> {
    let p = installed
        .iter()
        .find(|p| p.name == row.key.package && p.arch.as_deref().unwrap_or("") == row.key.arch)?;
    if !p.status.files_present() {
        return None;
    }
    Some(match p.manager {
        Manager::Dpkg => p
            .source_version
            .clone()
            .unwrap_or_else(|| p.version.clone()),
        Manager::Rpm | Manager::Apk => p.full_version().into_owned(),
    })
}
