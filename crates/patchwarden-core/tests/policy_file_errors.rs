//! Malformed and contradictory policy files are rejected with the line and the reason, and
//! nothing of them is applied: `Policy::parse` gives a whole policy or every problem.

use expect_test::{Expect, expect};
use patchwarden_core::policy::{Class, MAX_POLICY_BYTES, Policy, PolicyError, Reason};

/// The file's problems as `check` prints them (`org.toml:LINE: reason`).
fn check(text: &str, expect: Expect) {
    match Policy::parse(text, "org.toml") {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => expect.assert_eq(&format!("{e}\n")),
    }
}

const HEADER: &str = "[policy]\nid = \"org\"\ntitle = \"Our policy\"\n";

fn with_header(body: &str) -> String {
    format!("{HEADER}{body}")
}

#[test]
fn a_good_file_is_accepted() {
    let p = Policy::parse(
        &with_header(
            r#"
[[rule]]
id = "internet-critical"
description = "Critical on the internet: a week."
when = { cvss = ">=9.0", exposure = "internet" }
class = "high"
due = "7d"

[[override]]
vulnerability = "CVE-2024-3094"
package = "xz-utils"
class = "not_applicable"
reason = "xz 5.6 was never installed; the backdoored builds are not in our mirror."
"#,
        ),
        "org.toml",
    )
    .unwrap();
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.overrides.len(), 1);
    assert_eq!(p.overrides[0].class, Class::NotApplicable);
}

