//! Assessing a finding under one or more policies: its class, its due date, and why.
//!
//! Each policy gives a verdict of its own. Within a policy every rule whose condition holds
//! takes part: the highest class among them is the policy's class and the earliest due date
//! its due date (a rule marked `supersede` replaces the others' due dates instead). Across
//! policies the same holds: the highest class and the earliest due date win, so an
//! organisation can layer its own file on top of the presets it answers to, and a finding is
//! never given more time than the strictest of them allows. Ties go to the policy and rule
//! written first.
//!
//! An override (an operator's decision, or an `[[override]]` in a file) takes precedence over
//! every rule; the rules' verdicts are still recorded beside it. Nothing here reads the clock:
//! `now` is a parameter, used only where an `evaluated` clock has no earlier evaluation to
//! start from.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::condition::{Context, Missing, Truth};
use super::facts::{Exposure, FindingFacts, Lookup};
use super::model::{Class, ClockStart, Override, Policy, Rule};
use super::period::Due;

/// What the policies decided for one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// `None` when no rule of any policy applied (and no override did).
    pub class: Option<Class>,
    pub class_set_by: Option<Decision>,
    /// `None`: no deadline (not applicable, no rule gives one, or its clock has not started —
    /// no fix has been released yet).
    pub due_at: Option<Timestamp>,
    pub due_set_by: Option<Decision>,
    /// The clock of the due date that won.
    pub clock: Option<ClockUse>,
    /// Intermediate deadlines of the matching rules, earliest first.
    pub milestones: Vec<MilestoneDue>,
    /// What else the matching rules demand (`forensic_triage`).
    pub actions: Vec<String>,
    /// Each policy's own verdict, in the order the policies were given: every rule that
    /// matched and every rule that could not be decided.
    pub verdicts: Vec<Verdict>,
    /// Facts that were missing, with the rules they left undecided.
    pub missing: Vec<MissingFact>,
    /// Assumptions made and fallbacks taken, in words.
    pub notes: Vec<String>,
}

/// Who decided a class or a due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Decision {
    /// A rule of a policy.
    Rule { policy: String, rule: String },
    /// The asset is outside the policy's scope.
    Scope { policy: String },
    /// An override: from a policy file (`policy` names it) or an operator (`policy` is `None`).
    Override {
        policy: Option<String>,
        vulnerability: String,
        reason: String,
    },
    /// The default deadline of a class under a policy (an override gave the class but no due
    /// date).
    ClassDeadline { policy: String, class: Class },
}

impl Decision {
    /// `policy/rule`, `policy (scope)`, `override: reason` — for one-line explanations.
    pub fn label(&self) -> String {
        match self {
            Decision::Rule { policy, rule } => format!("{policy}/{rule}"),
            Decision::Scope { policy } => format!("{policy} (outside its scope)"),
            Decision::Override {
                policy: Some(p),
                reason,
                ..
            } => format!("override in {p}: {reason}"),
            Decision::Override {
                policy: None,
                reason,
                ..
            } => format!("override: {reason}"),
            Decision::ClassDeadline { policy, class } => {
                format!("{policy} (default deadline of {class})")
            }
        }
    }

    fn policy(&self) -> Option<&str> {
        match self {
            Decision::Rule { policy, .. }
            | Decision::Scope { policy }
            | Decision::ClassDeadline { policy, .. } => Some(policy),
            Decision::Override { policy, .. } => policy.as_deref(),
        }
    }

