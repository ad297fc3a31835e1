//! `patchwarden exceptions list|show|request|acknowledge|approve|reject|revoke`: exceptions
//! (risk acceptance) over the operator API, with tables for people and the API's JSON for
//! scripts (docs/cli.md).

use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::exceptions::{
    ExceptionFinding, ExceptionQuery, ExceptionStateName, ExceptionView, NewExceptionRequest,
};
use patchwarden_core::exception::{Control, ControlKind, Justification};
use uuid::Uuid;

use crate::ops_cmd::{Common, with_client};
use crate::output::{self, EXIT_ERROR, EXIT_NOT_FOUND, Failure, Format, name, opt};

#[derive(Debug, Args)]
pub(crate) struct ExceptionsArgs {
    #[command(subcommand)]
    cmd: ExceptionsCommand,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StateArg {
    Requested,
    Approved,
    Rejected,
    Revoked,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum JustificationArg {
    NoVendorPatch,
    PatchCausesInstability,
    Other,
}

#[derive(Debug, Subcommand)]
enum ExceptionsCommand {
    /// Exceptions, by number.
    List {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only those naming this host (its id).
        #[arg(long)]
        host: Option<String>,
    },
    /// One exception, by number (`EXC-2026-0001`) or id.
    Show { exception: String },
    /// Request an exception for findings and/or whole hosts; you are its requester.
    Request {
        #[arg(long, value_enum)]
        justification: JustificationArg,
        /// Why, in words.
        #[arg(long)]
        explanation: String,
        /// A compensating control, KIND:DESCRIPTION (KIND: network-segmentation,
        /// access-control-list, intrusion-prevention, other); repeat for several.
        #[arg(long = "control", required = true)]
        controls: Vec<String>,
        /// A finding it covers, HOST:ADVISORY:PACKAGE (the host's id, a CVE or advisory id, the
        /// package); repeat for several.
        #[arg(long = "finding")]
        findings: Vec<String>,
        /// A host all of whose findings it covers (its id); repeat for several.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// The system transmits or stores protected data (its data owner acknowledges first).
        #[arg(long)]
        protected_data: bool,
        /// When it expires (RFC 3339) …
        #[arg(long, conflicts_with = "days")]
        expires: Option<Timestamp>,
        /// … or in how many days.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Acknowledge an exception as the data owner.
    Acknowledge { exception: String },
    /// Approve an exception (not your own).
    Approve { exception: String },
    /// Reject an exception, with why.
    Reject {
        exception: String,
        #[arg(long)]
        reason: String,
    },
    /// Revoke an approved exception before its expiry, with why.
    Revoke {
        exception: String,
        #[arg(long)]
        reason: String,
    },
}

fn uuid(what: &str, s: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(s)
        .map_err(|_| Failure::new(EXIT_NOT_FOUND, format!("{what} {s}: not an id (a UUID)")))
}

fn control(s: &str) -> Result<Control, Failure> {
    let (kind, description) = s
        .split_once(':')
        .ok_or_else(|| Failure::new(EXIT_ERROR, format!("--control {s:?}: KIND:DESCRIPTION")))?;
    let kind = match kind.trim() {
        "network-segmentation" => ControlKind::NetworkSegmentation,
        "access-control-list" => ControlKind::AccessControlList,
        "intrusion-prevention" => ControlKind::IntrusionPrevention,
        "other" => ControlKind::Other,
        k => {
            return Err(Failure::new(
                EXIT_ERROR,
                format!(
                    "--control kind {k:?}: network-segmentation, access-control-list, \
                     intrusion-prevention or other"
                ),
            ));
        }
    };
    Ok(Control {
        kind,
        description: description.trim().to_owned(),
    })
}

fn finding(s: &str) -> Result<ExceptionFinding, Failure> {
    let mut parts = s.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(a), Some(p)) => Ok(ExceptionFinding {
            host: uuid("host", h)?,
            advisory: a.to_owned(),
            package: p.to_owned(),
        }),
        _ => Err(Failure::new(
            EXIT_ERROR,
            format!("--finding {s:?}: HOST:ADVISORY:PACKAGE"),
        )),
    }
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

fn table(items: &[ExceptionView]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e| {
            vec![
                e.number.clone(),
                e.state.as_str().to_owned()
                    + if e.in_force {
                        " (in force)"
                    } else if e.expired {
                        " (expired)"
                    } else {
                        ""
                    },
                name(&e.exception.request.justification),
                e.requester.clone(),
                opt(e.decided_by.as_ref()),
                day(e.expires_at),
                (e.findings.len() + e.hosts.len()).to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "NUMBER",
            "STATE",
            "JUSTIFICATION",
            "REQUESTER",
            "DECIDED BY",
            "EXPIRES",
            "SCOPE",
        ],
        &rows,
    );
}

fn show(e: &ExceptionView, format: Format) -> Result<(), Failure> {
    if format == Format::Json {
        return output::json(e);
    }
    let r = &e.exception.request;
    let mut pairs = vec![
        ("number", e.number.clone()),
        ("id", e.id.to_string()),
        ("state", e.state.as_str().to_owned()),
        ("in force", e.in_force.to_string()),
        ("justification", name(&r.justification)),
        ("explanation", r.explanation.clone()),
        ("requester", e.requester.clone()),
        ("requested", day(r.requested_at)),
        ("expires", day(e.expires_at)),
        ("review due", day(e.review_due)),
        ("protected data", r.protected_data.to_string()),
        (
            "data owner",
            opt(e.exception.data_owner_ack.as_ref().map(|(w, _)| w)),
        ),
        ("decided by", opt(e.decided_by.as_ref())),
    ];
    for c in &r.controls {
        pairs.push(("control", format!("{}: {}", name(&c.kind), c.description)));
    }
    for f in &e.findings {
        pairs.push((
            "finding",
            format!("{} {} {}", f.host, f.advisory, f.package),
        ));
    }
    for h in &e.hosts {
        pairs.push(("host", h.to_string()));
    }
    output::fields(&pairs);
    Ok(())
}

pub(crate) fn run(args: ExceptionsArgs) -> Result<(), Failure> {
    let format = args.common.format;
    match args.cmd {
        ExceptionsCommand::List { state, host } => {
            let host = host.map(|h| uuid("host", &h)).transpose()?;
            let state = state.map(|s| match s {
                StateArg::Requested => ExceptionStateName::Requested,
                StateArg::Approved => ExceptionStateName::Approved,
                StateArg::Rejected => ExceptionStateName::Rejected,
                StateArg::Revoked => ExceptionStateName::Revoked,
            });
            with_client(&args.common, |c| async move {
                let list = c.exceptions(&ExceptionQuery { state, host }).await?;
                if format == Format::Json {
                    return output::json(&list);
                }
                table(&list.items);
                Ok(())
            })
        }
        ExceptionsCommand::Show { exception } => with_client(&args.common, |c| async move {
            show(&c.exception(&exception).await?, format)
        }),
        ExceptionsCommand::Request {
            justification,
            explanation,
            controls,
            findings,
            hosts,
            protected_data,
            expires,
            days,
        } => {
            let controls = controls
                .iter()
                .map(|s| control(s))
                .collect::<Result<Vec<_>, _>>()?;
            let findings = findings
                .iter()
                .map(|s| finding(s))
                .collect::<Result<Vec<_>, _>>()?;
            let hosts = hosts
                .iter()
                .map(|h| uuid("host", h))
                .collect::<Result<Vec<_>, _>>()?;
            let expires_at = match (expires, days) {
                (Some(t), _) => t,
                (None, Some(d)) => {
                    // The operator's own clock: the server judges the term against its own.
                    #[allow(clippy::disallowed_methods)]
                    let now = Timestamp::now();
                    now + SignedDuration::from_hours(24 * i64::from(d))
                }
                (None, None) => {
                    return Err(Failure::new(
                        EXIT_ERROR,
                        "say when it expires: --expires or --days",
                    ));
                }
            };
            let request = NewExceptionRequest {
                justification: match justification {
                    JustificationArg::NoVendorPatch => Justification::NoVendorPatch,
                    JustificationArg::PatchCausesInstability => {
                        Justification::PatchCausesInstability
                    }
                    JustificationArg::Other => Justification::Other,
                },
                explanation,
                controls,
                protected_data,
                expires_at,
                findings,
                hosts,
            };
            with_client(&args.common, |c| async move {
                let e = c.request_exception(&request).await?;
                if format == Format::Table {
                    eprintln!("requested {}: it needs approval by someone else", e.number);
                }
                show(&e, format)
            })
        }
        ExceptionsCommand::Acknowledge { exception } => with_client(&args.common, |c| async move {
            show(&c.acknowledge_exception(&exception).await?, format)
        }),
        ExceptionsCommand::Approve { exception } => with_client(&args.common, |c| async move {
            show(&c.approve_exception(&exception).await?, format)
        }),
        ExceptionsCommand::Reject { exception, reason } => {
            with_client(&args.common, |c| async move {
                show(&c.reject_exception(&exception, &reason).await?, format)
            })
        }
        ExceptionsCommand::Revoke { exception, reason } => {
            with_client(&args.common, |c| async move {
                show(&c.revoke_exception(&exception, &reason).await?, format)
            })
        }
    }
}
