//! The fixed commands the executor runs, one set per package manager, as argument vectors:
//! never a shell string, never anything the server sent other than package names and versions,
//! and those only after [`check_pin`] said they are plain names (no leading `-`, no
//! whitespace or control characters), so none can be read as an option.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use patchwarden_api::v1::jobs::PackagePin;
use patchwarden_core::inventory::Manager;

/// The longest name or version accepted.
const MAX_NAME: usize = 256;

/// The package manager front end the executor drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `apt-get` over dpkg (Debian, Ubuntu).
    Apt,
    /// `dnf` (or `yum` where there is no dnf) over rpm.
    Dnf { yum: bool },
    /// `zypper` over rpm (SUSE).
    Zypper,
    /// `apk` (Alpine).
    Apk,
}

impl Backend {
    /// The front end for `manager` on the host under `root`: rpm hosts use zypper when the
    /// root is a SUSE system (it has `etc/zypp`), else dnf, else yum.
    pub fn for_manager(manager: Manager, root: &Path) -> Backend {
        match manager {
            Manager::Dpkg => Backend::Apt,
            Manager::Apk => Backend::Apk,
            Manager::Rpm if root.join("etc/zypp").is_dir() => Backend::Zypper,
            Manager::Rpm => Backend::Dnf {
                yum: !root.join("usr/bin/dnf").exists() && root.join("usr/bin/yum").exists(),
            },
        }
    }

    /// The database the backend changes.
    pub fn manager(self) -> Manager {
        match self {
            Backend::Apt => Manager::Dpkg,
            Backend::Dnf { .. } | Backend::Zypper => Manager::Rpm,
            Backend::Apk => Manager::Apk,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Apt => "apt",
            Backend::Dnf { yum: false } => "dnf",
            Backend::Dnf { yum: true } => "yum",
            Backend::Zypper => "zypper",
            Backend::Apk => "apk",
        }
    }
}

/// One command: the program (looked up in the agent's `PATH`), its arguments, the variables
/// set for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: &'static str,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
}

