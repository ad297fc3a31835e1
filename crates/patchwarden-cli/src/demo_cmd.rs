//! `patchwarden demo`: the whole product on one machine, offline. It runs the real server
//! (`serve`'s code: SQLite in the data directory, every route default-deny), imports the
//! bundled advisory data through the server's feed import, enrolls a real agent reading this
//! machine's package database read-only, enrolls a simulated fleet through the real agent
//! protocol (each host its own Ed25519 key), makes an admin through the real operator API,
//! prints the URL, the login and the counts, and serves until Ctrl-C.
//!
//! Plain HTTP on a loopback address: the simplest honest choice for a demo that nobody else
//! can reach (a non-loopback address is refused). `serve` is where TLS is.
//!
//! Findings at every SLA state need hosts first seen in the past. The demo policy
//! (`data/demo/demo-policy.toml`) counts deadlines from detection, and while the fleet is
//! seeded the server's clock is set back (`patchwarden_server::clock::set_seeding_offset`):
//! each cohort of hosts enrolls and uploads "days ago" through the same HTTP routes, with its
//! requests signed at that time. The clock is real again before anyone is told the URL.
//!
//! A few exceptions (risk acceptance) are recorded as the clock moves (`demo_exceptions`):
//! three approved ones in force over hosts of the oldest cohort, whose breached findings are
//! then reported as excepted, and one that expired ten days ago, whose host's findings are
//! breached again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use patchwarden_agent::agent::{Agent, EnrollOptions, StateDir, enroll};
use patchwarden_api::v1::agent::{
    CHECK_IN_PATH, CheckInRequest, CheckInResponse, ENROLL_PATH, EnrollRequest, EnrollResponse,
    EnrollmentSecret, INVENTORY_PATH, InventoryAccepted, InventoryUpload, InventoryWanted,
};
use patchwarden_client::{AgentClient, AgentKey, Client, Signing, Trust, gzip};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::{Inventory, Manager, Package, PackageStatus};
use patchwarden_server::admin::{TokenRequest, create_enrollment_token};
use patchwarden_server::clock;
use patchwarden_server::config::TlsMode;
use patchwarden_store::Store;
use patchwarden_store::feed::SourceKind;
use patchwarden_store::finding::{FindingFilter, FindingState};
use patchwarden_store::host::{HostFilter, HostPlacement};
use patchwarden_version::Scheme;
use serde::{Deserialize, Serialize};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where the demo keeps its database, the agent's state and the admin login (re-used on
    /// the next start).
    #[arg(long, value_name = "DIR", default_value = "patchwarden-demo")]
    data_dir: PathBuf,
    /// The loopback address and port to serve on (plain HTTP: loopback only).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
    listen: String,
    /// How many simulated hosts to add on the first start.
    #[arg(long, value_name = "N", default_value_t = 300)]
    fleet: u32,
    /// The bundled data (advisories, package lists, the demo policy).
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
}

/// How long requests in flight may take to finish after Ctrl-C.
const GRACE: Duration = Duration::from_secs(10);
/// A finding due within this long is "due soon".
const DUE_SOON: SignedDuration = SignedDuration::from_hours(7 * 24);
/// How many days before today each cohort of simulated hosts was first seen. With the demo
/// policy (Emergency 8 h, High 30, Medium 60, Low 90 days from detection): 86 days ago makes
/// Low findings due soon, 55 Medium ones, 26 High ones, today's Emergency ones; the older
/// cohorts are breached and the newer ones on time.
const COHORT_DAYS: [i64; 8] = [120, 86, 64, 55, 40, 26, 10, 0];
const DEMO_USER: &str = "admin";
const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the demo keeps in its data directory (mode 0600): the admin login it made.
#[derive(Serialize, Deserialize)]
struct Login {
    username: String,
    password: String,
    token: String,
}

