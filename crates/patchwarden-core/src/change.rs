//! The change request's life (the policies' "request for change" and the patch control form of
//! seed 000, Appendix A) as a pure function: a change, an event, who causes it and the moment
//! it happens go in; the changed change, or the reason in words why not, comes out.
//!
//! ```text
//! draft → submitted → approved → authorised → scheduled → testing → tested → deploying → verified → closed
//!            ↘ rejected   ↘ rejected                 ↘ (testing not required) ↗    ↘ failed → rolled_back
//! any state before deploying → cancelled
//! ```
//!
//! The rules that make the process worth having, each enforced here and nowhere else, so that
//! the API, the CLI and the automatic rules cannot disagree:
//!
//! - **Four eyes** (seed 000 §6.8.1 and Appendix A's "approved by" and "authorised by"): the
//!   requester never approves or authorises their own change, and approver and authoriser are
//!   two different people. Names are compared exactly: the server passes the account name,
//!   which is unique. Only a standard change (pre-approved by a rule of the policy file) is
//!   approved and authorised by the rule itself, named `rule:NAME`.
//! - **Windows and freezes** (§6.8.3, §6.9.4): a non-emergency change touches hosts (testing
//!   or deploying) only inside a maintenance window and never in a change freeze. Whether the
//!   moment is inside a window or a freeze is the calendar's answer, passed in [`Moment`].
//! - **Testing first** (§6.7, P6): a change whose testing is required deploys only after its
//!   tests passed; one that does not test says why (Appendix A: "If NO, provide reason").
//! - **Emergency** (§6.7.4, §6.9.1–6.9.3, P7): an emergency change, once approved and
//!   authorised through the emergency path, may deploy at once, in a freeze or outside a
//!   window, before testing; it cannot close until its testing is recorded (§6.9.2: "in all
//!   instances … perform testing … and document it").
//! - **Hotfixes** (§7.1): a hotfix or non-security update is submitted only with its four
//!   conditions confirmed.
//!
//! Nothing here reads the clock; `now` arrives in [`Moment`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a change is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Low risk and pre-approved by a rule of the policy file.
    Standard,
    /// Approved and authorised by people, deployed in windows after testing.
    Normal,
    /// An imminent threat: may deploy before testing, in a freeze, outside a window.
    Emergency,
}

impl ChangeKind {
    /// The kind as the JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Standard => "standard",
            ChangeKind::Normal => "normal",
            ChangeKind::Emergency => "emergency",
        }
    }
}

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    Draft,
    Submitted,
    Approved,
    Authorised,
    Scheduled,
    Testing,
    Tested,
    Deploying,
    Verified,
    Closed,
    Rejected,
    Failed,
    RolledBack,
    Cancelled,
}

impl ChangeState {
    pub const ALL: [ChangeState; 14] = [
        ChangeState::Draft,
        ChangeState::Submitted,
        ChangeState::Approved,
        ChangeState::Authorised,
        ChangeState::Scheduled,
        ChangeState::Testing,
        ChangeState::Tested,
        ChangeState::Deploying,
        ChangeState::Verified,
        ChangeState::Closed,
        ChangeState::Rejected,
        ChangeState::Failed,
        ChangeState::RolledBack,
        ChangeState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Draft => "draft",
            ChangeState::Submitted => "submitted",
            ChangeState::Approved => "approved",
            ChangeState::Authorised => "authorised",
            ChangeState::Scheduled => "scheduled",
            ChangeState::Testing => "testing",
            ChangeState::Tested => "tested",
            ChangeState::Deploying => "deploying",
            ChangeState::Verified => "verified",
            ChangeState::Closed => "closed",
            ChangeState::Rejected => "rejected",
            ChangeState::Failed => "failed",
            ChangeState::RolledBack => "rolled_back",
            ChangeState::Cancelled => "cancelled",
        }
    }

    /// No event leaves these.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ChangeState::Closed
                | ChangeState::Rejected
                | ChangeState::RolledBack
                | ChangeState::Cancelled
        )
    }

    /// Packages have been (or are being) changed on hosts in this state or a later one.
    fn has_touched_hosts(self) -> bool {
        matches!(
            self,
            ChangeState::Testing
                | ChangeState::Tested
                | ChangeState::Deploying
                | ChangeState::Verified
                | ChangeState::Closed
                | ChangeState::Failed
                | ChangeState::RolledBack
        )
    }
}

