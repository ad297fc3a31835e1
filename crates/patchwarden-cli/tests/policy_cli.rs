//! `patchwarden policy list|show|check`, the real binary: the presets it lists and prints are
//! the files in `crates/patchwarden-core/presets`, and `check` gives every problem with its
//! line and exits 2, or says the file is fine and exits 0.

use std::path::Path;
use std::process::{Command, Output};

fn patchwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(args)
        .output()
        .expect("the patchwarden binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn preset_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../patchwarden-core/presets"
    ))
}

#[test]
fn list_names_every_preset_file_with_its_status() {
    let o = patchwarden(&["policy", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut files: Vec<String> = std::fs::read_dir(preset_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".toml").map(str::to_owned))
        .collect();
    files.sort();
    let mut listed: Vec<String> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, files);
    let bod = out
        .lines()
        .find(|l| l.starts_with("cisa-bod-22-01 "))
        .unwrap();
    assert!(bod.contains(" revoked "), "{bod}");
    assert!(out.lines().all(|l| !l.contains("broken")), "{out}");
}

#[test]
fn show_prints_the_shipped_file() {
    for name in ["seed-default", "cisa-bod-26-04", "fedramp-rev5"] {
        let o = patchwarden(&["policy", "show", name]);
        assert_eq!(o.status.code(), Some(0));
        let file = std::fs::read_to_string(preset_dir().join(format!("{name}.toml"))).unwrap();
        assert_eq!(stdout(&o), file);
    }
    let o = patchwarden(&["policy", "show", "pci-dss-3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(
            "patchwarden: no preset is named `pci-dss-3`; the presets are: seed-default,"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_accepts_a_good_file_and_every_preset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.toml");
    std::fs::write(
        &file,
        "[policy]\nid = \"acme\"\ntitle = \"ACME\"\n\n[[rule]]\nid = \"kev\"\n\
         description = \"Exploited: a day.\"\nwhen = { kev = true }\nclass = \"emergency\"\ndue = \"1d\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let o = patchwarden(&["policy", "check", path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{path}: ok: policy acme (final, 1 rules, 0 overrides)\n")
    );
    let o = patchwarden(&["policy", "check", "essential-eight-ml3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn check_reports_every_problem_with_its_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[policy]\nid = \"bad\"\ntitle = \"Bad\"\n\n[[rule]]\nid = \"a\"\ndescription = \"d\"\n\
         class = \"hihg\"\n\n[[override]]\nvulnerability = \"CVE-2024-3094\"\nclass = \"low\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let o = patchwarden(&["policy", "check", path]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stdout(&o),
        format!(
            "{path}:8: rule `a`: class: `hihg` is not a known class; expected one of: \
             not_applicable, low, medium, high, emergency\n\
             {path}:10: override of CVE-2024-3094: needs a reason: say why the class differs \
             from what the rules say (it is audited)\n"
        )
    );
    assert_eq!(
        stderr(&o),
        format!("patchwarden: {path}: 2 problems; the policy was not used\n")
    );
}

#[test]
fn check_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let o = patchwarden(&["policy", "check", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is neither a preset"), "{}", stderr(&o));

    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"[policy]\nid = \"\xff\"\n").unwrap();
    let o = patchwarden(&["policy", "check", binary.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));

    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "#".repeat(2 << 20)).unwrap();
    let o = patchwarden(&["policy", "check", huge.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("larger than the 1048576 bytes"),
        "{}",
        stderr(&o)
    );

    let o = patchwarden(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read the policy file"),
        "{}",
        stderr(&o)
    );
}
