//! Available updates on a Debian-family root, as apt decides them.
//!
//! We run the real apt on the root with a configuration of our own (`APT_CONFIG`) that sets
//! `Dir` to the root, so apt reads the root's `sources.list`, `preferences.d`, `apt.conf.d`,
//! lists and dpkg status — and nothing of the machine's own `/etc/apt` or `/var/lib/apt`
//! unless the root *is* `/`. apt reads its configuration parts before it parses `-o`
//! options, which is why the root must be set in a configuration file and not on the command
//! line. The package cache is kept in memory (`Dir::Cache::pkgcache ""`), so a query writes
//! nothing anywhere; only the explicit refresh (`apt-get update`) writes, and only the
//! root's lists.
//!
//! How the answer is made:
//! - `dpkg-query` lists the installed packages and their holds;
//! - `apt-cache policy` (no arguments) lists the package files with their `Release` data;
//! - `apt-cache policy <names>` gives each installed package's candidate — the version
//!   apt's pinning and priorities choose — and its version table;
//! - for a phased candidate, `apt-cache show` gives its source package, from which we compute
//!   apt's per-machine phasing decision ([`phasing`]).
//!
//! A candidate newer than the installed version is an update unless the package is held or
//! the update is phased and has not reached this host; those go to
//! [`UpdateReport::withheld`], as does a newer version that pinning keeps out. This is what
//! `apt-get dist-upgrade` would install for packages already on the host. `apt-get upgrade`
//! may keep some of them back when they need new packages or removals; that is a resolver
//! decision about *how* to install, not about what is offered, and is not modelled here. A
//! candidate lower than the installed version (a pin above 1000 forcing a downgrade) is not
//! reported.

pub mod phasing;
pub mod policy;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use patchwarden_core::inventory::{AvailableUpdate, UpdateKind};
use patchwarden_version::dpkg;

use super::command::Invocation;
use super::{UpdateReport, UpdatesError, Withheld, WithheldReason};
use policy::{PackageFile, PackagePolicy, ReleaseInfo};

/// The most `apt-cache`/`dpkg-query` may print: a host with every package of Debian main
/// installed prints about 30 MiB of `apt-cache policy`; real hosts print far less.
const OUTPUT_LIMIT: usize = 64 * 1024 * 1024;
/// How long a machine's `/etc/machine-id` may be; a real one is 33 bytes.
const MACHINE_ID_LIMIT: u64 = 4096;

/// Available updates for the root `root` (the host is `/`), refreshing the lists first when
/// `refresh` is set. See [`Apt`] for the knobs.
pub fn apt_updates(root: &Path, refresh: bool) -> Result<UpdateReport, UpdatesError> {
    let apt = Apt::new(root);
    if refresh {
        apt.refresh()?;
    }
    apt.report()
}

/// apt on one root, with the limits its children run under.
#[derive(Debug, Clone)]
pub struct Apt {
    root: PathBuf,
    /// How long one query (`apt-cache`, `dpkg-query`) may run.
    pub query_timeout: Duration,
    /// How long `apt-get update` may run; it downloads.
    pub refresh_timeout: Duration,
    /// The `PATH` apt and dpkg are looked up in; `None` keeps the agent's own.
    pub search_path: Option<OsString>,
    /// The most one tool may print before it is killed and the run refused.
    pub output_limit: usize,
}

impl Apt {
    pub fn new(root: &Path) -> Apt {
        Apt {
            root: root.to_owned(),
            query_timeout: Duration::from_secs(120),
            refresh_timeout: Duration::from_secs(600),
            search_path: None,
            output_limit: OUTPUT_LIMIT,
        }
    }

    /// `apt-get update` on the root: downloads the lists its `sources.list` names into the
    /// root's `var/lib/apt/lists`. In production this needs the network.
    pub fn refresh(&self) -> Result<(), UpdatesError> {
        let env = self.environment()?;
        self.invocation(&env, "apt-get", &["update"], self.refresh_timeout)
            .run()?;
        Ok(())
    }

