//! Test support: real `.deb` packages, local APT repositories and sandbox roots, built with
//! the real Debian tools (`dpkg-deb`, `apt-ftparchive`, `dpkg --root`), for every test that
//! needs apt to look at a machine that is not this one.
//!
//! Include it from a test file with `#[path = "support/debrepo.rs"] mod debrepo;`. A test
//! calls [`tools_present`] first; it follows the project's rule for missing tools (fail
//! when `PATCHWARDEN_REQUIRE_TOOLS` is set, else say what is skipped and return).
//!
//! A repository is laid out like a Debian mirror (`dists/<suite>/Release`,
//! `dists/<suite>/main/binary-<arch>/Packages`, `pool/<suite>/…deb`) and served from a
//! `file:` URI with `[trusted=yes]`, because the tests check what apt chooses, not how it
//! verifies signatures.

#![allow(dead_code)] // Each test file uses the part it needs.
#![allow(unreachable_pub)] // `pub` is for the test files that include this module.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Debian package that provides each tool the helpers run.
pub const TOOLS: &[(&str, &str)] = &[
    ("dpkg-deb", "dpkg"),
    ("dpkg", "dpkg"),
    ("dpkg-query", "dpkg"),
    ("apt-get", "apt"),
    ("apt-cache", "apt"),
    ("apt-config", "apt"),
    ("apt-ftparchive", "apt-utils"),
];

/// Whether every tool in `tools` (name, Debian package) is on the `PATH`. When one is missing:
/// panics naming the package if `PATCHWARDEN_REQUIRE_TOOLS` is set, else prints one line
/// saying what `test` skips and returns `false`.
pub fn tools_present(test: &str, tools: &[(&str, &str)]) -> bool {
    let missing: Vec<&(&str, &str)> = tools.iter().filter(|(t, _)| which(t).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(t, p)| format!("{t} (Debian package {p})"))
        .collect();
    if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
        panic!(
            "{test} needs {}; install them (scripts/install-test-deps)",
            list.join(", ")
        );
    }
    eprintln!("skipping {test}: {} not installed", list.join(", "));
    false
}

/// The full path of `tool` in the `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs a command and panics with its stderr when it fails; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A binary package to build.
#[derive(Debug, Clone)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Further control fields, in order (`Source`, `Depends`, `Phased-Update-Percentage` …).
    pub fields: Vec<(String, String)>,
}

impl Deb {
    /// An `Architecture: all` package.
    pub fn new(name: &str, version: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            arch: "all".into(),
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, key: &str, value: &str) -> Deb {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// Builds the package into `out_dir` with `dpkg-deb --build` from a minimal tree (a
    /// control file and one small file) and returns the `.deb`'s path.
    pub fn build(&self, out_dir: &Path) -> PathBuf {
        let tree = out_dir.join(format!(
            ".tree-{}-{}",
            self.name,
            self.version.replace(':', "%3a")
        ));
        let doc = tree.join("usr/share/doc").join(&self.name);
        fs::create_dir_all(tree.join("DEBIAN")).expect("create DEBIAN");
        fs::create_dir_all(&doc).expect("create doc dir");
        fs::write(
            doc.join("VERSION"),
            format!("{} {}\n", self.name, self.version),
        )
        .expect("write file");
        let mut control = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Patchwarden Tests <tests@example.invalid>\n",
            self.name, self.version, self.arch
        );
        for (k, v) in &self.fields {
            control.push_str(&format!("{k}: {v}\n"));
        }
        control.push_str(&format!("Description: test package {}\n", self.name));
        fs::write(tree.join("DEBIAN/control"), control).expect("write control");
        let deb = out_dir.join(format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        ));
        // A fixed SOURCE_DATE_EPOCH makes the build reproducible: the same package put in
        // two suites is then the same file, as in a real archive, and apt sees one version
        // offered by both (not two builds that happen to share a version string).
        run(Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&tree)
            .arg(&deb)
            .stdout(Stdio::null()));
        fs::remove_dir_all(&tree).expect("remove tree");
        deb
    }
}

/// One suite of a repository and what its `Release` file says.
#[derive(Debug, Clone)]
pub struct Suite {
    pub suite: String,
    pub codename: String,
    pub origin: String,
    pub label: String,
    /// The `Version:` field (`12.5` for a point release), if any.
    pub version: Option<String>,
    pub packages: Vec<Deb>,
}

impl Suite {
    pub fn new(suite: &str, origin: &str, label: &str) -> Suite {
        Suite {
            suite: suite.into(),
            codename: suite.into(),
            origin: origin.into(),
            label: label.into(),
            version: None,
            packages: Vec::new(),
        }
    }

    pub fn version(mut self, v: &str) -> Suite {
        self.version = Some(v.into());
        self
    }

    pub fn with(mut self, deb: Deb) -> Suite {
        self.packages.push(deb);
        self
    }
}

/// A local APT repository on disk.
#[derive(Debug)]
pub struct AptRepo {
    pub dir: PathBuf,
}

