//! Standard changes (seed 000 §6.8: pre-approved changes for low-risk services): rules in the
//! server's configuration, `[[changes.standard]]`, each naming host groups, package globs and
//! the highest criticality it covers. People write and approve a rule once; from then on the
//! rule raises a change for the open findings it covers, and — as `rule:NAME` — submits,
//! approves, authorises and schedules it. The change then runs like any other: into the next
//! window, test ring first if the rule says so, with its manifests, halts and rollbacks.
//!
//! A finding is covered once any change that has not ended (not closed, rejected, rolled back
//! or cancelled) targets its host with a patch of its package at or above its fixed version,
//! so a rule raises one change per batch of findings, not one per pass.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use patchwarden_api::v1::changes::{NewChangeRequest, Patch, Risk, RolloutPlan, Targets};
use patchwarden_core::audit::Actor;
use patchwarden_core::change::{ChangeActor, ChangeEvent, ChangeKind, ChangeState, Testing};
use patchwarden_core::policy::{Class, Glob};
use patchwarden_store::change::ChangeFilter;
use patchwarden_store::{FindingFilter, FindingState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ChangeDoc, apply_event, create_as, lower, target_hosts};
use crate::access::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// The `[changes]` section of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangesConfig {
    /// How many days before its window a scheduled change is announced on the status page
    /// and in notifications (seed 003: a week for production); an emergency at once.
    pub announce_days: u32,
    /// How often the standard-change rules look for findings, in seconds.
    pub standard_every_secs: u32,
    pub standard: Vec<StandardRule>,
}

impl Default for ChangesConfig {
    fn default() -> ChangesConfig {
        ChangesConfig {
            announce_days: 7,
            standard_every_secs: 300,
            standard: Vec::new(),
        }
    }
}

/// One pre-approved kind of change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardRule {
    /// Letters, digits, `-` and `_`: the rule signs as `rule:NAME`.
    pub name: String,
    /// The host groups it covers (at least one).
    pub groups: Vec<String>,
    /// Package name globs it covers; empty: every package.
    #[serde(default)]
    pub packages: Vec<String>,
    /// The highest criticality it covers: low, medium, high or emergency.
    pub max_criticality: String,
    /// Whether its changes test in the test ring first (default yes).
    #[serde(default = "yes")]
    pub testing: bool,
}

fn yes() -> bool {
    true
}

/// The `[changes]` settings as the running server holds them.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub rules: Vec<Rule>,
    pub every_secs: u32,
    pub announce_days: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        let config = ChangesConfig::default();
        Settings {
            rules: Vec::new(),
            every_secs: config.standard_every_secs,
            announce_days: config.announce_days,
        }
    }
}

/// A rule, checked and ready to match.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    spec: StandardRule,
    globs: Vec<Glob>,
    max: Class,
}

