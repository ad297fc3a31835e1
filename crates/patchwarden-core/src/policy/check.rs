//! Checking a raw policy file and turning it into the model ([`Policy`]).
//!
//! The checker reads every word, period and threshold, and looks for what TOML cannot see:
//! two rules with one id, a rule that would do nothing, deadlines where a higher class is due
//! later than a lower one, a KEV due date on a rule that does not require KEV, overrides
//! without a reason or given twice. It collects every problem with its line and goes on, so
//! that one run of `policy check` shows them all; what it builds after a problem is never
//! returned ([`Policy::parse`] gives the problems instead). Conditions are read in
//! `check_when.rs`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;

use toml::Spanned;

use super::condition::Condition;
use super::facts::Exposure;
use super::file::{Problem, line_of};
use super::model::{
    Class, ClockPolicy, ClockStart, Deadlines, Milestone, Override, Policy, PolicyStatus, Reason,
    Rule,
};
use super::period::{Due, Period};
use super::raw::{RawClock, RawCond, RawDeadlines, RawFile, RawOverride, RawRule, Words};
use super::words::UnknownWord;

/// Turns raw structures into the model, collecting problems. What it builds after a problem
/// is never returned.
pub(super) struct Checker<'t> {
    pub(super) text: &'t str,
    pub(super) problems: Vec<Problem>,
    /// What is being read (`rule \`x\``, `scope`), to begin messages about conditions.
    pub(super) context: String,
}

/// Whether a name (policy id, rule id, action) is spelt as names may be.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

