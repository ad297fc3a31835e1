//! Available updates on an rpm root, as dnf decides them, with the repository's own
//! classification from its `updateinfo` (security, bugfix, enhancement; severity; advisory
//! ids such as RHSA or ALSA).
//!
//! We run the real dnf with `--installroot` and cache-only (`-C`), and make it read the
//! root's configuration and repositories, never the host's: dnf falls back to the host's
//! `dnf.conf` and `yum.repos.d` when the root lacks them, so both are passed explicitly
//! (`--config`, `--setopt=reposdir=`), an empty configuration when the root has none.
//!
//! How the answer is made:
//! - `repoquery --installed` lists what is installed;
//! - `repoquery --upgrades --latest-limit=1` gives, per installed name and architecture,
//!   the newest version dnf would upgrade to — after the root's excludes and any
//!   versionlock plugin;
//! - the same with `--disableexcludes=all --disableplugin=versionlock` shows what the
//!   excludes and version locks keep out ([`WithheldReason::Excluded`]);
//! - `updateinfo list --updates` lists the advisories of the offered versions. An update
//!   carries every advisory for its package between the installed version (exclusive) and
//!   the candidate (inclusive), since installing the candidate installs their fixes too; its
//!   kind is the strongest of them (security, then bugfix, then enhancement) and its
//!   severity the highest severity of its security advisories.
//!
//! Versions are written `[epoch:]version-release`, the epoch only when it is not 0, as dnf
//! prints them.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use patchwarden_core::inventory::{AvailableUpdate, UpdateKind};
use patchwarden_version::rpm;

use super::command::Invocation;
use super::{UpdateReport, UpdatesError, Withheld, WithheldReason};

const OUTPUT_LIMIT: usize = 64 * 1024 * 1024;
/// The `repoquery` format [`parse_repoquery`] reads.
pub const QUERY_FORMAT: &str = "%{name}\t%{arch}\t%{epoch}\t%{version}\t%{release}\t%{repoid}";

/// Available updates for the rpm root `root` (`/` for the host) with dnf, refreshing the
/// metadata first (`dnf makecache`) when `refresh` is set.
pub fn dnf_updates(root: &Path, refresh: bool) -> Result<UpdateReport, UpdatesError> {
    let dnf = Dnf::new(root);
    if refresh {
        dnf.refresh()?;
    }
    dnf.report()
}

/// dnf on one root, with the limits its children run under.
#[derive(Debug, Clone)]
pub struct Dnf {
    root: PathBuf,
    /// `--releasever`; `None` lets dnf read it from the root's release package.
    pub releasever: Option<String>,
    pub query_timeout: Duration,
    pub refresh_timeout: Duration,
    /// The `PATH` dnf is looked up in; `None` keeps the agent's own.
    pub search_path: Option<OsString>,
    pub output_limit: usize,
}

impl Dnf {
    pub fn new(root: &Path) -> Dnf {
        Dnf {
            root: root.to_owned(),
            releasever: None,
            query_timeout: Duration::from_secs(300),
            refresh_timeout: Duration::from_secs(900),
            search_path: None,
            output_limit: OUTPUT_LIMIT,
        }
    }

    /// `dnf makecache` on the root: downloads the repositories' metadata into the root's
    /// cache. In production this needs the network.
    pub fn refresh(&self) -> Result<(), UpdatesError> {
        let env = self.environment()?;
        self.run(&env, &["makecache"], false, self.refresh_timeout)?;
        Ok(())
    }

