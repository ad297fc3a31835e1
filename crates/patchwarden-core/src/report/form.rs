//! The patch control form (seed 000 Appendix A) of one change, as labelled fields in the
//! form's sections and the signature lines a person signs on paper.

use serde::{Deserialize, Serialize};

use super::{ChangeRecord, InstallOutcome, day, kind_name, list_or, when};
use crate::change::{ChangeKind, Signed, Testing};

/// A section of the form: a heading and its fields (label, value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormSection {
    pub heading: String,
    pub fields: Vec<(String, String)>,
}

/// A signature line: who signs (their part), the name and date the record holds, and the
/// space for the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormSignature {
    pub role: String,
    pub name: String,
    pub date: String,
}

/// The filled-in form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlForm {
    pub number: String,
    pub title: String,
    pub sections: Vec<FormSection>,
    pub signatures: Vec<FormSignature>,
}

fn section(heading: &str, fields: Vec<(&str, String)>) -> FormSection {
    FormSection {
        heading: heading.to_owned(),
        fields: fields.into_iter().map(|(l, v)| (l.to_owned(), v)).collect(),
    }
}

fn signed(s: &Option<Signed>) -> (String, String) {
    match s {
        Some(s) => (s.by.clone(), day(s.at)),
        None => (String::new(), String::new()),
    }
}

/// The form of `c`.
pub fn control_form(c: &ChangeRecord) -> ControlForm {
    let ch = &c.change;
    let criticality = match ch.kind {
        ChangeKind::Emergency => {
            "Emergency: an imminent threat; may deploy before testing and outside a window"
        }
        ChangeKind::Normal => "Normal: approved, authorised, tested, deployed in a window",
        ChangeKind::Standard => "Standard: low risk, pre-approved by a rule of the policy",
    };
    let (testing_required, not_testing) = match &ch.testing {
        Testing::Required => ("YES".to_owned(), String::new()),
        Testing::NotRequired { reason } => ("NO".to_owned(), reason.clone()),
    };
    let installs: Vec<String> = c
        .rings
        .iter()
        .map(|r| {
            let ok = r
                .installs
                .iter()
                .filter(|i| i.outcome == InstallOutcome::Succeeded)
                .count();
            let failed = r
                .installs
                .iter()
                .filter(|i| matches!(i.outcome, InstallOutcome::Failed | InstallOutcome::Refused))
                .count();
            format!(
                "ring {}{}: {} hosts, {ok} succeeded, {failed} failed{}{}",
                r.name,
                if r.test { " (test)" } else { "" },
                r.installs.len(),
                r.started_at
                    .map(|t| format!(", started {}", when(t)))
                    .unwrap_or_default(),
                r.verified_at
                    .map(|t| format!(", verified {}", when(t)))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let hotfix = match &ch.hotfix {
        None => "not a hotfix".to_owned(),
        Some(h) => format!(
            "specific issue: {}; documentation reviewed: {}; tested in a test environment: {}; \
             greater risk not applying: {}",
            yes(h.specific_issue),
            yes(h.documentation_reviewed),
            yes(h.tested_in_test_environment),
            yes(h.greater_risk_not_applying)
        ),
    };
    let sections = vec![
        section(
            "Patch information",
            vec![
                ("System Affected", list_or(&c.systems, "none")),
                ("Patch Request No", c.number.clone()),
                ("Requested by", ch.requester.clone()),
                ("Date Requested", day(c.created_at)),
            ],
        ),
        section(
            "Description of patch",
            vec![
                ("Title", c.title.clone()),
                ("Patches", list_or(&c.patches, "none")),
                ("Risk Rating", c.risk.clone()),
                ("Hotfix conditions", hotfix),
            ],
        ),
        section(
            "Business justification",
            vec![("Justification", ch.justification.clone())],
        ),
        section(
            "Nature and priority",
            vec![
                ("Criticality", format!("{} change", kind_name(ch.kind))),
                ("Why", criticality.to_owned()),
                ("Priority", c.priority.clone()),
            ],
        ),
        section(
            "Testing of changes",
            vec![
                ("Testing Required", testing_required),
                ("If NO, reason for not testing", not_testing),
                (
                    "Testing documentation attached",
                    match &ch.tested {
                        Some(t) => format!("YES: tests passed, recorded {}", when(t.at)),
                        None => "NO".to_owned(),
                    },
                ),
            ],
        ),
        section(
            "Implementation",
            vec![
                (
                    "Window",
                    match c.window {
                        Some((a, b)) => format!("{} to {}", when(a), when(b)),
                        None => "none scheduled".to_owned(),
                    },
                ),
                ("Restart order", list_or(&c.restart_order, "none")),
                ("Reboot allowed", yes(c.reboot_allowed).to_owned()),
                ("Rollout", list_or(&installs, "not started")),
                ("State", ch.state.as_str().replace('_', " ")),
                ("Outcome", ch.outcome_reason.clone().unwrap_or_default()),
            ],
        ),
        section(
            "Rollback plan",
            vec![("Rollback plan", ch.rollback_plan.clone())],
        ),
    ];
    let sig = |role: &str, s: &Option<Signed>| {
        let (name, date) = signed(s);
        FormSignature {
            role: role.to_owned(),
            name,
            date,
        }
    };
    let signatures = vec![
        sig("Requested by", &ch.submitted),
        sig("Approved by", &ch.approved),
        sig("Authorised by", &ch.authorised),
        sig("Tested by (where applicable)", &ch.tested),
        sig("Patch Implemented by", &ch.closed),
    ];
    ControlForm {
        number: c.number.clone(),
        title: c.title.clone(),
        sections,
        signatures,
    }
}

fn yes(b: bool) -> &'static str {
    if b { "YES" } else { "NO" }
}
