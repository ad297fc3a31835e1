//! `patchwarden inventory --updates`: the real binary asks the real apt of a sandbox root,
//! whose sources point at a local repository of real `.deb` packages, which updates it would
//! take, and reports them in the inventory JSON with their origin and kind.

#[path = "../../patchwarden-agent/tests/support/debrepo.rs"]
mod debrepo;

use std::path::PathBuf;
use std::process::Command;

use debrepo::{AptRepo, Deb, SandboxRoot, Suite};

#[test]
fn inventory_reports_the_updates_the_hosts_apt_would_take() {
    if !debrepo::tools_present(
        "inventory_reports_the_updates_the_hosts_apt_would_take",
        debrepo::TOOLS,
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debrepo::open_up(tmp.path());
    let main = Suite::new("bookworm", "Debian", "Debian")
        .version("12.5")
        .with(Deb::new("libfoo1", "2.0-2"));
    let security = Suite::new("bookworm-security", "Debian", "Debian-Security")
        .version("12")
        .with(Deb::new("openssl", "3.0.11-1~deb12u2").field("Source", "openssl"));
    let repo = AptRepo::build(&tmp.path().join("repo"), &[main, security]);
    let root = SandboxRoot::new(&tmp.path().join("root"));
    let old = tmp.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    let installed: Vec<PathBuf> = [
        ("openssl", "3.0.11-1~deb12u1"),
        ("libfoo1", "2.0-1"),
        ("current", "1.0-1"),
    ]
    .iter()
    .map(|(n, v)| Deb::new(n, v).build(&old))
    .collect();
    root.install(&installed);
    root.write(
        "etc/apt/sources.list",
        &(repo.source_line("bookworm") + &repo.source_line("bookworm-security")),
    );
    root.write(
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    // The lists are fetched once, as an operator's `apt-get update` would.
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    root.apt(&scratch, "apt-get", &["update"]);

    let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(["inventory", "--updates", "--format", "json", "--root"])
        .arg(&root.dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["updates_checked_at"].is_string(), "{json}");
    let updates: Vec<String> = json["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {} -> {} {} {}",
                u["name"].as_str().unwrap(),
                u["installed"].as_str().unwrap(),
                u["candidate"].as_str().unwrap(),
                u["origin"].as_str().unwrap(),
                u["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            "libfoo1 2.0-1 -> 2.0-2 Debian:bookworm bugfix",
            "openssl 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2 Debian:bookworm-security security"
        ]
    );
    assert_eq!(json["packages"].as_array().unwrap().len(), 3);

    // An SBOM has no package manager to ask.
    let out = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
        .args(["inventory", "--updates", "--sbom", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