#[test]
fn toml_syntax_errors_give_the_line() {
    check(
        "[policy]\nid = \"org\ntitle = \"x\"\n",
        expect![[r#"
            org.toml:2: invalid basic string, expected `"`
        "#]],
    );
}

#[test]
fn unknown_keys_are_errors_on_their_line() {
    check(
        &with_header(
            "\n[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"high\"\nwen = { kev = true }\n",
        ),
        expect![[r#"
            org.toml:9: unknown field `wen`, expected one of `id`, `description`, `when`, `class`, `due`, `clock`, `supersede`, `milestones`, `actions`
        "#]],
    );
    check(
        &with_header(
            "\n[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"high\"\nwhen = { cvs = \">=7.0\" }\n",
        ),
        expect![[r#"
            org.toml:9: unknown field `cvs`, expected one of `kev`, `kev_known`, `kev_ransomware`, `epss`, `epss_percentile`, `cvss`, `cvss_v2`, `cvss_v3`, `cvss_v4`, `cvss_metrics`, `vendor_severity`, `cvss_known`, `no_severity`, `fix_available`, `ssvc_known`, `ssvc_exploitation`, `ssvc_automatable`, `ssvc_technical_impact`, `exposure`, `role`, `tag`, `asset_criticality`, `package`, `any`, `all`, `not`
        "#]],
    );
}

#[test]
fn values_of_the_wrong_type_are_errors_on_their_line() {
    check(
        &with_header(
            "\n[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"high\"\nwhen = { kev = \"yes\" }\n",
        ),
        expect![[r#"
            org.toml:9: invalid type: string "yes", expected a boolean
        "#]],
    );
    check(
        &with_header(
            "\n[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"high\"\nwhen = { cvss = 7.0 }\n",
        ),
        expect![[r#"
            org.toml:9: invalid type: floating point `7.0`, expected a string
        "#]],
    );
}

#[test]
fn unknown_words_list_the_known_ones() {
    check(
        &with_header(
            r#"
[[rule]]
id = "r"
description = "d"
class = "urgent"
when = { role = ["workstation", "laptop"], exposure = "dmz" }
clock = "released"
"#,
        ),
        expect![[r#"
            org.toml:8: rule `r`: class: `urgent` is not a known class; expected one of: not_applicable, low, medium, high, emergency
            org.toml:9: rule `r`: exposure: `dmz` is not a known exposure; expected one of: internet, internal, unknown
            org.toml:9: rule `r`: role: `laptop` is not a known asset role; expected one of: online_service, workstation, server, network_device, internet_facing_os
            org.toml:10: rule `r`: clock: `released` is not a known clock event; expected one of: fix_released, published, detected, kev_added, evaluated
        "#]],
    );
}

#[test]
fn bad_periods_and_thresholds() {
    check(
        &with_header(
            r#"
[[rule]]
id = "r"
description = "d"
class = "high"
due = "30 days"
when = { epss = ">=5", cvss = "7.0" }
"#,
        ),
        expect![[r#"
            org.toml:9: rule `r`: due: `30 days` is not a deadline: write a period such as `8h`, `30d`, `2w` or `1mo`, or `none` (no deadline), or `kev_due_date` (the KEV catalogue's due date)
            org.toml:10: rule `r`: epss: 5 in `>=5` is outside 0–1
            org.toml:10: rule `r`: cvss: `7.0` does not start with a comparison (>=, >, <=, <, =), as in ">=7.0"
        "#]],
    );
}

#[test]
fn two_rules_with_one_id() {
    check(
        &with_header(
            r#"
[[rule]]
id = "same"
description = "first"
class = "high"

[[rule]]
id = "same"
description = "second"
class = "low"
"#,
        ),
        expect![[r#"
            org.toml:10: rule id `same` is used twice (first on line 5): each rule needs its own id, so that decisions say which rule made them
        "#]],
    );
}

#[test]
fn conditions_that_can_never_hold() {
    check(
        &with_header(
            r#"
[[rule]]
id = "thresholds"
description = "d"
class = "high"
when = { cvss = ">=9.0", all = [{ cvss = "<7.0" }] }

[[rule]]
id = "booleans"
description = "d"
class = "high"
when = { kev = true, all = [{ kev = false }] }

[[rule]]
id = "one-string"
description = "d"
class = "high"
when = { cvss = ">=7.0, <4.0" }

[[rule]]
id = "ssvc"
description = "d"
class = "high"
when = { ssvc_known = false, ssvc_automatable = true }

[[rule]]
id = "inside-any"
description = "d"
class = "high"
when.any = [{ kev = true }, { exposure = "internet", all = [{ exposure = "internal" }] }]

[[rule]]
id = "empty-any"
description = "d"
class = "high"
when = { any = [] }
"#,
        ),
        expect![[r#"
            org.toml:9: rule `thresholds`: the condition can never hold: cvss = ">=9.0, <7.0" can never hold
            org.toml:15: rule `booleans`: the condition can never hold: kev = true and kev = false cannot both hold
            org.toml:21: rule `one-string`: cvss: `>=7.0, <4.0` can never hold: no number satisfies it
            org.toml:27: rule `ssvc`: the condition can never hold: ssvc_known = false, yet an SSVC decision point is asked for
            org.toml:33: rule `inside-any`: the condition can never hold: the exposure lists have no value in common
            org.toml:39: rule `empty-any`: any = [] says nothing: list at least one condition
        "#]],
    );
}

#[test]
fn a_higher_class_due_later_than_a_lower_one() {
    check(
        &with_header("\n[deadlines]\nemergency = \"90d\"\nlow = \"8h\"\n"),
        expect![[r#"
            org.toml:6: deadlines: emergency (90d) would be due later than high (30d); a higher class must not be due later than a lower one
            org.toml:7: deadlines: medium (60d) would be due later than low (8h); a higher class must not be due later than a lower one
        "#]],
    );
}

#[test]
fn rules_that_contradict_their_own_deadline() {
    check(
        &with_header(
            r#"
[[rule]]
id = "nothing"
description = "sets nothing"
when = { kev = true }

[[rule]]
id = "na-but-due"
description = "d"
class = "not_applicable"
due = "7d"

[[rule]]
id = "kev-date-without-kev"
description = "d"
class = "high"
due = "kev_due_date"
when = { cvss = ">=7.0" }

[[rule]]
id = "kev-clock-without-kev"
description = "d"
class = "high"
clock = "kev_added"

[[rule]]
id = "late-milestone"
description = "d"
class = "high"
due = "3d"
milestones = [{ name = "triage", within = "4d" }]

[[rule]]
id = "supersede-alone"
description = "d"
class = "high"
supersede = true
"#,
        ),
        expect![[r#"
            org.toml:5: rule `nothing`: sets neither a class nor a due date, so it would do nothing
            org.toml:10: rule `na-but-due`: a not_applicable finding cannot be due: remove due
            org.toml:16: rule `kev-date-without-kev`: due = "kev_due_date" exists only for KEV vulnerabilities: add kev = true to its condition
            org.toml:23: rule `kev-clock-without-kev`: clock = "kev_added" exists only for KEV vulnerabilities: add kev = true to its condition
            org.toml:34: rule `late-milestone`: milestone `triage` (4d) would be due after the rule's deadline (3d)
            org.toml:36: rule `supersede-alone`: supersede = true needs a due date of its own
        "#]],
    );
}

#[test]
fn overrides_need_a_reason() {
    check(
        &with_header(
            r#"
[[override]]
vulnerability = "CVE-2024-3094"
class = "not_applicable"

[[override]]
vulnerability = "CVE-2023-4863"
class = "low"
reason = "   "
"#,
        ),
        expect![[r#"
            org.toml:5: override of CVE-2024-3094: needs a reason: say why the class differs from what the rules say (it is audited)
            org.toml:12: override of CVE-2023-4863: the reason is empty
        "#]],
    );
    assert!(Reason::new("").is_err());
    assert!(Reason::new(" \t\n").is_err());
    assert_eq!(
        Reason::new(" not installed ").unwrap().as_str(),
        "not installed"
    );
    // Overrides arriving as JSON (from the server) are held to the same rule.
    let json = r#"{"vulnerability":"CVE-2024-3094","class":"low","reason":""}"#;
    assert!(serde_json::from_str::<patchwarden_core::policy::Override>(json).is_err());
}

#[test]
fn contradictory_overrides() {
    check(
        &with_header(
            r#"
[[override]]
vulnerability = "CVE-2024-3094"
class = "not_applicable"
reason = "not installed"

[[override]]
vulnerability = "cve-2024-3094"
class = "emergency"
reason = "installed everywhere"
"#,
        ),
        expect![[r#"
            org.toml:10: override of cve-2024-3094 is given twice with different classes (not_applicable and emergency): the file contradicts itself (first on line 5)
        "#]],
    );
}

#[test]
fn the_header_is_required() {
    check(
        "[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"low\"\n",
        expect![[r#"
            org.toml:1: missing field `policy`
        "#]],
    );
    check(
        "[policy]\nid = \"Our Policy\"\ntitle = \"\"\nstatus = \"draft\"\n",
        expect![[r#"
            org.toml:2: policy id `Our Policy`: use lowercase letters, digits, `-`, `_` and `.` (at most 64)
            org.toml:3: title: one line of at most 200 characters saying what the policy is
            org.toml:4: status: `draft` is not a known policy status; expected one of: final, proposed, revoked
        "#]],
    );
}

#[test]
fn clock_fallbacks_that_make_no_sense() {
    check(
        &with_header(
            "\n[clock]\nstart = \"detected\"\nfallback = [\"published\", \"detected\", \"published\"]\n",
        ),
        expect![[r#"
            org.toml:7: clock.fallback names the start event detected itself
            org.toml:7: clock.fallback names published twice
        "#]],
    );
}

#[test]
fn every_problem_is_reported_and_nothing_is_applied() {
    // Three independent mistakes: all three come back, in line order, and no policy.
    let text = with_header(
        r#"
[[rule]]
id = "a"
description = "d"
class = "hihg"

[[rule]]
id = "b"
description = "d"
class = "high"
due = "1 month"

[[override]]
vulnerability = "CVE-2024-3094"
class = "low"
"#,
    );
    let err = Policy::parse(&text, "org.toml").unwrap_err();
    let lines: Vec<Option<usize>> = err.problems().iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(8), Some(14), Some(16)]);
}

#[test]
fn hostile_nesting_is_refused_before_parsing() {
    let deep = format!(
        "{HEADER}[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"low\"\nwhen = {}{}\n",
        "{ not = ".repeat(100_000),
        "}".repeat(100_000)
    );
    check(
        &deep,
        expect![[r#"
        org.toml:8: tables and lists nest more than 32 levels deep
    "#]],
    );
}

#[test]
fn hostile_dotted_keys_are_refused_before_parsing() {
    // Dotted keys nest tables without a single bracket.
    let deep = format!(
        "{HEADER}[[rule]]\nid = \"r\"\ndescription = \"d\"\nclass = \"low\"\nwhen.{}kev = true\n",
        "not.".repeat(60)
    );
    check(
        &deep,
        expect![[r#"
            org.toml:8: tables and lists nest more than 32 levels deep
        "#]],
    );
}

#[test]
fn mutated_presets_are_errors_or_policies_never_panics() {
    // Every preset cut short and with a character replaced at many places: whatever comes
    // out, it is a policy or a list of problems with lines inside the file.
    let mut parsed = 0;
    for p in patchwarden_core::policy::PRESETS {
        let chars: Vec<char> = p.text.chars().collect();
        for at in (0..chars.len()).step_by(37) {
            let mut variants = vec![chars[..at].iter().collect::<String>()];
            for c in ['"', '{', ']', '=', '\n', '.', '[', '#'] {
                let mut v = chars.clone();
                v[at] = c;
                variants.push(v.into_iter().collect());
            }
            for text in variants {
                let lines = text.lines().count().max(1);
                if let Err(e) = Policy::parse(&text, "mutant") {
                    for problem in e.problems() {
                        assert!(problem.line.is_none_or(|l| l >= 1 && l <= lines + 1), "{e}");
                    }
                }
                parsed += 1;
            }
        }
    }
    assert!(parsed > 5000, "{parsed}");
}

#[test]
fn files_over_the_size_limit_are_refused() {
    let big = format!("{HEADER}# {}\n", "x".repeat(MAX_POLICY_BYTES));
    let err = Policy::parse(&big, "org.toml").unwrap_err();
    assert!(matches!(err, PolicyError::TooLarge { .. }), "{err}");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for text in [
        "",
        "\u{0}",
        "[[[",
        "policy = 5",
        "[policy]\nid = 5\ntitle = []",
        "\u{feff}[policy]",
    ] {
        assert!(Policy::parse(text, "org.toml").is_err(), "{text:?}");
    }
}
