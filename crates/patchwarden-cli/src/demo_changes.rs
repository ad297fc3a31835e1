//! The demo's people, calendar and changes, made through the real operator API and the real
//! agent protocol, so the web UI, the status page and the monthly report have something true
//! to show:
//!
//! - a team (officer, approver, authoriser, security officer) who log in with one demo
//!   password, kept in `DIR/demo-users.json` (0600) and printed;
//! - weekly maintenance windows per host group, and the coming year-end change freeze;
//! - **history**: about a month ago, in the Debian group's Tuesday window, the officer raised
//!   a change for SOGo's security update (CVE-2025-53603) on the Debian application hosts;
//!   an approver and an authoriser signed it, the rollout engine ran the test ring then the
//!   broad ring, and the hosts' agents — simulated ones, like the rest of the demo fleet —
//!   installed the fixed version, reported it and uploaded their new inventories, which
//!   closed the findings; the officer recorded the testing and closed the change;
//! - **now**: a change authorised and scheduled into the AlmaLinux group's next window
//!   (announced on the status page), one submitted and waiting for an approver, and a draft.
//!
//! Everything goes through the server's rules: the four eyes, the windows, the rings. The
//! simulated agents report what a real agent's executor would have done; they install
//! nothing (there is nothing to install on a simulated host).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use jiff::civil::Weekday;
use jiff::{SignedDuration, Timestamp, ToSpan};
use patchwarden_api::v1::agent::{
    CHECK_IN_PATH, CheckInRequest, CheckInResponse, INVENTORY_PATH, InventoryAccepted,
    InventoryUpload, InventoryWanted,
};
use patchwarden_api::v1::jobs::{JOBS_PATH, JobKind, JobOutcome, JobResult, PackageChange};
use patchwarden_client::{AgentClient, gzip};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_core::inventory::Inventory;
use patchwarden_server::clock;
use patchwarden_store::{NewUser, Role, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::demo_exceptions::{APPROVER, REQUESTER};

/// The demo's team: user name and role. The approver and the security officer are the
/// people the demo's exceptions name.
pub(crate) const TEAM: [(&str, Role); 4] = [
    ("olivia.officer", Role::Officer),
    (APPROVER, Role::Approver),
    ("dana.authoriser", Role::Authoriser),
    (REQUESTER, Role::Security),
];
const OFFICER: &str = "olivia.officer";
const AUTHORISER: &str = "dana.authoriser";

/// What the demo keeps of its team: the one password they share.
#[derive(Serialize, Deserialize)]
pub(crate) struct Team {
    pub password: String,
}

/// A simulated host whose agent identity the demo keeps, to carry out a change's jobs.
pub(crate) struct DemoAgent {
    pub hostname: String,
    pub agent: AgentClient,
    pub inventory: Inventory,
    pub ring: &'static str,
    pub seq: u64,
}

/// The team: made on the first call (users with the demo password, no one-time password:
/// this is a demo), read back from `DIR/demo-users.json` afterwards.
pub(crate) async fn team(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Team> {
    let path = data_dir.join("demo-users.json");
    let team = if path.exists() {
        let bytes = patchwarden_feeds::load::read_file(&path, 64 * 1024)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not the demo's team", path.display()))?
    } else {
        let team = Team {
            password: patchwarden_server::secrets::new_secret("team-")?,
        };
        crate::demo_cmd::write_private(&path, &serde_json::to_vec_pretty(&team)?)?;
        team
    };
    let password = team.password.clone();
    let hash =
        tokio::task::spawn_blocking(move || patchwarden_server::secrets::hash_password(&password))
            .await??;
    for (name, role) in TEAM {
        if store.find_user(name).await?.is_some() {
            continue;
        }
        let now = clock::now();
        store
            .create_user(
                NewUser {
                    id: uuid::Uuid::new_v4(),
                    username: name.into(),
                    password_hash: hash.clone(),
                    roles: [role].into(),
                    groups: Default::default(),
                    must_change_password: false,
                    created_by: "local:demo".into(),
                },
                now,
                AuditEntry::new(
                    now,
                    Actor::Operator("local:demo".into()),
                    "user.create",
                    format!("user:{name}"),
                )
                .after(json!({"username": name, "roles": [role.as_str()]})),
            )
            .await?;
    }
    Ok(team)
}

/// A logged-in member of the team, calling the operator API.
struct Api {
    http: reqwest::Client,
    url: String,
    who: &'static str,
    cookie: String,
    csrf: String,
}

impl Api {
    async fn login(url: &str, who: &'static str, team: &Team) -> anyhow::Result<Api> {
        let http = crate::demo_cmd::http()?;
        let (cookie, csrf) = crate::demo_cmd::login_as(&http, url, who, &team.password).await?;
        Ok(Api {
            http,
            url: url.to_owned(),
            who,
            cookie,
            csrf,
        })
    }

    /// Calls `method path` with a JSON body; the answer's JSON, or an error with the
    /// server's words.
    async fn call(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body)?)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "{} {method} {path}: {status}: {}",
                self.who,
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn act(&self, number: &str, action: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            &format!("/api/v1/changes/{number}/{action}"),
            json!({}),
        )
        .await
    }
}

