//! Shared by the rpm collector's tests: builds real packages with `rpmbuild`, installs them
//! into a sandbox database with the real `rpm`, and asks `rpm -qa` what that database holds —
//! the independent oracle every reader test compares against.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use patchwarden_core::inventory::Package;

/// `shared/data`: `$PATCHWARDEN_SHARED_DATA`, or `../shared/data` beside the checkout.
pub(crate) fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("inventories/rpm").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// This crate's own test data (`tests/data/`).
pub(crate) fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Whether `tool` can run (`tool version_args` succeeds). When it cannot: with
/// `PATCHWARDEN_REQUIRE_TOOLS` set the test fails naming the Debian package to install;
/// otherwise it says on stderr what it skips.
pub(crate) fn have_tool(
    tool: &str,
    version_args: &[&str],
    debian_package: &str,
    test: &str,
) -> bool {
    let present = Command::new(tool)
        .args(version_args)
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return true;
    }
    if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
        panic!("{test} needs `{tool}`: apt-get install {debian_package}");
    }
    eprintln!("skipping {test}: `{tool}` is not installed (Debian package {debian_package})");
    false
}

/// Whether the rpm tools these tests drive are present (see [`have_tool`]).
pub(crate) fn have_rpm(test: &str) -> bool {
    have_tool("rpmbuild", &["--version"], "rpm", test)
        && have_tool("rpm", &["--version"], "rpm", test)
}

/// Runs a command, failing the test with its output when it does not succeed.
pub(crate) fn run(cmd: &mut Command) -> String {
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

/// One spec file of empty packages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) epoch: Option<u32>,
    pub(crate) version: &'static str,
    pub(crate) release: &'static str,
    pub(crate) noarch: bool,
    pub(crate) modularity_label: Option<&'static str>,
    /// Subpackages named in full (`%package -n NAME`): their source rpm is the spec's.
    pub(crate) subpackages: Vec<String>,
}

impl Spec {
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        writeln!(s, "Name: {}", self.name).unwrap();
        if let Some(e) = self.epoch {
            writeln!(s, "Epoch: {e}").unwrap();
        }
        writeln!(s, "Version: {}\nRelease: {}", self.version, self.release).unwrap();
        writeln!(s, "Summary: test package\nLicense: MIT").unwrap();
        if self.noarch {
            writeln!(s, "BuildArch: noarch").unwrap();
        }
        if let Some(label) = self.modularity_label {
            writeln!(s, "ModularityLabel: {label}").unwrap();
        }
        writeln!(
            s,
            "%description\nAn empty package for the rpm reader's tests.\n%files"
        )
        .unwrap();
        for sub in &self.subpackages {
            writeln!(
                s,
                "%package -n {sub}\nSummary: sub\n%description -n {sub}\nsub\n%files -n {sub}"
            )
            .unwrap();
        }
        s
    }
}

/// The packages most tests install: an epoch and a modularity label with two subpackages
/// (one of them a library whose source rpm has a different name), `Epoch: 0`, noarch, and
/// names and versions with dashes and tildes.
pub(crate) fn standard_specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "hello",
            epoch: Some(3),
            version: "1.2",
            release: "4.el9",
            modularity_label: Some("hello:1.2:9040020240101:abcdef12"),
            subpackages: vec!["libhello".into(), "hello-devel".into()],
            ..Spec::default()
        },
        Spec {
            name: "zero-epoch",
            epoch: Some(0),
            version: "7",
            release: "1",
            ..Spec::default()
        },
        Spec {
            name: "python3-foo-bar",
            version: "2.0~rc1",
            release: "1.fc40",
            noarch: true,
            ..Spec::default()
        },
    ]
}

/// Builds `specs` with `rpmbuild -bb` under `dir`; returns the binary rpms.
pub(crate) fn build_rpms(dir: &Path, specs: &[Spec]) -> Vec<PathBuf> {
    let top = dir.join("rpmbuild");
    let mut cmd = Command::new("rpmbuild");
    cmd.arg("-bb")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()));
    for spec in specs {
        let path = dir.join(format!("{}.spec", spec.name));
        std::fs::write(&path, spec.text()).unwrap();
        cmd.arg(&path);
    }
    run(&mut cmd);
    let mut rpms = Vec::new();
    for arch in std::fs::read_dir(top.join("RPMS")).unwrap() {
        for rpm in std::fs::read_dir(arch.unwrap().path()).unwrap() {
            rpms.push(rpm.unwrap().path());
        }
    }
    rpms.sort();
    rpms
}

/// The `rpm` command for the database at `root`/`dbpath` in `backend`.
pub(crate) fn rpm_cmd(root: &Path, dbpath: &str, backend: &str) -> Command {
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .arg("--dbpath")
        .arg(dbpath)
        .arg("--define")
        .arg(format!("_db_backend {backend}"));
    cmd
}

/// Records `rpms` in the database at `root`/`dbpath` as rpm itself does, without running
/// anything or unpacking files (`--justdb`).
pub(crate) fn install(root: &Path, dbpath: &str, backend: &str, rpms: &[PathBuf]) {
    run(rpm_cmd(root, dbpath, backend)
        .args(["-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch"])
        .args(rpms));
}