fn actor() -> Actor {
    Actor::Operator("local:demo".into())
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let addr: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {}: not an address and port", args.listen))?;
    if !addr.ip().is_loopback() {
        bail!("--listen {addr}: the demo serves plain HTTP, so only on a loopback address");
    }
    let bundle = args
        .bundle
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/demo"));
    if !bundle.join("demo-policy.toml").is_file() {
        bail!(
            "the demo's bundled data is not at {} (give --bundle DIR: data/demo in the source)",
            bundle.display()
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = args
        .data_dir
        .canonicalize()
        .with_context(|| format!("{}", args.data_dir.display()))?;
    let mut config = patchwarden_server::Config {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    config.listen.api = addr.to_string();
    config.listen.metrics = String::new();
    config.tls.mode = TlsMode::PlainHttp;
    config.policy.policies = vec![bundle.join("demo-policy.toml").display().to_string()];
    // The demo's change history is about a month old (it feeds last month's report): the
    // status page's "recently patched" looks back far enough to show it.
    config.status.patched_days = 45;
    // The demo is quiet unless asked (PATCHWARDEN_LOG): seeding makes a thousand requests, and
    // the server's "no operator exists yet" advice is for `serve`; the demo makes the admin.
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PATCHWARDEN_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,patchwarden_server::serve=error")
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(demo(config, bundle, data_dir, args.fleet))
}

async fn demo(
    config: patchwarden_server::Config,
    bundle: PathBuf,
    data_dir: PathBuf,
    fleet: u32,
) -> anyhow::Result<ExitCode> {
    // Ctrl-C is heard from the start, during the seeding too: the seeding stops between two
    // hosts (never half-way through one), the demo exits cleanly, and the next start finishes
    // it (a host already there is not added again).
    // The handlers are installed here, synchronously (a shell starts a background job with
    // SIGINT ignored until a handler is in place).
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    let seeded_marker = data_dir.join("demo-seeded");
    let first_start = !seeded_marker.exists();
    if first_start {
        // Time runs forward through the seeding: start (and import) at the oldest cohort's
        // day, so that no stored time goes backwards.
        clock::set_seeding_offset(SignedDuration::from_hours(COHORT_DAYS[0] * 24));
    }
    let running = match patchwarden_server::start(&config).await {
        Ok(r) => r,
        Err(e) => {
            clock::set_seeding_offset(SignedDuration::ZERO);
            return Err(e.into());
        }
    };
    let url = running.url();
    let state = running.state.clone();
    let store = state.store.clone();
    let setup = async {
        if *stop.borrow() {
            return Ok(false);
        }
        let team = crate::demo_changes::team(store.as_ref(), &data_dir).await?;
        if first_start {
            eprintln!("demo: importing the bundled advisories");
            for (file, kind, source) in [
                (
                    "almalinux9-ubi-subset.zip",
                    SourceKind::Osv,
                    "demo-almalinux",
                ),
                ("alpine-v3.11-main.json", SourceKind::Alpine, "demo-alpine"),
                (
                    "debian-tracker-sample.json",
                    SourceKind::Debian,
                    "demo-debian",
                ),
                ("kev-subset.json", SourceKind::Kev, "demo-kev"),
            ] {
                let path = bundle.join("advisories").join(file);
                patchwarden_server::feeds::import_path(
                    &state,
                    &path,
                    Some(kind),
                    Some(source),
                    actor(),
                    clock::now(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("importing {}: {e}", path.display()))?;
            }
            let templates = Templates::load(&bundle, store.as_ref()).await?;
            if !seed_fleet(&url, store.as_ref(), &templates, fleet, &stop, &team).await? {
                return Ok(false);
            }
            write_private(&seeded_marker, b"the simulated fleet is in the database\n")?;
        }
        clock::set_seeding_offset(SignedDuration::ZERO);
        if *stop.borrow() {
            return Ok(false);
        }
        local_agent(&url, store.as_ref(), &data_dir).await;
        let login = admin_login(&url, store.as_ref(), &data_dir).await?;
        crate::demo_changes::present(&url, &data_dir, &team).await?;
        print_summary(&url, &login, &team, store.as_ref()).await?;
        anyhow::Ok(true)
    };
    let outcome = setup.await;
    clock::set_seeding_offset(SignedDuration::ZERO);
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("demo: stopping before it was ready; start it again to finish");
            running.shutdown(GRACE).await;
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            running.shutdown(GRACE).await;
            return Err(e);
        }
    }
    let _ = stop.clone().wait_for(|stopped| *stopped).await;
    eprintln!("demo: stopping");
    running.shutdown(GRACE).await;
    eprintln!("demo: stopped; start it again with the same --data-dir to carry on");
    Ok(ExitCode::SUCCESS)
}

/// Writes a file only its owner can read.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One OS the simulated fleet runs: its facts and real package list, and for each package
/// an advisory fixes, the oldest and newest fixed versions the bundled advisories name.
struct Template {
    family: &'static str,
    inventory: Inventory,
    fixes: HashMap<String, (String, String)>,
    /// Whether a "behind" host keeps the real list's versions (the UBI 9.2 list is genuinely
    /// old) or takes the oldest fixed version (the Alpine list is newer than the 3.11 secdb).
    keep_real_when_behind: bool,
    /// Packages the hosts of the `app` role carry besides the real list: Debian 12's binaries
    /// of the sources the bundled tracker sample says bookworm shipped at a version its
    /// security update fixes (`hosts/debian12/tracker-packages.tsv`), at the release version
    /// when behind and the fixed one when patched.
    app_extras: Vec<Extra>,
}

/// One extra package of an `app` host.
struct Extra {
    package: Package,
    release: String,
    fixed: String,
}

/// `hosts/debian12/tracker-packages.tsv` as packages (`package arch source release fixed`).
fn tracker_extras(path: &Path) -> anyhow::Result<Vec<Extra>> {
    let bytes = patchwarden_feeds::load::read_file(path, 1024 * 1024)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).context("the tracker package list is not UTF-8")?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [name, arch, source, release, fixed] = cols[..] else {
            bail!("{}: a line without five columns: {line}", path.display());
        };
        out.push(Extra {
            package: Package {
                manager: Manager::Dpkg,
                name: name.to_owned(),
                version: release.to_owned(),
                arch: Some(arch.to_owned()),
                source_name: Some(source.to_owned()),
                source_version: Some(release.to_owned()),
                epoch: None,
                module: None,
                status: PackageStatus::Installed,
            },
            release: release.to_owned(),
            fixed: fixed.to_owned(),
        });
    }
    Ok(out)
}

