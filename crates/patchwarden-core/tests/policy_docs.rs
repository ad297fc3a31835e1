//! Every TOML example in `docs/policy.md` is a policy file that `policy check` accepts, and
//! the seed 004 example does what the text says of it.

mod policy_support;

use std::path::Path;

use patchwarden_core::policy::{Class, Policy};
use policy_support::{AVAILABLE, Case, NOW, ts};

fn examples() -> Vec<(usize, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some((n + 2, String::new())),
            (Some(_), "```") => out.extend(current.take()),
            (Some((_, body)), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_toml_example_in_the_docs_is_a_valid_policy() {
    let examples = examples();
    assert!(examples.len() >= 4, "found {} examples", examples.len());
    for (line, body) in &examples {
        if let Err(e) = Policy::parse(body, &format!("docs/policy.md example at line {line}")) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_seed_004_example_reviews_within_four_hours_and_overrides_with_a_reason() {
    let (_, body) = examples()
        .into_iter()
        .find(|(_, b)| b.contains("id = \"xyz-networks\""))
        .unwrap();
    let xyz = Policy::parse(&body, "xyz").unwrap();
    let case = Case::new("CVE-2025-0001");
    let a = case.assessed(std::slice::from_ref(&xyz), NOW);
    assert_eq!(a.class, Some(Class::Low));
    assert_eq!(a.due_at, None);
    assert_eq!(a.milestones.len(), 1);
    assert_eq!(a.milestones[0].name, "review the patch");
    assert_eq!(
        a.milestones[0].due_at,
        ts(AVAILABLE) + jiff::SignedDuration::from_hours(4)
    );

    let mut chromium = Case::new("CVE-2023-4863").real_kev();
    chromium.finding.package = "chromium".into();
    chromium.finding.source_package = Some("chromium".into());
    let a = chromium.assessed(std::slice::from_ref(&xyz), NOW);
    assert_eq!(a.class, Some(Class::NotApplicable));
    assert!(a.milestones.is_empty());
    // The rules' verdict (an emergency) is kept beside the override.
    assert_eq!(a.verdicts[0].class, Some(Class::Emergency));
}
