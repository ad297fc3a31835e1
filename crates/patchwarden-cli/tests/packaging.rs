//! The `.deb` and `.rpm` packages, built by `scripts/package` from this test's own build of
//! the binary and installed for real: `dpkg --root` and `rpm --root` lay the files into a
//! sandbox root and run the maintainer scripts chrooted into it, as they do when an image is
//! built. The sandbox holds the real tools those scripts use (a shell, useradd, systemctl …,
//! copied from this machine with their libraries) but no running systemd, which is the case
//! the scripts must survive: an install in a chroot or a container never fails and starts
//! nothing. Every attempt to act on a service there makes the real systemctl complain, so
//! scripts that print nothing touched no service.
//!
//! The packages are built once per run from the debug binary, with `--fast` compression:
//! these tests check what the packages contain and what their scripts do, not the size of a
//! release build, and building the release binary as well would double CI's compile time.
//!
//! Needs root (dpkg and rpm chroot to run the scripts) and the tools of
//! `scripts/install-test-deps`; without them the tests say what they skip, or fail when
//! `PATCHWARDEN_REQUIRE_TOOLS` is set.

#[path = "packaging_support/sandbox.rs"]
mod sandbox;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sandbox::{Sandbox, add_tools, output, ready, run};

/// The tools every test here runs, with the Debian package that provides each.
const TOOLS: &[(&str, &str)] = &[
    ("dpkg", "dpkg"),
    ("dpkg-deb", "dpkg"),
    ("dpkg-query", "dpkg"),
    ("dpkg-shlibdeps", "dpkg-dev"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("strip", "binutils"),
    ("help2man", "help2man"),
    ("systemctl", "systemd"),
    ("systemd-analyze", "systemd"),
    ("useradd", "passwd"),
    ("groupadd", "passwd"),
    ("nologin", "login"),
    ("getent", "libc-bin"),
    ("ldd", "libc-bin"),
    ("mknod", "coreutils"),
];

/// What the install script test needs besides [`TOOLS`]: the programs the install command,
/// the script and dpkg run inside the sandbox.
const SCRIPT_TEST_TOOLS: &[(&str, &str)] = &[
    ("chroot", "coreutils"),
    ("curl", "curl"),
    ("sha256sum", "coreutils"),
    ("start-stop-daemon", "dpkg"),
    ("dpkg-split", "dpkg"),
    ("ldconfig", "libc-bin"),
    ("tar", "tar"),
    ("diff", "diffutils"),
];

/// The files both packages install, with their modes (owner and group are root's).
const FILES: &[(&str, u32)] = &[
    ("usr/bin/patchwarden", 0o755),
    ("etc/patchwarden/server.toml", 0o644),
    ("etc/patchwarden/server.env", 0o600),
    ("etc/patchwarden/agent.env", 0o600),
    ("usr/lib/sysusers.d/patchwarden.conf", 0o644),
    ("usr/share/man/man1/patchwarden.1.gz", 0o644),
    ("usr/share/doc/patchwarden/install.md", 0o644),
];

/// Paths a test may see change that belong to neither the package nor its scripts' intent:
/// the package managers' own databases, useradd's backups and lock of the user database.
fn bookkeeping(path: &str) -> bool {
    path.starts_with("var/lib/dpkg")
        || path.starts_with("var/lib/rpm")
        || path.starts_with("var/log")
        || matches!(
            path,
            "etc/passwd-" | "etc/group-" | "etc/shadow-" | "etc/gshadow-" | "etc/.pwd.lock"
        )
}

struct Packages {
    deb: PathBuf,
    rpm: PathBuf,
}

/// Builds both packages once per test process, with the project's own script. The directory
/// is the process's own: a runner that starts a process per test (cargo-nextest) had several
/// of them remove and rebuild one shared directory under each other's feet.
fn packages() -> &'static Packages {
    static PACKAGES: OnceLock<Packages> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_package_dirs(tmp);
        let out = tmp.join(format!("packaging-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).expect("create the package directory");
        let printed = package_into(&out);
        let built: Vec<PathBuf> = printed.lines().map(PathBuf::from).collect();
        let version = env!("CARGO_PKG_VERSION");
        let deb = out.join(format!("patchwarden_{version}_{}.deb", deb_arch()));
        let rpm = out.join(format!(
            "patchwarden-{version}-1.{}.rpm",
            std::env::consts::ARCH
        ));
        assert_eq!(built, [deb.clone(), rpm.clone()], "scripts/package printed");
        Packages { deb, rpm }
    })
}