struct Templates(Vec<Template>);

impl Templates {
    async fn load(bundle: &Path, store: &dyn Store) -> anyhow::Result<Templates> {
        let hosts = bundle.join("hosts");
        let collect = |dir: PathBuf| async move {
            tokio::task::spawn_blocking(move || {
                patchwarden_agent::inventory::collect::collect_root(&dir)
            })
            .await
            .context("the collector failed")?
            .map_err(anyhow::Error::from)
        };
        let debian = collect(hosts.join("debian12")).await?.inventory;
        let alpine = collect(hosts.join("alpine3.11")).await?.inventory;
        let alma = almalinux_inventory(&hosts.join("almalinux9/rpm-inventory.tsv"))?;
        let advisories = store.advisories().await?;
        let mut templates = Vec::new();
        let mut debian_extras = Some(tracker_extras(
            &hosts.join("debian12/tracker-packages.tsv"),
        )?);
        for (family, inventory, keep) in [
            ("alma", alma, true),
            ("debian", debian, true),
            ("alpine", alpine, false),
        ] {
            let ecosystem = inventory.host.os.ecosystem.clone().unwrap_or_default();
            let fixes = fixed_versions(&advisories, &ecosystem);
            let app_extras = if family == "debian" {
                debian_extras.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            templates.push(Template {
                family,
                inventory,
                fixes,
                keep_real_when_behind: keep,
                app_extras,
            });
        }
        Ok(Templates(templates))
    }
}

/// The UBI 9.2 image's rpm list (`name epoch version release arch purl`), as an AlmaLinux 9
/// host: UBI is the RHEL 9.2 userland AlmaLinux 9.2 rebuilds.
fn almalinux_inventory(path: &Path) -> anyhow::Result<Inventory> {
    let bytes = patchwarden_feeds::load::read_file(path, 4 * 1024 * 1024)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).context("the rpm list is not UTF-8")?;
    let mut packages = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [name, epoch, version, release, arch, ..] = cols[..] else {
            bail!("{}: a line without six columns: {line}", path.display());
        };
        packages.push(Package {
            manager: Manager::Rpm,
            name: name.to_owned(),
            version: format!("{version}-{release}"),
            arch: Some(arch.to_owned()),
            source_name: None,
            source_version: None,
            epoch: epoch.parse().ok(),
            module: None,
            status: PackageStatus::Installed,
        });
    }
    let mut host = patchwarden_core::inventory::HostFacts::default();
    host.os.id = "almalinux".into();
    host.os.version_id = Some("9.2".into());
    host.os.pretty_name = Some("AlmaLinux 9.2 (Turquoise Kodkod)".into());
    host.os.id_like = vec!["rhel".into(), "centos".into(), "fedora".into()];
    host.os.ecosystem = Some("AlmaLinux:9".into());
    host.arch = Some("x86_64".into());
    Ok(Inventory {
        host,
        packages,
        updates: Vec::new(),
        updates_checked_at: None,
    })
}

