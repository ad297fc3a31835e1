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

use std::collections::HashMap;

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
    /// Shared: the server's matcher hands the same finding to every host with the package.
    pub finding: std::sync::Arc<Finding>,
    pub classification: Classification,
    /// The finding's stored form, when the caller has it already: the server's matcher keeps it
    /// with each package's findings, so a fleet of like hosts does not serialise and digest the
    /// same findings once per host. `None`: the store makes it. When given, it must be
    /// [`FindingBody::of`] the `finding` (debug builds check).
    pub body: Option<std::sync::Arc<FindingBody>>,
}

/// A finding's stored form: its JSON body and the body's [`body_digest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingBody {
    pub json: String,
    pub digest: [u8; 32],
}

impl FindingBody {
    pub fn of(finding: &Finding) -> Result<FindingBody> {
        let json = crate::codec::to_json("finding", finding, MAX_FINDING_JSON)?;
        Ok(FindingBody {
            digest: body_digest(&json),
            json,
        })
    }
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

/// An open finding as a backend reads it for a sync: its key, the digest of its stored body
/// (`None` for a body whose digest is not known, which then counts as changed) and its
/// classification. The body itself is not read: comparing digests says whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRow {
    pub id: i64,
    pub key: FindingKey,
    pub body_digest: Option<[u8; 32]>,
    pub classification: Classification,
}

/// A current finding made ready to store: checked, keyed, its JSON body written and digested.
/// Backends prepare before they take their write lock or open their transaction, so that none
/// of this work holds up other hosts' syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedFinding {
    pub key: FindingKey,
    /// The JSON body and its digest, the key of the deduplicated body row.
    pub body: std::sync::Arc<FindingBody>,
    pub classification: Classification,
    /// A fix is released for it (the finding names a fixed version): what
    /// [`crate::Host::open_fixable`] counts.
    pub fixable: bool,
}

/// The key under which a finding's JSON body is stored once for every host that has it (the
/// same advisory, package and versions give the same body on every host): its SHA-256.
pub fn body_digest(finding_json: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(finding_json.as_bytes()).into()
}

/// Checks, keys and serialises the current findings. The matcher gives one finding per key;
/// should a caller repeat one, the first wins rather than the sync failing for the whole host.
pub fn prepare(current: &[CurrentFinding]) -> Result<Vec<PreparedFinding>> {
    // Keys seen so far, borrowed from `current` and hashed with FxHash: a first inventory
    // prepares ~600 findings, and owned keys hashed with SipHash were a tenth of this
    // function's time (fleet bench, `perf`). An unkeyed hash is safe here: a finding exists
    // only where a package matched an advisory, so an agent cannot choose these keys freely.
    let mut seen: rustc_hash::FxHashSet<(&str, &str, &str)> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(current.len(), Default::default());
    let mut out = Vec::with_capacity(current.len());
    for c in current {
        let f = &c.finding;
        check_name("finding package", &f.package, MAX_ID)?;
        check_name("finding vulnerability", &f.vulnerability, MAX_ID)?;
        check_opt("finding arch", f.arch.as_deref(), MAX_ID)?;
        c.classification.check()?;
        let arch = f.arch.as_deref().unwrap_or_default();
        if !seen.insert((&f.package, arch, &f.vulnerability)) {
            continue;
        }
        let key = FindingKey::of(f);
        let body = match &c.body {
            Some(body) => {
                debug_assert_eq!(
                    **body,
                    FindingBody::of(f)?,
                    "a current finding's body is not its finding's"
                );
                body.clone()
            }
            None => std::sync::Arc::new(FindingBody::of(f)?),
        };
        out.push(PreparedFinding {
            key,
            body,
            classification: c.classification.clone(),
            fixable: f.fixed.is_some(),
        });
    }
    Ok(out)
}

/// The version each installed package would close a finding with, by (name, architecture):
/// the source version for dpkg (Debian advisories are about source packages), the EVR for rpm
/// and apk. A package installed in several versions (rpm kernels) answers with the first, as
/// the canonical inventory orders them. Packages whose files are gone are left out: a finding
/// they close closed because the package went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixingVersions(HashMap<(String, String), Option<String>>);

