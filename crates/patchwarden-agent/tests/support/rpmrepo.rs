//! Test support: real `.rpm` packages (`rpmbuild` of a minimal spec), local dnf repositories
//! (`createrepo_c`, with an `updateinfo.xml` added by `modifyrepo_c`) and rpm sandbox roots
//! (`rpm --root … -i`), for every test that needs dnf or rpm to look at a machine that is
//! not this one.
//!
//! Include it with `#[path = "support/rpmrepo.rs"] mod rpmrepo;` together with
//! `support/debrepo.rs`, whose `run` and `tools_present` it uses.

#![allow(dead_code)] // Each test file uses the part it needs.
#![allow(unreachable_pub)] // `pub` is for the test files that include this module.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Debian package that provides each tool the helpers and dnf tests run.
pub const TOOLS: &[(&str, &str)] = &[
    ("rpmbuild", "rpm"),
    ("rpm", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("dnf", "dnf"),
];

/// A binary rpm to build.
#[derive(Debug, Clone)]
pub struct Rpm {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
}

impl Rpm {
    pub fn new(name: &str, version: &str, release: &str) -> Rpm {
        Rpm {
            name: name.into(),
            epoch: None,
            version: version.into(),
            release: release.into(),
        }
    }

    pub fn epoch(mut self, e: u32) -> Rpm {
        self.epoch = Some(e);
        self
    }

    /// The file name rpmbuild gives it.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.noarch.rpm", self.name, self.version, self.release)
    }

    /// Builds the package (noarch, one small file) with `rpmbuild -bb` into `out_dir`.
    pub fn build(&self, work: &Path, out_dir: &Path) -> PathBuf {
        let top = work.join("rpmbuild");
        fs::create_dir_all(&top).expect("rpmbuild dir");
        let epoch = self
            .epoch
            .map(|e| format!("Epoch: {e}\n"))
            .unwrap_or_default();
        let spec = format!(
            "Name: {n}\nVersion: {v}\nRelease: {r}\n{epoch}Summary: test package {n}\nLicense: MIT\n\
             BuildArch: noarch\n%description\nA test package.\n%install\n\
             mkdir -p %{{buildroot}}/usr/share/doc/{n}\n\
             echo {v}-{r} > %{{buildroot}}/usr/share/doc/{n}/VERSION\n\
             %files\n/usr/share/doc/{n}/VERSION\n",
            n = self.name,
            v = self.version,
            r = self.release,
        );
        let spec_path = top.join(format!(
            "{}-{}-{}.spec",
            self.name, self.version, self.release
        ));
        fs::write(&spec_path, spec).expect("write spec");
        super::debrepo::run(
            Command::new("rpmbuild")
                .arg("-bb")
                .arg("--quiet")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .arg("--define")
                .arg(format!("_rpmdir {}", out_dir.display()))
                .args(["--define", "_build_id_links none"])
                .arg(&spec_path)
                .stdout(Stdio::null()),
        );
        // rpmbuild's default layout puts it under the architecture's folder.
        out_dir.join("noarch").join(self.file_name())
    }
}

/// One advisory of an `updateinfo.xml`.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    /// `security`, `bugfix`, `enhancement` …
    pub kind: String,
    pub severity: Option<String>,
    pub packages: Vec<Rpm>,
}

/// Builds a dnf repository in `dir` from `packages`, with `advisories` as its updateinfo.
pub fn build_repo(work: &Path, dir: &Path, packages: &[Rpm], advisories: &[Advisory]) {
    fs::create_dir_all(dir).expect("repo dir");
    for p in packages {
        p.build(work, dir);
    }
    super::debrepo::run(Command::new("createrepo_c").arg("-q").arg(dir));
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n");
    for a in advisories {
        xml.push_str(&format!(
            "  <update from=\"tests@example.invalid\" status=\"stable\" type=\"{}\" version=\"2\">\n    <id>{}</id>\n    <title>{}</title>\n",
            a.kind, a.id, a.id
        ));
        if let Some(s) = &a.severity {
            xml.push_str(&format!("    <severity>{s}</severity>\n"));
        }
        xml.push_str(
            "    <issued date=\"2024-01-02 00:00:00\"/>\n    <description>test</description>\n",
        );
        xml.push_str("    <pkglist><collection short=\"test\"><name>test</name>\n");
        for p in &a.packages {
            xml.push_str(&format!(
                "      <package name=\"{}\" version=\"{}\" release=\"{}\" epoch=\"{}\" arch=\"noarch\"><filename>{}</filename></package>\n",
                p.name,
                p.version,
                p.release,
                p.epoch.unwrap_or(0),
                p.file_name()
            ));
        }
        xml.push_str("    </collection></pkglist>\n  </update>\n");
    }
    xml.push_str("</updates>\n");
    let path = work.join("updateinfo.xml");
    fs::write(&path, xml).expect("write updateinfo");
    super::debrepo::run(
        Command::new("modifyrepo_c")
            .arg("--mdtype=updateinfo")
            .arg(&path)
            .arg(dir.join("repodata"))
            .stdout(Stdio::null()),
    );
}

/// Installs packages into an rpm root for real (`rpm --root … -i --nodeps`).
pub fn install(root: &Path, rpms: &[PathBuf]) {
    fs::create_dir_all(root).expect("root");
    super::debrepo::run(
        Command::new("rpm")
            .arg(format!("--root={}", root.display()))
            .args(["--nodeps", "-i"])
            .args(rpms)
            .stderr(Stdio::null()),
    );
}

/// One line of the `Upgrading:` table of `dnf upgrade --assumeno`: name, arch, new version,
/// repository.
pub fn parse_transaction(text: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut in_upgrades = false;
    for line in text.lines() {
        if line.starts_with("Upgrading:") {
            in_upgrades = true;
            continue;
        }
        if in_upgrades {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [name, arch, version, repo, ..] if line.starts_with(' ') => out.push((
                    name.to_string(),
                    arch.to_string(),
                    version.to_string(),
                    repo.to_string(),
                )),
                _ => in_upgrades = false,
            }
        }
    }
    out.sort();
    out
}