impl Checker<'_> {
    pub(super) fn problem(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let line = line_of(self.text, span.start);
        self.problems.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    /// A problem with a condition, said in the current context.
    pub(super) fn problem_at(&mut self, span: &Range<usize>, message: String) {
        let message = self.key(&message);
        self.problem(span, message);
    }

    /// A key named in the current context: "rule `x`: cvss".
    pub(super) fn key(&self, key: &str) -> String {
        if self.context.is_empty() {
            key.to_owned()
        } else {
            format!("{}: {key}", self.context)
        }
    }

    /// Reads a condition in a context and checks it can hold; a condition that already has
    /// problems is not checked further, so that one mistake gives one message.
    pub(super) fn checked_condition(
        &mut self,
        raw: Spanned<RawCond>,
        context: String,
    ) -> Condition {
        let span = raw.span();
        let before = self.problems.len();
        self.context = context;
        let c = self.condition(raw);
        if self.problems.len() == before
            && let Some(why) = c.contradiction()
        {
            let msg = format!("{}: the condition can never hold: {why}", self.context);
            self.problem(&span, msg);
        }
        self.context.clear();
        c
    }

    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// Parses one word of a closed set, reporting it on its line when it is not one.
    pub(super) fn word<T: FromStr<Err = UnknownWord>>(
        &mut self,
        s: &Spanned<String>,
        key: &str,
    ) -> Option<T> {
        match s.get_ref().parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    /// Parses a list of words; an empty list is a condition that can never hold.
    pub(super) fn words<T: FromStr<Err = UnknownWord>>(
        &mut self,
        w: &Spanned<Words>,
        key: &str,
    ) -> Vec<T> {
        let key = &self.key(key);
        if w.get_ref().0.is_empty() {
            self.problem(
                &w.span(),
                format!("{key} = [] can never hold: list at least one value"),
            );
        }
        let mut out = Vec::new();
        for s in &w.get_ref().0 {
            match s.parse() {
                Ok(v) => out.push(v),
                Err(e) => self.problem(&w.span(), format!("{key}: {e}")),
            }
        }
        out
    }

    pub(super) fn due(&mut self, s: &Spanned<String>, key: &str) -> Option<Due> {
        match s.get_ref().parse() {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    pub(super) fn period(&mut self, s: &Spanned<String>, key: &str) -> Option<Period> {
        match s.get_ref().parse() {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    pub(super) fn file(&mut self, raw: RawFile) -> Policy {
        let header = raw.policy.into_inner();
        let id = header.id.get_ref().trim().to_owned();
        if !is_name(&id) {
            self.problem(
                &header.id.span(),
                format!(
                    "policy id `{id}`: use lowercase letters, digits, `-`, `_` and `.` (at most 64)"
                ),
            );
        }
        let title = header.title.get_ref().trim().to_owned();
        if title.is_empty() || title.contains('\n') || title.len() > 200 {
            self.problem(
                &header.title.span(),
                "title: one line of at most 200 characters saying what the policy is",
            );
        }
        let status = match &header.status {
            Some(s) => self.word(s, "status").unwrap_or(PolicyStatus::Final),
            None => PolicyStatus::Final,
        };

        let clock = self.clock(raw.clock);
        let deadlines = self.deadlines(raw.deadlines);
        let unknown_exposure = raw.assume.and_then(|a| a.unknown_exposure).and_then(|s| {
            let e: Exposure = self.word(&s, "assume.unknown_exposure")?;
            if e == Exposure::Unknown {
                self.problem(
                    &s.span(),
                    "assume.unknown_exposure = \"unknown\" changes nothing: say internet or internal",
                );
            }
            Some(e)
        });
        let scope = raw
            .scope
            .map(|s| self.checked_condition(s, "scope".to_owned()));

        let mut rules = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for r in raw.rule {
            let span = r.span();
            if let Some(rule) = self.rule(r, &deadlines) {
                if let Some(first) = seen.get(&rule.id) {
                    let msg = format!(
                        "rule id `{}` is used twice (first on line {first}): each rule needs its \
                         own id, so that decisions say which rule made them",
                        rule.id
                    );
                    self.problem(&span, msg);
                } else {
                    seen.insert(rule.id.clone(), self.line(&span));
                }
                rules.push(rule);
            }
        }

        let mut overrides = Vec::new();
        // (vulnerability, host, package) → (line, class) of the first override of it.
        type Key = (String, Option<String>, Option<String>);
        let mut keys: BTreeMap<Key, (usize, Class)> = BTreeMap::new();
        for o in raw.overrides {
            let span = o.span();
            if let Some(ov) = self.override_(o) {
                let key = (
                    ov.vulnerability.to_ascii_uppercase(),
                    ov.host.clone(),
                    ov.package.clone(),
                );
                if let Some((first, class)) = keys.get(&key) {
                    let what = if *class == ov.class {
                        "is given twice".to_owned()
                    } else {
                        format!(
                            "is given twice with different classes ({class} and {}): the file \
                             contradicts itself",
                            ov.class
                        )
                    };
                    let msg = format!(
                        "override of {} {what} (first on line {first})",
                        ov.vulnerability
                    );
                    self.problem(&span, msg);
                } else {
                    keys.insert(key, (self.line(&span), ov.class));
                }
                overrides.push(ov);
            }
        }

        Policy {
            id,
            title,
            status,
            sources: header.sources,
            scope,
            clock,
            deadlines,
            unknown_exposure,
            rules,
            overrides,
        }
    }

    fn clock(&mut self, raw: Option<Spanned<RawClock>>) -> ClockPolicy {
        let mut clock = ClockPolicy {
            start: ClockStart::FixReleased,
            fallback: vec![ClockStart::Detected],
        };
        let Some(raw) = raw else {
            return clock;
        };
        let raw = raw.into_inner();
        if let Some(s) = &raw.start
            && let Some(start) = self.word(s, "clock.start")
        {
            clock.start = start;
        }
        if let Some(f) = &raw.fallback {
            // An empty list is allowed here: it means "no fallback but the evaluation".
            let mut list: Vec<ClockStart> = Vec::new();
            for s in &f.get_ref().0 {
                match s.parse::<ClockStart>() {
                    Ok(c) if c == clock.start => self.problem(
                        &f.span(),
                        format!("clock.fallback names the start event {c} itself"),
                    ),
                    Ok(c) if list.contains(&c) => {
                        self.problem(&f.span(), format!("clock.fallback names {c} twice"))
                    }
                    Ok(c) => list.push(c),
                    Err(e) => self.problem(&f.span(), format!("clock.fallback: {e}")),
                }
            }
            clock.fallback = list;
        }
        clock
    }

    fn deadlines(&mut self, raw: Option<RawDeadlines>) -> Deadlines {
        let mut d = Deadlines::default();
        let Some(raw) = raw else {
            return d;
        };
        let mut written: Vec<(Class, Range<usize>)> = Vec::new();
        for (class, value) in [
            (Class::Emergency, &raw.emergency),
            (Class::High, &raw.high),
            (Class::Medium, &raw.medium),
            (Class::Low, &raw.low),
        ] {
            let Some(s) = value else { continue };
            let key = format!("deadlines.{class}");
            let Some(due) = self.due(s, &key) else {
                continue;
            };
            if due == Due::KevDueDate {
                self.problem(
                    &s.span(),
                    format!(
                        "{key} cannot be kev_due_date: only vulnerabilities in the KEV catalogue \
                         have one; give it in a rule with kev = true"
                    ),
                );
                continue;
            }
            match class {
                Class::Emergency => d.emergency = due,
                Class::High => d.high = due,
                Class::Medium => d.medium = due,
                Class::Low => d.low = due,
                Class::NotApplicable => {}
            }
            written.push((class, s.span()));
        }
        // A higher class due later than a lower one contradicts what the classes mean, and
        // would make "the highest class and the earliest due date win" pick different rules.
        // Neighbours suffice: the order is transitive.
        for (higher, lower) in [
            (Class::Emergency, Class::High),
            (Class::High, Class::Medium),
            (Class::Medium, Class::Low),
        ] {
            let later = match (d.of(higher), d.of(lower)) {
                (Due::After(h), Due::After(l)) => h.approx_cmp(l).is_gt(),
                (Due::Never, Due::After(_)) => true,
                _ => false,
            };
            if later {
                // The line of whichever of the two the file wrote (the higher first).
                let span = written
                    .iter()
                    .find(|(c, _)| *c == higher)
                    .or_else(|| written.iter().find(|(c, _)| *c == lower))
                    .map(|(_, s)| s.clone())
                    .unwrap_or(0..0);
                self.problem(
                    &span,
                    format!(
                        "deadlines: {higher} ({}) would be due later than {lower} ({}); a higher \
                         class must not be due later than a lower one",
                        d.of(higher),
                        d.of(lower)
                    ),
                );
            }
        }
        d
    }

    fn rule(&mut self, raw: Spanned<RawRule>, deadlines: &Deadlines) -> Option<Rule> {
        let span = raw.span();
        let raw = raw.into_inner();
        let id = raw.id.get_ref().trim().to_owned();
        if !is_name(&id) {
            self.problem(
                &raw.id.span(),
                format!(
                    "rule id `{id}`: use lowercase letters, digits, `-`, `_` and `.` (at most 64)"
                ),
            );
        }
        let at = |what: &str| format!("rule `{id}`: {what}");
        let description = match &raw.description {
            Some(d) if !d.get_ref().trim().is_empty() => d.get_ref().trim().to_owned(),
            Some(d) => {
                self.problem(&d.span(), at("the description is empty"));
                String::new()
            }
            None => {
                self.problem(
                    &span,
                    at("needs a description: one or two sentences people read in --explain"),
                );
                String::new()
            }
        };
        let when = match raw.when {
            Some(w) => self.checked_condition(w, format!("rule `{id}`")),
            None => Condition::All(Vec::new()),
        };
        let class: Option<Class> = raw.class.as_ref().and_then(|c| self.word(c, &at("class")));
        let due = raw.due.as_ref().and_then(|d| self.due(d, &at("due")));
        let clock: Option<ClockStart> = raw.clock.as_ref().and_then(|c| self.word(c, &at("clock")));

        if raw.class.is_none() && raw.due.is_none() {
            self.problem(
                &span,
                at("sets neither a class nor a due date, so it would do nothing"),
            );
        }
        if class == Some(Class::NotApplicable)
            && matches!(due, Some(Due::After(_) | Due::KevDueDate))
        {
            self.problem(
                &span,
                at("a not_applicable finding cannot be due: remove due"),
            );
        }
        if raw.supersede && raw.due.is_none() {
            self.problem(&span, at("supersede = true needs a due date of its own"));
        }
        if due == Some(Due::KevDueDate) && !when.requires_kev() {
            self.problem(
                &span,
                at(
                    "due = \"kev_due_date\" exists only for KEV vulnerabilities: add kev = true to \
                    its condition",
                ),
            );
        }
        if clock == Some(ClockStart::KevAdded) && !when.requires_kev() {
            self.problem(
                &span,
                at(
                    "clock = \"kev_added\" exists only for KEV vulnerabilities: add kev = true to \
                    its condition",
                ),
            );
        }

        let rule_due = due.or_else(|| class.map(|c| deadlines.of(c)));
        let mut milestones = Vec::new();
        for m in &raw.milestones {
            let m = m.get_ref();
            let name = m.name.get_ref().trim().to_owned();
            if name.is_empty() {
                self.problem(&m.name.span(), at("a milestone needs a name"));
            }
            if milestones.iter().any(|x: &Milestone| x.name == name) {
                self.problem(
                    &m.name.span(),
                    at(&format!("milestone `{name}` is named twice")),
                );
            }
            let Some(within) = self.period(&m.within, &at("milestone within")) else {
                continue;
            };
            if let Some(Due::After(p)) = rule_due
                && within.approx_cmp(p).is_gt()
            {
                self.problem(
                    &m.within.span(),
                    at(&format!(
                        "milestone `{name}` ({within}) would be due after the rule's deadline ({p})"
                    )),
                );
            }
            milestones.push(Milestone { name, within });
        }
        let mut actions = Vec::new();
        for a in &raw.actions {
            let action = a.get_ref().trim();
            if !is_name(action) {
                self.problem(
                    &a.span(),
                    at(&format!(
                        "action `{action}`: use lowercase letters, digits, `-`, `_` and `.`"
                    )),
                );
            }
            actions.push(action.to_owned());
        }

        Some(Rule {
            id,
            description,
            when,
            class,
            due,
            clock,
            supersede: raw.supersede,
            milestones,
            actions,
        })
    }

    fn override_(&mut self, raw: Spanned<RawOverride>) -> Option<Override> {
        let span = raw.span();
        let raw = raw.into_inner();
        let vulnerability = raw.vulnerability.get_ref().trim().to_owned();
        if vulnerability.is_empty() || vulnerability.contains(char::is_whitespace) {
            self.problem(
                &raw.vulnerability.span(),
                "override: vulnerability must be an id such as CVE-2024-3094",
            );
        }
        let at = |what: &str| format!("override of {vulnerability}: {what}");
        let name = |s: &Option<Spanned<String>>, key: &str, this: &mut Self| {
            s.as_ref().map(|s| {
                let v = s.get_ref().trim().to_owned();
                if v.is_empty() || v.contains(char::is_whitespace) {
                    this.problem(
                        &s.span(),
                        at(&format!("{key} must be a name without spaces")),
                    );
                }
                v
            })
        };
        let host = name(&raw.host, "host", self);
        let package = name(&raw.package, "package", self);
        let class: Class = self.word(&raw.class, &at("class")).unwrap_or(Class::Low);
        let reason =
            match &raw.reason {
                None => {
                    self.problem(
                    &span,
                    at("needs a reason: say why the class differs from what the rules say (it is \
                        audited)"),
                );
                    None
                }
                Some(r) => match Reason::new(r.get_ref()) {
                    Ok(reason) => Some(reason),
                    Err(_) => {
                        self.problem(&r.span(), at("the reason is empty"));
                        None
                    }
                },
            };
        let due = raw.due.as_ref().and_then(|d| self.due(d, &at("due")));
        if due == Some(Due::KevDueDate)
            && let Some(d) = &raw.due
        {
            self.problem(&d.span(), at("due must be a period or none"));
        }
        if class == Class::NotApplicable && matches!(due, Some(Due::After(_))) {
            self.problem(
                &span,
                at("a not_applicable finding cannot be due: remove due"),
            );
        }
        let clock = raw.clock.as_ref().and_then(|c| self.word(c, &at("clock")));
        Some(Override {
            vulnerability,
            host,
            package,
            class,
            reason: reason?,
            due,
            clock,
        })
    }
}
