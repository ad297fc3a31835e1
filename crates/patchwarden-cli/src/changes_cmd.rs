//! `patchwarden changes …` and `patchwarden calendar …`: change requests (the patch control
//! form, its signatures, its schedule and its rollout) and the calendar of maintenance windows
//! and change freezes, over the operator API (`/api/v1/changes`, `/api/v1/calendar`).
//!
//! A change is addressed by its number (`PCR-2026-0001`). Every action prints the change as it
//! stands after it; a refusal by the change state machine (the requester approving their own
//! change, a freeze, a missing signature) is the server's 409, printed on stderr with its
//! reason, exit 1 (docs/cli.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use patchwarden_api::v1::changes::{
    CalendarEntryView, CalendarSpec, ChangeQuery, ChangeView, FreezeSpec, NewChangeRequest, Patch,
    Risk, RolloutPlan, ScheduleRequest, Targets, WindowSpec,
};
use patchwarden_client::ChangeAction;
use patchwarden_core::change::{ChangeKind, ChangeState, HotfixConditions, Signed, Testing};
use uuid::Uuid;

use crate::ops_cmd::{Common, finish, with_client};
use crate::output::{self, EXIT_ERROR, Failure, Format, name, opt};

/// The largest change file `changes create --file` reads.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

fn ts(t: Option<Timestamp>) -> String {
    opt(t.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()))
}

