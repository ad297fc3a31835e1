//! Reading a policy file: TOML in, a checked [`Policy`] or every problem with its line out.
//!
//! The file is read in two steps. First the TOML is deserialised into raw structures that keep
//! where each value was written (`toml::Spanned`) and refuse unknown keys, so a misspelt key is
//! an error on its line rather than a silently ignored rule. Then the raw structures are
//! checked and turned into the model: words, thresholds, periods, patterns, and the
//! contradictions that TOML cannot see (two rules with one id, a condition that can never hold,
//! a higher class due later than a lower one, an override without a reason …). Every problem
//! found is reported, each with its line; a file with any problem gives no policy at all, so
//! nothing is ever half-applied.
//!
//! The format is documented for people in `docs/policy.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::condition::{Condition, CvssMajor, Glob, VendorLevel};
use super::facts::{AssetCriticality, Exposure, Role, is_tag};
use super::model::{
    Class, ClockPolicy, ClockStart, Deadlines, Milestone, Override, Policy, PolicyStatus, Reason,
    Rule,
};
use super::period::{Due, Period};
use super::ssvc::{Exploitation, TechnicalImpact};
use super::threshold::Threshold;
use super::words::UnknownWord;

/// The largest policy file accepted. Real ones are a few kilobytes; a megabyte holds thousands
/// of rules and overrides.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// How deeply tables and lists may nest. Conditions nest a few levels; the bound keeps a
/// hostile file from exhausting the stack of the recursive reader.
const MAX_NESTING: usize = 32;

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{origin}: the file is {size} bytes, more than the {limit} a policy file may have")]
    TooLarge {
        origin: String,
        size: usize,
        limit: usize,
    },
    #[error("{}", render(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl PolicyError {
    /// The problems, each with its line (one for a file that is too large).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            PolicyError::TooLarge { .. } => vec![Problem {
                line: None,
                message: self.to_string(),
            }],
            PolicyError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

/// One thing wrong with a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    pub message: String,
}

fn render(origin: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match p.line {
            Some(line) => out.push_str(&format!("{origin}:{line}: {}", p.message)),
            None => out.push_str(&format!("{origin}: {}", p.message)),
        }
    }
    out
}