impl Cmd {
    fn new(program: &'static str) -> Cmd {
        Cmd {
            program,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, a: I) -> Cmd {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    fn env(mut self, k: &'static str, v: impl Into<OsString>) -> Cmd {
        self.env.push((k, v.into()));
        self
    }

    /// The command as one line, for logs and tests.
    pub fn line(&self) -> String {
        let mut s = self.program.to_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Why a package name or version is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not a plain package name or version")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
}

/// Checks one word that goes on a command line: not empty, not an option, no whitespace or
/// control characters, nothing a package manager reads as a path or a glob.
pub fn check_word(what: &'static str, value: &str) -> Result<(), NameError> {
    let bad = value.is_empty()
        || value.len() > MAX_NAME
        || value.starts_with('-')
        || value.starts_with('.')
        || value.contains('/')
        || value.contains("..")
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "*?[]=<>'\"`$;|&\\".contains(c));
    if bad {
        return Err(NameError {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Checks a pin's name, version and architecture.
pub fn check_pin(pin: &PackagePin) -> Result<(), NameError> {
    check_word("package name", &pin.name)?;
    // Versions carry `:` (epochs) and `~`, never `=`, `/` or a blank.
    check_word("package version", &pin.version)?;
    if let Some(arch) = &pin.arch {
        check_word("package architecture", arch)?;
    }
    Ok(())
}

/// The root the commands act on: `None` is the live host (`/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub sandbox: Option<PathBuf>,
    /// apt only: the configuration file that points apt and dpkg at the sandbox root.
    pub apt_config: Option<PathBuf>,
    /// dnf only, on a sandbox: its configuration file (the root's own, or an empty one; dnf
    /// would otherwise read the host's) and the release it is (the root's `VERSION_ID`).
    pub dnf_config: Option<PathBuf>,
    pub releasever: Option<String>,
}

impl Target {
    pub fn live() -> Target {
        Target {
            sandbox: None,
            apt_config: None,
            dnf_config: None,
            releasever: None,
        }
    }
}

/// The text of the apt configuration for a sandbox root: apt's directories and dpkg's
/// database under it, and dpkg told to work there (`--root` chroots for maintainer scripts).
/// `None` when the path cannot be written in apt's syntax (a quote or a control character).
pub fn apt_config_text(root: &Path) -> Option<String> {
    let r = root.to_str()?.trim_end_matches('/');
    if r.chars().any(|c| c == '"' || c.is_control()) {
        return None;
    }
    Some(format!(
        "// Written by patchwarden for one job: apt and dpkg on the root {r}/.\n\
         Dir \"{r}/\";\n\
         Dir::State::status \"{r}/var/lib/dpkg/status\";\n\
         Dir::Cache::pkgcache \"\";\n\
         Dir::Cache::srcpkgcache \"\";\n\
         DPkg::Options {{ \"--root={r}\"; \"--log={r}/var/log/dpkg.log\"; }};\n"
    ))
}

fn apt_get(target: &Target) -> Cmd {
    let mut cmd = Cmd::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("APT_LISTCHANGES_FRONTEND", "none")
        .env("NEEDRESTART_MODE", "l");
    if let Some(conf) = &target.apt_config {
        cmd = cmd.env("APT_CONFIG", conf.clone().into_os_string());
    }
    cmd
}

/// `pkg=version`, or `pkg:arch=version`.
fn apt_spec(pin: &PackagePin) -> String {
    match &pin.arch {
        Some(arch) if arch != "all" => format!("{}:{}={}", pin.name, arch, pin.version),
        _ => format!("{}={}", pin.name, pin.version),
    }
}

/// rpm's `name-[epoch:]version-release[.arch]`.
fn rpm_spec(pin: &PackagePin) -> String {
    match &pin.arch {
        Some(arch) => format!("{}-{}.{arch}", pin.name, pin.version),
        None => format!("{}-{}", pin.name, pin.version),
    }
}

const DPKG_NEVER_ASK: [&str; 4] = [
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
];

impl Backend {
    /// Refreshes the repository metadata before installing.
    pub fn refresh(self, target: &Target) -> Cmd {
        match self {
            Backend::Apt => apt_get(target).args(["-q", "update"]),
            Backend::Dnf { yum } => dnf(yum, target).args(["--refresh", "makecache"]),
            Backend::Zypper => zypper(target).arg("refresh"),
            Backend::Apk => apk(target).arg("update"),
        }
    }

    /// Upgrades to exactly these versions (never installs a package that is not there).
    pub fn install(self, target: &Target, pins: &[PackagePin]) -> Cmd {
        match self {
            Backend::Apt => apt_get(target)
                .args(["install", "--only-upgrade", "-y", "-q"])
                .args(DPKG_NEVER_ASK)
                .args(pins.iter().map(apt_spec)),
            Backend::Dnf { yum } => dnf(yum, target)
                .arg("upgrade")
                .args(pins.iter().map(rpm_spec)),
            Backend::Zypper => zypper(target)
                .args(["install", "--oldpackage"])
                .args(pins.iter().map(|p| format!("{}={}", p.name, p.version))),
            Backend::Apk => apk(target)
                .arg("add")
                .args(pins.iter().map(|p| format!("{}={}", p.name, p.version))),
        }
    }

    /// Returns to exactly these versions: from the agent's cache where it holds the package
    /// file (`cached`, apt only), else from the repository.
    pub fn rollback(self, target: &Target, pins: &[PackagePin], cached: &[PathBuf]) -> Cmd {
        match self {
            Backend::Apt => apt_get(target)
                .args(["install", "--allow-downgrades", "-y", "-q"])
                .args(DPKG_NEVER_ASK)
                .args(cached.iter().map(|p| p.clone().into_os_string()))
                .args(pins.iter().map(apt_spec)),
            Backend::Dnf { yum } => dnf(yum, target)
                .arg("downgrade")
                .args(cached.iter().map(|p| p.clone().into_os_string()))
                .args(pins.iter().map(rpm_spec)),
            Backend::Zypper => zypper(target)
                .args(["install", "--oldpackage"])
                .args(pins.iter().map(|p| format!("{}={}", p.name, p.version))),
            Backend::Apk => apk(target)
                .arg("add")
                .args(pins.iter().map(|p| format!("{}={}", p.name, p.version))),
        }
    }

    /// Finishes what an interrupted run of the package manager left half done, before a
    /// resumed job runs it again: `dpkg --configure -a` (apt refuses to work until then).
    /// `None` where the manager needs nothing.
    pub fn repair(self, target: &Target) -> Option<Cmd> {
        match self {
            Backend::Apt => {
                let mut cmd = Cmd::new("dpkg")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["--force-confdef", "--force-confold"]);
                if let Some(root) = &target.sandbox {
                    cmd = cmd
                        .arg(format!("--root={}", root.display()))
                        .arg(format!("--log={}", root.join("var/log/dpkg.log").display()));
                }
                Some(cmd.args(["--configure", "-a"]))
            }
            _ => None,
        }
    }

    /// Downloads these exact versions' package files into the working directory it runs in
    /// (apt) or `dest` (dnf): the rollback material. `None` where the manager has no such
    /// command here.
    pub fn download(self, target: &Target, pins: &[PackagePin], dest: &Path) -> Option<Cmd> {
        match self {
            Backend::Apt => Some(
                apt_get(target)
                    .args(["-q", "download"])
                    .args(pins.iter().map(apt_spec)),
            ),
            // `reinstall --downloadonly` fetches the installed version itself, with dnf alone
            // (`dnf download` needs a plugin).
            Backend::Dnf { yum } => Some(
                dnf(yum, target)
                    .args(["reinstall", "--downloadonly"])
                    .arg(format!("--downloaddir={}", dest.display()))
                    .args(pins.iter().map(rpm_spec)),
            ),
            Backend::Zypper | Backend::Apk => None,
        }
    }
}

fn dnf(yum: bool, target: &Target) -> Cmd {
    let mut cmd = Cmd::new(if yum { "yum" } else { "dnf" }).args(["-y", "-q"]);
    if let Some(root) = &target.sandbox {
        cmd = cmd.arg(format!("--installroot={}", root.display()));
        // dnf falls back to the host's configuration and repositories when the root has
        // none: name the root's explicitly.
        if let Some(config) = &target.dnf_config {
            cmd = cmd.arg(format!("--config={}", config.display()));
        }
        let r = root.display();
        cmd = cmd.arg(format!(
            "--setopt=reposdir={r}/etc/yum.repos.d,{r}/etc/distro.repos.d"
        ));
        if let Some(v) = &target.releasever {
            cmd = cmd.arg(format!("--releasever={v}"));
        }
    }
    cmd
}

fn zypper(target: &Target) -> Cmd {
    let mut cmd = Cmd::new("zypper").arg("--non-interactive");
    if let Some(root) = &target.sandbox {
        cmd = cmd.arg("--root").arg(root.clone().into_os_string());
    }
    cmd
}

fn apk(target: &Target) -> Cmd {
    let mut cmd = Cmd::new("apk");
    if let Some(root) = &target.sandbox {
        cmd = cmd.arg("--root").arg(root.clone().into_os_string());
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(name: &str, version: &str) -> PackagePin {
        PackagePin {
            name: name.into(),
            version: version.into(),
            arch: None,
        }
    }

    fn sandbox() -> Target {
        Target {
            sandbox: Some("/srv/root".into()),
            apt_config: Some("/tmp/x/apt.conf".into()),
            ..Target::live()
        }
    }

    #[test]
    fn apt_installs_exact_versions_as_upgrades_without_prompting() {
        let cmd = Backend::Apt.install(&sandbox(), &[pin("openssl", "3.0.15-1~deb12u1")]);
        assert_eq!(
            cmd.line(),
            "apt-get install --only-upgrade -y -q -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold openssl=3.0.15-1~deb12u1"
        );
        assert!(
            cmd.env
                .contains(&("DEBIAN_FRONTEND", "noninteractive".into()))
        );
        assert!(cmd.env.contains(&("APT_CONFIG", "/tmp/x/apt.conf".into())));
        assert_eq!(Backend::Apt.refresh(&sandbox()).line(), "apt-get -q update");
        assert_eq!(
            Backend::Apt.repair(&sandbox()).unwrap().line(),
            "dpkg --force-confdef --force-confold --root=/srv/root \
             --log=/srv/root/var/log/dpkg.log --configure -a"
        );
        assert_eq!(
            Backend::Apt.repair(&Target::live()).unwrap().line(),
            "dpkg --force-confdef --force-confold --configure -a"
        );
        assert!(Backend::Apk.repair(&Target::live()).is_none());
        let live = Backend::Apt.install(&Target::live(), &[pin("a", "1")]);
        assert!(live.env.iter().all(|(k, _)| *k != "APT_CONFIG"));
        let rb = Backend::Apt.rollback(
            &sandbox(),
            &[pin("b", "2")],
            &["/var/lib/pw/cache/a_1_all.deb".into()],
        );
        assert_eq!(
            rb.line(),
            "apt-get install --allow-downgrades -y -q -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold /var/lib/pw/cache/a_1_all.deb b=2"
        );
        let mut amd = pin("libc6", "2.36-9");
        amd.arch = Some("i386".into());
        assert!(
            Backend::Apt
                .download(&Target::live(), &[amd], Path::new("/c"))
                .unwrap()
                .line()
                .ends_with("download libc6:i386=2.36-9")
        );
    }

    #[test]
    fn apt_config_points_apt_and_dpkg_at_the_root() {
        let text = apt_config_text(Path::new("/srv/root/")).unwrap();
        assert!(text.contains("Dir \"/srv/root/\";"), "{text}");
        assert!(text.contains("\"--root=/srv/root\""), "{text}");
        assert!(apt_config_text(Path::new("/srv/ro\"ot")).is_none());
    }

    #[test]
    fn rpm_and_apk_commands() {
        let pins = [pin("openssl", "1:3.0.7-27.el9")];
        let t = Target {
            sandbox: Some("/r".into()),
            dnf_config: Some("/s/dnf.conf".into()),
            releasever: Some("9".into()),
            ..Target::live()
        };
        let opts = "--installroot=/r --config=/s/dnf.conf \
                    --setopt=reposdir=/r/etc/yum.repos.d,/r/etc/distro.repos.d --releasever=9";
        assert_eq!(
            Backend::Dnf { yum: false }.install(&t, &pins).line(),
            format!("dnf -y -q {opts} upgrade openssl-1:3.0.7-27.el9")
        );
        assert_eq!(
            Backend::Dnf { yum: false }.rollback(&t, &pins, &[]).line(),
            format!("dnf -y -q {opts} downgrade openssl-1:3.0.7-27.el9")
        );
        assert_eq!(
            Backend::Dnf { yum: true }
                .install(&Target::live(), &pins)
                .line(),
            "yum -y -q upgrade openssl-1:3.0.7-27.el9"
        );
        assert_eq!(
            Backend::Zypper.install(&t, &pins).line(),
            "zypper --non-interactive --root /r install --oldpackage openssl=1:3.0.7-27.el9"
        );
        assert_eq!(
            Backend::Apk.install(&t, &[pin("musl", "1.2.4-r2")]).line(),
            "apk --root /r add musl=1.2.4-r2"
        );
        assert_eq!(
            Backend::Dnf { yum: false }
                .download(&Target::live(), &pins, Path::new("/c"))
                .unwrap()
                .line(),
            "dnf -y -q reinstall --downloadonly --downloaddir=/c openssl-1:3.0.7-27.el9"
        );
    }

    #[test]
    fn names_that_could_be_options_or_shell_are_refused() {
        for ok in [
            "openssl",
            "libstdc++6",
            "1:3.0.7-27.el9",
            "2.36-9+deb12u4",
            "1.0~rc1",
        ] {
            check_word("x", ok).unwrap();
        }
        for bad in [
            "",
            "-y",
            "--allow-unauthenticated",
            "a b",
            "a\tb",
            "a\nb",
            "a=1",
            "../x",
            "/etc/passwd",
            "x;rm",
            "$(id)",
            "a*",
        ] {
            assert!(check_word("x", bad).is_err(), "{bad:?}");
        }
        assert!(check_pin(&pin("ok", "-1")).is_err());
        let mut p = pin("ok", "1");
        p.arch = Some("-x".into());
        assert!(check_pin(&p).is_err());
    }
}