/// Removes the package directories of test processes that have ended (each process leaves its
/// own behind: a static is never dropped).
fn remove_stale_package_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("packaging-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The time the packages' files carry (`SOURCE_DATE_EPOCH`): fixed, where `scripts/package`
/// would take the last commit's, so that a commit landing during a test run changes nothing.
const SOURCE_DATE_EPOCH: &str = "1764000000";

/// Runs `scripts/package --fast` on this test's binary into `out`; returns what it printed.
fn package_into(out: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package");
    run(Command::new(&script)
        .args([
            "--fast",
            "--binary",
            env!("CARGO_BIN_EXE_patchwarden"),
            "--out",
        ])
        .arg(out)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH))
}

fn deb_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Checks the installed files: contents where the repository holds them, modes and owners.
fn assert_files(root: &Path, unit_dir: &str) {
    let mut files: Vec<(String, u32)> = FILES.iter().map(|(p, m)| (p.to_string(), *m)).collect();
    for unit in ["patchwarden-agent.service", "patchwarden-server.service"] {
        let path = format!("{unit_dir}/{unit}");
        assert_eq!(
            fs::read_to_string(root.join(&path)).unwrap(),
            repo_file(&format!("packaging/systemd/{unit}")),
            "{path} is the unit of packaging/systemd"
        );
        files.push((path, 0o644));
    }
    for (path, mode) in &files {
        let meta = fs::symlink_metadata(root.join(path))
            .unwrap_or_else(|e| panic!("{path} is not installed: {e}"));
        assert!(meta.is_file(), "{path} is a regular file");
        assert_eq!(meta.permissions().mode() & 0o7777, *mode, "mode of {path}");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner of {path}");
    }
    assert_eq!(
        fs::read_to_string(root.join("etc/patchwarden/server.toml")).unwrap(),
        repo_file("packaging/config/server.toml")
    );
    // The packaged binary is this build's, stripped: it still runs and says its version.
    let version = run(Command::new(root.join("usr/bin/patchwarden")).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("patchwarden {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The server's system user and group, as the scripts made them in the sandbox.
fn assert_server_user(root: &Path) {
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("patchwarden:"))
        .unwrap_or_else(|| panic!("no patchwarden user in the sandbox:\n{passwd}"));
    let fields: Vec<&str> = line.split(':').collect();
    assert_eq!(fields.len(), 7, "{line}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system uid: {line}");
    assert_eq!(
        &fields[4..],
        [
            "Patchwarden server",
            "/var/lib/patchwarden",
            "/usr/sbin/nologin"
        ]
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with(&format!("patchwarden:x:{}:", fields[3]))),
        "the user's primary group is patchwarden:\n{group}"
    );
}

/// What an enrolled agent and a running server leave in the root, and an image build's
/// `systemctl enable` of the agent (offline, with the real systemctl).
fn use_the_host(root: &Path, unit_dir: &str) {
    for (path, text) in [
        ("var/lib/patchwarden-agent/host.json", "{}"),
        ("var/lib/patchwarden/patchwarden.db", "database"),
    ] {
        fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        fs::write(root.join(path), text).unwrap();
    }
    run(Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["--quiet", "enable", "patchwarden-agent.service"]));
    assert!(agent_enabled(root, unit_dir));
}

/// Whether the agent is enabled: the `multi-user.target.wants` symlink names the installed
/// unit (through `/lib` or `/usr/lib`, the same directory on a merged-/usr root).
fn agent_enabled(root: &Path, unit_dir: &str) -> bool {
    let link = root.join("etc/systemd/system/multi-user.target.wants/patchwarden-agent.service");
    let Ok(target) = fs::read_link(&link) else {
        return false;
    };
    let Ok(target) = target.strip_prefix("/") else {
        return false;
    };
    let installed = root.join(unit_dir).join("patchwarden-agent.service");
    fs::canonicalize(root.join(target)).ok() == fs::canonicalize(installed).ok()
}

