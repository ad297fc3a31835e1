//! `patchwarden report …` end to end: the real binary against a real server
//! (`patchwarden-testkit`: TLS with a pinned CA, SQLite), an officer logged in through the CLI.
//! A change is submitted, approved and authorised through the CLI; its patch control form comes
//! back as a PDF poppler reads and as HTML; this month's report as CSV (read back by Python's
//! `csv` module), HTML and PDF; a bad month and an unknown change are refused with their
//! reasons and exit codes, and leave no file behind.

mod cli_support;

use std::process::Command;

use cli_support::{Cli, PASSWORD, user};
use patchwarden_core::report::{APPENDIX_B_COLUMNS, Month};
use patchwarden_store::Role;
use patchwarden_testkit::TestServer;

fn pdftotext(path: &std::path::Path) -> String {
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    user(&server, "olive", &[Role::Officer], false).await;
    user(&server, "amos", &[Role::Approver], false).await;
    user(&server, "dora", &[Role::Authoriser], false).await;
    let (agent, _) = server
        .enroll(patchwarden_testkit::debian_facts(
            "web-01",
            "0123456789abcdef0123456789abcdef",
        ))
        .await;
    let host = agent.host_id().to_owned();
    let as_user = |name: &str| {
        let cli = Cli {
            config_home: dir.path().join(name),
            server: server.url.clone(),
            fingerprint: server.fingerprint.to_string(),
        };
        let out = cli.login(name, &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "login {name}: {out:?}");
        cli
    };
    let olive = as_user("olive");
    let amos = as_user("amos");
    let dora = as_user("dora");

    let number = olive
        .ok(&[
            "changes",
            "create",
            "--kind",
            "normal",
            "--title",
            "OpenSSL security update",
            "--justification",
            "CVE-2024-5535 on the web tier",
            "--risk",
            "high",
            "--priority",
            "high",
            "--rollback-plan",
            "reinstall the previous openssl",
            "--testing-required",
            "--host",
            &host,
            "--patch",
            "openssl=3.0.15-1~deb12u1@Debian:12",
        ])
        .trim()
        .to_owned();
    olive.ok(&["changes", "submit", &number]);
    amos.ok(&["changes", "approve", &number]);
    dora.ok(&["changes", "authorise", &number]);

    // The form, as a PDF and as HTML.
    let pdf = dir.path().join("form.pdf");
    olive.ok(&[
        "report",
        "form",
        &number,
        "--format",
        "pdf",
        "--output",
        pdf.to_str().unwrap(),
    ]);
    let text = pdftotext(&pdf);
    for t in [
        number.as_str(),
        "System Affected",
        "web-01",
        "Risk Rating",
        "high",
        "Approved by",
        "amos",
        "Authorised by",
        "dora",
        "reinstall the previous openssl",
    ] {
        assert!(text.contains(t), "no {t} in the form:\n{text}");
    }
    let html = dir.path().join("form.html");
    olive.ok(&[
        "report",
        "form",
        &number,
        "--format",
        "html",
        "--output",
        html.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<!doctype html>") && page.contains(&number),
        "{page}"
    );

    // This month's report: nothing implemented yet, in every format.
    let month = Month::of(patchwarden_server::clock::now()).to_string();
    let csv = dir.path().join("report.csv");
    olive.ok(&[
        "report",
        "monthly",
        "--month",
        &month,
        "--format",
        "csv",
        "--output",
        csv.to_str().unwrap(),
    ]);
    let out = Command::new("python3")
        .args(["-c", "import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline='')))))"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows, [APPENDIX_B_COLUMNS.map(String::from).to_vec()]);
    let pdf = dir.path().join("report.pdf");
    olive.ok(&[
        "report",
        "monthly",
        "--month",
        &month,
        "--format",
        "pdf",
        "--output",
        pdf.to_str().unwrap(),
    ]);
    let text = pdftotext(&pdf);
    for t in APPENDIX_B_COLUMNS
        .iter()
        .chain(&["Prepared by:", "Reviewed by:"])
    {
        assert!(text.contains(t), "no {t} in the report:\n{text}");
    }
    let stdout = olive.ok(&[
        "report", "monthly", "--month", &month, "--format", "html", "--output", "-",
    ]);
    assert!(
        stdout.contains("Monthly patch management compliance report"),
        "{stdout}"
    );

    // A machine without a login (a cron job, CI) names the server and the token in the
    // environment, as the documentation says.
    let saved = std::fs::read_to_string(olive.config_home.join("patchwarden/cli.toml")).unwrap();
    let token = saved
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .map(|t| t.trim_matches('"').to_owned())
        .expect("the login saved a token");
    let cron = Cli {
        config_home: dir.path().join("cron"),
        server: server.url.clone(),
        fingerprint: server.fingerprint.to_string(),
    };
    let out = cron
        .cmd()
        .env("PATCHWARDEN_SERVER", &server.url)
        .env("PATCHWARDEN_TOKEN", &token)
        .args([
            "report",
            "monthly",
            "--month",
            &month,
            "--format",
            "html",
            "--output",
            "-",
            "--ca-fingerprint",
            &server.fingerprint.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("<!doctype html>"),
        "{out:?}"
    );

    // Refusals: a malformed month before any request, an unknown change from the server.
    let bad = dir.path().join("bad.pdf");
    let out = olive.run(&[
        "report",
        "monthly",
        "--month",
        "2026-13",
        "--output",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the month is outside 01 to 12"),
        "{out:?}"
    );
    let out = olive.run(&[
        "report",
        "form",
        "PCR-1999-0042",
        "--output",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not-found"),
        "{out:?}"
    );
    assert!(!bad.exists());
}