/// For each package of `ecosystem` the advisories fix: the oldest and newest fixed version.
fn fixed_versions(
    advisories: &[patchwarden_core::advisory::Advisory],
    ecosystem: &str,
) -> HashMap<String, (String, String)> {
    let mut out: HashMap<String, (String, String)> = HashMap::new();
    let Ok(scheme) = Scheme::from_osv_ecosystem(ecosystem) else {
        return out;
    };
    let older = |a: &str, b: &str| scheme.compare(a, b).is_ok_and(|o| o.is_lt());
    for a in advisories {
        for affected in &a.affected {
            let Some(p) = &affected.package else { continue };
            if p.ecosystem != ecosystem {
                continue;
            }
            for range in &affected.ranges {
                for event in &range.events {
                    let patchwarden_core::advisory::Event::Fixed(v) = event else {
                        continue;
                    };
                    let e = out
                        .entry(p.name.clone())
                        .or_insert_with(|| (v.clone(), v.clone()));
                    if older(v, &e.0) {
                        e.0 = v.clone();
                    }
                    if older(&e.1, v) {
                        e.1 = v.clone();
                    }
                }
            }
        }
    }
    out
}

/// A small deterministic mix (splitmix64), so the same fleet comes out on every machine.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Sets a package to a fixed version an advisory names (`E:V-R` for rpm).
fn set_version(p: &mut Package, version: &str) {
    match (p.manager, version.split_once(':')) {
        (Manager::Rpm, Some((epoch, rest))) => {
            p.epoch = epoch.parse().ok().filter(|e| *e != 0);
            p.version = rest.to_owned();
        }
        _ => {
            p.version = version.to_owned();
            if p.source_version.is_some() {
                p.source_version = Some(version.to_owned());
            }
        }
    }
}

/// Host `i` of the fleet: its OS, ring, labels, first-sighting cohort and package list.
struct SimHost {
    hostname: String,
    group: String,
    ring: &'static str,
    labels: BTreeMap<String, String>,
    days_ago: i64,
    inventory: Inventory,
}

fn sim_host(templates: &Templates, i: u32) -> SimHost {
    let t = &templates.0[(i % 3) as usize];
    let r = mix(u64::from(i));
    let ring = if r.is_multiple_of(5) { "test" } else { "broad" };
    let days_ago = COHORT_DAYS[((r >> 8) % COHORT_DAYS.len() as u64) as usize];
    // A fifth of the fleet is fully patched, the rest are behind on some or all packages.
    let patched_share = match (r >> 16) % 10 {
        0 | 1 => 100,
        2..=5 => 60,
        _ => 0,
    };
    let role = ["web", "db", "app", "file"][((r >> 24) % 4) as usize];
    let hostname = format!("{}-{role}-{i:03}.demo.internal", t.family);
    let mut inventory = t.inventory.clone();
    inventory.host.hostname = hostname.clone();
    inventory.host.machine_id = Some(format!("{:016x}{:016x}", mix(r), mix(r ^ 0xdead_beef)));
    for p in &mut inventory.packages {
        let key = p.source_name.clone().unwrap_or_else(|| p.name.clone());
        let Some((oldest, newest)) = t.fixes.get(&p.name).or_else(|| t.fixes.get(&key)) else {
            continue;
        };
        let roll = mix(r ^ name_hash(&key)) % 100;
        if roll < patched_share {
            set_version(p, newest);
        } else if !t.keep_real_when_behind {
            set_version(p, oldest);
        }
    }
    if role == "app" {
        for extra in &t.app_extras {
            let mut p = extra.package.clone();
            let key = p.source_name.clone().unwrap_or_else(|| p.name.clone());
            let patched = mix(r ^ name_hash(&key)) % 100 < patched_share;
            set_version(
                &mut p,
                if patched {
                    &extra.fixed
                } else {
                    &extra.release
                },
            );
            inventory.packages.push(p);
        }
    }
    inventory.canonicalize();
    let mut labels = BTreeMap::new();
    labels.insert("role".into(), role.into());
    labels.insert("demo".into(), "simulated".into());
    // The service each role's hosts carry, and what maintenance on them means to its users:
    // what a change's announcement and the public status page name.
    let (application, impact) = match role {
        "web" => (
            "Intranet portal",
            "pages may be slow or briefly unavailable",
        ),
        "db" => (
            "Business databases",
            "reports and forms may pause for a few minutes",
        ),
        "app" => ("Mail and calendar (SOGo)", "webmail may log you out once"),
        _ => ("File shares", "open files may need to be saved again"),
    };
    labels.insert("application".into(), application.into());
    labels.insert("impact".into(), impact.into());
    SimHost {
        hostname,
        group: t.family.into(),
        ring,
        labels,
        days_ago,
        inventory,
    }
}