/// The lines of a package manager's output that are not its own progress report: the
/// maintainer scripts' words. `noise` names the lines the tool itself prints.
fn script_output(text: &str, noise: &[&str]) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !noise.iter().any(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// What dpkg prints about its own work, about the dependencies the sandbox lacks on purpose
/// (`--force-depends`: libc6 and passwd are copied in, not installed), and about /usr, /etc
/// … which no package of the sandbox owns but this one (base-files does on a real system).
const DPKG_NOISE: &[&str] = &[
    "Selecting previously unselected package",
    "(Reading database",
    "Preparing to unpack",
    "Unpacking patchwarden",
    "Setting up patchwarden",
    "Removing patchwarden",
    "Purging configuration files for patchwarden",
    "dependency problems, but configuring anyway",
    "depends on",
    "is not installed.",
    "not empty so not removed",
];

/// Debian's rpm warns on every install that rpm is not Debian's package manager.
const RPM_NOISE: &[&str] = &[
    "RPM should not be used directly",
    "However assuming you know what you are doing",
];

fn dpkg(root: &Path, args: &[&str]) -> Vec<String> {
    let text = run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-not-root", "--force-depends", "--log=/dev/null"])
        .args(args));
    script_output(&text, DPKG_NOISE)
}

fn rpm(root: &Path, args: &[&str]) -> Vec<String> {
    let text = run(Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args));
    script_output(&text, RPM_NOISE)
}