impl std::fmt::Display for ChangeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an actor may do in the change process. The server derives these from the operator's
/// roles (an approver approves, an officer or provider requests and implements …); the rules
/// here do not know about roles, only about capacities and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capacities {
    pub request: bool,
    pub approve: bool,
    pub authorise: bool,
    /// Schedule, run, verify and roll back (the IT officer or service provider of seed 000).
    pub implement: bool,
}

/// Who causes an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeActor {
    /// An operator, by account name, with what their roles let them do.
    Person {
        name: String,
        capacities: Capacities,
    },
    /// A rule of the policy file that pre-approves standard changes (`rule:NAME`).
    Rule(String),
    /// The server itself, reporting what agents did (tests passed, deployment verified …).
    System,
}

impl ChangeActor {
    pub fn person(name: &str, capacities: Capacities) -> ChangeActor {
        ChangeActor::Person {
            name: name.to_owned(),
            capacities,
        }
    }

    /// The name recorded on the change and in the audit chain.
    pub fn name(&self) -> String {
        match self {
            ChangeActor::Person { name, .. } => name.clone(),
            ChangeActor::Rule(rule) => format!("rule:{rule}"),
            ChangeActor::System => "system".to_owned(),
        }
    }

    fn capacities(&self) -> Capacities {
        match self {
            ChangeActor::Person { capacities, .. } => *capacities,
            ChangeActor::Rule(_) | ChangeActor::System => Capacities::default(),
        }
    }
}

/// Whether the change tests before it deploys (Appendix A: "Testing required: YES / NO; if NO,
/// provide reason").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "required", rename_all = "snake_case")]
pub enum Testing {
    Required,
    NotRequired { reason: String },
}

/// The four conditions of seed 000 §7.1 under which a hotfix or non-security update is
/// applied; each must be confirmed before the change is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HotfixConditions {
    /// A specific issue on our systems needs it.
    pub specific_issue: bool,
    /// Its documentation has been reviewed.
    pub documentation_reviewed: bool,
    /// It has been tested in a test environment.
    pub tested_in_test_environment: bool,
    /// Not applying it is the greater risk.
    pub greater_risk_not_applying: bool,
}

impl HotfixConditions {
    fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.specific_issue {
            missing.push("a specific issue needs it");
        }
        if !self.documentation_reviewed {
            missing.push("its documentation was reviewed");
        }
        if !self.tested_in_test_environment {
            missing.push("it was tested in a test environment");
        }
        if !self.greater_risk_not_applying {
            missing.push("not applying it is the greater risk");
        }
        missing
    }
}

/// A signature on the form: who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub by: String,
    pub at: Timestamp,
}

/// The parts of a change the rules look at. The rest of the form (patches, systems, risk
/// rating, restart order …) is data the rules carry but do not judge, apart from being filled
/// in: `justification` and `rollback_plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub state: ChangeState,
    pub requester: String,
    pub justification: String,
    pub rollback_plan: String,
    pub testing: Testing,
    /// Present for a hotfix or non-security update (§7.1).
    pub hotfix: Option<HotfixConditions>,
    pub submitted: Option<Signed>,
    pub approved: Option<Signed>,
    pub authorised: Option<Signed>,
    /// The tests passed (before deployment, or afterwards for an emergency).
    pub tested: Option<Signed>,
    pub closed: Option<Signed>,
    /// Why it was rejected, failed, rolled back or cancelled.
    pub outcome_reason: Option<String>,
}

impl Change {
    /// A new draft.
    pub fn draft(kind: ChangeKind, requester: &str, testing: Testing) -> Change {
        Change {
            kind,
            state: ChangeState::Draft,
            requester: requester.to_owned(),
            justification: String::new(),
            rollback_plan: String::new(),
            testing,
            hotfix: None,
            submitted: None,
            approved: None,
            authorised: None,
            tested: None,
            closed: None,
            outcome_reason: None,
        }
    }
}