    /// What apt would install on the root, and what it offers but would not install.
    pub fn report(&self) -> Result<UpdateReport, UpdatesError> {
        let env = self.environment()?;
        let q = self.query_timeout;
        let dump = self
            .invocation(&env, "apt-config", &["dump"], q)
            .run()?
            .stdout;
        let native_arch = policy::config_value(&dump, "APT::Architecture")
            .unwrap_or("")
            .to_owned();

        let admindir = env.root.join("var/lib/dpkg");
        let mut admin = OsString::from("--admindir=");
        admin.push(&admindir);
        let format = format!("--showformat={}", policy::DPKG_QUERY_FORMAT);
        let listed = Invocation {
            args: vec![admin, "-W".into(), format.into()],
            ..self.invocation(&env, "dpkg-query", &[], q)
        }
        .run()?;
        let installed = policy::parse_dpkg_query(&listed.stdout)?;
        if installed.is_empty() {
            return Ok(UpdateReport::default());
        }

        let files = policy::parse_package_files(
            &self
                .invocation(&env, "apt-cache", &["policy"], q)
                .run()?
                .stdout,
        )?;
        let files: HashMap<&str, &PackageFile> =
            files.iter().map(|f| (f.description.as_str(), f)).collect();

        // `name:arch` names exactly one package; apt prints it back as `name` when the
        // architecture is the native one (or `all`), and as `name:arch` otherwise.
        let mut args: Vec<OsString> = vec!["policy".into()];
        args.extend(
            installed
                .iter()
                .map(|p| OsString::from(format!("{}:{}", p.name, p.arch))),
        );
        let policies = Invocation {
            args,
            ..self.invocation(&env, "apt-cache", &[], q)
        }
        .run()?;
        let policies = policy::parse_package_policies(&policies.stdout)?;
        let by_name: HashMap<&str, &PackagePolicy> =
            policies.iter().map(|p| (p.name.as_str(), p)).collect();

        let mut decided = Vec::new();
        for pkg in &installed {
            let qualified = format!("{}:{}", pkg.name, pkg.arch);
            let native = pkg.arch == native_arch || pkg.arch == "all";
            let found = by_name
                .get(qualified.as_str())
                .or_else(|| native.then(|| by_name.get(pkg.name.as_str())).flatten());
            if let Some(policy) = found
                && let Some(d) = decide(pkg, policy, &files)?
            {
                decided.push(d);
            }
        }

        let phasing = self.phasing_context(&env, &dump, &decided)?;
        let mut report = UpdateReport::default();
        for d in decided {
            let reason = match d.reason {
                Some(r) => Some(r),
                None => match d.phased {
                    Some(pct) if !phasing.includes(&d.update, pct) => {
                        Some(WithheldReason::Phased { percentage: pct })
                    }
                    _ => None,
                },
            };
            match reason {
                Some(reason) => report.withheld.push(Withheld {
                    update: d.update,
                    reason,
                }),
                None => report.updates.push(d.update),
            }
        }
        report
            .updates
            .sort_by(|a, b| (&a.name, &a.installed).cmp(&(&b.name, &b.installed)));
        report.withheld.sort_by(|a, b| {
            (&a.update.name, &a.update.installed).cmp(&(&b.update.name, &b.update.installed))
        });
        Ok(report)
    }

    /// Checks the root and writes the configuration that points apt at it.
    fn environment(&self) -> Result<AptEnv, UpdatesError> {
        let root = std::fs::canonicalize(&self.root).map_err(|e| UpdatesError::InvalidRoot {
            root: self.root.clone(),
            reason: format!("cannot resolve it: {e}"),
        })?;
        let root_str = root.to_str().ok_or_else(|| UpdatesError::InvalidRoot {
            root: root.clone(),
            reason: "the path is not UTF-8".into(),
        })?;
        // apt's configuration syntax has no escapes: a quote or a control character would end
        // the value early and let the rest be read as configuration.
        if root_str.chars().any(|c| c == '"' || c.is_control()) {
            return Err(UpdatesError::InvalidRoot {
                root,
                reason: "the path contains a quote or a control character".into(),
            });
        }
        for needed in ["var/lib/dpkg/status", "etc/apt"] {
            let path = root.join(needed);
            if !path.exists() {
                return Err(UpdatesError::NoState {
                    root: root.clone(),
                    manager: "apt",
                    missing: path,
                });
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix("patchwarden-apt-")
            .tempdir()
            .map_err(|source| UpdatesError::Scratch {
                what: "apt configuration directory",
                source,
            })?;
        let config = scratch.path().join("apt.conf");
        let base = root_str.trim_end_matches('/');
        let text = format!(
            "// Written by patchwarden for one run: apt on the root {base}/.\n\
             Dir \"{base}/\";\n\
             Dir::State::status \"{base}/var/lib/dpkg/status\";\n\
             Dir::Cache::pkgcache \"\";\n\
             Dir::Cache::srcpkgcache \"\";\n"
        );
        std::fs::write(&config, text).map_err(|source| UpdatesError::Scratch {
            what: "apt configuration",
            source,
        })?;
        Ok(AptEnv {
            root,
            config,
            _scratch: scratch,
        })
    }

    /// One apt or dpkg tool run against the root. Queries take no lock (`apt-cache` and
    /// `apt-config` never do, and `dpkg-query` only reads); `apt-get update` takes the root's
    /// lists lock as it always does, so a refresh never races a running apt.
    fn invocation<'a>(
        &'a self,
        env: &AptEnv,
        program: &'a str,
        args: &[&str],
        timeout: Duration,
    ) -> Invocation<'a> {
        Invocation {
            program,
            args: args.iter().map(OsString::from).collect(),
            env: vec![("APT_CONFIG", env.config.clone().into_os_string())],
            search_path: self.search_path.as_deref().map(OsStr::new),
            timeout,
            stdout_limit: self.output_limit,
        }
    }