/// Sets the server's clock (while seeding) to `t`, in the past.
pub(crate) fn set_clock_to(t: Timestamp) {
    clock::set_seeding_offset(SignedDuration::ZERO);
    let real = clock::now();
    clock::set_seeding_offset(real.duration_since(t));
}

/// The Tuesday at 22:30 UTC that lies 28 to 36 days before `now`: inside the
/// Debian group's weekly window, between the fleet's cohorts of 40 and 26 days.
pub(crate) fn history_time(now: Timestamp) -> Timestamp {
    let day = (now - SignedDuration::from_hours(29 * 24))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let back = i64::from(day.weekday().since(Weekday::Tuesday));
    let tuesday = day.checked_sub(back.days()).unwrap_or(day).at(22, 30, 0, 0);
    tuesday
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(now)
}

/// The weekly windows, each group on its own evening, from a Tuesday long before the demo's
/// history.
async fn calendar(officer: &Api, history: Timestamp) -> anyhow::Result<()> {
    let first_tuesday = (history - SignedDuration::from_hours(16 * 7 * 24))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    for (name, group, days, byday) in [
        ("debian-weekly", "debian", 0, "TU"),
        ("alma-weekly", "alma", 1, "WE"),
        ("alpine-weekly", "alpine", 2, "TH"),
    ] {
        let start = first_tuesday.checked_add((days as i64).days())?;
        officer
            .call(
                "PUT",
                &format!("/api/v1/calendar/{name}"),
                json!({
                    "kind": "window",
                    "rrule": format!("FREQ=WEEKLY;BYDAY={byday}"),
                    "start": format!("{start}T22:00"),
                    "time_zone": "UTC",
                    "duration_minutes": 240,
                    "groups": [group],
                }),
            )
            .await?;
    }
    Ok(())
}