    /// What dnf would upgrade on the root, and what the root's excludes keep out.
    pub fn report(&self) -> Result<UpdateReport, UpdatesError> {
        let env = self.environment()?;
        let q = self.query_timeout;
        let format = format!("--queryformat={QUERY_FORMAT}\\n");
        // Excludes hide installed packages too; the installed set is read without them.
        let installed_args = ["repoquery", "--installed", "--disableexcludes=all", &format];
        let installed = parse_repoquery(&self.run(&env, &installed_args, true, q)?)?;
        let upgrades = ["repoquery", "--upgrades", "--latest-limit=1", &format];
        let offered = parse_repoquery(&self.run(&env, &upgrades, true, q)?)?;
        let mut all_args = upgrades.to_vec();
        // The versionlock plugin locks through its own exclude list, which
        // `--disableexcludes` does not lift; disabling a plugin that is not installed only
        // makes dnf note it on stderr.
        all_args.extend(["--disableexcludes=all", "--disableplugin=versionlock"]);
        let unexcluded = parse_repoquery(&self.run(&env, &all_args, true, q)?)?;
        let advisories = parse_updateinfo_list(&self.run(
            &env,
            &["updateinfo", "list", "--updates"],
            true,
            q,
        )?)?;

        let installed: HashMap<(&str, &str), &Nevra> = installed
            .iter()
            .map(|p| ((p.name.as_str(), p.arch.as_str()), p))
            .collect();
        let mut report = UpdateReport::default();
        for candidate in &offered {
            if let Some(old) = installed.get(&(candidate.name.as_str(), candidate.arch.as_str())) {
                report.updates.push(describe(old, candidate, &advisories)?);
            }
        }
        for candidate in &unexcluded {
            let key = (candidate.name.as_str(), candidate.arch.as_str());
            let offered_too = offered
                .iter()
                .any(|o| (o.name.as_str(), o.arch.as_str()) == key);
            if let (Some(old), false) = (installed.get(&key), offered_too) {
                report.withheld.push(Withheld {
                    update: describe(old, candidate, &advisories)?,
                    reason: WithheldReason::Excluded,
                });
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

    fn environment(&self) -> Result<DnfEnv, UpdatesError> {
        let root = std::fs::canonicalize(&self.root).map_err(|e| UpdatesError::InvalidRoot {
            root: self.root.clone(),
            reason: format!("cannot resolve it: {e}"),
        })?;
        // The setopt value is comma-separated: a comma in the root would split it.
        if root.to_str().is_none_or(|s| s.contains(',')) {
            return Err(UpdatesError::InvalidRoot {
                root,
                reason: "the path is not UTF-8 or contains a comma".into(),
            });
        }
        // Where rpm keeps its database: Fedora and RHEL 9+ (`/usr/lib/sysimage/rpm`), older
        // RHEL (`/var/lib/rpm`), and Debian's rpm package (`~/.rpmdb`, for root `/root`).
        let rpmdb = ["usr/lib/sysimage/rpm", "var/lib/rpm", "root/.rpmdb"]
            .iter()
            .map(|d| root.join(d))
            .find(|p| p.is_dir());
        if rpmdb.is_none() {
            return Err(UpdatesError::NoState {
                root: root.clone(),
                manager: "dnf",
                missing: root.join("var/lib/rpm"),
            });
        }
        let scratch = tempfile::Builder::new()
            .prefix("patchwarden-dnf-")
            .tempdir()
            .map_err(|source| UpdatesError::Scratch {
                what: "dnf configuration directory",
                source,
            })?;
        let own = root.join("etc/dnf/dnf.conf");
        let config = if own.is_file() {
            own
        } else {
            let empty = scratch.path().join("dnf.conf");
            std::fs::write(&empty, "[main]\n").map_err(|source| UpdatesError::Scratch {
                what: "dnf configuration",
                source,
            })?;
            empty
        };
        Ok(DnfEnv {
            root,
            config,
            _scratch: scratch,
        })
    }

    /// Runs `dnf <args>` on the root; `cache_only` adds `-C` so queries never download.
    fn run(
        &self,
        env: &DnfEnv,
        args: &[&str],
        cache_only: bool,
        timeout: Duration,
    ) -> Result<String, UpdatesError> {
        let mut all: Vec<OsString> = vec!["-q".into(), "-y".into()];
        if cache_only {
            all.push("-C".into());
        }
        let mut installroot = OsString::from("--installroot=");
        installroot.push(&env.root);
        all.push(installroot);
        let mut config = OsString::from("--config=");
        config.push(&env.config);
        all.push(config);
        let r = env.root.display();
        all.push(format!("--setopt=reposdir={r}/etc/yum.repos.d,{r}/etc/distro.repos.d").into());
        if let Some(v) = &self.releasever {
            all.push(format!("--releasever={v}").into());
        }
        all.extend(args.iter().map(OsString::from));
        let out = Invocation {
            program: "dnf",
            args: all,
            env: Vec::new(),
            search_path: self.search_path.as_deref().map(OsStr::new),
            timeout,
            stdout_limit: self.output_limit,
        }
        .run()?;
        Ok(out.stdout)
    }
}

#[derive(Debug)]
struct DnfEnv {
    root: PathBuf,
    config: PathBuf,
    _scratch: tempfile::TempDir,
}

/// One package as dnf names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nevra {
    pub name: String,
    pub arch: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    /// The repository id (`@System` for installed packages); empty when not printed.
    pub repo: String,
}

impl Nevra {
    /// `[epoch:]version-release`, the epoch only when it is not 0.
    pub fn evr(&self) -> String {
        match self.epoch {
            0 => format!("{}-{}", self.version, self.release),
            e => format!("{e}:{}-{}", self.version, self.release),
        }
    }

    fn cmp_evr(&self, other: &Nevra) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpm::vercmp(&self.version, &other.version))
            .then_with(|| rpm::vercmp(&self.release, &other.release))
    }
}

/// Parses `repoquery --queryformat "$QUERY_FORMAT\n"`.
pub fn parse_repoquery(text: &str) -> Result<Vec<Nevra>, UpdatesError> {
    const WHAT: &str = "dnf repoquery";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, arch, epoch, version, release, repo] = fields.as_slice() else {
            return Err(UpdatesError::malformed(
                WHAT,
                i + 1,
                "expected six tab-separated fields",
                line,
            ));
        };
        let epoch = epoch
            .parse()
            .map_err(|_| UpdatesError::malformed(WHAT, i + 1, "the epoch is not a number", line))?;
        if [name, arch, version, release].iter().any(|f| f.is_empty()) {
            return Err(UpdatesError::malformed(
                WHAT,
                i + 1,
                "an empty name, arch, version or release",
                line,
            ));
        }
        out.push(Nevra {
            name: (*name).to_owned(),
            arch: (*arch).to_owned(),
            epoch,
            version: (*version).to_owned(),
            release: (*release).to_owned(),
            repo: (*repo).to_owned(),
        });
    }
    Ok(out)
}

