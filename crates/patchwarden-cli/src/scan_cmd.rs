//! `patchwarden scan`: the offline, one-shot use. Inventory a host (or a root, a package
//! database file, an SBOM), load advisory feeds from files, match, classify by policy, and
//! print the findings as a table for people or JSON for scripts.
//!
//! Exit codes follow the scanners people already script against: 0 no findings, 1 findings,
//! 2 an error.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use jiff::{SignedDuration, Timestamp};
use patchwarden_agent::inventory::collect::{self, Collected};
use patchwarden_agent::inventory::{apk, dpkg, rpm};
use patchwarden_core::advisory::{Advisory, FeedKind, KevEntry};
use patchwarden_core::finding::Finding;
use patchwarden_core::inventory::{HostFacts, Inventory, Manager, OsInfo};
use patchwarden_core::policy::{
    self, Assessment, AssetLabels, Class, FindingFacts, Policy, PolicySummary, SlaStatus,
};
use patchwarden_feeds::detect::{FeedFormat, detect_path};
use patchwarden_feeds::load::{AdvisoryFeed, load_path, read_file};
use patchwarden_feeds::{Limits, epss, kev};
use patchwarden_match::{Enrichment, Index, MatchOptions};
use serde::Serialize;

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Scan the host whose file system is under DIR (`/` for this host).
    #[arg(long, value_name = "DIR", group = "input")]
    root: Option<PathBuf>,
    /// Scan the packages of a dpkg status file.
    #[arg(long, value_name = "FILE", group = "input")]
    dpkg_status: Option<PathBuf>,
    /// Scan the packages of an rpm database (the file, or the directory that holds it).
    #[arg(long, value_name = "PATH", group = "input")]
    rpmdb: Option<PathBuf>,
    /// Scan the packages of an apk installed database (`lib/apk/db/installed`).
    #[arg(long, value_name = "FILE", group = "input")]
    apk_installed: Option<PathBuf>,
    /// Scan the packages an SBOM lists (SPDX 2.x or CycloneDX 1.4–1.6 JSON).
    #[arg(long, value_name = "FILE", group = "input")]
    sbom: Option<PathBuf>,
    /// The OSV ecosystem of the host (`Debian:12`, `AlmaLinux:9`, `Alpine:v3.19` …), overriding
    /// what was detected. Needed for package database files, which do not say.
    #[arg(long, value_name = "ECOSYSTEM")]
    os: Option<String>,
    /// An advisory feed: an OSV file, directory or all.zip; CSAF documents; an Alpine secdb
    /// file; the Debian security tracker JSON; the CISA KEV catalogue; an EPSS CSV. The kind is
    /// recognised; write KIND:PATH (osv, csaf, alpine, debian, kev, epss) to name it.
    #[arg(long, value_name = "PATH", required = true)]
    feed: Vec<String>,
    /// A classification policy: a preset name (`patchwarden policy list`) or a policy file.
    /// Repeat to layer several; the highest class and the earliest due date win.
    #[arg(long, value_name = "NAME|FILE", default_value = "seed-default")]
    policy: Vec<String>,
    /// A label of the scanned asset, `key=value`: exposure=internet|internal,
    /// role=workstation|server|online_service|network_device|…, tag=pci-cde, criticality=high.
    #[arg(long = "asset-label", value_name = "KEY=VALUE")]
    asset_label: Vec<String>,
    /// Judge the SLA clocks as at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    now: Option<Timestamp>,
    /// Show, per finding, every rule that matched, the one that won, the clock and the due date.
    #[arg(long)]
    explain: bool,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Findings sorted by class and due date, for people.
    Table,
    /// `{host, findings, summary}` for scripts.
    Json,
}

/// How long before its due date a finding counts as due soon.
const DUE_SOON: SignedDuration = SignedDuration::from_hours(7 * 24);

