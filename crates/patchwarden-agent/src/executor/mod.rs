//! The privileged executor (issue 9): the small part of the agent that changes the host. It
//! takes a job's typed description — install these exact versions, roll back to these, reboot
//! — never a command, and runs only the fixed package-manager commands of [`manager`].
//!
//! For an install or a rollback it, in order:
//!
//! 1. checks the job's manifest ([`Manifest::check`]: this host, not expired, inside its
//!    window, the same packages, two signatures) and every name and version, and for an
//!    install that no version is lower than the installed one (that is a rollback's job);
//!    a refusal touches nothing on the host;
//! 2. refreshes the package lists, records the installed version of every package it touches
//!    in the job's journal (`STATE/jobs/ID.json`, 0600), and keeps the installed package files
//!    in `STATE/cache/` as rollback material (apt: from its archive cache or `apt-get
//!    download`; dnf: `dnf download`);
//! 3. runs the package manager, unless every target is already installed (a repeated or
//!    resumed job installs once);
//! 4. re-reads the package database: every target exactly installed (and, for dpkg, fully
//!    configured); restarts the manifest's units in order and runs its health checks (skipped,
//!    and said so, on a sandbox root);
//! 5. records the result in the journal; the agent then reports it and marks the journal
//!    reported, so the job is never run again.
//!
//! The journal's phase tells a restarted agent where the job stood (see [`journal::Phase`]).
//! See `docs/agent-executor.md`.

pub mod checks;
pub mod journal;
pub mod manager;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::jobs::{
    CheckOutcome, JobKind, JobOutcome, JobResult, PackageChange, PackagePin,
};
use patchwarden_api::v1::manifest::{Manifest, ManifestAction};
use patchwarden_core::inventory::{Inventory, Manager, Package, PackageStatus};

use self::journal::{Journal, Journals, Phase};
use self::manager::{Backend, Cmd, Target};
use crate::agent::state::StateError;
use crate::inventory::collect::collect_root;
use crate::inventory::updates::command::{Invocation, cut};

/// Where the kernel says which boot this is.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// How many of the package manager's last lines a failure's detail keeps.
const TAIL_LINES: usize = 25;
/// How long the journal of a reported job is kept.
pub const JOURNAL_KEEP: SignedDuration = SignedDuration::from_hours(90 * 24);
/// How long a reboot may take before the job is called failed.
const REBOOT_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// What the agent's own configuration allows the executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Whether this host may be rebooted by a job at all (`--allow-reboot`; default off).
    pub allow_reboot: bool,
    /// Refresh the package lists before installing (`apt-get update` …).
    pub refresh: bool,
    /// How long one package-manager run may take.
    pub timeout: Duration,
    /// The file that holds the boot id (tests point it elsewhere).
    pub boot_id_file: PathBuf,
}

impl Default for ExecutorOptions {
    fn default() -> ExecutorOptions {
        ExecutorOptions {
            allow_reboot: false,
            refresh: true,
            timeout: Duration::from_secs(3600),
            boot_id_file: PathBuf::from(BOOT_ID),
        }
    }
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// The job ended: report this.
    Done(JobResult),
    /// The job is under way (a reboot): nothing to report yet.
    Waiting(String),
}

/// The executor for one host root.
#[derive(Debug, Clone)]
pub struct Executor {
    root: PathBuf,
    host_id: String,
    journals: Journals,
    options: ExecutorOptions,
}

fn done(outcome: JobOutcome, detail: impl Into<String>) -> JobResult {
    JobResult::new(outcome, detail)
}

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines.get(start..).unwrap_or_default().join("\n")
}

/// Whether two versions of `manager`'s scheme are the same version.
fn same_version(manager: Manager, a: &str, b: &str) -> bool {
    compare(manager, a, b) == Some(Ordering::Equal)
}