impl AptRepo {
    /// Builds every suite's packages, `Packages` index (`apt-ftparchive packages`) and
    /// `Release` file (`apt-ftparchive release` with the suite's Origin, Label, Suite,
    /// Codename and Version) under `dir`.
    pub fn build(dir: &Path, suites: &[Suite]) -> AptRepo {
        for s in suites {
            let pool = dir.join("pool").join(&s.suite);
            fs::create_dir_all(&pool).expect("create pool");
            for deb in &s.packages {
                deb.build(&pool);
            }
            let index_dir = dir.join("dists").join(&s.suite).join("main/binary-amd64");
            fs::create_dir_all(&index_dir).expect("create dists");
            let packages = run(Command::new("apt-ftparchive")
                .current_dir(dir)
                .args(["packages", &format!("pool/{}", s.suite)]));
            fs::write(index_dir.join("Packages"), packages).expect("write Packages");
            let mut release = Command::new("apt-ftparchive");
            release.current_dir(dir.join("dists").join(&s.suite));
            for (k, v) in [
                ("Origin", Some(&s.origin)),
                ("Label", Some(&s.label)),
                ("Suite", Some(&s.suite)),
                ("Codename", Some(&s.codename)),
                ("Version", s.version.as_ref()),
            ] {
                if let Some(v) = v {
                    release.arg(format!("-oAPT::FTPArchive::Release::{k}={v}"));
                }
            }
            release.args([
                "-oAPT::FTPArchive::Release::Architectures=amd64",
                "-oAPT::FTPArchive::Release::Components=main",
                "release",
                ".",
            ]);
            let text = run(&mut release);
            fs::write(dir.join("dists").join(&s.suite).join("Release"), text)
                .expect("write Release");
        }
        open_up(dir);
        AptRepo {
            dir: dir.to_owned(),
        }
    }

    /// The `sources.list` line for one suite of this repository.
    pub fn source_line(&self, suite: &str) -> String {
        format!(
            "deb [trusted=yes] file:{} {suite} main\n",
            self.dir.display()
        )
    }
}

/// Lets apt's unprivileged download user (`_apt`) read a test directory: temporary
/// directories are private, and apt would otherwise warn and fetch as root.
pub fn open_up(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A sandbox root with the dpkg and apt state of a small Debian system.
#[derive(Debug)]
pub struct SandboxRoot {
    pub dir: PathBuf,
}

impl SandboxRoot {
    /// Creates the directories dpkg and apt expect under `dir`, and an empty dpkg status.
    pub fn new(dir: &Path) -> SandboxRoot {
        for d in [
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "var/log",
        ] {
            fs::create_dir_all(dir.join(d)).expect("create root dirs");
        }
        fs::write(dir.join("var/lib/dpkg/status"), "").expect("write status");
        open_up(dir);
        SandboxRoot {
            dir: dir.to_owned(),
        }
    }

    /// Installs packages for real with `dpkg --root`.
    pub fn install(&self, debs: &[PathBuf]) {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.dir.display()))
            .args([
                "--force-not-root",
                "--force-script-chrootless",
                "--log=/dev/null",
                "-i",
            ])
            .args(debs)
            .stdout(Stdio::null());
        run(&mut cmd);
    }

    /// Sets a dpkg selection (`hold`, `install` …) with `dpkg --set-selections`.
    pub fn select(&self, package: &str, selection: &str) {
        let mut child = Command::new("dpkg")
            .arg(format!("--root={}", self.dir.display()))
            .args(["--force-not-root", "--set-selections"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn dpkg --set-selections");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{package} {selection}\n").as_bytes())
            .expect("write selections");
        assert!(
            child.wait().expect("wait dpkg").success(),
            "dpkg --set-selections failed"
        );
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.dir.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
        fs::write(path, text).expect("write root file");
    }

    /// An `APT_CONFIG` file of the test's own that points apt at this root, for the oracle
    /// runs (`apt-get -s upgrade`, `apt-get update`).
    pub fn apt_config(&self, scratch: &Path) -> PathBuf {
        let path = scratch.join("oracle-apt.conf");
        let r = self.dir.display();
        fs::write(
            &path,
            format!("Dir \"{r}/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\nDir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\n"),
        )
        .expect("write apt config");
        path
    }

    /// Runs an apt tool on this root with the test's own configuration.
    pub fn apt(&self, scratch: &Path, tool: &str, args: &[&str]) -> String {
        run(Command::new(tool)
            .env("APT_CONFIG", self.apt_config(scratch))
            .env("LC_ALL", "C")
            .args(args))
    }
}

/// One `Inst` line of an apt simulation: `Inst name [old] (new origin [arch])`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimulatedInstall {
    pub name: String,
    /// `None` for a new install.
    pub old: Option<String>,
    pub new: String,
    /// apt's `Label:Version/Suite` or `Label:Suite` (`Debian-Security:bookworm-security`),
    /// comma-separated when the version is in several archives.
    pub origin: String,
}

/// Parses the `Inst` lines of `apt-get -s`.
pub fn parse_simulation(text: &str) -> Vec<SimulatedInstall> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("Inst ") else {
            continue;
        };
        let (name, rest) = rest.split_once(' ').expect("Inst line has a name");
        let (old, rest) = match rest.strip_prefix('[') {
            Some(r) => {
                let (old, r) = r.split_once("] ").expect("Inst old version");
                (Some(old.to_owned()), r)
            }
            None => (None, rest),
        };
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .expect("Inst (new …)")
            .0;
        // `new Origin:suite[, Origin:suite…] [arch]`: a version in several archives lists them all.
        let (new, rest) = inner.split_once(' ').unwrap_or((inner, ""));
        let origin = rest.rsplit_once(" [").map_or(rest, |(o, _)| o);
        let (new, origin) = (new.to_owned(), origin.to_owned());
        out.push(SimulatedInstall {
            name: name.split(':').next().unwrap_or(name).to_owned(),
            old,
            new,
            origin,
        });
    }
    out.sort();
    out
}
