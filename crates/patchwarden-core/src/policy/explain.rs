//! `--explain`: an assessment in words, for people checking why a finding is due when it is.
//!
//! It shows the class and due date and who set them, the clock, then each policy's verdict:
//! every rule that matched (the winners marked `*`), every rule that could not be decided and
//! what it lacked, and the notes. The scan command prints it under each finding; the format is
//! for reading, not parsing (the JSON output is for machines).

use std::fmt::Write as _;

use super::assess::{Assessment, ClockUse, Decision};

impl Assessment {
    /// The assessment as indented lines.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let by = |d: &Option<Decision>| d.as_ref().map_or("no rule".to_owned(), Decision::label);
        let class = self
            .class
            .map_or("unclassified".to_owned(), |c| c.to_string());
        let _ = writeln!(out, "class {class}, set by {}", by(&self.class_set_by));
        match self.due_at {
            Some(at) => {
                let _ = writeln!(out, "due {at}, set by {}", by(&self.due_set_by));
            }
            None => {
                let _ = writeln!(out, "no due date");
            }
        }
        if let Some(clock) = &self.clock {
            let _ = writeln!(out, "clock: {}", clock_words(clock));
        }
        for m in &self.milestones {
            let _ = writeln!(
                out,
                "milestone: {} by {} ({}/{})",
                m.name, m.due_at, m.policy, m.rule
            );
        }
        if !self.actions.is_empty() {
            let _ = writeln!(out, "actions: {}", self.actions.join(", "));
        }
        let winner = |policy: &str, rule: &str, d: &Option<Decision>| matches!(d, Some(Decision::Rule { policy: p, rule: r }) if p == policy && r == rule);
        for v in &self.verdicts {
            if !v.in_scope {
                let _ = writeln!(out, "{}: outside its scope: not applicable", v.policy);
                continue;
            }
            if v.matched.is_empty() && v.undecided.is_empty() {
                let _ = writeln!(out, "{}: no rule applies", v.policy);
                continue;
            }
            let _ = writeln!(out, "{}:", v.policy);
            for m in &v.matched {
                let star = if winner(&v.policy, &m.rule, &self.class_set_by)
                    || winner(&v.policy, &m.rule, &self.due_set_by)
                {
                    "*"
                } else {
                    " "
                };
                let class = m.class.map_or("no class".to_owned(), |c| c.to_string());
                let due = match (m.due, m.due_at) {
                    (_, Some(at)) => format!("due {at}"),
                    (Some(d), None) => match &m.clock {
                        Some(c) if c.started_at.is_none() => format!("due {d} after a fix"),
                        _ => format!("due {d}"),
                    },
                    (None, None) => "no due date".to_owned(),
                };
                let clock = m
                    .clock
                    .as_ref()
                    .filter(|c| c.started_at.is_some())
                    .map_or(String::new(), |c| format!(" (clock: {})", clock_words(c)));
                let _ = writeln!(
                    out,
                    " {star} {}: {class}, {due}{clock}: {}",
                    m.rule, m.description
                );
            }
            for u in &v.undecided {
                let lacking: Vec<&str> = u.missing.iter().map(|m| m.noun()).collect();
                let _ = writeln!(
                    out,
                    "   {}: undecided without {}",
                    u.rule,
                    lacking.join(", ")
                );
            }
        }
        for m in &self.missing {
            let _ = writeln!(out, "missing: {}", m.sentence());
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

fn clock_words(c: &ClockUse) -> String {
    match (c.used, c.started_at) {
        (Some(used), Some(at)) if used == c.start => format!("{used} at {at}"),
        (Some(used), Some(at)) => format!("{used} at {at} (instead of {})", c.start),
        _ => format!("waiting for {}", c.start),
    }
}