pub(crate) fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    #[allow(clippy::disallowed_methods)] // the shell reads the clock once; all else takes `now`
    let now = args.now.unwrap_or_else(Timestamp::now);

    let policies = load_policies(&args.policy)?;
    let mut asset = AssetLabels::default();
    for label in &args.asset_label {
        asset
            .apply(label)
            .map_err(|e| anyhow::anyhow!("--asset-label {e}"))?;
    }

    let mut inventory = load_inventory(&args)?;
    if let Some(os) = &args.os {
        inventory.host.os.ecosystem = Some(os.clone());
    }
    let Some(ecosystem) = inventory.host.os.ecosystem.clone() else {
        bail!(
            "the host's ecosystem is not known ({}); give it with --os, e.g. --os Debian:12",
            if inventory.host.os.id.is_empty() {
                "no os-release"
            } else {
                "unrecognised os-release"
            }
        );
    };

    let feeds = load_feeds(&args.feed)?;
    let (index, problems) = Index::build(feeds.advisories);
    for p in problems.iter().take(10) {
        eprintln!("patchwarden: warning: advisory not used: {p}");
    }
    if problems.len() > 10 {
        eprintln!(
            "patchwarden: warning: … and {} more advisories not used",
            problems.len() - 10
        );
    }

    // SBOMs that give no rpm package an epoch (Red Hat's) have left the epochs out rather than
    // found none: compare those packages with the epoch of each fix.
    let options = MatchOptions {
        rpm_epoch_unknown: args.sbom.is_some()
            && inventory.packages.iter().any(|p| p.manager == Manager::Rpm)
            && inventory
                .packages
                .iter()
                .all(|p| p.manager != Manager::Rpm || p.epoch.is_none()),
    };
    if options.rpm_epoch_unknown {
        eprintln!(
            "patchwarden: note: the SBOM gives no rpm package an epoch; each is compared with \
             the epoch of the advisory's fix"
        );
    }
    let report = index.match_packages_with(&ecosystem, &inventory.packages, options);
    for p in &report.problems {
        eprintln!("patchwarden: warning: package not judged: {p}");
    }

    let findings: Vec<ScannedFinding> = report
        .findings
        .iter()
        .map(|f| {
            judge(
                f,
                &index,
                &feeds.enrichment,
                &policies,
                &asset,
                &inventory.host,
                now,
            )
        })
        .collect();
    let mut findings = findings;
    findings.sort_by(|a, b| {
        b.class_rank()
            .cmp(&a.class_rank())
            .then_with(|| option_first(a.due_at, b.due_at))
            .then_with(|| a.finding.vulnerability.cmp(&b.finding.vulnerability))
            .then_with(|| a.finding.package.cmp(&b.finding.package))
            .then_with(|| a.finding.arch.cmp(&b.finding.arch))
    });

    let summary = Summary::of(
        &inventory,
        &findings,
        &feeds.loaded,
        report.packages_checked,
    );
    let out = io::stdout().lock();
    let written = match args.format {
        Format::Json => write_json(out, &inventory.host, &findings, &summary, args.explain),
        Format::Table => write_table(out, &ecosystem, &findings, &summary, args.explain),
    };
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing the scan result"),
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `Some` before `None`, earlier before later.
fn option_first(a: Option<Timestamp>, b: Option<Timestamp>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn load_policies(specs: &[String]) -> anyhow::Result<Vec<Policy>> {
    specs
        .iter()
        .map(|spec| {
            if let Some(preset) = policy::preset(spec) {
                return preset
                    .policy()
                    .map_err(|e| anyhow::anyhow!("preset {spec}: {e}"));
            }
            let path = Path::new(spec);
            if !path.exists() {
                bail!(
                    "--policy {spec}: neither a preset (see `patchwarden policy list`) nor a file"
                );
            }
            let text = read_file(path, policy::MAX_POLICY_BYTES as u64)
                .map_err(|e| anyhow::anyhow!("--policy {spec}: {e}"))?;
            let text = String::from_utf8(text)
                .map_err(|_| anyhow::anyhow!("--policy {spec}: not UTF-8 text"))?;
            Policy::parse(&text, spec).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}

fn load_inventory(args: &ScanArgs) -> anyhow::Result<Inventory> {
    let file_host = |path: &Path| HostFacts {
        hostname: path.display().to_string(),
        os: OsInfo::default(),
        ..HostFacts::default()
    };
    let (inventory, warnings) = if let Some(path) = &args.sbom {
        let Collected {
            inventory,
            warnings,
        } = collect::collect_sbom(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        (
            inventory,
            warnings.into_iter().map(|w| w.to_string()).collect(),
        )
    } else if let Some(path) = &args.dpkg_status {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let status = dpkg::parse_status(BufReader::new(file), dpkg::MissingStatus::Reject)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let warnings = status
            .problems
            .iter()
            .map(|p| format!("dpkg: {p}"))
            .collect();
        (
            Inventory {
                host: file_host(path),
                packages: status.packages,
                ..Inventory::default()
            },
            warnings,
        )
    } else if let Some(path) = &args.apk_installed {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let db = apk::parse_installed(BufReader::new(file))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let warnings = db.problems.iter().map(|p| format!("apk: {p}")).collect();
        (
            Inventory {
                host: file_host(path),
                packages: db.packages,
                ..Inventory::default()
            },
            warnings,
        )
    } else if let Some(path) = &args.rpmdb {
        let db = rpm_database(path)?;
        let packages =
            rpm::read_database(&db, &rpm::Limits::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
        (
            Inventory {
                host: file_host(path),
                packages,
                ..Inventory::default()
            },
            Vec::new(),
        )
    } else {
        let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let Collected {
            inventory,
            warnings,
        } = collect::collect_root(&root).map_err(|e| anyhow::anyhow!("{e}"))?;
        (
            inventory,
            warnings
                .into_iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>(),
        )
    };
    for w in warnings {
        eprintln!("patchwarden: warning: {w}");
    }
    Ok(inventory)
}

/// The rpm database at `path`: the file itself, or the one a directory holds.
fn rpm_database(path: &Path) -> anyhow::Result<rpm::Database> {
    let by_name = |p: &Path| -> Option<rpm::Backend> {
        match p.file_name()?.to_str()? {
            "rpmdb.sqlite" => Some(rpm::Backend::Sqlite),
            "Packages.db" => Some(rpm::Backend::Ndb),
            "Packages" => Some(rpm::Backend::BerkeleyDb),
            _ => None,
        }
    };
    if path.is_dir() {
        for name in ["rpmdb.sqlite", "Packages.db", "Packages"] {
            let p = path.join(name);
            if let (true, Some(backend)) = (p.is_file(), by_name(&p)) {
                return Ok(rpm::Database { backend, path: p });
            }
        }
        bail!(
            "{}: no rpmdb.sqlite, Packages.db or Packages in this directory",
            path.display()
        );
    }
    match by_name(path) {
        Some(backend) => Ok(rpm::Database {
            backend,
            path: path.to_owned(),
        }),
        None => bail!(
            "{}: an rpm database is named rpmdb.sqlite (sqlite), Packages.db (NDB) or Packages \
             (Berkeley DB)",
            path.display()
        ),
    }
}

/// What one `--feed` gave.
#[derive(Debug, Serialize)]
struct LoadedFeed {
    path: String,
    kind: &'static str,
    records: usize,
    rejected: usize,
}

struct Feeds {
    advisories: Vec<Advisory>,
    enrichment: Enrichment,
    loaded: Vec<LoadedFeed>,
}

fn load_feeds(specs: &[String]) -> anyhow::Result<Feeds> {
    let limits = Limits::default();
    let mut feeds = Feeds {
        advisories: Vec::new(),
        enrichment: Enrichment::default(),
        loaded: Vec::new(),
    };
    let progress = io::stderr().is_terminal();
    for (n, spec) in specs.iter().enumerate() {
        let (format, path) = feed_spec(spec)?;
        if progress {
            eprint!(
                "\rloading feeds [{}/{}] {} …\x1b[K",
                n + 1,
                specs.len(),
                path.display()
            );
        }
        let started = Instant::now();
        let (kind, records, rejects) = match format {
            FeedFormat::Advisories(feed) => {
                let import = load_path(&path, feed, &limits).map_err(|e| anyhow::anyhow!("{e}"))?;
                let lines = import.reject_lines();
                let count = import.records.len();
                // CVE 5 records (CISA Vulnrichment) carry the SSVC decision points: a feed of
                // them makes SSVC "loaded", so a CVE it does not rate is "no CISA data".
                let cve5: Vec<_> = import
                    .records
                    .iter()
                    .filter(|a| a.source.feed == FeedKind::Cve5)
                    .collect();
                if !cve5.is_empty() {
                    feeds.enrichment.add_ssvc(
                        cve5.iter()
                            .filter_map(|a| Some((a.id.clone(), a.ssvc.clone()?))),
                    );
                }
                feeds.advisories.extend(import.records);
                (advisory_kind(feed), count, lines)
            }
            FeedFormat::Kev => {
                let bytes = read_file(&path, limits.max_feed_bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let catalog = kev::parse(&bytes, &path.display().to_string())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let lines = catalog.entries.reject_lines();
                let entries: Vec<KevEntry> = catalog.entries.records;
                let count = entries.len();
                feeds.enrichment.add_kev(entries);
                ("kev", count, lines)
            }
            FeedFormat::Epss => {
                let bytes = read_file(&path, limits.max_feed_bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let import = epss::parse(&bytes, &path.display().to_string())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let lines = import
                    .rejects
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>();
                let count = import.snapshot.scores.len();
                feeds.enrichment.add_epss(import.snapshot.scores);
                ("epss", count, lines)
            }
        };
        if progress {
            eprint!(
                "\rloaded {} ({kind}): {records} records in {:.1} s\x1b[K\n",
                path.display(),
                started.elapsed().as_secs_f64()
            );
        }
        for line in rejects.iter().take(5) {
            eprintln!("patchwarden: warning: record skipped: {line}");
        }
        if rejects.len() > 5 {
            eprintln!(
                "patchwarden: warning: … and {} more records skipped in {}",
                rejects.len() - 5,
                path.display()
            );
        }
        feeds.loaded.push(LoadedFeed {
            path: path.display().to_string(),
            kind,
            records,
            rejected: rejects.len(),
        });
    }
    Ok(feeds)
}

fn advisory_kind(feed: AdvisoryFeed) -> &'static str {
    match feed {
        AdvisoryFeed::Osv => "osv",
        AdvisoryFeed::Csaf => "csaf",
        AdvisoryFeed::AlpineSecdb => "alpine",
        AdvisoryFeed::DebianTracker => "debian",
    }
}

/// `PATH` (recognised) or `KIND:PATH`.
fn feed_spec(spec: &str) -> anyhow::Result<(FeedFormat, PathBuf)> {
    let named = spec.split_once(':').and_then(|(kind, path)| {
        let format = match kind {
            "osv" => FeedFormat::Advisories(AdvisoryFeed::Osv),
            "csaf" => FeedFormat::Advisories(AdvisoryFeed::Csaf),
            "alpine" => FeedFormat::Advisories(AdvisoryFeed::AlpineSecdb),
            "debian" => FeedFormat::Advisories(AdvisoryFeed::DebianTracker),
            "kev" => FeedFormat::Kev,
            "epss" => FeedFormat::Epss,
            _ => return None,
        };
        Some((format, PathBuf::from(path)))
    });
    match named {
        Some(found) => Ok(found),
        None => {
            let path = PathBuf::from(spec);
            let format = detect_path(&path).map_err(|e| anyhow::anyhow!("--feed {e}"))?;
            Ok((format, path))
        }
    }
}

/// A finding with its enrichment and its assessment.
struct ScannedFinding {
    finding: Finding,
    kev: Option<KevEntry>,
    epss: Option<patchwarden_core::advisory::EpssScore>,
    cvss: Option<patchwarden_core::advisory::Severity>,
    assessment: Assessment,
    due_at: Option<Timestamp>,
    sla: Option<SlaStatus>,
}

impl ScannedFinding {
    fn class_rank(&self) -> u8 {
        match self.assessment.class {
            Some(Class::Emergency) => 5,
            Some(Class::High) => 4,
            Some(Class::Medium) => 3,
            Some(Class::Low) => 2,
            None => 1,
            Some(Class::NotApplicable) => 0,
        }
    }

    /// The rule's own words for why this class.
    fn reason(&self) -> String {
        let Some(by) = &self.assessment.class_set_by else {
            return "no rule of the policies applies".into();
        };
        let description = self
            .assessment
            .verdicts
            .iter()
            .flat_map(|v| v.matched.iter().map(move |m| (v, m)))
            .find(|(v, m)| {
                by.label() == format!("{}/{}", v.policy, m.rule) && !m.description.is_empty()
            })
            .map(|(_, m)| m.description.clone());
        match description {
            Some(d) => format!("{}: {d}", by.label()),
            None => by.label(),
        }
    }
}

fn judge(
    finding: &Finding,
    index: &Index,
    enrichment: &Enrichment,
    policies: &[Policy],
    asset: &AssetLabels,
    host: &HostFacts,
    now: Timestamp,
) -> ScannedFinding {
    let ratings = index.ratings(finding);
    let mut facts = FindingFacts::new(finding, asset);
    facts.host = Some(&host.hostname);
    facts.kev = enrichment.kev(finding);
    facts.epss = enrichment.epss(finding);
    facts.ssvc = enrichment.ssvc(finding);
    facts.cvss = &ratings.cvss;
    facts.vendor_severity = &ratings.vendor;
    // A one-shot scan sees the finding for the first time now.
    facts.detected_at = Some(now);
    let assessment = policy::assess(policies, &facts, now);
    let due_at = assessment.due_at;
    let best_cvss = ratings
        .cvss
        .iter()
        // As the policy reads "the" CVSS score: the highest version, then the highest score.
        .max_by_key(|s| {
            let version = match s.kind {
                patchwarden_core::advisory::SeverityKind::Cvss(v) => Some(v),
                _ => None,
            };
            (version, s.base_score)
        })
        .cloned();
    ScannedFinding {
        kev: facts.kev.listed().map(|k| (*k).clone()),
        epss: facts.epss.listed().copied(),
        cvss: best_cvss,
        sla: due_at.map(|d| policy::sla_status(d, now, DUE_SOON)),
        due_at,
        assessment,
        finding: finding.clone(),
    }
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    packages: usize,
    packages_checked: usize,
    findings: usize,
    vulnerabilities: usize,
    by_class: std::collections::BTreeMap<String, usize>,
    fix_available: usize,
    no_fix: usize,
    known_exploited: usize,
    breached: usize,
    due_soon: usize,
    feeds: Vec<LoadedFeed>,
}

impl Summary {
    fn of(
        inventory: &Inventory,
        findings: &[ScannedFinding],
        feeds: &[LoadedFeed],
        checked: usize,
    ) -> Summary {
        let mut s = Summary {
            packages: inventory.packages.len(),
            packages_checked: checked,
            findings: findings.len(),
            ..Summary::default()
        };
        let mut vulns: Vec<&str> = findings
            .iter()
            .map(|f| f.finding.vulnerability.as_str())
            .collect();
        vulns.sort_unstable();
        vulns.dedup();
        s.vulnerabilities = vulns.len();
        for f in findings {
            let class = f
                .assessment
                .class
                .map_or("unclassified".to_owned(), |c| c.to_string());
            *s.by_class.entry(class).or_default() += 1;
            if f.finding.fixed.is_some() {
                s.fix_available += 1
            } else {
                s.no_fix += 1
            }
            if f.kev.is_some() {
                s.known_exploited += 1;
            }
            match f.sla {
                Some(SlaStatus::Breached) => s.breached += 1,
                Some(SlaStatus::DueSoon) => s.due_soon += 1,
                _ => {}
            }
        }
        s.feeds = feeds
            .iter()
            .map(|f| LoadedFeed {
                path: f.path.clone(),
                kind: f.kind,
                records: f.records,
                rejected: f.rejected,
            })
            .collect();
        s
    }
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    vulnerability: &'a str,
    advisories: &'a [String],
    aliases: &'a [String],
    package: &'a str,
    arch: Option<&'a str>,
    source_package: Option<&'a str>,
    installed: &'a str,
    fixed: Option<&'a str>,
    ecosystem: &'a str,
    criticality: Option<Class>,
    reason: String,
    kev: Option<&'a KevEntry>,
    epss: Option<patchwarden_core::advisory::EpssScore>,
    cvss: Option<JsonCvss<'a>>,
    available_at: Option<Timestamp>,
    published_at: Option<Timestamp>,
    due_at: Option<Timestamp>,
    sla: Option<SlaStatus>,
    explanation: &'a str,
    policy: PolicySummary,
    missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assessment: Option<&'a Assessment>,
}

#[derive(Serialize)]
struct JsonCvss<'a> {
    vector: &'a str,
    score: Option<f64>,
}

#[derive(Serialize)]
struct JsonScan<'a> {
    host: &'a HostFacts,
    findings: Vec<JsonFinding<'a>>,
    summary: &'a Summary,
}

fn write_json(
    out: impl Write,
    host: &HostFacts,
    findings: &[ScannedFinding],
    summary: &Summary,
    explain: bool,
) -> io::Result<()> {
    let findings = findings
        .iter()
        .map(|f| JsonFinding {
            vulnerability: &f.finding.vulnerability,
            advisories: &f.finding.advisories,
            aliases: &f.finding.aliases,
            package: &f.finding.package,
            arch: f.finding.arch.as_deref(),
            source_package: f.finding.source_package.as_deref(),
            installed: &f.finding.installed,
            fixed: f.finding.fixed.as_deref(),
            ecosystem: &f.finding.ecosystem,
            criticality: f.assessment.class,
            reason: f.reason(),
            kev: f.kev.as_ref(),
            epss: f.epss,
            cvss: f.cvss.as_ref().map(|c| JsonCvss {
                vector: &c.vector,
                score: c.base_score.map(|s| s.as_f64()),
            }),
            available_at: f.finding.available_at,
            published_at: f.finding.published_at,
            due_at: f.due_at,
            sla: f.sla,
            explanation: &f.finding.explanation,
            policy: f.assessment.summary(),
            missing: f.assessment.missing_sentences(),
            assessment: explain.then_some(&f.assessment),
        })
        .collect();
    let mut out = BufWriter::new(out);
    serde_json::to_writer_pretty(
        &mut out,
        &JsonScan {
            host,
            findings,
            summary,
        },
    )?;
    writeln!(out)?;
    out.flush()
}

fn write_table(
    out: impl Write,
    ecosystem: &str,
    findings: &[ScannedFinding],
    summary: &Summary,
    explain: bool,
) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    let rows: Vec<[String; 10]> = findings
        .iter()
        .map(|f| {
            [
                f.assessment.class.map_or("-".into(), |c| c.to_string()),
                f.due_at
                    .map_or("-".into(), |d| d.strftime("%Y-%m-%d %H:%M").to_string()),
                match f.sla {
                    Some(SlaStatus::Breached) => "BREACHED".into(),
                    Some(SlaStatus::DueSoon) => "due soon".into(),
                    Some(SlaStatus::OnTime) => "on time".into(),
                    None => "-".into(),
                },
                f.finding.vulnerability.clone(),
                f.finding.package.clone(),
                f.finding.arch.clone().unwrap_or_default(),
                f.finding.installed.clone(),
                f.finding.fixed.clone().unwrap_or_else(|| "(no fix)".into()),
                if f.kev.is_some() {
                    "KEV".into()
                } else {
                    String::new()
                },
                f.cvss
                    .as_ref()
                    .and_then(|c| c.base_score)
                    .map_or(String::new(), |s| format!("{s}")),
            ]
        })
        .collect();
    let header = [
        "CLASS",
        "DUE (UTC)",
        "SLA",
        "VULNERABILITY",
        "PACKAGE",
        "ARCH",
        "INSTALLED",
        "FIXED",
        "",
        "CVSS",
    ];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    if !rows.is_empty() {
        writeln!(out, "{}", line(&header.map(String::from)))?;
    }
    for (row, f) in rows.iter().zip(findings) {
        writeln!(out, "{}", line(row))?;
        if explain {
            writeln!(out, "    {}", f.finding.explanation)?;
            writeln!(out, "    reason: {}", f.reason())?;
            for l in f.assessment.explain().lines() {
                writeln!(out, "    {l}")?;
            }
        }
    }
    let classes: Vec<String> = summary
        .by_class
        .iter()
        .rev()
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    writeln!(
        out,
        "{}{} findings ({} vulnerabilities) in {} packages on {ecosystem}: {}; {} with a fix, \
         {} without; {} known exploited; {} breached, {} due within 7 days",
        if rows.is_empty() { "" } else { "\n" },
        summary.findings,
        summary.vulnerabilities,
        summary.packages,
        if classes.is_empty() {
            "none".to_owned()
        } else {
            classes.join(", ")
        },
        summary.fix_available,
        summary.no_fix,
        summary.known_exploited,
        summary.breached,
        summary.due_soon,
    )?;
    out.flush()
}