/// A signing at the server's (possibly set back) clock, so a seeded host's requests carry
/// the time the server believes it is.
pub(crate) fn signing(host: Option<&str>) -> Signing {
    let mut s = Signing::now(host);
    s.timestamp = clock::now().as_second();
    s
}

async fn seed_fleet(
    url: &str,
    store: &dyn Store,
    templates: &Templates,
    fleet: u32,
    stop: &tokio::sync::watch::Receiver<bool>,
    team: &crate::demo_changes::Team,
) -> anyhow::Result<bool> {
    // A host already there (a seeding interrupted before) is not added twice.
    let existing: HashSet<String> = store
        .list_hosts(&HostFilter::default())
        .await?
        .into_iter()
        .map(|h| h.facts.hostname)
        .collect();
    let hosts: Vec<SimHost> = (0..fleet)
        .map(|i| sim_host(templates, i))
        .filter(|h| !existing.contains(&h.hostname))
        .collect();
    let client = Client::new(url, &Trust::PlainHttp)?;
    eprintln!("demo: enrolling {} simulated hosts", hosts.len());
    // The oldest cohort's hosts, whose findings are breached: the demo's exceptions name them.
    let oldest: HashSet<String> = (0..fleet)
        .map(|i| sim_host(templates, i))
        .filter(|h| h.days_ago == COHORT_DAYS[0])
        .map(|h| h.hostname)
        .collect();
    // The Debian application hosts of the older cohorts keep their agent identities for the
    // change history (`demo_changes::history`), which runs between the cohorts of 40 and 26
    // days; SOGo's packages and the versions that fix them, from the tracker sample.
    let mut keep: Vec<crate::demo_changes::DemoAgent> = Vec::new();
    let vulnerable: BTreeMap<String, String> = templates
        .0
        .iter()
        .filter(|t| t.family == "debian")
        .flat_map(|t| {
            t.app_extras
                .iter()
                .map(|e| (e.package.name.clone(), e.fixed.clone()))
        })
        .collect();
    let mut history_done = false;
    for days in COHORT_DAYS {
        if !history_done && days < 28 {
            history_done = true;
            clock::set_seeding_offset(SignedDuration::ZERO);
            let at = crate::demo_changes::history_time(clock::now());
            crate::demo_changes::set_clock_to(at);
            crate::demo_changes::history(url, store, team, &mut keep, &vulnerable).await?;
        }
        let phase = match days {
            40 => Some(crate::demo_exceptions::Phase::Expiring),
            10 => Some(crate::demo_exceptions::Phase::InForce),
            _ => None,
        };
        if let Some(phase) = phase {
            clock::set_seeding_offset(SignedDuration::from_hours(days * 24));
            let mut ids: Vec<(String, uuid::Uuid)> = store
                .list_hosts(&HostFilter::default())
                .await?
                .into_iter()
                .filter(|h| oldest.contains(&h.facts.hostname))
                .map(|h| (h.facts.hostname, h.id))
                .collect();
            ids.sort();
            let ids: Vec<uuid::Uuid> = ids.into_iter().map(|(_, id)| id).collect();
            crate::demo_exceptions::seed(store, phase, &ids, clock::now()).await?;
        }
        let cohort: Vec<&SimHost> = hosts.iter().filter(|h| h.days_ago == days).collect();
        if cohort.is_empty() {
            continue;
        }
        clock::set_seeding_offset(SignedDuration::from_hours(days * 24));
        let mut tokens: HashMap<String, String> = HashMap::new();
        for h in &cohort {
            if tokens.contains_key(&h.group) {
                continue;
            }
            let uses = cohort.iter().filter(|c| c.group == h.group).count();
            let (_, secret) = create_enrollment_token(
                store,
                TokenRequest {
                    group: h.group.clone(),
                    valid_for: SignedDuration::from_hours(1),
                    max_uses: u32::try_from(uses).unwrap_or(u32::MAX),
                    note: Some("patchwarden demo: the simulated fleet".into()),
                },
                actor(),
                clock::now(),
            )
            .await?;
            tokens.insert(h.group.clone(), secret);
        }
        for h in cohort {
            if *stop.borrow() {
                return Ok(false);
            }
            let secret = tokens.get(&h.group).cloned().unwrap_or_default();
            let agent = seed_host(&client, store, h, secret)
                .await
                .with_context(|| format!("simulated host {}", h.hostname))?;
            if h.group == "debian"
                && h.labels.get("role").is_some_and(|r| r == "app")
                && h.days_ago >= 40
            {
                keep.push(crate::demo_changes::DemoAgent {
                    hostname: h.hostname.clone(),
                    agent,
                    inventory: h.inventory.clone(),
                    ring: h.ring,
                    seq: 1,
                });
            }
        }
    }
    Ok(true)
}