fn span(start: Option<Timestamp>, end: Option<Timestamp>) -> String {
    match (start, end) {
        (None, None) => "-".into(),
        (s, e) => format!("{} – {}", ts(s), ts(e)),
    }
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn or_dash(s: &str) -> String {
    if s.trim().is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

// ---- changes

#[derive(Debug, Args)]
pub(crate) struct ChangesArgs {
    #[command(subcommand)]
    cmd: ChangesCommand,
    #[command(flatten)]
    common: Common,
}

fn state_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(ChangeState::ALL.map(ChangeState::as_str))
}

#[derive(Debug, Subcommand)]
enum ChangesCommand {
    /// Change requests, newest first.
    List {
        /// Only changes in this state.
        #[arg(long, value_parser = state_parser())]
        state: Option<String>,
        /// Only changes this operator requested.
        #[arg(long)]
        requester: Option<String>,
        /// At most this many (default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One change: the form, its signatures, its window, warnings and its rollout.
    Show { number: String },
    /// Replace a draft's form with the NewChangeRequest in FILE (its requester, before
    /// submitting; `changes show NUMBER --format json` is a starting point).
    Edit {
        number: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// A new draft from flags (or a NewChangeRequest as JSON with --file); prints its number.
    Create(Box<CreateArgs>),
    /// Submit a draft for approval.
    Submit { number: String },
    /// Approve a submitted change (not its requester).
    Approve { number: String },
    /// Authorise an approved change.
    Authorise { number: String },
    /// Put the change in the hosts' first maintenance window that no freeze covers (an
    /// emergency at once).
    Schedule {
        number: String,
        /// Not before this time (RFC 3339, `2026-12-01T00:00:00Z`); now when left out.
        #[arg(long)]
        not_before: Option<Timestamp>,
        /// Follow this schedule template (a `calendar template`).
        #[arg(long)]
        template: Option<String>,
    },
    /// Record an emergency change's testing, done after it deployed.
    RecordTesting { number: String },
    /// Release a gated ring of a rollout, so it may count as verified and the next ring start.
    Promote {
        number: String,
        /// The gated ring.
        #[arg(long)]
        ring: String,
    },
    /// Close a verified change.
    Close { number: String },
    /// Reject a change, with the reason.
    Reject {
        number: String,
        #[arg(long)]
        reason: String,
    },
    /// Cancel a change, with the reason.
    Cancel {
        number: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    Standard,
    Normal,
    Emergency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RiskArg {
    Low,
    Medium,
    High,
}

/// The four hotfix conditions of seed 000 §7.1, each confirmed by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HotfixArg {
    SpecificIssue,
    DocumentationReviewed,
    TestedInTestEnvironment,
    GreaterRiskNotApplying,
}

/// The form's flags that `--file` replaces.
const FORM_FLAGS: [&str; 27] = [
    "kind",
    "title",
    "justification",
    "risk",
    "priority",
    "rollback_plan",
    "testing_required",
    "no_testing",
    "hosts",
    "groups",
    "patches",
    "from_findings",
    "min_criticality",
    "min_age_days",
    "update_kinds",
    "restart",
    "reboot_allowed",
    "hotfix",
    "test_ring",
    "soak_minutes",
    "max_failures",
    "health_checks",
    "domain_label",
    "max_per_domain",
    "gates",
    "wave_size",
    "wave_percent",
];

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CriticalityArg {
    Low,
    Medium,
    High,
    Emergency,
}

impl CriticalityArg {
    fn wire(self) -> patchwarden_api::v1::fleet::Criticality {
        use patchwarden_api::v1::fleet::Criticality as C;
        match self {
            CriticalityArg::Low => C::Low,
            CriticalityArg::Medium => C::Medium,
            CriticalityArg::High => C::High,
            CriticalityArg::Emergency => C::Emergency,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum UpdateKindArg {
    Security,
    Bugfix,
    Enhancement,
    Unknown,
}

impl UpdateKindArg {
    fn wire(self) -> patchwarden_core::inventory::UpdateKind {
        use patchwarden_core::inventory::UpdateKind as K;
        match self {
            UpdateKindArg::Security => K::Security,
            UpdateKindArg::Bugfix => K::Bugfix,
            UpdateKindArg::Enhancement => K::Enhancement,
            UpdateKindArg::Unknown => K::Unknown,
        }
    }
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// A NewChangeRequest as JSON (the API's body) instead of the flags.
    #[arg(long, conflicts_with_all = FORM_FLAGS)]
    file: Option<PathBuf>,
    /// Standard (pre-approved), normal, or emergency (deploys at once, through a freeze).
    #[arg(long, value_enum, required_unless_present = "file")]
    kind: Option<KindArg>,
    /// What the change is, in a line.
    #[arg(long, required_unless_present = "file")]
    title: Option<String>,
    /// The business justification.
    #[arg(long, required_unless_present = "file")]
    justification: Option<String>,
    /// The risk rating.
    #[arg(long, value_enum, required_unless_present = "file")]
    risk: Option<RiskArg>,
    /// The nature and priority of the change, in words.
    #[arg(long)]
    priority: Option<String>,
    /// How the change is undone if it goes wrong.
    #[arg(long, required_unless_present = "file")]
    rollback_plan: Option<String>,
    /// Testing is required (the default).
    #[arg(long, conflicts_with = "no_testing")]
    testing_required: bool,
    /// Testing is not required, for this reason.
    #[arg(long, value_name = "REASON")]
    no_testing: Option<String>,
    /// A host to patch (its id); repeat or list several.
    #[arg(long = "host", value_name = "UUID", num_args = 1..)]
    hosts: Vec<Uuid>,
    /// A host group to patch; repeat or list several.
    #[arg(long = "group", value_name = "GROUP", num_args = 1..)]
    groups: Vec<String>,
    /// A package to bring to a version, `PKG=VERSION` or `PKG=VERSION@ECOSYSTEM`
    /// (`openssl=3.0.15-1~deb12u1@Debian:12`). Without any, the patches come from the
    /// targeted hosts' open findings.
    #[arg(long = "patch", value_name = "PKG=VERSION[@ECOSYSTEM]", num_args = 1.., value_parser = parse_patch)]
    patches: Vec<Patch>,
    /// Derive patches only from these vulnerabilities' findings.
    #[arg(long = "from-finding", value_name = "CVE", num_args = 1..)]
    from_findings: Vec<String>,
    /// Derive patches only from findings of at least this criticality.
    #[arg(long, value_enum)]
    min_criticality: Option<CriticalityArg>,
    /// Derive patches only from fixes released at least this many days ago.
    #[arg(long, value_name = "DAYS")]
    min_age_days: Option<u32>,
    /// Also take the hosts' available updates of these kinds from their own repositories
    /// (`--updates security` is "all security updates").
    #[arg(long = "updates", value_enum, value_name = "KIND", num_args = 1..)]
    update_kinds: Vec<UpdateKindArg>,
    /// A systemd unit to restart after installing, in order.
    #[arg(long = "restart", value_name = "UNIT", num_args = 1..)]
    restart: Vec<String>,
    /// A check the agent runs after installing: `service:UNIT`, `tcp:PORT` or
    /// `http:PORT/PATH=STATUS`.
    #[arg(long = "health-check", value_name = "CHECK", num_args = 1.., value_parser = parse_health_check)]
    health_checks: Vec<patchwarden_api::v1::manifest::HealthCheck>,
    /// The hosts may be rebooted.
    #[arg(long)]
    reboot_allowed: bool,
    /// A hotfix or non-security update: the conditions confirmed (all four are needed),
    /// comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    hotfix: Vec<HotfixArg>,
    /// The hosts' ring that tests the change (default `test`).
    #[arg(long)]
    test_ring: Option<String>,
    /// Minutes a ring runs without failure before the next starts (default 0).
    #[arg(long)]
    soak_minutes: Option<u32>,
    /// Hosts of a ring that may fail before the rollout halts (default 0).
    #[arg(long)]
    max_failures: Option<u32>,
    /// The host label naming a failure domain (`hypervisor`, `site`, `rack`) …
    #[arg(long, requires = "max_per_domain")]
    domain_label: Option<String>,
    /// … and how many hosts of one domain may be patched at once.
    #[arg(long, requires = "domain_label")]
    max_per_domain: Option<u32>,
    /// A ring that waits for `changes promote` before it counts as verified; repeat or list
    /// several.
    #[arg(long = "gate", value_name = "RING", num_args = 1..)]
    gates: Vec<String>,
    /// Split the hosts without a ring into broad waves of this many hosts …
    #[arg(long, value_name = "N", conflicts_with = "wave_percent")]
    wave_size: Option<u32>,
    /// … or of these percentages of them, in order (`--wave-percent 10 30 60`).
    #[arg(long, value_name = "PERCENT", num_args = 1..)]
    wave_percent: Vec<u8>,
}

/// `PKG=VERSION[@ECOSYSTEM]`: the package is everything before the first `=`, the ecosystem
/// everything after the last `@` (no ecosystem has an `@`; package names like npm's `@scope/x`
/// stay whole).
fn parse_patch(s: &str) -> Result<Patch, String> {
    let (package, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: expected PKG=VERSION[@ECOSYSTEM]"))?;
    let (version, ecosystem) = match rest.rsplit_once('@') {
        Some((v, e)) => (v, Some(e)),
        None => (rest, None),
    };
    let package = package.trim();
    let version = version.trim();
    if package.is_empty() || version.is_empty() {
        return Err(format!("{s}: expected PKG=VERSION[@ECOSYSTEM]"));
    }
    if ecosystem.is_some_and(|e| e.trim().is_empty()) {
        return Err(format!("{s}: an empty ecosystem after @"));
    }
    Ok(Patch {
        package: package.to_owned(),
        version: version.to_owned(),
        ecosystem: ecosystem.map(|e| e.trim().to_owned()),
    })
}

/// `service:UNIT`, `tcp:PORT`, `http:PORT/PATH=STATUS`.
fn parse_health_check(s: &str) -> Result<patchwarden_api::v1::manifest::HealthCheck, String> {
    use patchwarden_api::v1::manifest::HealthCheck;
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{s}: {p} is not a port"))
    };
    match s.split_once(':') {
        Some(("service", unit)) if !unit.is_empty() => Ok(HealthCheck::ServiceActive {
            unit: unit.to_owned(),
        }),
        Some(("tcp", p)) => Ok(HealthCheck::TcpConnect { port: port(p)? }),
        Some(("http", rest)) => {
            let (target, status) = rest
                .rsplit_once('=')
                .ok_or_else(|| format!("{s}: expected http:PORT/PATH=STATUS"))?;
            let slash = target
                .find('/')
                .ok_or_else(|| format!("{s}: expected http:PORT/PATH=STATUS"))?;
            let status = status
                .parse::<u16>()
                .map_err(|_| format!("{s}: {status} is not an HTTP status"))?;
            Ok(HealthCheck::HttpStatus {
                port: port(&target[..slash])?,
                path: target[slash..].to_owned(),
                status,
            })
        }
        _ => Err(format!(
            "{s}: expected service:UNIT, tcp:PORT or http:PORT/PATH=STATUS"
        )),
    }
}

impl CreateArgs {
    /// The request the flags (or the file) describe.
    fn request(self) -> Result<NewChangeRequest, Failure> {
        if let Some(path) = &self.file {
            return read_request(path);
        }
        let missing = |flag: &str| Failure::new(EXIT_ERROR, format!("--{flag} is required"));
        let testing = match self.no_testing {
            Some(reason) => Testing::NotRequired { reason },
            None => Testing::Required,
        };
        let hotfix = (!self.hotfix.is_empty()).then(|| {
            let has = |c| self.hotfix.contains(&c);
            HotfixConditions {
                specific_issue: has(HotfixArg::SpecificIssue),
                documentation_reviewed: has(HotfixArg::DocumentationReviewed),
                tested_in_test_environment: has(HotfixArg::TestedInTestEnvironment),
                greater_risk_not_applying: has(HotfixArg::GreaterRiskNotApplying),
            }
        });
        let defaults = RolloutPlan::default();
        Ok(NewChangeRequest {
            kind: match self.kind.ok_or_else(|| missing("kind"))? {
                KindArg::Standard => ChangeKind::Standard,
                KindArg::Normal => ChangeKind::Normal,
                KindArg::Emergency => ChangeKind::Emergency,
            },
            title: self.title.ok_or_else(|| missing("title"))?,
            justification: self.justification.ok_or_else(|| missing("justification"))?,
            risk: match self.risk.ok_or_else(|| missing("risk"))? {
                RiskArg::Low => Risk::Low,
                RiskArg::Medium => Risk::Medium,
                RiskArg::High => Risk::High,
            },
            priority: self.priority.unwrap_or_default(),
            testing,
            rollback_plan: self.rollback_plan.ok_or_else(|| missing("rollback-plan"))?,
            targets: Targets {
                hosts: self.hosts,
                groups: self.groups,
            },
            patches: self.patches,
            from_findings: self.from_findings,
            baseline: patchwarden_api::v1::changes::Baseline {
                min_criticality: self.min_criticality.map(CriticalityArg::wire),
                min_age_days: self.min_age_days,
                update_kinds: self
                    .update_kinds
                    .into_iter()
                    .map(UpdateKindArg::wire)
                    .collect(),
            },
            restart_order: self.restart,
            health_checks: self.health_checks,
            reboot_allowed: self.reboot_allowed,
            hotfix,
            rollout: RolloutPlan {
                test_ring: self.test_ring.unwrap_or(defaults.test_ring),
                soak_minutes: self.soak_minutes.unwrap_or(defaults.soak_minutes),
                max_failures: self.max_failures.unwrap_or(defaults.max_failures),
                domain_label: self.domain_label,
                max_per_domain: self.max_per_domain,
                gates: self.gates,
                waves: match (self.wave_size, self.wave_percent.is_empty()) {
                    (Some(n), _) => Some(patchwarden_core::rollout::Waves::Size(n)),
                    (None, false) => {
                        Some(patchwarden_core::rollout::Waves::Percent(self.wave_percent))
                    }
                    (None, true) => None,
                },
            },
        })
    }
}

/// A NewChangeRequest from a JSON file (at most [`MAX_FILE_BYTES`]).
fn read_request(path: &std::path::Path) -> Result<NewChangeRequest, Failure> {
    use std::io::Read;
    let fail = |e: String| Failure::new(EXIT_ERROR, format!("{}: {e}", path.display()));
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!("longer than {MAX_FILE_BYTES} bytes")));
    }
    serde_json::from_slice(&text).map_err(|e| fail(format!("not a change request: {e}")))
}

pub(crate) fn run_changes(args: ChangesArgs) -> anyhow::Result<ExitCode> {
    Ok(finish(changes(args)))
}

fn changes(args: ChangesArgs) -> Result<(), Failure> {
    let format = args.common.format;
    let show = move |v: ChangeView| {
        if format == Format::Json {
            output::json(&v)
        } else {
            summary(&v);
            Ok(())
        }
    };
    match args.cmd {
        ChangesCommand::List {
            state,
            requester,
            limit,
        } => with_client(&args.common, |c| async move {
            let list = c
                .changes(&ChangeQuery {
                    state,
                    requester,
                    limit,
                })
                .await?;
            if format == Format::Json {
                return output::json(&list);
            }
            change_rows(&list);
            Ok(())
        }),
        ChangesCommand::Show { number } => with_client(&args.common, |c| async move {
            let v = c.change(&number).await?;
            if format == Format::Json {
                return output::json(&v);
            }
            form(&v);
            Ok(())
        }),
        ChangesCommand::Create(create) => {
            let request = (*create).request()?;
            with_client(&args.common, |c| async move {
                let v = c.create_change(&request).await?;
                if format == Format::Json {
                    return output::json(&v);
                }
                // The number alone on stdout, for `N=$(patchwarden changes create …)`.
                println!("{}", v.number);
                for w in &v.warnings {
                    eprintln!("patchwarden: warning: {w}");
                }
                Ok(())
            })
        }
        ChangesCommand::Edit { number, file } => {
            let request = read_request(&file)?;
            with_client(&args.common, |c| async move {
                let v = c.edit_change(&number, &request).await?;
                show(v)
            })
        }
        ChangesCommand::Submit { number } => {
            action(&args.common, number, ChangeAction::Submit, show)
        }
        ChangesCommand::Approve { number } => {
            action(&args.common, number, ChangeAction::Approve, show)
        }
        ChangesCommand::Authorise { number } => {
            action(&args.common, number, ChangeAction::Authorise, show)
        }
        ChangesCommand::RecordTesting { number } => {
            action(&args.common, number, ChangeAction::RecordTesting, show)
        }
        ChangesCommand::Close { number } => action(&args.common, number, ChangeAction::Close, show),
        ChangesCommand::Schedule {
            number,
            not_before,
            template,
        } => with_client(&args.common, |c| async move {
            let v = c
                .schedule_change(
                    &number,
                    &ScheduleRequest {
                        not_before,
                        template,
                    },
                )
                .await?;
            show(v)
        }),
        ChangesCommand::Promote { number, ring } => with_client(&args.common, |c| async move {
            show(c.promote_change(&number, &ring).await?)
        }),
        ChangesCommand::Reject { number, reason } => with_client(&args.common, |c| async move {
            show(c.reject_change(&number, &reason).await?)
        }),
        ChangesCommand::Cancel { number, reason } => with_client(&args.common, |c| async move {
            show(c.cancel_change(&number, &reason).await?)
        }),
    }
}

fn action(
    common: &Common,
    number: String,
    what: ChangeAction,
    show: impl FnOnce(ChangeView) -> Result<(), Failure>,
) -> Result<(), Failure> {
    with_client(common, |c| async move {
        show(c.change_action(&number, what).await?)
    })
}

fn change_rows(items: &[ChangeView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| {
            vec![
                v.number.clone(),
                name(&v.kind),
                name(&v.state),
                name(&v.risk),
                v.requester.clone(),
                ts(Some(v.created_at)),
                ts(v.window_start),
                v.title.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "NUMBER",
            "KIND",
            "STATE",
            "RISK",
            "REQUESTER",
            "CREATED",
            "WINDOW",
            "TITLE",
        ],
        &rows,
    );
}

/// After an action: where the change stands now.
fn summary(v: &ChangeView) {
    let mut pairs = vec![
        ("number", v.number.clone()),
        ("state", name(&v.state)),
        ("title", v.title.clone()),
    ];
    if v.window_start.is_some() || v.window_end.is_some() {
        pairs.push(("window", span(v.window_start, v.window_end)));
    }
    if let Some(r) = &v.outcome_reason {
        pairs.push(("reason", r.clone()));
    }
    output::fields(&pairs);
    for w in &v.warnings {
        eprintln!("patchwarden: warning: {w}");
    }
}

fn testing_text(t: &Testing) -> String {
    match t {
        Testing::Required => "required".into(),
        Testing::NotRequired { reason } => format!("not required: {reason}"),
    }
}

fn patch_text(p: &Patch) -> String {
    match &p.ecosystem {
        Some(e) => format!("{}={}@{e}", p.package, p.version),
        None => format!("{}={}", p.package, p.version),
    }
}

fn check_text(c: &patchwarden_api::v1::manifest::HealthCheck) -> String {
    use patchwarden_api::v1::manifest::HealthCheck;
    match c {
        HealthCheck::ServiceActive { unit } => format!("service:{unit}"),
        HealthCheck::TcpConnect { port } => format!("tcp:{port}"),
        HealthCheck::HttpStatus { port, path, status } => format!("http:{port}{path}={status}"),
    }
}

fn hotfix_text(h: &Option<HotfixConditions>) -> String {
    let Some(h) = h else {
        return "-".into();
    };
    let mark = |b: bool| if b { "yes" } else { "NO" };
    format!(
        "specific issue {}, documentation reviewed {}, tested in a test environment {}, \
         greater risk not applying {}",
        mark(h.specific_issue),
        mark(h.documentation_reviewed),
        mark(h.tested_in_test_environment),
        mark(h.greater_risk_not_applying)
    )
}

fn plan_text(plan: &RolloutPlan) -> String {
    let mut text = format!(
        "test ring {}, soak {} min, at most {} failure(s) per ring",
        plan.test_ring, plan.soak_minutes, plan.max_failures
    );
    if let (Some(label), Some(n)) = (&plan.domain_label, plan.max_per_domain) {
        text.push_str(&format!(", at most {n} host(s) per {label} at once"));
    }
    if !plan.gates.is_empty() {
        text.push_str(&format!(", gated rings {}", plan.gates.join(",")));
    }
    text
}

/// The whole form, its signatures, warnings and the rollout per ring and host.
fn form(v: &ChangeView) {
    let plan = &v.rollout_plan;
    output::fields(&[
        ("number", v.number.clone()),
        ("title", v.title.clone()),
        ("kind", name(&v.kind)),
        ("state", name(&v.state)),
        ("requester", v.requester.clone()),
        ("created", ts(Some(v.created_at))),
        ("justification", or_dash(&v.justification)),
        ("risk", name(&v.risk)),
        ("priority", or_dash(&v.priority)),
        ("testing", testing_text(&v.testing)),
        ("rollback plan", or_dash(&v.rollback_plan)),
        ("hosts", list(v.targets.hosts.iter().map(Uuid::to_string))),
        ("groups", list(v.targets.groups.iter().cloned())),
        ("patches", list(v.patches.iter().map(patch_text))),
        ("restart order", list(v.restart_order.iter().cloned())),
        (
            "health checks",
            list(v.health_checks.iter().map(check_text)),
        ),
        (
            "reboot allowed",
            if v.reboot_allowed { "yes" } else { "no" }.into(),
        ),
        ("hotfix", hotfix_text(&v.hotfix)),
        ("rollout plan", plan_text(plan)),
        ("window", span(v.window_start, v.window_end)),
        ("outcome", opt(v.outcome_reason.as_ref())),
        ("halted", opt(v.halted.as_ref())),
        ("revision", v.revision.to_string()),
    ]);

    println!();
    let signed = |step: &str, s: &Option<Signed>| -> Vec<String> {
        match s {
            Some(s) => vec![step.to_owned(), s.by.clone(), ts(Some(s.at))],
            None => vec![step.to_owned(), "-".into(), "-".into()],
        }
    };
    output::table(
        &["SIGNATURE", "BY", "AT"],
        &[
            signed("submitted", &v.submitted),
            signed("approved", &v.approved),
            signed("authorised", &v.authorised),
            signed("tested", &v.tested),
            signed("closed", &v.closed),
        ]
        .into_iter()
        .chain(
            v.promoted
                .iter()
                .map(|(ring, s)| signed(&format!("promoted {ring}"), &Some(s.clone()))),
        )
        .collect::<Vec<_>>(),
    );

    if !v.warnings.is_empty() {
        println!();
        println!("warnings:");
        for w in &v.warnings {
            println!("  - {w}");
        }
    }

    if !v.rings.is_empty() {
        println!();
        let mut rows = Vec::new();
        for ring in &v.rings {
            let ring_name = if ring.test {
                format!("{} (test)", ring.name)
            } else {
                ring.name.clone()
            };
            let ring_cells = [
                ring_name,
                name(&ring.state),
                ts(ring.started_at),
                ts(ring.verified_at),
            ];
            if ring.hosts.is_empty() {
                let mut row = ring_cells.to_vec();
                row.extend(std::iter::repeat_n("-".to_owned(), 6));
                rows.push(row);
            }
            for h in &ring.hosts {
                let mut row = ring_cells.to_vec();
                let (job_state, outcome) = if h.nothing_to_do {
                    ("nothing to do".to_owned(), "-".to_owned())
                } else {
                    (
                        opt(h.job_state.as_ref().map(name)),
                        opt(h.outcome.as_ref().map(name)),
                    )
                };
                let rollback = match (h.rollback_job, h.rollback_state) {
                    (None, _) => "-".to_owned(),
                    (Some(_), Some(s)) => name(&s),
                    (Some(_), None) => "queued".to_owned(),
                };
                row.extend([
                    h.hostname.clone(),
                    opt(h.job),
                    job_state,
                    outcome,
                    rollback,
                    opt(h.detail.as_ref()),
                ]);
                rows.push(row);
            }
        }
        output::table(
            &[
                "RING",
                "RING STATE",
                "STARTED",
                "VERIFIED",
                "HOST",
                "JOB",
                "JOB STATE",
                "OUTCOME",
                "ROLLBACK",
                "DETAIL",
            ],
            &rows,
        );
    }
}

// ---- calendar

#[derive(Debug, Args)]
pub(crate) struct CalendarArgs {
    #[command(subcommand)]
    cmd: CalendarCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum CalendarCommand {
    /// Maintenance windows and freezes, with when each is next open.
    List,
    /// Create or replace a maintenance window.
    Window {
        name: String,
        /// The RFC 5545 recurrence rule (`FREQ=MONTHLY;BYDAY=2TU`).
        #[arg(long)]
        rrule: String,
        /// The first start, local time in --time-zone (`2026-01-13T20:00`).
        #[arg(long)]
        start: String,
        /// The IANA zone (`Europe/London`).
        #[arg(long)]
        time_zone: String,
        #[arg(long)]
        duration_minutes: u32,
        /// The host groups it is for (all hosts when left out); repeat or list several.
        #[arg(long = "group", value_name = "GROUP", num_args = 1..)]
        groups: Vec<String>,
    },
    /// Create or replace a change freeze: only emergencies touch hosts in [start, end).
    Freeze {
        name: String,
        /// RFC 3339 (`2026-12-20T00:00:00Z`).
        #[arg(long)]
        start: Timestamp,
        #[arg(long)]
        end: Timestamp,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Create or replace a schedule template: an anchor (`--rrule`, `--start`, `--time-zone`),
    /// the test ring `--test-after-hours` after it, the broad rings `--broad-after-test-days`
    /// after the test ring verified (seed 001: sync the second Tuesday, test the next day,
    /// broad a week later). `changes schedule --template NAME` follows it.
    Template {
        name: String,
        #[arg(long)]
        rrule: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        time_zone: String,
        #[arg(long)]
        test_after_hours: u32,
        #[arg(long)]
        broad_after_test_days: u32,
    },
    /// Remove a window, freeze or template.
    Delete { name: String },
}

pub(crate) fn run_calendar(args: CalendarArgs) -> anyhow::Result<ExitCode> {
    Ok(finish(calendar(args)))
}

fn calendar(args: CalendarArgs) -> Result<(), Failure> {
    let format = args.common.format;
    let put = |entry: String, spec: CalendarSpec| {
        with_client(&args.common, |c| async move {
            let v = c.put_calendar_entry(&entry, &spec).await?;
            if format == Format::Json {
                return output::json(&v);
            }
            calendar_rows(std::slice::from_ref(&v));
            Ok(())
        })
    };
    match args.cmd {
        CalendarCommand::List => with_client(&args.common, |c| async move {
            let list = c.calendar().await?;
            if format == Format::Json {
                return output::json(&list);
            }
            calendar_rows(&list);
            Ok(())
        }),
        CalendarCommand::Window {
            name,
            rrule,
            start,
            time_zone,
            duration_minutes,
            groups,
        } => put(
            name,
            CalendarSpec::Window(WindowSpec {
                rrule,
                start,
                time_zone,
                duration_minutes,
                groups,
            }),
        ),
        CalendarCommand::Freeze {
            name,
            start,
            end,
            reason,
        } => put(
            name,
            CalendarSpec::Freeze(FreezeSpec { start, end, reason }),
        ),
        CalendarCommand::Template {
            name,
            rrule,
            start,
            time_zone,
            test_after_hours,
            broad_after_test_days,
        } => put(
            name,
            CalendarSpec::Template(patchwarden_api::v1::changes::TemplateSpec {
                rrule,
                start,
                time_zone,
                test_after_hours,
                broad_after_test_days,
            }),
        ),
        CalendarCommand::Delete { name } => with_client(&args.common, |c| async move {
            c.delete_calendar_entry(&name).await?;
            if format == Format::Json {
                return output::json(&serde_json::json!({ "deleted": name }));
            }
            println!("deleted {name}");
            Ok(())
        }),
    }
}

fn calendar_rows(items: &[CalendarEntryView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e| {
            let (kind, detail) = match &e.spec {
                CalendarSpec::Window(w) => (
                    "window",
                    format!(
                        "{} from {} {}, {} min, groups {}",
                        w.rrule,
                        w.start,
                        w.time_zone,
                        w.duration_minutes,
                        if w.groups.is_empty() {
                            "all".to_owned()
                        } else {
                            w.groups.join(",")
                        }
                    ),
                ),
                CalendarSpec::Freeze(f) => ("freeze", or_dash(&f.reason)),
                CalendarSpec::Template(t) => (
                    "template",
                    format!(
                        "anchor {} from {} {}; test ring +{} h; broad rings {} d after",
                        t.rrule, t.start, t.time_zone, t.test_after_hours, t.broad_after_test_days
                    ),
                ),
            };
            let next = e
                .next
                .first()
                .map_or_else(|| "-".to_owned(), |(s, t)| span(Some(*s), Some(*t)));
            vec![
                e.name.clone(),
                kind.to_owned(),
                next,
                detail,
                ts(Some(e.updated_at)),
            ]
        })
        .collect();
    output::table(&["NAME", "KIND", "NEXT", "DETAIL", "UPDATED"], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use patchwarden_api::v1::manifest::HealthCheck;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(Debug, Subcommand)]
    enum Top {
        Changes(ChangesArgs),
        Calendar(CalendarArgs),
    }

    fn parse(args: &[&str]) -> Result<Top, clap::Error> {
        Cli::try_parse_from(std::iter::once("patchwarden").chain(args.iter().copied()))
            .map(|c| c.cmd)
    }

    fn create(args: &[&str]) -> Result<NewChangeRequest, String> {
        let mut all = vec!["changes", "create"];
        all.extend(args);
        match parse(&all).map_err(|e| e.to_string())? {
            Top::Changes(ChangesArgs {
                cmd: ChangesCommand::Create(c),
                ..
            }) => (*c).request().map_err(|f| f.message),
            other => panic!("parsed as {other:?}"),
        }
    }

    const FORM: [&str; 10] = [
        "--kind",
        "normal",
        "--title",
        "OpenSSL",
        "--justification",
        "CVE-2024-5535",
        "--risk",
        "medium",
        "--rollback-plan",
        "apt install the previous version",
    ];

    fn with_form(extra: &[&str]) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = FORM.to_vec();
        for e in extra {
            v.push(Box::leak(e.to_string().into_boxed_str()));
        }
        v
    }

    #[test]
    fn patches_parse_with_and_without_an_ecosystem() {
        assert_eq!(
            parse_patch("openssl=3.0.15-1~deb12u1@Debian:12").unwrap(),
            Patch {
                package: "openssl".into(),
                version: "3.0.15-1~deb12u1".into(),
                ecosystem: Some("Debian:12".into()),
            }
        );
        assert_eq!(
            parse_patch("bash=1:5.2.15-2+b7").unwrap(),
            Patch {
                package: "bash".into(),
                version: "1:5.2.15-2+b7".into(),
                ecosystem: None,
            }
        );
        // npm's scoped names keep their @; the ecosystem is after the last one.
        assert_eq!(
            parse_patch("@scope/pkg=1.2.3@npm").unwrap(),
            Patch {
                package: "@scope/pkg".into(),
                version: "1.2.3".into(),
                ecosystem: Some("npm".into()),
            }
        );
        for bad in [
            "openssl",
            "=1.0",
            "openssl=",
            "openssl=1.0@",
            "openssl=@Debian:12",
        ] {
            assert!(parse_patch(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn health_checks_parse() {
        assert_eq!(
            parse_health_check("service:nginx.service").unwrap(),
            HealthCheck::ServiceActive {
                unit: "nginx.service".into()
            }
        );
        assert_eq!(
            parse_health_check("tcp:443").unwrap(),
            HealthCheck::TcpConnect { port: 443 }
        );
        assert_eq!(
            parse_health_check("http:8080/healthz=200").unwrap(),
            HealthCheck::HttpStatus {
                port: 8080,
                path: "/healthz".into(),
                status: 200
            }
        );
        for bad in [
            "service:",
            "tcp:http",
            "http:8080=200",
            "http:80/x=ok",
            "ping:1",
        ] {
            assert!(parse_health_check(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn create_sends_the_form_the_flags_describe() {
        let host = "0b6c8a52-3a4e-4d8e-9a57-1f2c3d4e5f60";
        let request = create(&with_form(&[
            "--priority",
            "P2, security",
            "--no-testing",
            "vendor-tested hotfix",
            "--host",
            host,
            "--group",
            "web",
            "db",
            "--patch",
            "openssl=3.0.15-1~deb12u1@Debian:12",
            "--patch",
            "libssl3=3.0.15-1~deb12u1",
            "--from-finding",
            "CVE-2024-5535",
            "--min-criticality",
            "high",
            "--min-age-days",
            "7",
            "--updates",
            "security",
            "bugfix",
            "--restart",
            "nginx.service",
            "--restart",
            "php-fpm.service",
            "--health-check",
            "http:80/=200",
            "--reboot-allowed",
            "--hotfix",
            "specific-issue,documentation-reviewed",
            "--test-ring",
            "canary",
            "--soak-minutes",
            "30",
            "--max-failures",
            "1",
            "--domain-label",
            "rack",
            "--max-per-domain",
            "2",
            "--gate",
            "broad",
        ]))
        .unwrap();
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "normal",
                "title": "OpenSSL",
                "justification": "CVE-2024-5535",
                "risk": "medium",
                "priority": "P2, security",
                "testing": {"required": "not_required", "reason": "vendor-tested hotfix"},
                "rollback_plan": "apt install the previous version",
                "targets": {"hosts": [host], "groups": ["web", "db"]},
                "patches": [
                    {"package": "openssl", "version": "3.0.15-1~deb12u1", "ecosystem": "Debian:12"},
                    {"package": "libssl3", "version": "3.0.15-1~deb12u1"}
                ],
                "from_findings": ["CVE-2024-5535"],
                "baseline": {"min_criticality": "high", "min_age_days": 7, "update_kinds": ["security", "bugfix"]},
                "restart_order": ["nginx.service", "php-fpm.service"],
                "health_checks": [{"check": "http_status", "port": 80, "path": "/", "status": 200}],
                "reboot_allowed": true,
                "hotfix": {
                    "specific_issue": true,
                    "documentation_reviewed": true,
                    "tested_in_test_environment": false,
                    "greater_risk_not_applying": false
                },
                "rollout": {
                    "test_ring": "canary",
                    "soak_minutes": 30,
                    "max_failures": 1,
                    "domain_label": "rack",
                    "max_per_domain": 2,
                    "gates": ["broad"]
                }
            })
        );
        // What is sent is what the server reads.
        let back: NewChangeRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn create_defaults_to_testing_and_the_default_rollout() {
        let request = create(&with_form(&["--group", "web"])).unwrap();
        assert_eq!(request.testing, Testing::Required);
        assert_eq!(request.rollout, RolloutPlan::default());
        assert_eq!(request.hotfix, None);
        assert!(request.patches.is_empty());
        assert_eq!(request.priority, "");
        let explicit = create(&with_form(&["--group", "web", "--testing-required"])).unwrap();
        assert_eq!(explicit, request);
    }

    #[test]
    fn create_refuses_bad_or_missing_flags() {
        // The form's required fields.
        assert!(create(&["--kind", "normal", "--group", "web"]).is_err());
        // Both testing answers.
        assert!(create(&with_form(&["--testing-required", "--no-testing", "x"])).is_err());
        // Unknown kind, risk, a bad patch, a host that is not an id.
        assert!(create(&with_form(&["--patch", "openssl"])).is_err());
        // A failure domain needs both its label and its limit.
        assert!(create(&with_form(&["--domain-label", "rack"])).is_err());
        assert!(create(&with_form(&["--host", "web01"])).is_err());
        let mut bad_kind = with_form(&[]);
        bad_kind[1] = "urgent";
        assert!(create(&bad_kind).is_err());
        // The file replaces the flags: not both.
        assert!(create(&["--file", "x.json", "--title", "t"]).is_err());
    }

    #[test]
    fn create_reads_a_request_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("change.json");
        let body = serde_json::json!({
            "kind": "emergency",
            "title": "t",
            "justification": "j",
            "risk": "high",
            "testing": {"required": "required"},
            "rollback_plan": "r",
            "targets": {"groups": ["web"]}
        });
        std::fs::write(&path, body.to_string()).unwrap();
        let request = create(&["--file", path.to_str().unwrap()]).unwrap();
        assert_eq!(request.kind, ChangeKind::Emergency);
        assert_eq!(request.targets.groups, ["web"]);
        std::fs::write(&path, r#"{"title": "t"}"#).unwrap();
        let e = create(&["--file", path.to_str().unwrap()]).unwrap_err();
        assert!(e.contains("not a change request"), "{e}");
    }

    #[test]
    fn actions_and_calendar_parse() {
        assert!(matches!(
            parse(&[
                "changes",
                "list",
                "--state",
                "rolled_back",
                "--requester",
                "ann"
            ])
            .unwrap(),
            Top::Changes(ChangesArgs {
                cmd: ChangesCommand::List { .. },
                ..
            })
        ));
        assert!(parse(&["changes", "list", "--state", "pending"]).is_err());
        assert!(parse(&["changes", "reject", "PCR-2026-0001"]).is_err());
        match parse(&[
            "changes",
            "schedule",
            "PCR-2026-0001",
            "--not-before",
            "2026-12-01T00:00:00Z",
        ])
        .unwrap()
        {
            Top::Changes(ChangesArgs {
                cmd:
                    ChangesCommand::Schedule {
                        number, not_before, ..
                    },
                ..
            }) => {
                assert_eq!(number, "PCR-2026-0001");
                assert_eq!(not_before, Some("2026-12-01T00:00:00Z".parse().unwrap()));
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "calendar",
            "window",
            "patch-tuesday",
            "--rrule",
            "FREQ=MONTHLY;BYDAY=2TU",
            "--start",
            "2026-01-13T20:00",
            "--time-zone",
            "Europe/London",
            "--duration-minutes",
            "240",
            "--group",
            "web",
            "--format",
            "json",
        ])
        .unwrap()
        {
            Top::Calendar(CalendarArgs {
                cmd:
                    CalendarCommand::Window {
                        name,
                        duration_minutes,
                        groups,
                        ..
                    },
                common,
            }) => {
                assert_eq!(name, "patch-tuesday");
                assert_eq!(duration_minutes, 240);
                assert_eq!(groups, ["web"]);
                assert_eq!(common.format, Format::Json);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse(&[
                "calendar", "freeze", "xmas", "--start", "soon", "--end", "later"
            ])
            .is_err()
        );
    }
}