    fn rule(&self) -> Option<&str> {
        match self {
            Decision::Rule { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

/// Which event a clock started at, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockUse {
    /// The event the rule counts from.
    pub start: ClockStart,
    /// The event actually used: `start`, or a fallback when its time is not known; `None`
    /// while the clock has not started (no fix released yet).
    pub used: Option<ClockStart>,
    pub started_at: Option<Timestamp>,
    /// Why `used` differs from `start`, or why the clock has not started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One policy's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub policy: String,
    /// False when the asset is outside the policy's scope (the class is then not applicable).
    pub in_scope: bool,
    pub class: Option<Class>,
    pub class_rule: Option<String>,
    pub due_at: Option<Timestamp>,
    pub due_rule: Option<String>,
    pub clock: Option<ClockUse>,
    pub matched: Vec<RuleMatch>,
    pub undecided: Vec<Undecided>,
}

/// A rule whose condition held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    pub rule: String,
    pub description: String,
    pub class: Option<Class>,
    /// The rule's deadline as written (or its class's).
    pub due: Option<Due>,
    pub due_at: Option<Timestamp>,
    pub clock: Option<ClockUse>,
    pub supersede: bool,
}

/// A rule that could not be decided for lack of facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undecided {
    pub rule: String,
    pub missing: Vec<Missing>,
}

/// A fact that was missing, and the rules (`policy/rule`) it left undecided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingFact {
    pub fact: Missing,
    pub rules: Vec<String>,
}

impl MissingFact {
    /// "classified without SSVC data (undecided: cisa-bod-26-04/row-15 …)".
    pub fn sentence(&self) -> String {
        format!(
            "classified without {} (undecided: {})",
            self.fact.noun(),
            self.rules.join(", ")
        )
    }
}

/// A milestone's deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MilestoneDue {
    pub name: String,
    pub due_at: Timestamp,
    pub policy: String,
    pub rule: String,
}

/// How a due date compares with now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    OnTime,
    /// Due within the window.
    DueSoon,
    /// Past due.
    Breached,
}

/// Whether a finding due at `due_at` is on time, due soon (within `due_soon_window`) or
/// breached at `now`. A finding is breached once `now` is past its due time; at the due time
/// itself it is still due soon.
pub fn sla_status(due_at: Timestamp, now: Timestamp, due_soon_window: SignedDuration) -> SlaStatus {
    if now > due_at {
        SlaStatus::Breached
    } else if due_at.duration_since(now) <= due_soon_window {
        SlaStatus::DueSoon
    } else {
        SlaStatus::OnTime
    }
}

/// The policy fields for a scan's JSON output: `{preset, rule, clock_start, clock_started_at}`
/// of the decision that set the due date (or the class, when nothing set a due date), and the
/// class's own decider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    pub preset: Option<String>,
    pub rule: Option<String>,
    pub clock_start: Option<ClockStart>,
    pub clock_started_at: Option<Timestamp>,
    pub class_preset: Option<String>,
    pub class_rule: Option<String>,
}

impl Assessment {
    pub fn summary(&self) -> PolicySummary {
        let due = self.due_set_by.as_ref().or(self.class_set_by.as_ref());
        PolicySummary {
            preset: due.and_then(|d| d.policy().map(str::to_owned)),
            rule: due.and_then(|d| d.rule().map(str::to_owned)),
            clock_start: self.clock.as_ref().and_then(|c| c.used),
            clock_started_at: self.clock.as_ref().and_then(|c| c.started_at),
            class_preset: self
                .class_set_by
                .as_ref()
                .and_then(|d| d.policy().map(str::to_owned)),
            class_rule: self
                .class_set_by
                .as_ref()
                .and_then(|d| d.rule().map(str::to_owned)),
        }
    }

    /// The missing facts as sentences.
    pub fn missing_sentences(&self) -> Vec<String> {
        self.missing.iter().map(MissingFact::sentence).collect()
    }
}

/// Assesses one finding under the given policies, in the order given.
pub fn assess(policies: &[Policy], facts: &FindingFacts<'_>, now: Timestamp) -> Assessment {
    assess_with(policies, facts, now, Notes::full())
}

/// The class and the due date [`assess`] gives, with who decided each (`class`,
/// `class_set_by`, `due_at`, `due_set_by`: always the same as `assess`'s), without the
/// explanation around them: no verdicts, notes, milestones, actions or missing facts, and no
/// note on the clock. For a server classifying every finding of every host it holds (600 a
/// host), where only the decision is kept and the words were most of the work; the explanation
/// is for `scan` and `explain`, one finding at a time.
pub fn classify(policies: &[Policy], facts: &FindingFacts<'_>, now: Timestamp) -> Assessment {
    assess_with(policies, facts, now, Notes::none())
}