/// One simulated host through the agent protocol: enroll with its own key, placed in its
/// ring, check in, upload its inventory.
async fn seed_host(
    client: &Client,
    store: &dyn Store,
    h: &SimHost,
    secret: String,
) -> anyhow::Result<AgentClient> {
    let key = AgentKey::generate()?;
    let request = EnrollRequest {
        token: EnrollmentSecret(secret),
        public_key: key.public_hex(),
        facts: h.inventory.host.clone(),
        replace: false,
        agent_version: AGENT_VERSION.into(),
    };
    // Enrollment is signed with the new key and no host id; the typed call signs at the
    // real time, so the raw call carries the seeding clock's.
    let enrolling: AgentClient = client.agent("", key.clone());
    let enrolled: EnrollResponse = enrolling
        .send_raw(
            "POST",
            ENROLL_PATH,
            serde_json::to_vec(&request)?,
            None,
            &signing(None),
        )
        .await?
        .json("enrollment answer")?;
    let host_id: uuid::Uuid = enrolled.host_id.parse().context("the host id")?;
    let now = clock::now();
    store
        .set_host_placement(
            host_id,
            HostPlacement {
                group: h.group.clone(),
                ring: Some(h.ring.into()),
                labels: h.labels.clone(),
            },
            now,
            AuditEntry::new(now, actor(), "host.place", format!("host:{host_id}"))
                .after(serde_json::json!({"group": h.group, "ring": h.ring, "labels": h.labels})),
        )
        .await?;
    let agent = client.agent(&enrolled.host_id, key);
    let check_in = CheckInRequest {
        seq: 1,
        facts: h.inventory.host.clone(),
        packages: h.inventory.packages_digest(),
        agent_version: AGENT_VERSION.into(),
    };
    let answer: CheckInResponse = agent
        .send_raw(
            "POST",
            CHECK_IN_PATH,
            serde_json::to_vec(&check_in)?,
            None,
            &signing(Some(&enrolled.host_id)),
        )
        .await?
        .json("check-in answer")?;
    if answer.inventory != InventoryWanted::Nothing {
        let upload = InventoryUpload::Full {
            inventory: h.inventory.clone(),
        };
        let body = gzip(&serde_json::to_vec(&upload)?)?;
        let _: InventoryAccepted = agent
            .send_raw(
                "POST",
                INVENTORY_PATH,
                body,
                Some("gzip"),
                &signing(Some(&enrolled.host_id)),
            )
            .await?
            .json("inventory answer")?;
    }
    Ok(agent)
}

/// This machine, through the real agent: enrolled on the first start, checked in again on
/// each later one. A machine the agent cannot read is told, not fatal: the fleet still
/// shows.
async fn local_agent(url: &str, store: &dyn Store, data_dir: &Path) {
    let result = async {
        let state = StateDir::open(&data_dir.join("agent"))?;
        if state.is_enrolled() {
            let mut agent = Agent::load(state, PathBuf::from("/"))?;
            agent.once().await?;
            return anyhow::Ok(());
        }
        let (_, secret) = create_enrollment_token(
            store,
            TokenRequest {
                group: "local".into(),
                valid_for: SignedDuration::from_hours(1),
                max_uses: 1,
                note: Some("patchwarden demo: this machine".into()),
            },
            actor(),
            clock::now(),
        )
        .await?;
        enroll(
            &state,
            EnrollOptions {
                server: url.to_owned(),
                token: secret,
                ca_fingerprint: None,
                replace: true,
                root: PathBuf::from("/"),
            },
        )
        .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => eprintln!("demo: this machine checked in through the agent"),
        Err(e) => eprintln!("demo: this machine's agent could not check in: {e:#}"),
    }
}