/// What happens to a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ChangeEvent {
    Submit,
    Approve,
    Authorise,
    /// Refused by an approver or authoriser, with why.
    Reject {
        reason: String,
    },
    /// Given a window to run in.
    Schedule,
    /// The test ring starts installing.
    StartTesting,
    TestsPassed,
    TestsFailed {
        reason: String,
    },
    /// The broad rings start installing (for an emergency, possibly the first thing).
    Deploy,
    Verified,
    DeploymentFailed {
        reason: String,
    },
    RolledBack,
    /// An implementer calls a change back that has put packages on hosts (testing, tested,
    /// deploying or verified), with why: it fails, and the rollout engine rolls its hosts
    /// back to the versions recorded before it (then `RolledBack`).
    RollBack {
        reason: String,
    },
    /// An emergency change's testing, done after deployment, is recorded.
    RecordTesting,
    Close,
    Cancel {
        reason: String,
    },
}

impl ChangeEvent {
    pub fn name(&self) -> &'static str {
        match self {
            ChangeEvent::Submit => "submit",
            ChangeEvent::Approve => "approve",
            ChangeEvent::Authorise => "authorise",
            ChangeEvent::Reject { .. } => "reject",
            ChangeEvent::Schedule => "schedule",
            ChangeEvent::StartTesting => "start testing",
            ChangeEvent::TestsPassed => "record passed tests",
            ChangeEvent::TestsFailed { .. } => "record failed tests",
            ChangeEvent::Deploy => "deploy",
            ChangeEvent::Verified => "verify",
            ChangeEvent::DeploymentFailed { .. } => "record a failed deployment",
            ChangeEvent::RolledBack => "record a rollback",
            ChangeEvent::RollBack { .. } => "roll back",
            ChangeEvent::RecordTesting => "record testing",
            ChangeEvent::Close => "close",
            ChangeEvent::Cancel { .. } => "cancel",
        }
    }
}

/// The moment an event happens, with the calendar's answers for the change's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub now: Timestamp,
    /// Inside a maintenance window of the hosts the event touches.
    pub in_window: bool,
    /// Inside a change freeze.
    pub in_freeze: bool,
}

/// Why an event was refused, in words an operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a change in state {state}: {reason}")]
pub struct Refusal {
    pub event: &'static str,
    pub state: ChangeState,
    pub reason: String,
}