/// The notes of an assessment, or none at all: then nothing is worded.
struct Notes {
    words: bool,
    lines: Vec<String>,
}

impl Notes {
    fn full() -> Notes {
        Notes {
            words: true,
            lines: Vec::new(),
        }
    }

    fn none() -> Notes {
        Notes {
            words: false,
            lines: Vec::new(),
        }
    }

    fn push(&mut self, line: impl FnOnce() -> String) {
        if self.words {
            self.lines.push(line());
        }
    }

    /// `text`, when words are wanted.
    fn say(&self, text: impl FnOnce() -> String) -> Option<String> {
        self.words.then(text)
    }
}

fn assess_with(
    policies: &[Policy],
    facts: &FindingFacts<'_>,
    now: Timestamp,
    mut notes: Notes,
) -> Assessment {
    let verdicts: Vec<Verdict> = policies
        .iter()
        .map(|p| verdict(p, facts, now, &mut notes))
        .collect();

    let mut out = Assessment {
        class: None,
        class_set_by: None,
        due_at: None,
        due_set_by: None,
        clock: None,
        milestones: Vec::new(),
        actions: Vec::new(),
        verdicts: Vec::new(),
        missing: Vec::new(),
        notes: Vec::new(),
    };

    // The highest class; the first policy on ties. (The policy's name is its own, not the
    // verdict's copy, which `classify` leaves empty.)
    for (p, v) in policies.iter().zip(&verdicts) {
        let Some(class) = v.class else { continue };
        if out.class.is_none_or(|c| class > c) {
            out.class = Some(class);
            out.class_set_by = Some(match &v.class_rule {
                Some(rule) => Decision::Rule {
                    policy: p.id.clone(),
                    rule: rule.clone(),
                },
                None => Decision::Scope {
                    policy: p.id.clone(),
                },
            });
        }
    }
    // The earliest due date; the first policy on ties.
    for (p, v) in policies.iter().zip(&verdicts) {
        let (Some(at), Some(rule)) = (v.due_at, &v.due_rule) else {
            continue;
        };
        if out.due_at.is_none_or(|d| at < d) {
            out.due_at = Some(at);
            out.due_set_by = Some(Decision::Rule {
                policy: p.id.clone(),
                rule: rule.clone(),
            });
            out.clock = v.clock.clone();
        }
    }
    // Nothing is due: say which clock is waiting (a fix not yet released), if any.
    if out.due_at.is_none() {
        out.clock = verdicts
            .iter()
            .find(|v| v.clock.as_ref().is_some_and(|c| c.started_at.is_none()))
            .and_then(|v| v.clock.clone());
    }

    let chosen = choose_override(policies, facts, &mut notes);
    if let Some((policy, ov)) = chosen {
        apply_override(&mut out, policies, policy, ov, facts, now, &mut notes);
    }

    if !notes.words {
        return out;
    }

    if out.class != Some(Class::NotApplicable) {
        let mut milestones: BTreeMap<String, MilestoneDue> = BTreeMap::new();
        let mut actions = Vec::new();
        for (policy, v) in policies.iter().zip(&verdicts) {
            for m in &v.matched {
                let Some(rule) = policy.rules.iter().find(|r| r.id == m.rule) else {
                    continue;
                };
                actions.extend(rule.actions.iter().cloned());
                let Some(start) = m.clock.as_ref().and_then(|c| c.started_at) else {
                    continue;
                };
                for ms in &rule.milestones {
                    let Some(due_at) = ms.within.after(start) else {
                        continue;
                    };
                    let earlier = milestones
                        .get(&ms.name)
                        .is_none_or(|old| due_at < old.due_at);
                    if earlier {
                        milestones.insert(
                            ms.name.clone(),
                            MilestoneDue {
                                name: ms.name.clone(),
                                due_at,
                                policy: policy.id.clone(),
                                rule: rule.id.clone(),
                            },
                        );
                    }
                }
            }
        }
        let mut milestones: Vec<MilestoneDue> = milestones.into_values().collect();
        milestones.sort_by_key(|m| m.due_at);
        actions.sort();
        actions.dedup();
        out.milestones = milestones;
        out.actions = actions;
    }

    let mut missing: BTreeMap<Missing, Vec<String>> = BTreeMap::new();
    for v in &verdicts {
        for u in &v.undecided {
            for m in &u.missing {
                missing
                    .entry(*m)
                    .or_default()
                    .push(format!("{}/{}", v.policy, u.rule));
            }
        }
    }
    out.missing = missing
        .into_iter()
        .map(|(fact, rules)| MissingFact { fact, rules })
        .collect();
    let mut notes = notes.lines;
    if let Some(c) = out.clock.as_ref().and_then(|c| c.note.clone()) {
        notes.push(c);
    }
    notes.dedup();
    out.notes = notes;
    out.verdicts = verdicts;
    out
}