    /// What apt needs to decide phasing on this root: its options and the root's machine id.
    fn phasing_context(
        &self,
        env: &AptEnv,
        dump: &str,
        decided: &[Decision],
    ) -> Result<Phasing, UpdatesError> {
        let phased: Vec<&Decision> = decided
            .iter()
            .filter(|d| d.reason.is_none() && d.phased.is_some())
            .collect();
        let always = policy::config_bool(dump, "APT::Get::Always-Include-Phased-Updates")
            || policy::config_bool(dump, "Update-Manager::Always-Include-Phased-Updates");
        let never = policy::config_bool(dump, "APT::Get::Never-Include-Phased-Updates")
            || policy::config_bool(dump, "Update-Manager::Never-Include-Phased-Updates");
        let machine_id = match policy::config_value(dump, "APT::Machine-ID") {
            Some(id) => Some(id.to_owned()),
            None => read_machine_id(&env.root.join("etc/machine-id")),
        };
        let mut sources = HashMap::new();
        if !phased.is_empty() && !always && !never && machine_id.is_some() {
            let mut args: Vec<OsString> = vec!["show".into()];
            args.extend(
                phased
                    .iter()
                    .map(|d| OsString::from(format!("{}={}", d.apt_name, d.update.candidate))),
            );
            let shown = Invocation {
                args,
                ..self.invocation(env, "apt-cache", &[], self.query_timeout)
            }
            .run()?;
            for s in policy::parse_show_sources(&shown.stdout)? {
                sources.insert(
                    (s.package.clone(), s.version.clone()),
                    (s.source, s.source_version),
                );
            }
        }
        Ok(Phasing {
            always,
            never,
            machine_id,
            sources,
        })
    }
}

/// A root checked and a configuration written for it; the scratch directory is removed when
/// this is dropped.
#[derive(Debug)]
struct AptEnv {
    root: PathBuf,
    config: PathBuf,
    _scratch: tempfile::TempDir,
}

/// The first line of `/etc/machine-id`, as apt reads it; `None` when there is none, in which
/// case apt does not phase at all (it cannot tell this machine from any other).
fn read_machine_id(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MACHINE_ID_LIMIT).read_to_string(&mut text).ok()?;
    let id = text.lines().next()?.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// apt's phasing options and inputs for one root.
#[derive(Debug)]
struct Phasing {
    always: bool,
    never: bool,
    machine_id: Option<String>,
    /// (binary, version) → (source, source version) of the phased candidates.
    sources: HashMap<(String, String), (String, String)>,
}

impl Phasing {
    fn includes(&self, update: &AvailableUpdate, percentage: u8) -> bool {
        if self.always || percentage >= 100 {
            return true;
        }
        if self.never {
            return false;
        }
        let Some(machine_id) = &self.machine_id else {
            return true;
        };
        let key = (update.name.clone(), update.candidate.clone());
        let (source, version) = match self.sources.get(&key) {
            Some((s, v)) => (s.as_str(), v.as_str()),
            // `apt-cache show` prints no Source for a binary built from a same-named source.
            None => (update.name.as_str(), update.candidate.as_str()),
        };
        phasing::host_in_phase(source, version, machine_id, percentage)
    }
}

/// One installed package with a newer version on offer.
#[derive(Debug)]
struct Decision {
    /// The name apt knows the package by (`name:arch`).
    apt_name: String,
    update: AvailableUpdate,
    /// Set when the package is held or pinned; phasing is decided afterwards.
    reason: Option<WithheldReason>,
    phased: Option<u8>,
}