/// The change after `event`, caused by `actor` at `moment`, or why not.
pub fn apply(
    change: &Change,
    event: &ChangeEvent,
    actor: &ChangeActor,
    moment: Moment,
) -> Result<Change, Refusal> {
    let refuse = |reason: String| Refusal {
        event: event.name(),
        state: change.state,
        reason,
    };
    if change.state.is_final() {
        return Err(refuse("the change is finished".into()));
    }
    let who = actor.name();
    let caps = actor.capacities();
    let is_requester =
        matches!(actor, ChangeActor::Person { name, .. } if *name == change.requester);
    // A standard change a policy rule raised (`rule:NAME` requested it): the same rule
    // submits and schedules it, as a person would their own change. A rule is written and
    // reviewed by people once; each change it raises is pre-approved by it (seed 000 §6.8:
    // standard changes for low-risk services).
    let rule_raised = change.kind == ChangeKind::Standard
        && matches!(actor, ChangeActor::Rule(rule) if change.requester == format!("rule:{rule}"));
    let signed = || Signed {
        by: who.clone(),
        at: moment.now,
    };
    let emergency = change.kind == ChangeKind::Emergency;
    let mut next = change.clone();
    use ChangeEvent as E;
    use ChangeState as S;
    match (change.state, event) {
        (S::Draft, E::Submit) => {
            if !is_requester && !rule_raised {
                return Err(refuse(format!(
                    "only the requester ({}) submits it",
                    change.requester
                )));
            }
            if change.justification.trim().is_empty() {
                return Err(refuse("it has no business justification".into()));
            }
            if change.rollback_plan.trim().is_empty() {
                return Err(refuse("it has no rollback plan".into()));
            }
            if let Testing::NotRequired { reason } = &change.testing
                && reason.trim().is_empty()
            {
                return Err(refuse(
                    "testing is not required but no reason is given".into(),
                ));
            }
            if let Some(conditions) = &change.hotfix {
                let missing = conditions.missing();
                if !missing.is_empty() {
                    return Err(refuse(format!(
                        "a hotfix needs its conditions confirmed: {}",
                        missing.join("; ")
                    )));
                }
            }
            next.submitted = Some(signed());
            next.state = S::Submitted;
        }
        (S::Submitted, E::Approve) => {
            match actor {
                ChangeActor::Rule(_) if change.kind == ChangeKind::Standard => {}
                ChangeActor::Rule(_) => {
                    return Err(refuse(
                        "only a standard change is approved by a rule".into(),
                    ));
                }
                ChangeActor::System => {
                    return Err(refuse("the server does not approve changes".into()));
                }
                ChangeActor::Person { .. } => {
                    if !caps.approve {
                        return Err(refuse(format!("{who} may not approve changes")));
                    }
                    if is_requester {
                        return Err(refuse(
                            "the requester cannot approve their own change".into(),
                        ));
                    }
                }
            }
            next.approved = Some(signed());
            next.state = S::Approved;
        }
        (S::Approved, E::Authorise) => {
            match actor {
                ChangeActor::Rule(_) if change.kind == ChangeKind::Standard => {}
                ChangeActor::Rule(_) => {
                    return Err(refuse(
                        "only a standard change is authorised by a rule".into(),
                    ));
                }
                ChangeActor::System => {
                    return Err(refuse("the server does not authorise changes".into()));
                }
                ChangeActor::Person { .. } => {
                    if !caps.authorise {
                        return Err(refuse(format!("{who} may not authorise changes")));
                    }
                    if is_requester {
                        return Err(refuse(
                            "the requester cannot authorise their own change".into(),
                        ));
                    }
                    if change.approved.as_ref().is_some_and(|a| a.by == who) {
                        return Err(refuse(
                            "the approver cannot also authorise it: two different people sign"
                                .into(),
                        ));
                    }
                }
            }
            next.authorised = Some(signed());
            next.state = S::Authorised;
        }
        (S::Submitted | S::Approved, E::Reject { reason }) => {
            let may = match change.state {
                S::Submitted => caps.approve,
                _ => caps.authorise,
            };
            if !may {
                return Err(refuse(format!("{who} may not reject it at this stage")));
            }
            if is_requester {
                return Err(refuse(
                    "the requester cancels their change rather than rejecting it".into(),
                ));
            }
            next.outcome_reason =
                Some(non_empty(reason).ok_or_else(|| refuse("a rejection needs a reason".into()))?);
            next.state = S::Rejected;
        }
        (S::Authorised, E::Schedule) => {
            if !caps.implement && !rule_raised {
                return Err(refuse(format!("{who} may not schedule changes")));
            }
            next.state = S::Scheduled;
        }
        (S::Scheduled, E::StartTesting) => {
            may_touch_hosts(change, actor, moment).map_err(refuse)?;
            next.state = S::Testing;
        }
        (S::Testing, E::TestsPassed) => {
            reported(actor).map_err(refuse)?;
            next.tested = Some(signed());
            next.state = S::Tested;
        }
        (S::Testing, E::TestsFailed { reason }) => {
            reported(actor).map_err(refuse)?;
            next.outcome_reason =
                Some(non_empty(reason).ok_or_else(|| refuse("a failure needs a reason".into()))?);
            next.state = S::Failed;
        }
        (S::Authorised | S::Scheduled | S::Testing | S::Tested, E::Deploy) => {
            let ready = match change.state {
                S::Tested => true,
                S::Scheduled => matches!(change.testing, Testing::NotRequired { .. }),
                _ => false,
            };
            if !emergency && !ready {
                return Err(refuse(match change.state {
                    S::Authorised => "it is not scheduled yet".into(),
                    S::Testing => "its tests have not passed yet".into(),
                    _ => "its testing is required and has not been done".into(),
                }));
            }
            may_touch_hosts(change, actor, moment).map_err(refuse)?;
            next.state = S::Deploying;
        }
        (S::Deploying, E::Verified) => {
            reported(actor).map_err(refuse)?;
            next.state = S::Verified;
        }
        (S::Deploying | S::Verified, E::DeploymentFailed { reason }) => {
            reported(actor).map_err(refuse)?;
            next.outcome_reason =
                Some(non_empty(reason).ok_or_else(|| refuse("a failure needs a reason".into()))?);
            next.state = S::Failed;
        }
        (S::Failed, E::RolledBack) => {
            reported(actor).map_err(refuse)?;
            next.state = S::RolledBack;
        }
        (S::Testing | S::Tested | S::Deploying | S::Verified, E::RollBack { reason }) => {
            // A person decides it (the rollout engine halts on its own through the failure
            // events); the rollback plan was approved with the change, so an implementer
            // carries it out without a new signature.
            if !matches!(actor, ChangeActor::Person { .. }) || !caps.implement {
                return Err(refuse(format!("{who} may not roll back changes")));
            }
            next.outcome_reason =
                Some(non_empty(reason).ok_or_else(|| refuse("a rollback needs a reason".into()))?);
            next.state = S::Failed;
        }
        (S::Failed, E::RollBack { .. }) => {
            return Err(refuse("it failed already and is being rolled back".into()));
        }
        (state, E::RollBack { .. }) if !state.has_touched_hosts() => {
            return Err(refuse(
                "nothing has been installed yet: cancel it instead".into(),
            ));
        }
        (S::Deploying | S::Verified, E::RecordTesting) => {
            if !emergency {
                return Err(refuse(
                    "only an emergency change records its testing after deployment".into(),
                ));
            }
            if !caps.implement {
                return Err(refuse(format!("{who} may not record testing")));
            }
            if change.tested.is_some() {
                return Err(refuse("its testing is already recorded".into()));
            }
            next.tested = Some(signed());
        }
        (S::Verified, E::Close) => {
            if !caps.implement {
                return Err(refuse(format!("{who} may not close changes")));
            }
            if emergency && change.tested.is_none() {
                return Err(refuse(
                    "an emergency change stays open until its testing is recorded".into(),
                ));
            }
            next.closed = Some(signed());
            next.state = S::Closed;
        }
        (state, E::Cancel { reason }) if !state.has_touched_hosts() => {
            if !(is_requester || caps.implement) {
                return Err(refuse(format!(
                    "only the requester or an implementer cancels it, not {who}"
                )));
            }
            next.outcome_reason = Some(
                non_empty(reason).ok_or_else(|| refuse("a cancellation needs a reason".into()))?,
            );
            next.state = S::Cancelled;
        }
        (state, E::Cancel { .. }) => {
            return Err(refuse(format!(
                "packages have changed on hosts ({state}): it fails and rolls back instead"
            )));
        }
        (state, event) => {
            return Err(refuse(format!(
                "{} does not follow {state}{}",
                event.name(),
                expected_after(change)
            )));
        }
    }
    Ok(next)
}