/// The paths added to `root` since `before`, bookkeeping aside.
fn added(root: &Path, before: &BTreeSet<String>) -> BTreeSet<String> {
    Sandbox::tree(root)
        .into_iter()
        .filter(|p| !before.contains(p) && !bookkeeping(p))
        .collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[test]
fn deb_installs_in_a_chroot_upgrades_removes_and_purges_clean() {
    if !ready(
        "deb_installs_in_a_chroot_upgrades_removes_and_purges_clean",
        TOOLS,
    ) {
        return;
    }
    let pkgs = packages();
    let tmp = tempfile::tempdir().unwrap();
    let root = Sandbox::build(tmp.path(), "deb").root;
    let before = Sandbox::tree(&root);
    let deb = pkgs.deb.to_str().unwrap();

    let said = dpkg(&root, &["-i", deb]);
    assert!(said.is_empty(), "the scripts said: {said:#?}");
    assert_files(&root, "lib/systemd/system");
    assert_server_user(&root);
    let status = run(Command::new("dpkg-query")
        .arg(format!("--root={}", root.display()))
        .args([
            "-W",
            "-f=${Status} ${Version}\n${Conffiles}\n",
            "patchwarden",
        ]));
    let mut lines = status.lines();
    assert_eq!(
        lines.next(),
        Some(format!("install ok installed {}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let conffiles: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        conffiles,
        [
            "/etc/patchwarden/agent.env",
            "/etc/patchwarden/server.env",
            "/etc/patchwarden/server.toml"
        ]
    );
    // Every shipped file matches the package's md5sums.
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--verify", "patchwarden"]));
    assert!(!root.join("etc/systemd").exists(), "nothing was enabled");

    use_the_host(&root, "lib/systemd/system");
    // Reinstalling is an upgrade to the scripts (postinst configure with the old version):
    // no service may be touched and no state lost.
    let said = dpkg(&root, &["-i", deb]);
    assert!(said.is_empty(), "the scripts said on upgrade: {said:#?}");
    assert!(root.join("var/lib/patchwarden-agent/host.json").exists());
    assert!(
        agent_enabled(&root, "lib/systemd/system"),
        "an upgrade keeps the agent enabled"
    );

    // An administrator's change to a conffile survives `remove`, and goes on `purge`.
    fs::write(root.join("etc/patchwarden/server.toml"), "[listen]\n").unwrap();
    let said = dpkg(&root, &["-r", "patchwarden"]);
    assert!(said.is_empty(), "the scripts said on remove: {said:#?}");
    assert_eq!(
        added(&root, &before),
        set(&[
            // Policy: conffiles stay until purge.
            "etc/patchwarden",
            "etc/patchwarden/agent.env",
            "etc/patchwarden/server.env",
            "etc/patchwarden/server.toml",
            // The enable symlink is gone; these directories are systemd's.
            "etc/systemd",
            "etc/systemd/system",
            // State stays until purge.
            "var/lib/patchwarden",
            "var/lib/patchwarden/patchwarden.db",
            "var/lib/patchwarden-agent",
            "var/lib/patchwarden-agent/host.json",
        ])
    );

    let said = dpkg(&root, &["-P", "patchwarden"]);
    assert_eq!(
        said,
        [
            "patchwarden: the server's data in /var/lib/patchwarden is kept; remove it yourself if you no longer need it."
        ]
    );
    assert_eq!(
        added(&root, &before),
        set(&[
            "etc/systemd",
            "etc/systemd/system",
            // The server's database (the audit chain) is the administrator's to delete.
            "var/lib/patchwarden",
            "var/lib/patchwarden/patchwarden.db",
        ])
    );
    let status = output(
        Command::new("dpkg-query")
            .arg(format!("--root={}", root.display()))
            .args(["-W", "patchwarden"]),
    );
    assert!(!status.status.success(), "purged: dpkg forgets the package");
    // The user stays (Debian policy 9.2.1): files it owns may remain.
    assert_server_user(&root);
}

#[test]
fn rpm_installs_in_a_chroot_upgrades_and_erases_clean() {
    if !ready("rpm_installs_in_a_chroot_upgrades_and_erases_clean", TOOLS) {
        return;
    }
    let pkgs = packages();
    let tmp = tempfile::tempdir().unwrap();
    let root = Sandbox::build(tmp.path(), "rpm").root;
    let before = Sandbox::tree(&root);
    let rpm_file = pkgs.rpm.to_str().unwrap();

    let said = rpm(&root, &["-i", "--nodeps", rpm_file]);
    assert!(said.is_empty(), "the scriptlets said: {said:#?}");
    assert_files(&root, "usr/lib/systemd/system");
    assert_server_user(&root);
    // rpm records modes, owners and file kinds in its database; they match the files.
    run(Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args(["--dbpath", "/var/lib/rpm", "-V", "--nodeps", "patchwarden"]));
    let config = run(Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-q",
            "--configfiles",
            "patchwarden",
        ]));
    assert_eq!(
        config.lines().collect::<Vec<_>>(),
        [
            "/etc/patchwarden/agent.env",
            "/etc/patchwarden/server.env",
            "/etc/patchwarden/server.toml"
        ]
    );
    assert!(!root.join("etc/systemd").exists(), "nothing was enabled");

    use_the_host(&root, "usr/lib/systemd/system");
    // An upgrade (here to the same version) runs the new %pre and %post with 2 and the old
    // %preun and %postun with 1: the agent's identity and its enablement must survive.
    let said = rpm(&root, &["-U", "--replacepkgs", "--nodeps", rpm_file]);
    assert!(said.is_empty(), "the scriptlets said on upgrade: {said:#?}");
    assert!(root.join("var/lib/patchwarden-agent/host.json").exists());
    assert!(
        agent_enabled(&root, "usr/lib/systemd/system"),
        "an upgrade keeps the agent enabled"
    );

    // rpm has no purge: unchanged %config files go, a changed one is kept as .rpmsave.
    fs::write(root.join("etc/patchwarden/server.toml"), "[listen]\n").unwrap();
    let said = rpm(&root, &["-e", "patchwarden"]);
    assert_eq!(
        said,
        ["warning: /etc/patchwarden/server.toml saved as /etc/patchwarden/server.toml.rpmsave"]
    );
    assert_eq!(
        added(&root, &before),
        set(&[
            "etc/patchwarden",
            "etc/patchwarden/server.toml.rpmsave",
            "etc/systemd",
            "etc/systemd/system",
            "var/lib/patchwarden",
            "var/lib/patchwarden/patchwarden.db",
            // Parents rpm made for the package's files; a real system's filesystem package
            // owns them.
            "usr/lib/sysusers.d",
            "usr/lib/systemd",
            "usr/lib/systemd/system",
            "usr/share",
            "usr/share/doc",
            "usr/share/licenses",
            "usr/share/man",
            "usr/share/man/man1",
        ])
    );
    assert_server_user(&root);
}

/// A chroot whose /run says systemd is running (a bind-mounted /run of a booted host): the
/// scripts do call systemctl, which cannot reach a systemd from inside the chroot and says so
/// once per call, and the install, upgrade and purge still succeed. With a `policy-rc.d` that
/// forbids acting on services (as image builds install), the scripts still reload systemd's
/// view of the unit files but neither restart nor stop a service.
#[test]
fn deb_scripts_survive_a_systemctl_that_fails_and_obey_policy_rc_d() {
    let test = "deb_scripts_survive_a_systemctl_that_fails_and_obey_policy_rc_d";
    if !ready(test, TOOLS) {
        return;
    }
    let pkgs = packages();
    let deb = pkgs.deb.to_str().unwrap();
    // systemctl calls per step: install (daemon-reload); upgrade (daemon-reload, try-restart
    // of each service); purge (stop of each service in prerm, daemon-reload after remove and
    // after purge; the offline `disable` needs no systemd).
    for (policy, calls) in [(None, [1, 3, 4]), (Some(101), [1, 1, 2])] {
        let tmp = tempfile::tempdir().unwrap();
        let root = Sandbox::build(tmp.path(), "deb").root;
        fs::create_dir_all(root.join("run/systemd/system")).unwrap();
        if let Some(code) = policy {
            let helper = root.join("usr/sbin/policy-rc.d");
            fs::write(&helper, format!("#!/bin/sh\nexit {code}\n")).unwrap();
            fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let steps: [&[&str]; 3] = [&["-i", deb], &["-i", deb], &["-P", "patchwarden"]];
        for (args, expected) in steps.iter().zip(calls) {
            let said = dpkg(&root, args);
            let failed = said
                .iter()
                .filter(|l| l.contains("Failed to connect to bus"))
                .count();
            assert_eq!(
                failed, expected,
                "policy-rc.d {policy:?}, dpkg {args:?}: the scripts said {said:#?}"
            );
        }
    }
}

/// The unit files load in systemd's own verifier, and `systemd-analyze security` rates the
/// server's sandbox; the agent's exposure is printed for the record (it runs the package
/// manager as root, see the unit's comments).
#[test]
fn units_verify_and_the_server_is_confined() {
    if !ready("units_verify_and_the_server_is_confined", TOOLS) {
        return;
    }
    let pkgs = packages();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    run(Command::new("dpkg-deb").arg("-x").arg(&pkgs.deb).arg(root));
    // The verifier resolves the units' dependencies (multi-user.target, network-online.target
    // …): it gets this machine's target units beside the package's.
    let units = root.join("lib/systemd/system");
    for entry in fs::read_dir("/lib/systemd/system").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "target") {
            fs::copy(&path, units.join(path.file_name().unwrap())).unwrap();
        }
    }
    let verify = output(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .args(["patchwarden-server.service", "patchwarden-agent.service"]),
    );
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );

    let exposure = |unit: &str| -> f64 {
        let text = run(Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(format!("--root={}", root.display()))
            .arg(unit));
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no overall exposure for {unit}:\n{text}"));
        let figure = line.rsplit(':').next().unwrap().split_whitespace().next();
        figure
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    let server = exposure("patchwarden-server.service");
    let agent = exposure("patchwarden-agent.service");
    eprintln!("systemd-analyze security exposure: server {server}, agent {agent}");
    // "OK" in systemd's words is below 2.0 (0 is perfect, 10 unconfined).
    assert!(server < 2.0, "the server's exposure is {server}");
}