/// One check-in of a simulated agent at the server's clock: uploads the inventory when the
/// server asks, carries out the install jobs leased to it, and returns how many it ran.
async fn check_in(a: &mut DemoAgent) -> anyhow::Result<usize> {
    a.seq += 1;
    let host = a.agent.host_id().to_owned();
    let request = CheckInRequest {
        seq: a.seq,
        facts: a.inventory.host.clone(),
        packages: a.inventory.packages_digest(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let answer: CheckInResponse = a
        .agent
        .send_raw(
            "POST",
            CHECK_IN_PATH,
            serde_json::to_vec(&request)?,
            None,
            &crate::demo_cmd::signing(Some(&host)),
        )
        .await?
        .json("check-in answer")?;
    if answer.inventory != InventoryWanted::Nothing {
        let upload = InventoryUpload::Full {
            inventory: a.inventory.clone(),
        };
        let _: InventoryAccepted = a
            .agent
            .send_raw(
                "POST",
                INVENTORY_PATH,
                gzip(&serde_json::to_vec(&upload)?)?,
                Some("gzip"),
                &crate::demo_cmd::signing(Some(&host)),
            )
            .await?
            .json("inventory answer")?;
    }
    let mut ran = 0;
    for job in answer.jobs.iter().filter(|j| !j.state.is_final()) {
        let JobKind::Install { packages, .. } = &job.work else {
            continue;
        };
        let mut changes = Vec::new();
        for pin in packages {
            for p in a
                .inventory
                .packages
                .iter_mut()
                .filter(|p| p.name == pin.name)
            {
                changes.push(PackageChange {
                    name: p.name.clone(),
                    arch: p.arch.clone(),
                    from: Some(p.version.clone()),
                    to: Some(pin.version.clone()),
                });
                p.version = pin.version.clone();
                if p.source_version.is_some() {
                    p.source_version = Some(pin.version.clone());
                }
            }
        }
        a.inventory.canonicalize();
        let mut result = JobResult::new(
            JobOutcome::Succeeded,
            "installed (simulated demo host: the versions it reports are the job's)",
        );
        result.changes = changes;
        a.agent
            .send_raw(
                "POST",
                &format!("{JOBS_PATH}/{}/result", job.id),
                serde_json::to_vec(&result)?,
                None,
                &crate::demo_cmd::signing(Some(&host)),
            )
            .await?
            .ok()?;
        ran += 1;
    }
    Ok(ran)
}

/// The SOGo change of a month ago, from request to close (see the module documentation).
/// Does nothing when the store already holds a change (a second start).
pub(crate) async fn history(
    url: &str,
    store: &dyn Store,
    team: &Team,
    agents: &mut [DemoAgent],
    vulnerable: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if !store.list_changes(&Default::default()).await?.is_empty() {
        return Ok(());
    }
    // The steps happen at the hours people work: requested on Monday morning, approved that
    // afternoon, authorised on Tuesday, rolled out in Tuesday's window, closed on Wednesday.
    let window = clock::now();
    let at = |hours_from_window: f64| {
        set_clock_to(window + SignedDuration::from_secs_f64(hours_from_window * 3600.0));
    };
    at(-37.3);
    let officer = Api::login(url, OFFICER, team).await?;
    calendar(&officer, window).await?;
    // The hosts still on SOGo's release version, the test ring among them.
    let targets: Vec<&DemoAgent> = agents
        .iter()
        .filter(|a| {
            a.inventory.packages.iter().any(|p| {
                vulnerable
                    .get(&p.name)
                    .is_some_and(|fixed| *fixed != p.version)
            })
        })
        .collect();
    if !targets.iter().any(|a| a.ring == "test") || targets.len() < 2 {
        eprintln!("demo: too few Debian application hosts behind on SOGo for the change history");
        return Ok(());
    }
    let patches: Vec<Value> = vulnerable
        .iter()
        .map(|(name, fixed)| json!({"package": name, "version": fixed, "ecosystem": "Debian:12"}))
        .collect();
    let created = officer
        .call(
            "POST",
            "/api/v1/changes",
            json!({
                "kind": "normal",
                "title": "SOGo security update (CVE-2025-53603)",
                "justification": "DSA for SOGo's sope libraries: a crafted request crashes the \
                                  groupware service for every user; the fix is in bookworm's \
                                  security update 5.8.0-1+deb12u1.",
                "risk": "medium",
                "priority": "High: security update for a service every user depends on",
                "testing": {"required": "required"},
                "rollback_plan": "Reinstall sope 5.8.0-1 from the agents' rollback cache; \
                                  restart sogo.",
                "targets": {"hosts": targets.iter().map(|a| a.agent.host_id()).collect::<Vec<_>>()},
                "patches": patches,
                "restart_order": ["sogo.service"],
            }),
        )
        .await?;
    let number = created["number"]
        .as_str()
        .context("the change answer has no number")?
        .to_owned();
    officer.act(&number, "submit").await?;
    at(-32.4);
    Api::login(url, APPROVER, team)
        .await?
        .act(&number, "approve")
        .await?;
    at(-11.8);
    Api::login(url, AUTHORISER, team)
        .await?
        .act(&number, "authorise")
        .await?;
    at(0.0);
    let officer = Api::login(url, OFFICER, team).await?;
    officer.act(&number, "schedule").await?;
    // The agents check in until every host verified; the engine starts each ring when the
    // one before it verified.
    let mut state = String::new();
    for _ in 0..200 {
        for a in agents.iter_mut() {
            check_in(a)
                .await
                .with_context(|| format!("simulated host {}", a.hostname))?;
        }
        let view = officer
            .call("GET", &format!("/api/v1/changes/{number}"), Value::Null)
            .await?;
        state = view["state"].as_str().unwrap_or_default().to_owned();
        if matches!(state.as_str(), "verified" | "failed" | "rolled_back") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if state != "verified" {
        bail!("the demo's SOGo change stopped as {state:?} instead of verified");
    }
    // Every host reports its new inventory, which closes the findings.
    for a in agents.iter_mut() {
        check_in(a)
            .await
            .with_context(|| format!("simulated host {}", a.hostname))?;
    }
    at(10.75);
    let officer = Api::login(url, OFFICER, team).await?;
    officer.act(&number, "close").await?;
    eprintln!("demo: change {number} (SOGo security update) rolled out a month ago and closed");
    Ok(())
}

/// The changes of today: one scheduled into the AlmaLinux group's next window, one waiting
/// for an approver, a draft; and the year-end freeze. Once per data directory.
pub(crate) async fn present(url: &str, data_dir: &Path, team: &Team) -> anyhow::Result<()> {
    let marker = data_dir.join("demo-changes");
    if marker.exists() {
        return Ok(());
    }
    let officer = Api::login(url, OFFICER, team).await?;
    let security = Api::login(url, REQUESTER, team).await?;
    let approver = Api::login(url, APPROVER, team).await?;
    let authoriser = Api::login(url, AUTHORISER, team).await?;
    let now = clock::now();
    let year = now.to_zoned(jiff::tz::TimeZone::UTC).year();
    // The next year-end freeze (or the one in force).
    let freeze_start = |y: i16| format!("{y}-12-20T00:00:00Z");
    let end_of = |y: i16| format!("{}-01-04T00:00:00Z", y + 1);
    let y = if end_of(year).parse::<Timestamp>().is_ok_and(|e| e > now) {
        year
    } else {
        year + 1
    };
    officer
        .call(
            "PUT",
            "/api/v1/calendar/year-end-freeze",
            json!({
                "kind": "freeze",
                "start": freeze_start(y),
                "end": end_of(y),
                "reason": "Year-end close: finance and payroll run; emergencies only",
            }),
        )
        .await?;
    let change = |title: &str, justification: &str, group: &str, min: &str| {
        json!({
            "kind": "normal",
            "title": title,
            "justification": justification,
            "risk": "medium",
            "priority": "Per the patch policy's deadline for the findings' class",
            "testing": {"required": "required"},
            "rollback_plan": "Reinstall the previous versions from the agents' rollback cache.",
            "targets": {"groups": [group]},
            "baseline": {"min_criticality": min},
        })
    };
    let scheduled = officer
        .call(
            "POST",
            "/api/v1/changes",
            change(
                "AlmaLinux security updates (High and above)",
                "The AlmaLinux hosts' High and Emergency findings, due within the policy's 30 \
                 days.",
                "alma",
                "high",
            ),
        )
        .await;
    let scheduled = match scheduled {
        Ok(v) => v,
        // A fleet without such findings (a tiny --fleet) has nothing to change.
        Err(e) => {
            eprintln!("demo: no AlmaLinux change today: {e}");
            crate::demo_cmd::write_private(&marker, b"the demo's changes of today are made\n")?;
            return Ok(());
        }
    };
    let number = scheduled["number"].as_str().unwrap_or_default().to_owned();
    officer.act(&number, "submit").await?;
    approver.act(&number, "approve").await?;
    authoriser.act(&number, "authorise").await?;
    officer.act(&number, "schedule").await?;
    if let Ok(waiting) = security
        .call(
            "POST",
            "/api/v1/changes",
            change(
                "Alpine security updates (Medium and above)",
                "The Alpine hosts' open findings of Medium and above, before their due dates.",
                "alpine",
                "medium",
            ),
        )
        .await
    {
        let n = waiting["number"].as_str().unwrap_or_default().to_owned();
        security.act(&n, "submit").await?;
    }
    let _ = officer
        .call(
            "POST",
            "/api/v1/changes",
            change(
                "Debian low-severity updates",
                "Low findings on the Debian hosts, batched for the quarter.",
                "debian",
                "low",
            ),
        )
        .await;
    crate::demo_cmd::write_private(&marker, b"the demo's changes of today are made\n")?;
    eprintln!("demo: changes of today made ({number} scheduled for the AlmaLinux window)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_falls_on_a_tuesday_evening_a_month_back() {
        for now in [
            "2026-11-27T04:00:00Z",
            "2026-11-24T23:00:00Z",
            "2027-03-01T12:00:00Z",
        ] {
            let now: Timestamp = now.parse().unwrap();
            let t = history_time(now);
            let z = t.to_zoned(jiff::tz::TimeZone::UTC);
            assert_eq!(z.weekday(), Weekday::Tuesday, "{now}");
            assert_eq!((z.hour(), z.minute()), (22, 30));
            let days = now.duration_since(t).as_hours() / 24;
            assert!((28..=36).contains(&days), "{now}: {days} days back");
        }
    }
}