/// Imports a freshly made OpenPGP key, so that the database holds a `gpg-pubkey` record as
/// real hosts do. `false` (with a note on stderr) when gpg is missing.
pub(crate) fn import_key(dir: &Path, root: &Path, dbpath: &str, test: &str) -> bool {
    if !have_tool("gpg", &["--version"], "gnupg", test) {
        return false;
    }
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--quiet", "--passphrase", ""])
            .args(args))
    };
    gpg(&[
        "--quick-gen-key",
        "Patchwarden Test <rpm-test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let key = gpg(&["--armor", "--export", "rpm-test@example.invalid"]);
    let key_file = dir.join("key.asc");
    std::fs::write(&key_file, key).unwrap();
    run(rpm_cmd(root, dbpath, "sqlite")
        .arg("--import")
        .arg(&key_file));
    true
}

/// The query format both sides of a comparison print.
const QUERY_FORMAT: &str =
    "%{NAME}|%{EPOCH}|%{VERSION}-%{RELEASE}|%{ARCH}|%{SOURCERPM}|%{MODULARITYLABEL}\\n";

/// What `rpm -qa` says the database holds, one sorted line per record (gpg-pubkey included).
pub(crate) fn rpm_qa(root: &Path, dbpath: &str, backend: &str) -> Vec<String> {
    let out = run(rpm_cmd(root, dbpath, backend).args(["-qa", "--qf", QUERY_FORMAT]));
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    lines.sort();
    lines
}

/// `rpm -qa`'s lines without the gpg-pubkey keys, which the reader leaves out by design.
pub(crate) fn without_keys(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with("gpg-pubkey|"))
        .cloned()
        .collect()
}

/// Our packages in `rpm -qa --qf QUERY_FORMAT`'s form, sorted.
pub(crate) fn rows(packages: &[Package]) -> Vec<String> {
    let none = || "(none)".to_string();
    let mut lines: Vec<String> = packages
        .iter()
        .map(|p| {
            let source = match (&p.source_name, &p.source_version) {
                (Some(n), Some(v)) => format!("{n}-{v}.src.rpm"),
                _ => none(),
            };
            format!(
                "{}|{}|{}|{}|{}|{}",
                p.name,
                p.epoch.map_or_else(none, |e| e.to_string()),
                p.version,
                p.arch.clone().unwrap_or_else(none),
                source,
                p.module.clone().unwrap_or_else(none),
            )
        })
        .collect();
    lines.sort();
    lines
}

/// A root whose `var/lib/rpm` holds the standard packages, written by rpm in `backend`
/// (with a gpg-pubkey record when gpg is there). `None` when the rpm tools are missing.
pub(crate) fn standard_root(dir: &Path, test: &str) -> Option<PathBuf> {
    if !have_rpm(test) {
        return None;
    }
    let rpms = build_rpms(dir, &standard_specs());
    let root = dir.join("root");
    install(&root, "/var/lib/rpm", "sqlite", &rpms);
    import_key(dir, &root, "/var/lib/rpm", test);
    Some(root)
}

/// A small deterministic pseudo-random generator (xorshift64) for corruption tests: the same
/// damage on every run, so a failure can be reproduced.
#[derive(Debug)]
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `db_load` input ("bytevalue" dump format) for a `Packages` hash database holding `blobs`,
/// keyed as rpm keys them: 4-byte record numbers in the database's byte order, with record 0
/// holding the next free record number.
pub(crate) fn db_load_input(blobs: &[(u32, Vec<u8>)], big_endian: bool, page_size: u32) -> String {
    let key = |n: u32| {
        if big_endian {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        }
    };
    let hex = |bytes: &[u8]| {
        bytes.iter().fold(String::from(" "), |mut s, b| {
            write!(s, "{b:02x}").unwrap();
            s
        })
    };
    let order = if big_endian { 4321 } else { 1234 };
    let mut s = format!(
        "VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize={page_size}\ndb_lorder={order}\n\
         HEADER=END\n"
    );
    let next = blobs.iter().map(|(n, _)| n + 1).max().unwrap_or(1);
    writeln!(s, "{}\n{}", hex(&key(0)), hex(&key(next))).unwrap();
    for (n, blob) in blobs {
        writeln!(s, "{}\n{}", hex(&key(*n)), hex(blob)).unwrap();
    }
    s.push_str("DATA=END\n");
    s
}

/// Writes a database with the real Berkeley DB library.
pub(crate) fn db_load(input: &str, kind: &str, file: &Path) {
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut child = Command::new("db5.3_load")
        .args(["-t", kind])
        .arg(file)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "db5.3_load failed");
}

/// The header blobs of the rpm-written SQLite database under `root`, read with plain SQL.
pub(crate) fn sqlite_blobs(root: &Path) -> Vec<(u32, Vec<u8>)> {
    let conn = rusqlite::Connection::open(root.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