/// The units' command lines are ones this binary accepts, and the directories systemd makes
/// for them (`StateDirectory=`) are the ones the commands use by default; the shipped
/// configuration file is one `serve` reads.
#[test]
fn units_and_the_binary_agree() {
    let binary = env!("CARGO_BIN_EXE_patchwarden");
    let mut help = Vec::new();
    for (unit, state_dir) in [
        ("patchwarden-server.service", "patchwarden"),
        ("patchwarden-agent.service", "patchwarden-agent"),
    ] {
        let text = repo_file(&format!("packaging/systemd/{unit}"));
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/bin/patchwarden"), "{unit}");
        let args: Vec<&str> = words.collect();
        // clap reads every argument before it acts on --help: an unknown one is an error.
        let out = output(Command::new(binary).args(&args).arg("--help"));
        assert!(
            out.status.success(),
            "{unit}: patchwarden {args:?} is refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.lines()
                .any(|l| l == format!("StateDirectory={state_dir}")),
            "{unit}"
        );
        // clap wraps long lines: compare with the whitespace collapsed.
        let words: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_whitespace()
            .collect();
        help.push(words.join(" "));
    }
    assert!(
        help[1].contains("[default: /var/lib/patchwarden-agent]"),
        "agent run keeps its state where the unit's StateDirectory is:\n{}",
        help[1]
    );
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/config/server.toml");
    let shown = run(Command::new(binary)
        .args(["config", "show", "--config"])
        .arg(&config)
        .env_remove("PATCHWARDEN_CONFIG"));
    assert!(
        shown.contains("data_dir: \"/var/lib/patchwarden\""),
        "the server keeps its data where the unit's StateDirectory is:\n{shown}"
    );
}