/// What apt offers one installed package: `None` when nothing newer is on offer.
fn decide(
    pkg: &policy::InstalledPackage,
    policy: &PackagePolicy,
    files: &HashMap<&str, &PackageFile>,
) -> Result<Option<Decision>, UpdatesError> {
    let newer = |v: &str| -> Result<bool, UpdatesError> {
        dpkg::compare(v, &pkg.version)
            .map(|o| o.is_gt())
            .map_err(|e| {
                UpdatesError::malformed(
                    "apt-cache policy (packages)",
                    0,
                    format!("version of {}: {e}", policy.name),
                    v,
                )
            })
    };
    let make = |entry: &policy::VersionEntry| {
        let releases: Vec<&ReleaseInfo> = entry
            .files
            .iter()
            .filter_map(|f| files.get(f.as_str()))
            .map(|f| &f.release)
            .collect();
        let kind = classify(releases.iter().copied());
        // The origin named is the archive that gave the kind: a version published both in
        // the main suite and in the security archive is the security archive's fix.
        let origin = releases
            .iter()
            .find(|r| classify([**r]) == kind)
            .or(releases.first())
            .and_then(|r| origin_name(r));
        AvailableUpdate {
            name: pkg.name.clone(),
            installed: pkg.version.clone(),
            candidate: entry.version.clone(),
            origin,
            kind,
            severity: None,
            advisories: Vec::new(),
        }
    };
    let apt_name = format!("{}:{}", pkg.name, pkg.arch);
    let candidate = policy
        .candidate
        .as_deref()
        .and_then(|c| policy.versions.iter().find(|v| v.version == c));
    if let Some(entry) = candidate
        && newer(&entry.version)?
    {
        return Ok(Some(Decision {
            apt_name,
            update: make(entry),
            reason: pkg.held.then_some(WithheldReason::Held),
            phased: entry.phased,
        }));
    }
    // The candidate is the installed version (or none): pinning keeps any newer one out.
    let mut newest: Option<&policy::VersionEntry> = None;
    for entry in &policy.versions {
        if newer(&entry.version)? {
            let better = match newest {
                None => true,
                Some(n) => dpkg::compare(&entry.version, &n.version)
                    .map(|o| o.is_gt())
                    .unwrap_or(false),
            };
            if better {
                newest = Some(entry);
            }
        }
    }
    Ok(newest.map(|entry| Decision {
        apt_name,
        update: make(entry),
        reason: Some(WithheldReason::Pinned {
            priority: entry.priority,
        }),
        phased: None,
    }))
}

/// The origin as people name it: `Origin:suite` (`Debian:bookworm-security`,
/// `Ubuntu:jammy-updates`). Debian's suites are aliases that move (`stable` becomes
/// `oldstable`), so where the codename names the same pocket we use it; Ubuntu's codename
/// lacks the pocket (`jammy` for `jammy-security`), so there we keep the suite.
pub fn origin_name(r: &ReleaseInfo) -> Option<String> {
    let suite = match (r.archive.as_deref(), r.codename.as_deref()) {
        (Some(a), Some(n)) if !a.starts_with(n) => n,
        (Some(a), _) => a,
        (None, Some(n)) => n,
        (None, None) => return r.origin.clone().or_else(|| r.label.clone()),
    };
    if suite == "now" {
        return None;
    }
    Some(match r.origin.as_deref().or(r.label.as_deref()) {
        Some(o) => format!("{o}:{suite}"),
        None => suite.to_owned(),
    })
}

/// What an update is for, from the archives that offer it: security when any of them is a
/// security archive (`*-security`, Debian's old `*/updates`, label `Debian-Security`);
/// bugfix when one is a stable-updates archive (`*-updates`, `*-proposed-updates`) or a
/// Debian point release (a `Version:` with a point, like `12.5`, or the `stable` family of
/// suites); unknown otherwise. Only Debian numbers its point releases that way: Ubuntu's
/// `22.04` is the release itself, whose pocket is frozen once released.
pub fn classify<'a>(releases: impl IntoIterator<Item = &'a ReleaseInfo>) -> UpdateKind {
    let mut kind = UpdateKind::Unknown;
    for r in releases {
        let names = [r.archive.as_deref(), r.codename.as_deref()];
        let security = names
            .iter()
            .flatten()
            .any(|s| s.ends_with("-security") || s.ends_with("/updates"))
            || r.label.as_deref() == Some("Debian-Security");
        if security {
            return UpdateKind::Security;
        }
        let updates = names.iter().flatten().any(|s| s.ends_with("-updates"));
        let debian = r.origin.as_deref() == Some("Debian");
        let point_release = debian
            && (r.version.as_deref().is_some_and(|v| v.contains('.'))
                || matches!(
                    r.archive.as_deref(),
                    Some("stable" | "oldstable" | "oldoldstable")
                ));
        if updates || point_release {
            kind = UpdateKind::Bugfix;
        }
    }
    kind
}