fn compare(manager: Manager, a: &str, b: &str) -> Option<Ordering> {
    let ord = match manager {
        Manager::Dpkg => patchwarden_version::dpkg::compare(a, b).ok(),
        Manager::Rpm => patchwarden_version::rpm::compare(a, b).ok(),
        Manager::Apk => {
            patchwarden_version::apk::compare(a, b, patchwarden_version::apk::Rules::V2).ok()
        }
    };
    ord.or_else(|| (a == b).then_some(Ordering::Equal))
}

/// The installed package a pin names (its architecture when the pin gives one).
fn find<'a>(inventory: &'a Inventory, manager: Manager, pin: &PackagePin) -> Option<&'a Package> {
    inventory.packages.iter().find(|p| {
        p.manager == manager
            && p.name == pin.name
            && p.status.files_present()
            && match (&pin.arch, &p.arch) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    })
}

/// Which package manager the job's packages belong to: the one whose database holds most of
/// them, else the host's only one.
fn detect(inventory: &Inventory, pins: &[PackagePin]) -> Option<Manager> {
    let mut counts: BTreeMap<Manager, usize> = BTreeMap::new();
    for p in &inventory.packages {
        if pins.iter().any(|pin| pin.name == p.name) {
            *counts.entry(p.manager).or_default() += 1;
        }
    }
    if let Some((m, _)) = counts.into_iter().max_by_key(|(_, n)| *n) {
        return Some(m);
    }
    let mut managers: Vec<Manager> = inventory.packages.iter().map(|p| p.manager).collect();
    managers.sort();
    managers.dedup();
    match managers.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

impl Executor {
    /// The executor acting on `root` for host `host_id`, keeping its journals and cache in
    /// `state_dir`.
    pub fn new(
        state_dir: &Path,
        root: &Path,
        host_id: &str,
        options: ExecutorOptions,
    ) -> Result<Executor, StateError> {
        Ok(Executor {
            root: root.to_owned(),
            host_id: host_id.to_owned(),
            journals: Journals::open(state_dir)?,
            options,
        })
    }

    pub fn journals(&self) -> &Journals {
        &self.journals
    }

    fn live(&self) -> bool {
        fs::canonicalize(&self.root).is_ok_and(|p| p == Path::new("/"))
    }

    fn inventory(&self) -> Result<Inventory, String> {
        collect_root(&self.root)
            .map(|c| c.inventory)
            .map_err(|e| e.to_string())
    }

    /// Records that the job's result is in the agent's outbox: it is never run again.
    pub fn mark_reported(&self, job: &str, now: Timestamp) -> Result<(), StateError> {
        if let Some(mut j) = self.journals.load(job)?
            && j.phase != Phase::Reported
        {
            j.phase = Phase::Reported;
            self.journals.save(&mut j, now)?;
        }
        Ok(())
    }

    /// Removes the journals of jobs reported more than [`JOURNAL_KEEP`] ago, then the cached
    /// packages no kept journal names; returns how many of each.
    pub fn prune(&self, now: Timestamp) -> (usize, usize) {
        let journals = self.journals.prune(now - JOURNAL_KEEP);
        (journals, self.journals.prune_cache(now - JOURNAL_KEEP))
    }

    /// Jobs that ended but whose result was never handed to the agent's outbox: a result
    /// journaled just before a crash, or a reboot that has now happened. The agent reports
    /// them and marks them reported.
    pub fn unreported(&self, now: Timestamp) -> Result<Vec<(String, JobResult)>, StateError> {
        let mut out = Vec::new();
        for j in self.journals.all() {
            match (j.phase, &j.result) {
                (Phase::Verified, Some(r)) => out.push((j.job.clone(), r.clone())),
                (Phase::Rebooting, _) => {
                    let id = j.job.clone();
                    if let Execution::Done(r) = self.after_reboot(j, now)? {
                        out.push((id, r));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Does (or resumes, or repeats the result of) job `id` at `now`.
    pub fn execute(
        &self,
        id: &str,
        work: &JobKind,
        now: Timestamp,
    ) -> Result<Execution, StateError> {
        let journal = self.journals.load(id)?;
        if let Some(j) = &journal {
            match (j.phase, &j.result) {
                (Phase::Verified | Phase::Reported, Some(r)) => {
                    return Ok(Execution::Done(r.clone()));
                }
                (Phase::Rebooting, _) => return self.after_reboot(j.clone(), now),
                _ => {}
            }
        }
        match work {
            JobKind::Reinventory => Ok(Execution::Done(done(
                JobOutcome::Refused,
                "a re-inventory is not an executor job",
            ))),
            JobKind::Reboot => self.reboot(id, now),
            JobKind::Install { packages, manifest } => self.change(
                id,
                ManifestAction::Install,
                packages,
                manifest,
                journal,
                now,
            ),
            JobKind::Rollback {
                packages, manifest, ..
            } => self.change(
                id,
                ManifestAction::Rollback,
                packages,
                manifest,
                journal,
                now,
            ),
        }
    }

    /// Journals a final result (so a repeat of the job gets the same answer) and returns it.
    fn finish(
        &self,
        mut journal: Journal,
        result: JobResult,
        now: Timestamp,
    ) -> Result<Execution, StateError> {
        journal.phase = Phase::Verified;
        journal.result = Some(result.clone());
        self.journals.save(&mut journal, now)?;
        Ok(Execution::Done(result))
    }

    fn new_journal(&self, id: &str, kind: &str, targets: &[PackagePin], now: Timestamp) -> Journal {
        Journal {
            job: id.to_owned(),
            kind: kind.to_owned(),
            phase: Phase::PreviousRecorded,
            targets: targets.to_vec(),
            changes: Vec::new(),
            cached: Vec::new(),
            runs: 0,
            boot_id: None,
            result: None,
            updated_at: now,
        }
    }

    /// The command target: the live host, or a sandbox root (with apt's or dnf's
    /// configuration for it written into `scratch`; `releasever` is the root's `VERSION_ID`).
    fn target(
        &self,
        backend: Backend,
        scratch: &Path,
        releasever: Option<&str>,
    ) -> Result<Target, String> {
        if self.live() {
            return Ok(Target::live());
        }
        let root = fs::canonicalize(&self.root)
            .map_err(|e| format!("cannot resolve the root {}: {e}", self.root.display()))?;
        let apt_config = if backend == Backend::Apt {
            let text = manager::apt_config_text(&root).ok_or_else(|| {
                format!(
                    "the root {} cannot be written in apt's configuration",
                    root.display()
                )
            })?;
            let path = scratch.join("apt.conf");
            fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            Some(path)
        } else {
            None
        };
        let (dnf_config, releasever) = if matches!(backend, Backend::Dnf { .. }) {
            // A comma would split dnf's comma-separated `reposdir` value.
            if root.to_str().is_none_or(|s| s.contains(',')) {
                return Err(format!(
                    "the root {} is not UTF-8 or contains a comma",
                    root.display()
                ));
            }
            let own = root.join("etc/dnf/dnf.conf");
            let config = if own.is_file() {
                own
            } else {
                let empty = scratch.join("dnf.conf");
                fs::write(&empty, "[main]\n")
                    .map_err(|e| format!("writing {}: {e}", empty.display()))?;
                empty
            };
            let release = releasever.filter(|v| manager::check_word("release", v).is_ok());
            (Some(config), release.map(str::to_owned))
        } else {
            (None, None)
        };
        Ok(Target {
            sandbox: Some(root),
            apt_config,
            dnf_config,
            releasever,
        })
    }

    /// Runs one command; `Err` carries the words for the result's detail.
    fn run(&self, cmd: &Cmd, dir: Option<&Path>) -> Result<String, String> {
        tracing::info!(command = %cmd.line(), "executor");
        let inv = Invocation {
            program: cmd.program,
            args: cmd.args.clone(),
            env: cmd.env.clone(),
            search_path: None,
            timeout: self.options.timeout,
            stdout_limit: 16 * 1024 * 1024,
        };
        match inv.run_any_status_in(dir) {
            Ok(out) if out.status.success() => Ok(out.stdout),
            Ok(out) => Err(format!(
                "`{}` failed ({}):\n{}\n{}",
                cut(&cmd.line(), 512),
                out.status,
                tail(&out.stdout, TAIL_LINES),
                tail(&out.stderr, TAIL_LINES)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn change(
        &self,
        id: &str,
        action: ManifestAction,
        packages: &[PackagePin],
        manifest: &Manifest,
        journal: Option<Journal>,
        now: Timestamp,
    ) -> Result<Execution, StateError> {
        let kind = match action {
            ManifestAction::Install => "install",
            ManifestAction::Rollback => "rollback",
        };
        // A job whose package manager already ran was checked when it started: it is
        // verified and reported now, even when its window has closed meanwhile.
        let started = journal.filter(|j| j.phase >= Phase::Installing);
        let fresh = started.is_none();
        let mut journal = started.unwrap_or_else(|| self.new_journal(id, kind, packages, now));
        let refuse = |journal: Journal, why: String| {
            let detail = if fresh {
                format!("refused: {why}; nothing was changed on the host")
            } else {
                format!("refused on resuming: {why}")
            };
            self.finish(journal, done(JobOutcome::Refused, detail), now)
        };
        if fresh {
            if let Err(r) = manifest.check(&self.host_id, action, packages, now) {
                return refuse(journal, r.to_string());
            }
            for pin in packages {
                if let Err(e) = manager::check_pin(pin) {
                    return refuse(journal, e.to_string());
                }
            }
        }
        let before = match self.inventory() {
            Ok(i) => i,
            Err(e) => {
                return self.finish(
                    journal,
                    done(JobOutcome::Failed, format!("reading the inventory: {e}")),
                    now,
                );
            }
        };
        let Some(manager) = detect(&before, packages) else {
            return refuse(
                journal,
                format!(
                    "no single package manager on the root {} holds these packages",
                    self.root.display()
                ),
            );
        };
        let backend = Backend::for_manager(manager, &self.root);
        let scratch = match tempfile::Builder::new()
            .prefix("patchwarden-exec-")
            .tempdir()
        {
            Ok(s) => s,
            Err(e) => {
                return self.finish(
                    journal,
                    done(JobOutcome::Failed, format!("a scratch directory: {e}")),
                    now,
                );
            }
        };
        let releasever = before.host.os.version_id.clone();
        let target = match self.target(backend, scratch.path(), releasever.as_deref()) {
            Ok(t) => t,
            Err(e) => return refuse(journal, e),
        };
        let mut notes: Vec<String> = Vec::new();

        if fresh {
            let mut changes = Vec::new();
            for pin in packages {
                let current = find(&before, manager, pin);
                match (action, current) {
                    (ManifestAction::Install, None) => {
                        return refuse(
                            journal,
                            format!(
                                "{} is not installed: an install job only upgrades",
                                pin.name
                            ),
                        );
                    }
                    (ManifestAction::Install, Some(cur)) => {
                        let installed = cur.full_version();
                        match compare(manager, &pin.version, &installed) {
                            Some(Ordering::Less) => {
                                return refuse(
                                    journal,
                                    format!(
                                        "{} {} is lower than the installed {installed}: going \
                                         back is a rollback job",
                                        pin.name, pin.version
                                    ),
                                );
                            }
                            None => {
                                return refuse(
                                    journal,
                                    format!(
                                        "{} {} cannot be ordered against the installed \
                                         {installed}",
                                        pin.name, pin.version
                                    ),
                                );
                            }
                            Some(_) => {}
                        }
                    }
                    _ => {}
                }
                changes.push(PackageChange {
                    name: pin.name.clone(),
                    arch: pin
                        .arch
                        .clone()
                        .or_else(|| current.and_then(|c| c.arch.clone())),
                    from: current.map(|c| c.full_version().into_owned()),
                    to: Some(pin.version.clone()),
                });
            }
            // The previous versions are on disk before anything changes.
            journal.changes = changes;
            journal.phase = Phase::PreviousRecorded;
            self.journals.save(&mut journal, now)?;
            if self.options.refresh
                && let Err(e) = self.run(&backend.refresh(&target), None)
            {
                return self.finish(
                    journal,
                    done(
                        JobOutcome::Failed,
                        format!("refreshing the package lists: {e}"),
                    ),
                    now,
                );
            }
            if action == ManifestAction::Install {
                let (cached, missing) = self.keep_previous(backend, &target, &journal.changes);
                journal.cached = cached;
                if !missing.is_empty() {
                    notes.push(format!(
                        "rollback material not kept for: {}",
                        missing.join("; ")
                    ));
                }
                self.journals.save(&mut journal, now)?;
            }
        }

        let all_there = |inventory: &Inventory| {
            packages.iter().all(|pin| {
                find(inventory, manager, pin).is_some_and(|p| {
                    same_version(manager, &p.full_version(), &pin.version)
                        && p.status == PackageStatus::Installed
                })
            })
        };
        let mut done_already = all_there(&before);
        if !fresh
            && !done_already
            && let Some(repair) = backend.repair(&target)
        {
            // A run that was cut short may have left packages unpacked but not configured;
            // the package manager will not start again until that is finished, and it may be
            // all the job still needed.
            match self.run(&repair, None) {
                Ok(_) => notes.push(format!("resumed: `{}` ran first", repair.line())),
                Err(e) => notes.push(format!("resumed: {e}")),
            }
            done_already = self.inventory().is_ok_and(|i| all_there(&i));
        }
        let mut run_error = None;
        if done_already {
            notes.push("every target version was already installed: nothing to run".into());
        } else {
            journal.phase = Phase::Installing;
            journal.runs += 1;
            self.journals.save(&mut journal, now)?;
            let cmd = match action {
                ManifestAction::Install => backend.install(&target, packages),
                ManifestAction::Rollback => {
                    let (files, repo) = self.cached_for(packages);
                    if !files.is_empty() {
                        notes.push(format!("{} package(s) from the agent's cache", files.len()));
                    }
                    backend.rollback(&target, &repo, &files)
                }
            };
            if let Err(e) = self.run(&cmd, None) {
                run_error = Some(e);
            }
            journal.phase = Phase::Installed;
            self.journals.save(&mut journal, now)?;
        }

        // Verify against the database itself, whatever the package manager said.
        let after = match self.inventory() {
            Ok(i) => i,
            Err(e) => {
                return self.finish(
                    journal,
                    done(
                        JobOutcome::Failed,
                        format!("re-reading the inventory after the job: {e}"),
                    ),
                    now,
                );
            }
        };
        let mut problems = Vec::new();
        for pin in packages {
            match find(&after, manager, pin) {
                None => problems.push(format!("{} is not installed", pin.name)),
                Some(p) if !same_version(manager, &p.full_version(), &pin.version) => problems
                    .push(format!(
                        "{} is at {}, not {}",
                        pin.name,
                        p.full_version(),
                        pin.version
                    )),
                Some(p) if p.status != PackageStatus::Installed => problems.push(format!(
                    "{} {} is {:?}, not installed and configured",
                    pin.name, p.version, p.status
                )),
                Some(_) => {}
            }
        }
        let mut checks: Vec<CheckOutcome> = Vec::new();
        if problems.is_empty() {
            let live = self.live();
            checks.extend(checks::restart(&manifest.restart, live));
            if checks.iter().all(|c| c.passed || checks::is_skipped(c)) {
                checks.extend(manifest.health_checks.iter().map(|c| checks::run(c, live)));
            }
            for c in &checks {
                if !c.passed && !checks::is_skipped(c) {
                    problems.push(format!("{}: {}", c.check, c.detail));
                }
            }
        }
        let reboot_required = after.host.reboot_required;
        let changes: Vec<PackageChange> = journal
            .changes
            .iter()
            .map(|c| PackageChange {
                to: find(
                    &after,
                    manager,
                    &PackagePin {
                        name: c.name.clone(),
                        version: String::new(),
                        arch: c.arch.clone(),
                    },
                )
                .map(|p| p.full_version().into_owned()),
                ..c.clone()
            })
            .collect();
        let mut detail = String::new();
        let outcome = if problems.is_empty() {
            detail.push_str(&format!(
                "{kind} of {} package(s) verified with {}",
                packages.len(),
                backend.name()
            ));
            JobOutcome::Succeeded
        } else {
            detail.push_str(&format!("{kind} failed: {}", problems.join("; ")));
            JobOutcome::Failed
        };
        for n in &notes {
            detail.push_str(&format!("\n{n}"));
        }
        if let Some(e) = run_error {
            detail.push('\n');
            detail.push_str(&e);
        }
        let mut result = done(outcome, cut(&detail, 16 * 1024));
        result.changes = changes;
        result.checks = checks;
        result.reboot_required = reboot_required;
        if outcome == JobOutcome::Succeeded && reboot_required {
            if manifest.reboot_allowed && self.options.allow_reboot && self.live() {
                journal.result = Some(result);
                return self.start_reboot(journal, now);
            }
            result
                .detail
                .push_str("\na reboot is required to finish; this job may not reboot");
        }
        self.finish(journal, result, now)
    }

    /// Keeps the installed version of each changed package in the cache: from the root's apt
    /// archive cache when it is there, else downloaded while the repository still has it.
    /// Returns the kept files and what could not be kept.
    fn keep_previous(
        &self,
        backend: Backend,
        target: &Target,
        changes: &[PackageChange],
    ) -> (Vec<PathBuf>, Vec<String>) {
        let cache = self.journals.cache_dir();
        let mut kept = Vec::new();
        let mut missing = Vec::new();
        for c in changes {
            let Some(from) = &c.from else { continue };
            if c.to.as_deref() == Some(from.as_str()) {
                continue;
            }
            let pin = PackagePin {
                name: c.name.clone(),
                version: from.clone(),
                arch: c.arch.clone(),
            };
            if let Some(found) = cached_file(cache, &pin) {
                kept.push(found);
                continue;
            }
            if backend == Backend::Apt {
                let archives = self.root.join("var/cache/apt/archives");
                if let Some(found) = cached_file(&archives, &pin) {
                    let dest = cache.join(found.file_name().unwrap_or_default());
                    if fs::copy(&found, &dest).is_ok() {
                        kept.push(dest);
                        continue;
                    }
                }
            }
            let Some(cmd) = backend.download(target, std::slice::from_ref(&pin), cache) else {
                missing.push(format!(
                    "{} {from} ({} keeps no files)",
                    c.name,
                    backend.name()
                ));
                continue;
            };
            match self.run(&cmd, Some(cache)) {
                Ok(_) => match cached_file(cache, &pin) {
                    Some(found) => kept.push(found),
                    None => missing.push(format!("{} {from}: downloaded file not found", c.name)),
                },
                Err(e) => missing.push(format!("{} {from}: {}", c.name, tail(&e, 3))),
            }
        }
        (kept, missing)
    }

    /// Splits a rollback's targets into cached package files and pins left to the repository.
    fn cached_for(&self, pins: &[PackagePin]) -> (Vec<PathBuf>, Vec<PackagePin>) {
        let mut files = Vec::new();
        let mut repo = Vec::new();
        for pin in pins {
            match cached_file(self.journals.cache_dir(), pin) {
                Some(f) => files.push(f),
                None => repo.push(pin.clone()),
            }
        }
        (files, repo)
    }

    fn boot_id(&self) -> Option<String> {
        fs::read_to_string(&self.options.boot_id_file)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn reboot(&self, id: &str, now: Timestamp) -> Result<Execution, StateError> {
        let journal = self.new_journal(id, "reboot", &[], now);
        if !self.options.allow_reboot {
            return self.finish(
                journal,
                done(
                    JobOutcome::Refused,
                    "refused: this agent's configuration does not allow reboots \
                     (start it with --allow-reboot); nothing was changed on the host",
                ),
                now,
            );
        }
        if !self.live() {
            return self.finish(
                journal,
                done(
                    JobOutcome::Refused,
                    format!(
                        "refused: the root {} is not this host; only the host itself reboots",
                        self.root.display()
                    ),
                ),
                now,
            );
        }
        self.start_reboot(journal, now)
    }

    fn start_reboot(&self, mut journal: Journal, now: Timestamp) -> Result<Execution, StateError> {
        let Some(boot) = self.boot_id() else {
            let r = done(
                JobOutcome::Failed,
                format!(
                    "cannot read the boot id ({}): a reboot could not be confirmed, so none \
                     was started",
                    self.options.boot_id_file.display()
                ),
            );
            return self.finish(journal, r, now);
        };
        journal.boot_id = Some(boot);
        journal.phase = Phase::Rebooting;
        self.journals.save(&mut journal, now)?;
        let cmd = Invocation {
            program: "systemctl",
            args: vec!["reboot".into()],
            env: Vec::new(),
            search_path: None,
            timeout: Duration::from_secs(120),
            stdout_limit: 64 * 1024,
        };
        match cmd.run() {
            Ok(_) => Ok(Execution::Waiting("rebooting".into())),
            Err(e) => {
                let mut r = journal
                    .result
                    .clone()
                    .unwrap_or_else(|| done(JobOutcome::Failed, ""));
                r.outcome = JobOutcome::Failed;
                r.detail = format!("{}\nsystemctl reboot failed: {e}", r.detail)
                    .trim()
                    .to_owned();
                self.finish(journal, r, now)
            }
        }
    }

    /// A job that started a reboot: done once the boot id has changed.
    fn after_reboot(&self, journal: Journal, now: Timestamp) -> Result<Execution, StateError> {
        let before = journal.boot_id.clone().unwrap_or_default();
        let current = self.boot_id().unwrap_or_default();
        if !current.is_empty() && current != before {
            let mut r = journal
                .result
                .clone()
                .unwrap_or_else(|| done(JobOutcome::Succeeded, ""));
            r.detail = format!("{}\nrebooted (boot id {before} → {current})", r.detail)
                .trim()
                .to_owned();
            r.reboot_required = false;
            return self.finish(journal, r, now);
        }
        if now.duration_since(journal.updated_at) > REBOOT_GRACE {
            let mut r = journal
                .result
                .clone()
                .unwrap_or_else(|| done(JobOutcome::Failed, ""));
            r.outcome = JobOutcome::Failed;
            r.detail = format!(
                "{}\nthe host did not reboot within {REBOOT_GRACE:#} (boot id still {before})",
                r.detail
            )
            .trim()
            .to_owned();
            return self.finish(journal, r, now);
        }
        Ok(Execution::Waiting(format!(
            "waiting for the reboot (boot id still {before})"
        )))
    }
}

/// The package file for `pin` in `dir`, named the way apt names them
/// (`name_version_arch.deb`, `:` written `%3a`) or rpm does (`name-version.arch.rpm`).
pub fn cached_file(dir: &Path, pin: &PackagePin) -> Option<PathBuf> {
    let deb = format!("{}_{}_", pin.name, pin.version.replace(':', "%3a"));
    // rpm file names carry no epoch.
    let evr = pin
        .version
        .split_once(':')
        .map_or(pin.version.as_str(), |(_, r)| r);
    let rpm = format!("{}-{evr}.", pin.name);
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.into_iter().find(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let arch_ok = |rest: &str| match &pin.arch {
            Some(a) => rest.starts_with(a.as_str()) || rest.starts_with("all"),
            None => true,
        };
        (name.ends_with(".deb") && name.strip_prefix(&deb).is_some_and(arch_ok))
            || (name.ends_with(".rpm") && name.strip_prefix(&rpm).is_some_and(arch_ok))
    })
}

#[cfg(test)]
mod tests;