impl ChangesConfig {
    /// The rules, checked; the reason in words when one is wrong.
    pub(crate) fn rules(&self) -> Result<Vec<Rule>, String> {
        if self.standard_every_secs == 0 {
            return Err("changes.standard_every_secs must be at least 1".into());
        }
        let mut names = BTreeSet::new();
        self.standard
            .iter()
            .map(|r| {
                let bad = |why: String| format!("changes.standard {:?}: {why}", r.name);
                if r.name.is_empty()
                    || r.name.len() > 64
                    || !r
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(bad("the name is letters, digits, '-' and '_'".into()));
                }
                if !names.insert(r.name.clone()) {
                    return Err(bad("the name is used twice".into()));
                }
                if r.groups.is_empty() || r.groups.iter().any(|g| g.is_empty()) {
                    return Err(bad("name at least one host group".into()));
                }
                let globs = r
                    .packages
                    .iter()
                    .map(|p| Glob::new(p).map_err(|e| bad(format!("package {p:?}: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                let max: Class = r.max_criticality.parse().map_err(|e| bad(format!("{e}")))?;
                if max == Class::NotApplicable {
                    return Err(bad(
                        "max_criticality is low, medium, high or emergency".into()
                    ));
                }
                Ok(Rule {
                    spec: r.clone(),
                    globs,
                    max,
                })
            })
            .collect()
    }
}

impl Rule {
    fn covers_package(&self, name: &str) -> bool {
        self.globs.is_empty() || self.globs.iter().any(|g| g.matches(name))
    }
}

/// Whether a non-final change already covers (host, package) at `version` or above.
type Covered = BTreeMap<(Uuid, String), Vec<(Option<String>, String)>>;

async fn covered(state: &AppState) -> Result<Covered, ApiError> {
    let live: Vec<String> = ChangeState::ALL
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| s.as_str().to_owned())
        .collect();
    let changes = state
        .store
        .list_changes(&ChangeFilter {
            states: live,
            ..ChangeFilter::default()
        })
        .await?;
    let mut out = Covered::new();
    for stored in changes {
        let doc = ChangeDoc::parse(&stored)?;
        for host in target_hosts(state, &doc.targets, &Scope::All).await? {
            for p in &doc.patches {
                out.entry((host.id, p.package.clone()))
                    .or_default()
                    .push((p.ecosystem.clone(), p.version.clone()));
            }
        }
    }
    Ok(out)
}

/// One pass: each rule raises (and signs, and schedules) a change for the open findings it
/// covers that no live change covers yet. Returns the numbers raised.
pub(crate) async fn raise(
    state: &AppState,
    rules: &[Rule],
    now: Timestamp,
) -> Result<Vec<String>, ApiError> {
    let mut raised = Vec::new();
    // What live changes cover, read once a pass; each change raised below adds its own.
    let mut covered = covered(state).await?;
    for rule in rules {
        let targets = Targets {
            hosts: Vec::new(),
            groups: rule.spec.groups.clone(),
        };
        let hosts = target_hosts(state, &targets, &Scope::All).await?;
        let mut patches: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut touched: BTreeSet<Uuid> = BTreeSet::new();
        for host in &hosts {
            let findings = state
                .store
                .list_findings(&FindingFilter {
                    host: Some(host.id),
                    state: Some(FindingState::Open),
                    ..FindingFilter::default()
                })
                .await?;
            for f in findings {
                let class = f.classification.class;
                let Some(fixed) = f.finding.fixed.clone() else {
                    continue;
                };
                if class.is_none_or(|c| c == Class::NotApplicable || c > rule.max)
                    || !rule.covers_package(&f.finding.package)
                {
                    continue;
                }
                let eco = f.finding.ecosystem.clone();
                let already = covered
                    .get(&(host.id, f.finding.package.clone()))
                    .is_some_and(|patches| {
                        patches.iter().any(|(e, v)| {
                            e.as_deref().is_none_or(|e| e == eco)
                                && lower(Some(&eco), v, &fixed) == Some(false)
                        })
                    });
                if already {
                    continue;
                }
                touched.insert(host.id);
                let key = (f.finding.package.clone(), eco.clone());
                match patches.get(&key) {
                    Some(v) if lower(Some(&eco), &fixed, v) != Some(false) => {}
                    _ => {
                        patches.insert(key, fixed);
                    }
                }
            }
        }
        if patches.is_empty() {
            continue;
        }
        for host in &touched {
            for ((package, ecosystem), version) in &patches {
                covered
                    .entry((*host, package.clone()))
                    .or_default()
                    .push((Some(ecosystem.clone()), version.clone()));
            }
        }
        let number = raise_one(state, rule, touched, patches, now).await?;
        tracing::info!(rule = %rule.spec.name, change = %number, "a standard-change rule raised a change");
        raised.push(number);
    }
    Ok(raised)
}

async fn raise_one(
    state: &AppState,
    rule: &Rule,
    hosts: BTreeSet<Uuid>,
    patches: BTreeMap<(String, String), String>,
    now: Timestamp,
) -> Result<String, ApiError> {
    let name = &rule.spec.name;
    let requester = format!("rule:{name}");
    let audit_actor = Actor::System(requester.clone());
    let count = patches.len();
    let request = NewChangeRequest {
        kind: ChangeKind::Standard,
        title: format!("Standard change by rule {name}: {count} package(s)"),
        justification: format!(
            "Pre-approved standard change: open findings within rule {name} (groups {}, up to \
             {} criticality)",
            rule.spec.groups.join(", "),
            rule.max
        ),
        risk: Risk::Low,
        priority: "standard".into(),
        testing: if rule.spec.testing {
            Testing::Required
        } else {
            Testing::NotRequired {
                reason: format!("rule {name} pre-approves these packages without a test ring"),
            }
        },
        rollback_plan: "the agents reinstall the versions recorded before the change from \
                        their cache"
            .into(),
        targets: Targets {
            hosts: hosts.into_iter().collect(),
            groups: Vec::new(),
        },
        patches: patches
            .into_iter()
            .map(|((package, ecosystem), version)| Patch {
                package,
                version,
                ecosystem: Some(ecosystem),
            })
            .collect(),
        from_findings: Vec::new(),
        baseline: Default::default(),
        restart_order: Vec::new(),
        health_checks: Vec::new(),
        reboot_allowed: false,
        hotfix: None,
        rollout: RolloutPlan::default(),
    };
    let mut stored = create_as(
        state,
        &requester,
        audit_actor.clone(),
        &Scope::All,
        request,
        now,
    )
    .await?;
    let actor = ChangeActor::Rule(name.clone());
    for event in [
        ChangeEvent::Submit,
        ChangeEvent::Approve,
        ChangeEvent::Authorise,
        ChangeEvent::Schedule,
    ] {
        let doc = ChangeDoc::parse(&stored)?;
        let number = stored.number.clone();
        let scheduling = matches!(event, ChangeEvent::Schedule);
        match apply_event(
            state,
            stored.clone(),
            doc,
            &actor,
            audit_actor.clone(),
            event,
            Default::default(),
            now,
        )
        .await
        {
            Ok(next) => stored = next,
            // No window opens for these hosts: the change waits, authorised, for an operator
            // to schedule it (it covers its findings meanwhile, so no duplicate is raised).
            Err(ApiError::Conflict(why)) if scheduling => {
                tracing::warn!(change = %number, reason = %why, "a standard change could not be scheduled");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stored.number)
}