/// An HTTP client for the operator API on loopback (plain HTTP; a TLS configuration that
/// trusts nothing, so no https:// URL can succeed by accident).
pub(crate) fn http() -> anyhow::Result<reqwest::Client> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// The admin login: made on the first start through the real operator API (bootstrap's
/// one-time password, changed at the first login as the server requires, then an API
/// token), kept in `DIR/demo-login.json` (0600) and printed on every start.
async fn admin_login(url: &str, store: &dyn Store, data_dir: &Path) -> anyhow::Result<Login> {
    let path = data_dir.join("demo-login.json");
    if path.exists() {
        let bytes = patchwarden_feeds::load::read_file(&path, 64 * 1024)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not the demo's login", path.display()));
    }
    if store.find_user(DEMO_USER).await?.is_some() {
        bail!(
            "{} is missing but the demo's admin exists: remove the data directory to start \
             afresh",
            path.display()
        );
    }
    let one_time = make_admin(store).await?;
    let password = patchwarden_server::secrets::new_secret("demo-")?;
    let http = http()?;
    let (cookie, csrf) = login(&http, url, &one_time).await?;
    let changed = http
        .put(format!("{url}/api/v1/me/password"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(
            &serde_json::json!({"current_password": one_time, "new_password": password}),
        )?)
        .send()
        .await?;
    if !changed.status().is_success() {
        bail!(
            "changing the admin's one-time password: {}",
            changed.status()
        );
    }
    let (cookie, csrf) = login(&http, url, &password).await?;
    let created = http
        .post(format!("{url}/api/v1/api-tokens"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(
            &serde_json::json!({"name": "demo", "expires_in_days": 30}),
        )?)
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("creating the admin's API token: {}", created.status());
    }
    let created: serde_json::Value = serde_json::from_slice(&created.bytes().await?)?;
    let token = created["secret"]
        .as_str()
        .context("the API token answer has no secret")?
        .to_owned();
    let login = Login {
        username: DEMO_USER.into(),
        password,
        token,
    };
    write_private(&path, &serde_json::to_vec_pretty(&login)?)?;
    Ok(login)
}

/// The demo's admin, with a one-time password to change at the first login, as
/// `patchwarden admin bootstrap` makes one (which refuses once the demo's team exists).
async fn make_admin(store: &dyn Store) -> anyhow::Result<String> {
    let one_time = patchwarden_server::secrets::one_time_password()?;
    let hashed = one_time.clone();
    let password_hash =
        tokio::task::spawn_blocking(move || patchwarden_server::secrets::hash_password(&hashed))
            .await??;
    let now = clock::now();
    store
        .create_user(
            patchwarden_store::NewUser {
                id: uuid::Uuid::new_v4(),
                username: DEMO_USER.into(),
                password_hash,
                roles: [patchwarden_store::Role::Admin].into(),
                groups: Default::default(),
                must_change_password: true,
                created_by: "bootstrap".into(),
            },
            now,
            AuditEntry::new(now, actor(), "user.create", format!("user:{DEMO_USER}")).after(
                serde_json::json!({"username": DEMO_USER, "roles": ["admin"], "bootstrap": true}),
            ),
        )
        .await?;
    Ok(one_time)
}

/// Logs in as the admin; returns the session cookie (as a `Cookie` header value) and the
/// CSRF token.
async fn login(
    http: &reqwest::Client,
    url: &str,
    password: &str,
) -> anyhow::Result<(String, String)> {
    login_as(http, url, DEMO_USER, password).await
}

/// Logs in as `user`; returns the session cookie (as a `Cookie` header value) and the CSRF
/// token.
pub(crate) async fn login_as(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<(String, String)> {
    let response = http
        .post(format!("{url}/api/v1/session"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(
            &serde_json::json!({"username": user, "password": password}),
        )?)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("logging in as {user}: {}", response.status());
    }
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("__Host-")))
        .context("the login set no session cookie")?
        .to_owned();
    let session: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
    let csrf = session["csrf_token"]
        .as_str()
        .context("the login answer has no CSRF token")?
        .to_owned();
    Ok((cookie, csrf))
}