/// One line of `dnf updateinfo list`: an advisory and one package it updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryPackage {
    pub id: String,
    pub kind: UpdateKind,
    /// The severity of a security advisory (`Important` in `Important/Sec.`); `None` for
    /// `Unknown/Sec.` and for other kinds.
    pub severity: Option<String>,
    pub package: Nevra,
}

/// Parses `dnf updateinfo list` lines: `ID TYPE NEVRA`, where TYPE is `bugfix`,
/// `enhancement`, `newpackage`, `unspecified` or `<severity>/Sec.`, and NEVRA is
/// `name-[epoch:]version-release.arch`.
pub fn parse_updateinfo_list(text: &str) -> Result<Vec<AdvisoryPackage>, UpdatesError> {
    const WHAT: &str = "dnf updateinfo list";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| UpdatesError::malformed(WHAT, i + 1, reason, line);
        if line.trim().is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [id, kind, nevra] = words.as_slice() else {
            return Err(bad("expected `ADVISORY TYPE PACKAGE`"));
        };
        let (kind, severity) = match *kind {
            "bugfix" => (UpdateKind::Bugfix, None),
            "enhancement" => (UpdateKind::Enhancement, None),
            "newpackage" | "unspecified" | "unknown" => (UpdateKind::Unknown, None),
            k => match k.strip_suffix("/Sec.") {
                Some("Unknown") => (UpdateKind::Security, None),
                Some(sev) if !sev.is_empty() => (UpdateKind::Security, Some(sev.to_owned())),
                _ => return Err(bad("unknown advisory type")),
            },
        };
        let package = parse_nevra(nevra)
            .ok_or_else(|| bad("the package is not `name-[epoch:]version-release.arch`"))?;
        out.push(AdvisoryPackage {
            id: (*id).to_owned(),
            kind,
            severity,
            package,
        });
    }
    Ok(out)
}

/// `name-[epoch:]version-release.arch`; names may contain dashes, versions may not.
fn parse_nevra(s: &str) -> Option<Nevra> {
    let (rest, arch) = s.rsplit_once('.')?;
    let (rest, release) = rest.rsplit_once('-')?;
    let (name, evr) = rest.rsplit_once('-')?;
    let (epoch, version) = match evr.split_once(':') {
        Some((e, v)) => (e.parse().ok()?, v),
        None => (0, evr),
    };
    if [name, version, release, arch].iter().any(|f| f.is_empty()) {
        return None;
    }
    Some(Nevra {
        name: name.to_owned(),
        arch: arch.to_owned(),
        epoch,
        version: version.to_owned(),
        release: release.to_owned(),
        repo: String::new(),
    })
}

/// An update from `old` to `candidate`, with the advisories between them.
fn describe(
    old: &Nevra,
    candidate: &Nevra,
    advisories: &[AdvisoryPackage],
) -> Result<AvailableUpdate, UpdatesError> {
    let relevant: Vec<&AdvisoryPackage> = advisories
        .iter()
        .filter(|a| {
            a.package.name == candidate.name
                && a.package.arch == candidate.arch
                && a.package.cmp_evr(old).is_gt()
                && a.package.cmp_evr(candidate).is_le()
        })
        .collect();
    let rank = |k: UpdateKind| match k {
        UpdateKind::Security => 3,
        UpdateKind::Bugfix => 2,
        UpdateKind::Enhancement => 1,
        UpdateKind::Unknown => 0,
    };
    let kind = relevant
        .iter()
        .map(|a| a.kind)
        .max_by_key(|k| rank(*k))
        .unwrap_or(UpdateKind::Unknown);
    let severity = relevant
        .iter()
        .filter(|a| a.kind == UpdateKind::Security)
        .filter_map(|a| a.severity.as_deref())
        .max_by_key(|s| severity_rank(s))
        .map(str::to_owned);
    let mut ids: Vec<String> = relevant.iter().map(|a| a.id.clone()).collect();
    ids.sort();
    ids.dedup();
    Ok(AvailableUpdate {
        name: candidate.name.clone(),
        installed: old.evr(),
        candidate: candidate.evr(),
        origin: (!candidate.repo.is_empty()).then(|| candidate.repo.clone()),
        kind,
        severity,
        advisories: ids,
    })
}

/// Red Hat's severity scale, used by its rebuilds and by Fedora; other words rank lowest.
fn severity_rank(s: &str) -> u8 {
    match s.to_ascii_lowercase().as_str() {
        "critical" => 4,
        "important" => 3,
        "moderate" => 2,
        "low" => 1,
        _ => 0,
    }
}