/// One policy's verdict on one finding.
fn verdict(
    policy: &Policy,
    facts: &FindingFacts<'_>,
    now: Timestamp,
    notes: &mut Notes,
) -> Verdict {
    let mut v = Verdict {
        policy: notes.say(|| policy.id.clone()).unwrap_or_default(),
        in_scope: true,
        class: None,
        class_rule: None,
        due_at: None,
        due_rule: None,
        clock: None,
        matched: Vec::new(),
        undecided: Vec::new(),
    };
    let mut exposure = facts.asset.exposure;
    if exposure == Exposure::Unknown
        && let Some(assumed) = policy.unknown_exposure
    {
        exposure = assumed;
        notes.push(|| {
            format!(
                "the asset's exposure is not labelled: {} counts it as {assumed}",
                policy.id
            )
        });
    }
    let cx = Context::new(facts, exposure);

    if let Some(scope) = &policy.scope {
        match scope.eval(&cx) {
            Truth::False => {
                v.in_scope = false;
                v.class = Some(Class::NotApplicable);
                return v;
            }
            Truth::Unknown(missing) => notes.push(|| {
                format!(
                    "{} applied although its scope ({scope}) could not be decided without {}",
                    policy.id,
                    missing
                        .iter()
                        .map(|m| m.noun())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
            Truth::True => {}
        }
    }

    // The rule of each match, beside it: `classify` does not copy rule ids into the matches.
    let mut matched_rules: Vec<&Rule> = Vec::new();
    for rule in &policy.rules {
        match rule.when.eval(&cx) {
            Truth::True => {
                let due = rule.effective_due(&policy.deadlines);
                let (due_at, clock) = match due {
                    Some(d) => due_for(rule, d, policy, facts, now, notes),
                    None => (None, None),
                };
                matched_rules.push(rule);
                v.matched.push(RuleMatch {
                    rule: notes.say(|| rule.id.clone()).unwrap_or_default(),
                    description: notes.say(|| rule.description.clone()).unwrap_or_default(),
                    class: rule.class,
                    due,
                    due_at,
                    clock,
                    supersede: rule.supersede,
                });
            }
            // Undecided rules only explain (the missing facts): nothing is decided by them.
            Truth::Unknown(missing) if notes.words => v.undecided.push(Undecided {
                rule: rule.id.clone(),
                missing: missing.into_iter().collect(),
            }),
            Truth::Unknown(_) => {}
            Truth::False => {}
        }
    }

    for (m, rule) in v.matched.iter().zip(&matched_rules) {
        if let Some(class) = m.class
            && v.class.is_none_or(|c| class > c)
        {
            v.class = Some(class);
            v.class_rule = Some(rule.id.clone());
        }
    }
    let superseding = v.matched.iter().any(|m| m.supersede);
    let mut waiting: Option<&RuleMatch> = None;
    for (m, rule) in v
        .matched
        .iter()
        .zip(&matched_rules)
        .filter(|(m, _)| !superseding || m.supersede)
    {
        match m.due_at {
            Some(at) if v.due_at.is_none_or(|d| at < d) => {
                v.due_at = Some(at);
                v.due_rule = Some(rule.id.clone());
                v.clock = m.clock.clone();
            }
            None if waiting.is_none()
                && m.clock.as_ref().is_some_and(|c| c.started_at.is_none()) =>
            {
                waiting = Some(m);
            }
            _ => {}
        }
    }
    if v.due_at.is_none() {
        v.clock = waiting.and_then(|m| m.clock.clone());
    }
    v
}

/// A rule's due date and the clock it counts from.
fn due_for(
    rule: &Rule,
    due: Due,
    policy: &Policy,
    facts: &FindingFacts<'_>,
    now: Timestamp,
    notes: &Notes,
) -> (Option<Timestamp>, Option<ClockUse>) {
    match due {
        // No deadline, but milestones still count from the rule's clock (seed 004's review).
        Due::Never if !rule.milestones.is_empty() => {
            let start = rule.clock.unwrap_or(policy.clock.start);
            (
                None,
                Some(resolve_clock(
                    start,
                    &policy.clock.fallback,
                    facts,
                    now,
                    notes,
                )),
            )
        }
        Due::Never => (None, None),
        Due::KevDueDate => match facts.kev.listed() {
            Some(kev) => {
                let started = start_of_day(kev.date_added);
                // The catalogue gives a day: the finding is due by the end of it (UTC).
                let due_at = kev
                    .due_date
                    .tomorrow()
                    .ok()
                    .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                    .map(|z| z.timestamp());
                let clock = ClockUse {
                    start: ClockStart::KevAdded,
                    used: Some(ClockStart::KevAdded),
                    started_at: started,
                    note: None,
                };
                (due_at, Some(clock))
            }
            None => (None, None),
        },
        Due::After(period) => {
            let start = rule.clock.unwrap_or(policy.clock.start);
            let clock = resolve_clock(start, &policy.clock.fallback, facts, now, notes);
            let due_at = clock.started_at.and_then(|t| period.after(t));
            (due_at, Some(clock))
        }
    }
}

/// When an event happened, as far as the facts say.
enum EventTime {
    At(Timestamp),
    /// It happened (or may have), but its time is not known.
    Unknown,
    /// It has not happened: no fix has been released.
    NotYet,
}

fn event_time(event: ClockStart, facts: &FindingFacts<'_>, now: Timestamp) -> EventTime {
    let known = |t: Option<Timestamp>| t.map_or(EventTime::Unknown, EventTime::At);
    match event {
        ClockStart::FixReleased => {
            if facts.finding.fixed.is_none() {
                EventTime::NotYet
            } else {
                known(facts.finding.available_at)
            }
        }
        ClockStart::Published => known(facts.finding.published_at),
        ClockStart::Detected => known(facts.detected_at),
        ClockStart::KevAdded => match facts.kev {
            Lookup::Listed(k) => known(start_of_day(k.date_added)),
            _ => EventTime::Unknown,
        },
        // An evaluation is happening now, if none was recorded before.
        ClockStart::Evaluated => EventTime::At(facts.evaluated_at.unwrap_or(now)),
    }
}

/// The clock of a rule: its event, else the first fallback whose time is known, else the
/// evaluation. A clock counting from the fix's release waits while no fix exists: deadlines
/// "of availability" cannot run before there is anything to install.
fn resolve_clock(
    start: ClockStart,
    fallback: &[ClockStart],
    facts: &FindingFacts<'_>,
    now: Timestamp,
    notes: &Notes,
) -> ClockUse {
    match event_time(start, facts, now) {
        EventTime::At(t) => ClockUse {
            start,
            used: Some(start),
            started_at: Some(t),
            note: None,
        },
        EventTime::NotYet => ClockUse {
            start,
            used: None,
            started_at: None,
            note: notes.say(|| "no fix has been released: the clock starts when one is".to_owned()),
        },
        EventTime::Unknown => {
            for &f in fallback
                .iter()
                .chain(std::iter::once(&ClockStart::Evaluated))
            {
                if let EventTime::At(t) = event_time(f, facts, now) {
                    let evaluated_now = f == ClockStart::Evaluated && facts.evaluated_at.is_none();
                    return ClockUse {
                        start,
                        used: Some(f),
                        started_at: Some(t),
                        note: notes.say(|| {
                            format!(
                                "the time of {start} is not known: the clock started at {f}{}",
                                if evaluated_now {
                                    " (this evaluation)"
                                } else {
                                    ""
                                }
                            )
                        }),
                    };
                }
            }
            // `evaluated` is always known, so this is not reached; stay honest if it were.
            ClockUse {
                start,
                used: None,
                started_at: None,
                note: notes.say(|| format!("the time of {start} is not known")),
            }
        }
    }
}

fn start_of_day(date: jiff::civil::Date) -> Option<Timestamp> {
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The override that applies: the operator's, else the most specific one in the files (the
/// first policy's on ties).
fn choose_override<'p>(
    policies: &'p [Policy],
    facts: &FindingFacts<'p>,
    notes: &mut Notes,
) -> Option<(Option<&'p Policy>, &'p Override)> {
    if let Some(ov) = facts.manual_override {
        if ov.applies(facts.finding, facts.host) {
            return Some((None, ov));
        }
        notes.push(|| {
            format!(
                "the operator's override of {} does not concern this finding and was not applied",
                ov.vulnerability
            )
        });
    }
    let mut best: Option<(&Policy, &Override)> = None;
    for p in policies {
        for ov in &p.overrides {
            if ov.applies(facts.finding, facts.host)
                && best.is_none_or(|(_, b)| ov.specificity() > b.specificity())
            {
                best = Some((p, ov));
            }
        }
    }
    best.map(|(p, ov)| (Some(p), ov))
}

fn apply_override(
    out: &mut Assessment,
    policies: &[Policy],
    policy: Option<&Policy>,
    ov: &Override,
    facts: &FindingFacts<'_>,
    now: Timestamp,
    notes: &mut Notes,
) {
    let decision = Decision::Override {
        policy: policy.map(|p| p.id.clone()),
        vulnerability: ov.vulnerability.clone(),
        reason: ov.reason.to_string(),
    };
    if let Some(before) = out.class
        && before != ov.class
    {
        notes.push(|| {
            format!(
                "the rules said {before}; {} says {}",
                decision.label(),
                ov.class
            )
        });
    }
    out.class = Some(ov.class);
    out.class_set_by = Some(decision.clone());
    out.due_at = None;
    out.due_set_by = None;
    out.clock = None;
    if ov.class == Class::NotApplicable {
        out.due_set_by = Some(decision);
        return;
    }
    match ov.due {
        Some(Due::Never) | Some(Due::KevDueDate) => {
            out.due_set_by = Some(decision);
        }
        Some(Due::After(period)) => {
            let start = ov.clock.unwrap_or(ClockStart::Evaluated);
            let fallback = policy.map_or(&[][..], |p| &p.clock.fallback[..]);
            let clock = resolve_clock(start, fallback, facts, now, notes);
            out.due_at = clock.started_at.and_then(|t| period.after(t));
            out.due_set_by = Some(decision);
            out.clock = Some(clock);
        }
        None => {
            // The class's own deadline under each policy, counted from its default clock;
            // the earliest wins, as everywhere.
            for p in policies {
                let Due::After(period) = p.deadlines.of(ov.class) else {
                    continue;
                };
                let clock = resolve_clock(p.clock.start, &p.clock.fallback, facts, now, notes);
                let Some(at) = clock.started_at.and_then(|t| period.after(t)) else {
                    continue;
                };
                if out.due_at.is_none_or(|d| at < d) {
                    out.due_at = Some(at);
                    out.due_set_by = Some(Decision::ClassDeadline {
                        policy: p.id.clone(),
                        class: ov.class,
                    });
                    out.clock = Some(clock);
                }
            }
        }
    }
}
