//! A real browser for the web UI's tests: headless Chromium driven over WebDriver
//! (chromedriver on a free port of 127.0.0.1, plain HTTP) from Rust with `fantoccini`, against
//! a real server (the testkit's, over HTTPS with the CA it made for the occasion).
//!
//! Use it from a test in `tests/`: `mod browser_support;`, then
//! `let Some(b) = Browser::start(&server.url, "my_test").await else { return };` (`None` when
//! Chromium or its driver is missing and `PATCHWARDEN_REQUIRE_TOOLS` is not set: the test says
//! it skipped), `b.log_in("name", "password")`, `b.goto("/path")`, `b.click("#id")`,
//! `b.screenshot("name")` (a PNG under `target/test-artifacts/browser/`), `b.close()`.
//!
//! Each browser has its own profile directory, so no cookie or cache leaks between tests.
//! Waiting is for something to appear (an element, a page), never a fixed sleep.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of the harness

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use patchwarden_testkit::apt::which;

/// How long a page or element may take to appear before the test fails: generous, because a
/// debug build of the server on a shared machine is slow, and this is a limit, not a measure.
const PATIENCE: Duration = Duration::from_secs(30);

/// Where screenshots go: `target/test-artifacts/browser/`.
pub fn artefacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("test-artifacts").join("browser")
}

/// A running headless Chromium, its driver, and the server it browses.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// The server's base URL (`https://127.0.0.1:PORT`).
    pub base: String,
}

/// The tools, or why the test cannot run: panics when `PATCHWARDEN_REQUIRE_TOOLS` is set.
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()));
    let driver = which("chromedriver")
        .or_else(|| Some(PathBuf::from("/usr/bin/chromedriver")).filter(|p| p.exists()));
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let mut missing = Vec::new();
            if c.is_none() {
                missing.push("chromium (Debian package chromium)");
            }
            if d.is_none() {
                missing.push("chromedriver (Debian package chromium-driver)");
            }
            if std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_some() {
                panic!(
                    "{test} needs {}; install them with scripts/install-test-deps",
                    missing.join(" and ")
                );
            }
            eprintln!(
                "skipping {test}: missing {} (set PATCHWARDEN_REQUIRE_TOOLS=1 to fail instead)",
                missing.join(" and ")
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium browsing `base`; `None` when the tools are
    /// missing (and not required).
    pub async fn start(base: &str, test: &str) -> Option<Browser> {
        let (chromium, chromedriver) = tools(test)?;
        let port = free_port();
        std::fs::create_dir_all(artefacts()).expect("the artefacts directory");
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!(
                "--log-path={}",
                artefacts().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        // The server's CA was made for this test: the browser is told to accept it.
        caps.insert("acceptInsecureCerts".into(), true.into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--ignore-certificate-errors", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--window-size=1280,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        // The driver takes a moment to listen: retry the session until it answers.
        let started = std::time::Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() < PATIENCE => {
                    eprintln!("waiting for chromedriver: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver on {url} gave no browser session: {e}"),
            }
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Opens `path` on the server.
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for the element `css` and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} on {}: {e}\n{}",
                self.path_now().await,
                self.client.source().await.unwrap_or_default()
            ),
        }
    }

    async fn path_now(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// The accessibility violations on the page shown, as axe-core (`axe.min.js`, not ours)
    /// finds them against WCAG 2.x A and AA: each as `rule (impact): N element(s), e.g. …`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("axe.min.js");
        self.client
            .execute(AXE, Vec::new())
            .await
            .expect("loading axe-core into the page");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {
                     runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
                     resultTypes: ['violations'],
                 }).then(r => done(r.violations.map(v =>
                     v.id + ' (' + v.impact + '): ' + v.nodes.length + ' element(s), e.g. '
                     + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))),
                     e => done(['axe failed: ' + e]));",
                Vec::new(),
            )
            .await
            .expect("running axe-core");
        serde_json::from_value(found).expect("axe-core's answer is a list of strings")
    }

    /// Whether the page shown has an element `css` (no waiting: the page has loaded).
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("searching the page")
            .is_empty()
    }

    /// The text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .expect("an element's text")
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Types `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.find(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Clicks the element `css` and waits until the browser left the page it was on (a form
    /// posted and its answer shown).
    pub async fn click_and_wait(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        let started = std::time::Instant::now();
        // The old document's element goes stale once the next page replaced it.
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < PATIENCE,
                "clicking {css} did not lead to another page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.find("body").await;
    }

    /// Submits the form `css` (with a script: a form need not have a button) and waits for
    /// the page that answers it.
    pub async fn click_and_wait_for_submit(&self, css: &str) {
        let old = self.find("html").await;
        self.client
            .execute(
                "document.querySelector(arguments[0]).submit();",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap_or_else(|e| panic!("submitting {css}: {e}"));
        let started = std::time::Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < PATIENCE,
                "submitting {css} did not lead to another page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.find("body").await;
    }

    /// Logs in with the login form as `user`, and waits for the page after it.
    pub async fn log_in(&self, user: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click_and_wait("form[action='/login'] button[type=submit]")
            .await;
        let path = self.path().await;
        assert!(
            !path.starts_with("/login"),
            "{user} is still on the login page: {}",
            self.client.source().await.unwrap_or_default()
        );
    }

    /// Logs out with the header's button.
    pub async fn log_out(&self) {
        self.click_and_wait("form[action='/logout'] button").await;
        assert!(self.path().await.starts_with("/login"));
    }

    /// Saves a screenshot of the page shown as `target/test-artifacts/browser/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = artefacts();
        std::fs::create_dir_all(&dir).expect("the artefacts directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// Ends the browser session and the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop ends the driver's process group.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test must not leave the driver or its Chromium running: the processes the
        // driver started (children first, found by their parent in /proc), then the driver.
        for pid in descendants(self.driver.id()) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The processes below `pid`, deepest first (read from /proc: each process's parent).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // /proc/PID/stat: "PID (COMM) STATE PPID …"; COMM may hold spaces and parentheses.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    fn walk(pid: u32, parents: &[(u32, u32)], out: &mut Vec<u32>) {
        for &(child, parent) in parents {
            if parent == pid {
                walk(child, parents, out);
                out.push(child);
            }
        }
    }
    walk(pid, &parents, &mut out);
    out
}