/// Testing and deploying put packages on hosts: an implementer (or the server's rollout, which
/// acts on a scheduled change), inside a window and outside a freeze unless it is an
/// emergency.
fn may_touch_hosts(change: &Change, actor: &ChangeActor, moment: Moment) -> Result<(), String> {
    let may = match actor {
        ChangeActor::System => true,
        ChangeActor::Person { capacities, .. } => capacities.implement,
        ChangeActor::Rule(_) => false,
    };
    if !may {
        return Err(format!("{} may not put packages on hosts", actor.name()));
    }
    if change.kind == ChangeKind::Emergency {
        return Ok(());
    }
    if moment.in_freeze {
        return Err("a change freeze is in force and it is not an emergency".into());
    }
    if !moment.in_window {
        return Err("it is outside the hosts' maintenance window".into());
    }
    Ok(())
}

/// Results of what agents did are reported by the server, or by an implementer who ran it by
/// hand.
fn reported(actor: &ChangeActor) -> Result<(), String> {
    match actor {
        ChangeActor::System => Ok(()),
        ChangeActor::Person { capacities, .. } if capacities.implement => Ok(()),
        other => Err(format!("{} may not report results", other.name())),
    }
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A hint at what may come next, for the refusal of an event out of order.
fn expected_after(change: &Change) -> &'static str {
    use ChangeState as S;
    match change.state {
        S::Draft => " (submit it first)",
        S::Submitted => " (it needs approval first)",
        S::Approved => " (it needs authorisation first)",
        S::Authorised => " (schedule it first)",
        S::Scheduled => " (start testing first)",
        S::Testing => " (its tests are running)",
        S::Tested => " (deploy it next)",
        S::Deploying => " (it is deploying)",
        S::Verified => " (close it next)",
        S::Failed => " (roll it back)",
        _ => "",
    }
}

#[cfg(test)]
mod tests;