/// Debian's and Fedora's linters accept the packages, with the overrides the packaging
/// keeps (each with its reason, in packaging/deb/lintian-overrides and
/// packaging/rpm/rpmlint.toml).
#[test]
fn lintian_and_rpmlint_accept_the_packages() {
    let tools = [("lintian", "lintian"), ("rpmlint", "rpmlint")];
    if !ready("lintian_and_rpmlint_accept_the_packages", TOOLS)
        || !ready("lintian_and_rpmlint_accept_the_packages", &tools)
    {
        return;
    }
    let pkgs = packages();
    let lintian = output(
        Command::new("lintian")
            .args(["--fail-on", "error,warning"])
            .arg(&pkgs.deb),
    );
    assert!(
        lintian.status.success(),
        "lintian:\n{}{}",
        String::from_utf8_lossy(&lintian.stdout),
        String::from_utf8_lossy(&lintian.stderr)
    );
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/rpm/rpmlint.toml");
    let rpmlint = output(
        Command::new("rpmlint")
            .arg("--config")
            .arg(config)
            .arg(&pkgs.rpm),
    );
    let text = String::from_utf8_lossy(&rpmlint.stdout);
    assert!(
        rpmlint.status.success() && text.contains("0 errors, 0 warnings"),
        "rpmlint:\n{text}{}",
        String::from_utf8_lossy(&rpmlint.stderr)
    );
}

fn sha256_of(file: &Path) -> String {
    let text = run(Command::new("sha256sum").arg(file));
    text.split_whitespace().next().unwrap().to_owned()
}