impl Policy {
    /// Reads and checks a policy file. `origin` names it in errors (a path, `preset NAME`).
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                origin: origin.to_owned(),
                size: text.len(),
                limit: MAX_POLICY_BYTES,
            });
        }
        let invalid = |problems| PolicyError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        if let Some(line) = nesting_too_deep(text, MAX_NESTING) {
            return Err(invalid(vec![Problem {
                line: Some(line),
                message: format!("tables and lists nest more than {MAX_NESTING} levels deep"),
            }]));
        }
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            invalid(vec![Problem {
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_owned(),
            }])
        })?;
        let mut checker = Checker {
            text,
            problems: Vec::new(),
            context: String::new(),
        };
        let policy = checker.file(raw);
        if checker.problems.is_empty() {
            Ok(policy)
        } else {
            checker.problems.sort_by_key(|p| p.line);
            Err(invalid(checker.problems))
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// The line where tables and lists first nest deeper than `max`, outside strings and
/// comments. Nesting comes from brackets and braces, and from dotted keys (`a.b.c = 1`, in a
/// key or a `[table.header]`), so every dot counts as a level on its line, and a header's dots
/// count for the lines below it. Dots in numbers count too: that only errs on the safe side.
fn nesting_too_deep(text: &str, max: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let starts = |i: usize, s: &[u8]| bytes.get(i..i.saturating_add(s.len())) == Some(s);
    let (mut i, mut line, mut depth) = (0usize, 1usize, 0usize);
    let (mut line_dots, mut header_dots, mut header_line) = (0usize, 0usize, false);
    let mut line_start = true;
    while let Some(c) = at(i) {
        if line_start && !c.is_ascii_whitespace() {
            line_start = false;
            header_line = c == b'[' && depth == 0;
        }
        match c {
            b'\n' => {
                if header_line {
                    header_dots = line_dots;
                }
                line += 1;
                line_dots = 0;
                line_start = true;
                header_line = false;
            }
            b'#' => {
                while at(i).is_some_and(|c| c != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let triple = if c == b'"' {
                    &b"\"\"\""[..]
                } else {
                    &b"'''"[..]
                };
                let multi = starts(i, triple);
                i += if multi { 3 } else { 1 };
                loop {
                    match at(i) {
                        None => return None,
                        Some(b'\\') if c == b'"' => {
                            if at(i + 1) == Some(b'\n') {
                                line += 1;
                            }
                            i += 2;
                            continue;
                        }
                        Some(b'\n') => {
                            line += 1;
                            if !multi {
                                break;
                            }
                        }
                        Some(q) if q == c && (!multi || starts(i, triple)) => {
                            i += if multi { 3 } else { 1 };
                            break;
                        }
                        Some(_) => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => depth += 1,
            b'.' => line_dots += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth + line_dots + header_dots > max {
            return Some(line);
        }
        i += 1;
    }
    None
}

/// A string or a list of strings.
#[derive(Debug, Clone)]
struct Words(Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Words, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Words;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Words, E> {
                Ok(Words(vec![s.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Words(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: Spanned<RawHeader>,
    clock: Option<Spanned<RawClock>>,
    deadlines: Option<RawDeadlines>,
    assume: Option<RawAssume>,
    scope: Option<Spanned<RawCond>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default, rename = "override")]
    overrides: Vec<Spanned<RawOverride>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    id: Spanned<String>,
    title: Spanned<String>,
    status: Option<Spanned<String>>,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClock {
    start: Option<Spanned<String>>,
    fallback: Option<Spanned<Words>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadlines {
    emergency: Option<Spanned<String>>,
    high: Option<Spanned<String>>,
    medium: Option<Spanned<String>>,
    low: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssume {
    unknown_exposure: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    description: Option<Spanned<String>>,
    when: Option<Spanned<RawCond>>,
    class: Option<Spanned<String>>,
    due: Option<Spanned<String>>,
    clock: Option<Spanned<String>>,
    #[serde(default)]
    supersede: bool,
    #[serde(default)]
    milestones: Vec<Spanned<RawMilestone>>,
    #[serde(default)]
    actions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMilestone {
    name: Spanned<String>,
    within: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    vulnerability: Spanned<String>,
    host: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    class: Spanned<String>,
    reason: Option<Spanned<String>>,
    due: Option<Spanned<String>>,
    clock: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCond {
    kev: Option<bool>,
    kev_known: Option<bool>,
    kev_ransomware: Option<bool>,
    epss: Option<Spanned<String>>,
    epss_percentile: Option<Spanned<String>>,
    cvss: Option<Spanned<String>>,
    cvss_v2: Option<Spanned<String>>,
    cvss_v3: Option<Spanned<String>>,
    cvss_v4: Option<Spanned<String>>,
    cvss_metrics: Option<Spanned<BTreeMap<String, Words>>>,
    vendor_severity: Option<Spanned<Words>>,
    cvss_known: Option<bool>,
    no_severity: Option<bool>,
    fix_available: Option<bool>,
    ssvc_known: Option<bool>,
    ssvc_exploitation: Option<Spanned<Words>>,
    ssvc_automatable: Option<bool>,
    ssvc_technical_impact: Option<Spanned<Words>>,
    exposure: Option<Spanned<Words>>,
    role: Option<Spanned<Words>>,
    tag: Option<Spanned<Words>>,
    asset_criticality: Option<Spanned<Words>>,
    package: Option<Spanned<Words>>,
    any: Option<Spanned<Vec<Spanned<RawCond>>>>,
    all: Option<Spanned<Vec<Spanned<RawCond>>>>,
    not: Option<Box<Spanned<RawCond>>>,
}

/// Turns raw structures into the model, collecting problems. What it builds after a problem
/// is never returned.
struct Checker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
    /// What is being read (`rule \`x\``, `scope`), to begin messages about conditions.
    context: String,
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
    fn problem(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let line = line_of(self.text, span.start);
        self.problems.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    /// A problem with a condition, said in the current context.
    fn problem_at(&mut self, span: &Range<usize>, message: String) {
        let message = self.key(&message);
        self.problem(span, message);
    }

    /// A key named in the current context: "rule `x`: cvss".
    fn key(&self, key: &str) -> String {
        if self.context.is_empty() {
            key.to_owned()
        } else {
            format!("{}: {key}", self.context)
        }
    }

    /// Reads a condition in a context and checks it can hold; a condition that already has
    /// problems is not checked further, so that one mistake gives one message.
    fn checked_condition(&mut self, raw: Spanned<RawCond>, context: String) -> Condition {
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

    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// Parses one word of a closed set, reporting it on its line when it is not one.
    fn word<T: FromStr<Err = UnknownWord>>(&mut self, s: &Spanned<String>, key: &str) -> Option<T> {
        match s.get_ref().parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    /// Parses a list of words; an empty list is a condition that can never hold.
    fn words<T: FromStr<Err = UnknownWord>>(&mut self, w: &Spanned<Words>, key: &str) -> Vec<T> {
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

    fn due(&mut self, s: &Spanned<String>, key: &str) -> Option<Due> {
        match s.get_ref().parse() {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    fn period(&mut self, s: &Spanned<String>, key: &str) -> Option<Period> {
        match s.get_ref().parse() {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    fn file(&mut self, raw: RawFile) -> Policy {
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

    fn threshold(&mut self, s: &Spanned<String>, key: &str, max: f64) -> Option<Threshold> {
        match Threshold::parse(s.get_ref(), 0.0, max) {
            Ok(t) => Some(t),
            Err(e) => {
                let key = self.key(key);
                self.problem(&s.span(), format!("{key}: {e}"));
                None
            }
        }
    }

    fn condition(&mut self, raw: Spanned<RawCond>) -> Condition {
        let raw = raw.into_inner();
        let mut parts = Vec::new();
        for (value, make) in [
            (raw.kev, Condition::Kev as fn(bool) -> Condition),
            (raw.kev_known, Condition::KevKnown),
            (raw.kev_ransomware, Condition::KevRansomware),
            (raw.cvss_known, Condition::CvssKnown),
            (raw.no_severity, Condition::NoSeverity),
            (raw.fix_available, Condition::FixAvailable),
            (raw.ssvc_known, Condition::SsvcKnown),
            (raw.ssvc_automatable, Condition::SsvcAutomatable),
        ] {
            if let Some(b) = value {
                parts.push(make(b));
            }
        }
        if let Some(t) = raw
            .epss
            .as_ref()
            .and_then(|s| self.threshold(s, "epss", 1.0))
        {
            parts.push(Condition::Epss(t));
        }
        if let Some(t) = raw
            .epss_percentile
            .as_ref()
            .and_then(|s| self.threshold(s, "epss_percentile", 1.0))
        {
            parts.push(Condition::EpssPercentile(t));
        }
        for (value, major, key) in [
            (&raw.cvss, None, "cvss"),
            (&raw.cvss_v2, Some(CvssMajor::V2), "cvss_v2"),
            (&raw.cvss_v3, Some(CvssMajor::V3), "cvss_v3"),
            (&raw.cvss_v4, Some(CvssMajor::V4), "cvss_v4"),
        ] {
            if let Some(t) = value.as_ref().and_then(|s| self.threshold(s, key, 10.0)) {
                parts.push(Condition::Cvss(major, t));
            }
        }
        if let Some(m) = &raw.cvss_metrics {
            if m.get_ref().is_empty() {
                let msg = self.key("cvss_metrics = {} says nothing: name a metric");
                self.problem(&m.span(), msg);
            }
            for (metric, values) in m.get_ref() {
                let good = |s: &str| {
                    !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_alphanumeric())
                };
                if !good(metric) {
                    self.problem_at(
                        &m.span(),
                        format!(
                            "cvss_metrics: `{metric}` is not a CVSS metric abbreviation (AV, UI …)"
                        ),
                    );
                }
                if values.0.is_empty() {
                    self.problem_at(
                        &m.span(),
                        format!("cvss_metrics.{metric} = [] can never hold"),
                    );
                }
                for v in &values.0 {
                    if !good(v) {
                        self.problem_at(
                            &m.span(),
                            format!("cvss_metrics.{metric}: `{v}` is not a metric value (N, L …)"),
                        );
                    }
                }
                parts.push(Condition::CvssMetric {
                    metric: metric.clone(),
                    values: values.0.clone(),
                });
            }
        }
        if let Some(w) = &raw.vendor_severity {
            let levels: Vec<VendorLevel> = self.words(w, "vendor_severity");
            parts.push(Condition::VendorSeverity(levels));
        }
        if let Some(w) = &raw.ssvc_exploitation {
            let v: Vec<Exploitation> = self.words(w, "ssvc_exploitation");
            parts.push(Condition::SsvcExploitation(v));
        }
        if let Some(w) = &raw.ssvc_technical_impact {
            let v: Vec<TechnicalImpact> = self.words(w, "ssvc_technical_impact");
            parts.push(Condition::SsvcTechnicalImpact(v));
        }
        if let Some(w) = &raw.exposure {
            let v: Vec<Exposure> = self.words(w, "exposure");
            parts.push(Condition::Exposure(v));
        }
        if let Some(w) = &raw.role {
            let v: Vec<Role> = self.words(w, "role");
            parts.push(Condition::Role(v));
        }
        if let Some(w) = &raw.tag {
            if w.get_ref().0.is_empty() {
                self.problem_at(
                    &w.span(),
                    "tag = [] can never hold: list at least one tag".into(),
                );
            }
            for t in &w.get_ref().0 {
                if !is_tag(t) {
                    self.problem_at(
                        &w.span(),
                        format!("tag `{t}`: letters, digits, `-`, `_`, `.` or `:` (at most 64)"),
                    );
                }
            }
            parts.push(Condition::Tag(w.get_ref().0.clone()));
        }
        if let Some(w) = &raw.asset_criticality {
            let levels = self.criticality(w);
            parts.push(Condition::AssetCriticality(levels));
        }
        if let Some(w) = &raw.package {
            if w.get_ref().0.is_empty() {
                self.problem_at(
                    &w.span(),
                    "package = [] can never hold: list at least one name".into(),
                );
            }
            let mut globs = Vec::new();
            for p in &w.get_ref().0 {
                match Glob::new(p) {
                    Ok(g) => globs.push(g),
                    Err(e) => self.problem_at(&w.span(), format!("package: {e}")),
                }
            }
            parts.push(Condition::Package(globs));
        }
        for (list, is_any) in [(raw.any, true), (raw.all, false)] {
            let Some(list) = list else { continue };
            let key = if is_any { "any" } else { "all" };
            if list.get_ref().is_empty() {
                self.problem_at(
                    &list.span(),
                    format!("{key} = [] says nothing: list at least one condition"),
                );
            }
            let inner: Vec<Condition> = list
                .into_inner()
                .into_iter()
                .map(|c| self.condition(c))
                .collect();
            parts.push(if is_any {
                Condition::Any(inner)
            } else {
                Condition::All(inner)
            });
        }
        if let Some(not) = raw.not {
            let inner = self.condition(*not);
            parts.push(Condition::Not(Box::new(inner)));
        }
        Condition::All(parts)
    }

    /// `asset_criticality`: levels (`"high"`) or comparisons (`">=high"`), any mix.
    fn criticality(&mut self, w: &Spanned<Words>) -> BTreeSet<AssetCriticality> {
        let mut out = BTreeSet::new();
        if w.get_ref().0.is_empty() {
            self.problem_at(&w.span(), "asset_criticality = [] can never hold".into());
        }
        for text in &w.get_ref().0 {
            let text = text.trim();
            let (op, word) = [">=", "<=", ">", "<", "="]
                .iter()
                .find_map(|op| text.strip_prefix(op).map(|rest| (*op, rest.trim())))
                .unwrap_or(("=", text));
            let level: AssetCriticality = match word.parse() {
                Ok(l) => l,
                Err(e) => {
                    self.problem_at(&w.span(), format!("asset_criticality: {e}"));
                    continue;
                }
            };
            out.extend(AssetCriticality::ALL.iter().copied().filter(|&c| match op {
                ">=" => c >= level,
                "<=" => c <= level,
                ">" => c > level,
                "<" => c < level,
                _ => c == level,
            }));
        }
        if out.is_empty() && !w.get_ref().0.is_empty() {
            self.problem_at(
                &w.span(),
                "asset_criticality can never hold: no level satisfies it".into(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        assert_eq!(nesting_too_deep("a = [[[1]]]", 3), None);
        assert_eq!(nesting_too_deep("a = [[[[1]]]]", 3), Some(1));
        assert_eq!(nesting_too_deep("a = \"[[[[[[\"\n# {{{{{{{\n", 3), None);
        assert_eq!(
            nesting_too_deep("a = '''\n[[[[[\n'''\nb = [[[[1]]]]", 3),
            Some(4)
        );
        assert_eq!(nesting_too_deep("a = \"\\\"[[[[[[\"", 3), None);
        assert_eq!(nesting_too_deep("a = \"unterminated", 3), None);
        assert_eq!(nesting_too_deep("a.b.c = 1", 3), None);
        assert_eq!(nesting_too_deep("a.b.c.d.e = 1", 3), Some(1));
        assert_eq!(nesting_too_deep("[a.b.c]\nd.e.f = 1\n", 3), Some(2));
        assert_eq!(
            nesting_too_deep("[a.b.c]\nd = 1\n[x]\nd.e.f = 1\n", 3),
            None
        );
    }
}