/// Where an open finding stands against its due date, under the exceptions covering it
/// (`patchwarden_core::exception::standing`, as the server reports it).
fn sla_state(
    due: Option<Timestamp>,
    now: Timestamp,
    exceptions: &[patchwarden_core::exception::Exception],
) -> &'static str {
    use patchwarden_core::exception::{Standing, standing};
    if due.is_none() && exceptions.is_empty() {
        return "no due date";
    }
    match standing(due, now, DUE_SOON, exceptions) {
        Standing::Excepted => "excepted",
        Standing::Breached => "breached",
        Standing::DueSoon => "due soon",
        Standing::OnTime if due.is_none() => "no due date",
        Standing::OnTime => "on time",
    }
}

async fn print_summary(
    url: &str,
    login: &Login,
    team: &crate::demo_changes::Team,
    store: &dyn Store,
) -> anyhow::Result<()> {
    let now = clock::now();
    let hosts = store.list_hosts(&HostFilter::default()).await?;
    let mut by_os: BTreeMap<(String, String), u64> = BTreeMap::new();
    for h in &hosts {
        let os = h.ecosystem.clone().unwrap_or_else(|| "unknown".into());
        let ring = h.ring.clone().unwrap_or_else(|| "-".into());
        *by_os.entry((os, ring)).or_default() += 1;
    }
    let findings = store
        .list_findings(&FindingFilter {
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })
        .await?;
    // The exceptions in force, once; each finding is matched in memory.
    let all_exceptions = store
        .list_exceptions(&patchwarden_store::exception::ExceptionFilter::default())
        .await?;
    let in_force: Vec<_> = all_exceptions
        .iter()
        .filter(|e| e.exception.in_force(now))
        .collect();
    let expired = all_exceptions
        .iter()
        .filter(|e| {
            matches!(
                e.exception.state,
                patchwarden_core::exception::ExceptionState::Approved { .. }
            ) && !e.exception.in_force(now)
        })
        .count();
    let mut by_state: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &findings {
        let covering: Vec<_> = in_force
            .iter()
            .filter(|e| e.covers_at(f.host, &f.finding, now))
            .map(|e| e.exception.clone())
            .collect();
        *by_state
            .entry(sla_state(f.classification.due_at, now, &covering))
            .or_default() += 1;
    }
    println!("Patchwarden demo: serving at {url}");
    println!("web UI: {url}/login   public status page: {url}/status");
    println!("login: {} / {}", login.username, login.password);
    let names: Vec<String> = crate::demo_changes::TEAM
        .iter()
        .map(|(name, role)| format!("{name} ({})", role.as_str()))
        .collect();
    println!("the team, all with the password {}:", team.password);
    println!("  {}", names.join(", "));
    println!("api token: {}", login.token);
    println!("hosts: {}", hosts.len());
    for ((os, ring), n) in &by_os {
        println!("  {os:<14} ring {ring:<6} {n}");
    }
    println!(
        "open findings: {} (due soon: within {} days)",
        findings.len(),
        DUE_SOON.as_hours() / 24
    );
    for state in ["breached", "due soon", "on time", "no due date", "excepted"] {
        println!(
            "  {state:<12} {}",
            by_state.get(state).copied().unwrap_or(0)
        );
    }
    println!(
        "exceptions: {} in force, {} expired (their findings back on their SLA clock)",
        in_force.len(),
        expired
    );
    println!("try:");
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{url}/api/v1/hosts?limit=5'",
        login.token
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{url}/api/v1/findings?criticality=emergency&limit=5'",
        login.token
    );
    println!("  curl -s '{url}/api/v1/openapi.json'");
    // Last month's report holds the demo's change history.
    let last_month = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .first_of_month()
        .ok()
        .and_then(|d| d.yesterday().ok())
        .map(|d| d.strftime("%Y-%m").to_string())
        .unwrap_or_default();
    println!(
        "  patchwarden report monthly --server {url} --insecure-plain-http --token {} \\\n      --month {last_month} --format pdf --output report.pdf",
        login.token
    );
    println!("Ctrl-C stops it; start it again with the same --data-dir to carry on.");
    std::io::stdout().flush()?;
    Ok(())
}