/// Runs an install command as root inside `root`, as an administrator pastes it into a root
/// shell (chrooted, so that nothing it does reaches this machine); returns whether it
/// succeeded and what it printed.
fn run_install_command(root: &Path, script: &str) -> (bool, String) {
    fs::create_dir_all(root.join("root")).unwrap();
    fs::write(root.join("root/install-agent.sh"), script).unwrap();
    let out = output(
        Command::new("chroot")
            .arg(root)
            .args(["/bin/sh", "/root/install-agent.sh"])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `patchwarden serve`, the real server, on a free port of 127.0.0.1 with its data in a
/// temporary directory, serving the packages of `downloads` and naming itself by its
/// address; this test's own process, ended when the value is dropped.
struct PatchwardenServer {
    child: std::process::Child,
    config: PathBuf,
    url: String,
    fingerprint: String,
}

impl PatchwardenServer {
    fn start(dir: &Path, downloads: &Path) -> PatchwardenServer {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("server.toml");
        fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\npublic_url = \"https://127.0.0.1:{port}\"\n\
                 [listen]\napi = \"127.0.0.1:{port}\"\nmetrics = \"\"\n\
                 [downloads]\ndir = \"{}\"\n",
                dir.join("data").display(),
                downloads.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_patchwarden"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("PATCHWARDEN_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start patchwarden serve");
        // The server prints its URL and its CA's fingerprint once it listens.
        let stderr = child.stderr.take().unwrap();
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = PatchwardenServer {
            child,
            config,
            url: String::new(),
            fingerprint: String::new(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while server.url.is_empty() || server.fingerprint.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = received
                .recv_timeout(left)
                .expect("patchwarden serve printed its URL and fingerprint within 30 s");
            if let Some(url) = line.strip_prefix("patchwarden: serving the API at ") {
                server.url = url.to_owned();
            } else if line.contains("CA fingerprint") {
                server.fingerprint = line.rsplit(' ').next().unwrap().to_owned();
            }
        }
        server
    }

    /// `patchwarden admin token create|list` on the server's database, as an administrator
    /// on the server's machine runs them.
    fn admin(&self, args: &[&str]) -> String {
        let out = output(
            Command::new(env!("CARGO_BIN_EXE_patchwarden"))
                .args(["admin", "token"])
                .args(args)
                .arg("--config")
                .arg(&self.config),
        );
        assert!(
            out.status.success(),
            "admin token {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PatchwardenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The install command a server shows for a new enrollment token, end to end: a real
/// `patchwarden serve` serves the packages `scripts/package` built, `patchwarden admin token
/// create` makes the token and prints one install command per package, and the one for the
/// `.deb` is pasted, as printed, into a root shell of a sandbox root that has curl, sha256sum
/// and dpkg (chrooted, so nothing it does reaches this machine). It downloads the package from
/// the server itself, whose certificate the host does not know yet. The same command with
/// another SHA-256 installs nothing; the printed one installs the package with dpkg, enrols
/// the host with the server (the token is then used up) and, with no systemd in the root,
/// says who must start the agent.
#[test]
fn install_script_installs_and_enrols_a_host() {
    let test = "install_script_installs_and_enrols_a_host";
    if !ready(test, TOOLS) || !ready(test, SCRIPT_TEST_TOOLS) {
        return;
    }
    let pkgs = packages();
    let tmp = tempfile::tempdir().unwrap();
    let root = Sandbox::build(tmp.path(), "deb").root;
    add_tools(
        &root,
        &[
            "id",
            "mktemp",
            "cat",
            "chmod",
            "cut",
            "printf",
            "curl",
            "sha256sum",
            "dpkg",
            "dpkg-deb",
            "dpkg-split",
            "start-stop-daemon",
            "ldconfig",
            "tar",
            "diff",
        ],
    );
    // What apt would bring as the package's dependencies: the libraries the binary loads.
    sandbox::add_libraries(&root, Path::new(env!("CARGO_BIN_EXE_patchwarden")));
    // The sandbox has the C library but not its package record; dpkg's own configuration
    // lets the install go ahead, as --force-depends does for the other tests.
    fs::create_dir_all(root.join("etc/dpkg/dpkg.cfg.d")).unwrap();
    fs::write(root.join("etc/dpkg/dpkg.cfg.d/sandbox"), "force-depends\n").unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    fs::write(root.join("etc/hostname"), "sandbox\n").unwrap();

    let server_dir = tmp.path().join("server");
    fs::create_dir_all(&server_dir).unwrap();
    let server = PatchwardenServer::start(&server_dir, pkgs.deb.parent().unwrap());
    let printed = server.admin(&["create", "--note", "packaging test"]);
    let commands = install_commands(&printed);
    let deb_name = pkgs.deb.file_name().unwrap().to_str().unwrap();
    let rpm_name = pkgs.rpm.file_name().unwrap().to_str().unwrap();
    let package_url = format!("{}/downloads/{deb_name}", server.url);
    let sha256 = sha256_of(&pkgs.deb);
    // One command per package the server serves, each naming its package and checksum.
    assert_eq!(
        commands.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        [
            format!(
                "# Debian and Ubuntu hosts ({deb_name}): downloads {package_url}, checks its \
                 SHA-256 {sha256}, installs it, enrols the host and starts the agent. Paste \
                 into a root shell on the host."
            ),
            format!(
                "# RHEL, AlmaLinux, Rocky, Fedora and SUSE hosts ({rpm_name}): downloads {}/downloads/{rpm_name}, \
                 checks its SHA-256 {}, installs it, enrols the host and starts the agent. \
                 Paste into a root shell on the host.",
                server.url,
                sha256_of(&pkgs.rpm)
            ),
        ],
        "{printed}"
    );
    let command = &commands[0].1;
    let token = printed.lines().next().unwrap();
    for assignment in [
        format!("SERVER='{}'", server.url),
        format!("TOKEN='{token}'"),
        format!("CA_FINGERPRINT='{}'", server.fingerprint),
        format!("PACKAGE_URL='{package_url}'"),
        format!("SHA256='{sha256}'"),
    ] {
        assert!(
            command.lines().any(|l| l == assignment),
            "{assignment}\n{command}"
        );
    }
    let installed = || {
        output(
            Command::new("dpkg-query")
                .arg(format!("--root={}", root.display()))
                .args(["-W", "-f=${Status}", "patchwarden"]),
        )
        .stdout
            == b"install ok installed"
    };

    // A package that is not the one the server vouched for is never installed.
    let wrong = "0".repeat(64);
    let tampered = command.replace(&format!("SHA256='{sha256}'"), &format!("SHA256='{wrong}'"));
    let (ok, said) = run_install_command(&root, &tampered);
    assert!(!ok, "{said}");
    assert!(
        said.contains(&format!(
            "patchwarden: the downloaded package's SHA-256 is {sha256}, not {wrong}: not installing it"
        )),
        "{said}"
    );
    assert!(!installed(), "{said}");

    let (ok, said) = run_install_command(&root, command);
    assert!(ok, "{said}");
    let steps: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("patchwarden: "))
        .collect();
    assert_eq!(
        steps,
        [
            format!("patchwarden: downloading {package_url}"),
            format!("patchwarden: package verified (SHA-256 {sha256})"),
            "patchwarden: installing the package".to_owned(),
            format!("patchwarden: enrolling with {}", server.url),
            "patchwarden: the agent is enrolled; systemd is not running here, so start \
             'patchwarden agent run' with this host's supervisor"
                .to_owned(),
        ],
        "{said}"
    );
    assert!(said.contains("enrolled as host "), "{said}");
    assert!(installed(), "{said}");
    // The agent's identity is root's alone, and the token file went with the scratch space.
    let state = root.join("var/lib/patchwarden-agent");
    assert_eq!(
        fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // docs/install.md's configuration-management examples enrol unless this file exists.
    let identity = fs::read_to_string(state.join("agent.json")).unwrap();
    assert!(identity.contains(&server.fingerprint), "{identity}");
    // Neither the script file the command wrote nor the script's scratch space is left.
    let leftovers: Vec<_> = fs::read_dir(root.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The server counted the enrolment against the token.
    let tokens = server.admin(&["list"]);
    assert!(tokens.contains(" 1/1 uses "), "{tokens}");
}

/// The install commands in what `admin token create` printed: each one's comment line and the
/// command (from its first line to the end of the script's here-document).
fn install_commands(printed: &str) -> Vec<(String, String)> {
    let mut commands = Vec::new();
    let mut lines = printed.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("# ") {
            continue;
        }
        let mut command = String::new();
        for l in lines.by_ref() {
            command.push_str(l);
            command.push('\n');
            if l == patchwarden_core::install_script::PASTE_END {
                break;
            }
        }
        commands.push((line.to_owned(), command));
    }
    commands
}

/// Building again from the same binary gives the same bytes, so that the SHA-256 a server
/// publishes for a package (the install script checks it) names one build only.
#[test]
fn packages_are_reproducible() {
    if !ready("packages_are_reproducible", TOOLS) {
        return;
    }
    let pkgs = packages();
    let tmp = tempfile::tempdir().unwrap();
    package_into(tmp.path());
    for built in [&pkgs.deb, &pkgs.rpm] {
        let again = tmp.path().join(built.file_name().unwrap());
        assert_eq!(sha256_of(built), sha256_of(&again), "{}", again.display());
    }
}