impl FixingVersions {
    pub fn of(installed: &[Package]) -> FixingVersions {
        // SipHash, not FxHash: the names are the agent's, and a keyed hash keeps an inventory
        // of crafted names from making this map quadratic.
        let mut map = HashMap::with_capacity(installed.len());
        for p in installed {
            let key = (p.name.clone(), p.arch.clone().unwrap_or_default());
            if map.contains_key(&key) {
                continue;
            }
            // A package whose files are gone still shadows a later one of the same identity.
            let version = p.status.files_present().then(|| match p.manager {
                Manager::Dpkg => p
                    .source_version
                    .clone()
                    .unwrap_or_else(|| p.version.clone()),
                Manager::Rpm | Manager::Apk => p.full_version().into_owned(),
            });
            map.insert(key, version);
        }
        FixingVersions(map)
    }

    fn get(&self, key: &FindingKey) -> Option<String> {
        self.0
            .get(&(key.package.clone(), key.arch.clone()))
            .cloned()
            .flatten()
    }
}

/// A kept finding's new body: its details (fixed version, advisories, explanation) changed,
/// its key did not. The key comes along for a store that files bodies under their key
/// (PostgreSQL's `0018_finding_subjects`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub id: i64,
    pub key: FindingKey,
    pub body: std::sync::Arc<FindingBody>,
}

/// The writes a sync makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    pub open: Vec<PreparedFinding>,
    /// Kept findings whose details (fixed version, advisories, explanation) changed.
    pub refresh: Vec<Refresh>,
    /// Kept findings whose classification changed; each gets a history entry.
    pub reclassify: Vec<(i64, Classification)>,
    /// Findings no longer found, with the version now installed.
    pub close: Vec<(i64, Option<String>)>,
    pub summary: FindingSync,
    /// The host's open findings after the sync (exactly the current ones), and those with a
    /// released fix: the counts kept on its row ([`crate::Host::open_findings`]).
    pub open_findings: u64,
    pub open_fixable: u64,
    /// The earliest due date among the host's open findings after the sync (`None`: none has
    /// one). PostgreSQL keeps it on the host's row and finds the fleet's findings due before a
    /// time through it, host by host, instead of a fleet-wide index of due dates
    /// (`0017_findings_due_by_host`).
    pub next_due: Option<Timestamp>,
}

/// Compares the open findings with the current ones (from [`prepare`]). `fixing` is the
/// host's inventory as [`FixingVersions`], which records the version that closed a finding.
pub fn plan_sync(
    open: Vec<OpenRow>,
    current: Vec<PreparedFinding>,
    fixing: &FixingVersions,
) -> Result<SyncPlan> {
    let mut plan = SyncPlan::default();
    let mut by_key: HashMap<FindingKey, OpenRow> =
        open.into_iter().map(|r| (r.key.clone(), r)).collect();
    plan.open_findings = current.len() as u64;
    plan.open_fixable = current.iter().filter(|c| c.fixable).count() as u64;
    plan.next_due = current.iter().filter_map(|c| c.classification.due_at).min();
    for c in current {
        match by_key.remove(&c.key) {
            None => {
                plan.summary.opened += 1;
                plan.open.push(c);
            }
            Some(row) => {
                plan.summary.kept += 1;
                if row.body_digest != Some(c.body.digest) {
                    plan.refresh.push(Refresh {
                        id: row.id,
                        key: c.key,
                        body: c.body,
                    });
                }
                if row.classification != c.classification {
                    plan.summary.reclassified += 1;
                    plan.reclassify.push((row.id, c.classification));
                }
            }
        }
    }
    let mut gone: Vec<OpenRow> = by_key.into_values().collect();
    gone.sort_by_key(|r| r.id);
    for row in gone {
        plan.summary.closed += 1;
        plan.close.push((row.id, fixing.get(&row.key)));
    }
    Ok(plan)
}
