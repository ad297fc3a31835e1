//! Sandbox roots for installing packages with `dpkg --root` and `rpm --root`, which chroot
//! into the root to run the maintainer scripts. A root gets the real programs those scripts
//! use, copied from this machine together with the shared libraries `ldd` names, the user
//! database of an empty system, and a `/dev/null`; no init system runs in it.
//!
//! Also the helpers the packaging tests share: checking for tools (the project's rule: fail
//! naming the Debian package when `PATCHWARDEN_REQUIRE_TOOLS` is set, else say what is
//! skipped) and running commands.

#![allow(unreachable_pub)] // `pub` is for the test file that includes this module.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The programs the maintainer scripts run, copied into every sandbox.
const SCRIPT_TOOLS: &[&str] = &[
    "sh",
    "getent",
    "groupadd",
    "useradd",
    "rm",
    "rmdir",
    "systemctl",
    "nologin",
];

/// Whether `test` can run: every tool of `tools` (name, Debian package) is on the `PATH` and
/// this process is root (dpkg and rpm need it to chroot). Otherwise fails when
/// `PATCHWARDEN_REQUIRE_TOOLS` is set, else prints one line saying what is skipped.
pub fn ready(test: &str, tools: &[(&str, &str)]) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| which(t).is_none())
        .map(|(t, p)| format!("{t} (Debian package {p})"))
        .collect();
    let root = run(Command::new("id").arg("-u")).trim() == "0";
    if !root {
        missing.push("root privileges (dpkg and rpm chroot into the sandbox)".into());
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
        panic!(
            "{test} needs {}; install them with scripts/install-test-deps",
            missing.join(", ")
        );
    }
    eprintln!("skipping {test}: missing {}", missing.join(", "));
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

/// Runs a command to its end and returns what it did.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns its standard output followed by its standard
/// error.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// A sandbox root under a test's temporary directory.
#[derive(Debug)]
pub struct Sandbox {
    pub root: PathBuf,
}

impl Sandbox {
    /// Builds a root for `kind` ("deb" or "rpm": the package database it starts with) in
    /// `dir/root`.
    pub fn build(dir: &Path, kind: &str) -> Sandbox {
        let root = dir.join("root");
        // A merged /usr, as Debian 12, Ubuntu and every current RPM distribution have it.
        for d in [
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "usr/lib64",
            "etc",
            "dev",
            "tmp",
            "var/tmp",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for link in ["bin", "sbin", "lib", "lib64"] {
            symlink(format!("usr/{link}"), root.join(link)).unwrap();
        }
        add_tools(&root, SCRIPT_TOOLS);
        // The user database of a system with root alone.
        for (file, text, mode) in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
            ("etc/group", "root:x:0:\n", 0o644),
            ("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640),
            ("etc/gshadow", "root:*::\n", 0o640),
        ] {
            fs::write(root.join(file), text).unwrap();
            fs::set_permissions(root.join(file), fs::Permissions::from_mode(mode)).unwrap();
        }
        // Scripts redirect to /dev/null; a chroot without it makes every such line fail.
        run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"]));
        match kind {
            "deb" => {
                for d in [
                    "var/lib/dpkg/info",
                    "var/lib/dpkg/updates",
                    "var/lib/dpkg/triggers",
                ] {
                    fs::create_dir_all(root.join(d)).unwrap();
                }
                fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
            }
            "rpm" => {
                run(Command::new("rpm")
                    .arg(format!("--root={}", root.display()))
                    .args(["--dbpath", "/var/lib/rpm", "--initdb"]));
            }
            other => panic!("no sandbox kind {other}"),
        }
        Sandbox { root }
    }

    /// Every path under `root` (directories, files, symlinks, not followed), relative.
    pub fn tree(root: &Path) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    pending.push(path);
                }
                paths.insert(relative);
            }
        }
        paths
    }
}

/// Copies the programs `tools` of this machine (by name, from the `PATH`) into `root`, with
/// the shared libraries each loads.
pub fn add_tools(root: &Path, tools: &[&str]) {
    for tool in tools {
        let path = which(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
        copy_in(root, &path);
        add_libraries(root, &path);
    }
}

/// Copies the shared libraries `program` loads into `root`.
pub fn add_libraries(root: &Path, program: &Path) {
    for lib in libraries(program) {
        copy_in(root, &lib);
    }
}

/// The shared libraries (and the dynamic loader) `program` loads, as `ldd` lists them.
fn libraries(program: &Path) -> Vec<PathBuf> {
    run(Command::new("ldd").arg(program))
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect()
}

/// Copies `path` of this machine to the same path under `root`, contents and mode (symlinks
/// followed: the sandbox gets the file itself).
fn copy_in(root: &Path, path: &Path) {
    let target = root.join(path.strip_prefix("/").unwrap());
    if target.exists() {
        return;
    }
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(path, &target)
        .unwrap_or_else(|e| panic!("copy {} into the sandbox: {e}", path.display()));
}
