//! The operator CLI as tests drive it: the real binary with a config directory of its own and
//! nothing from the environment of whoever runs the tests, and users made in the test
//! server's store with a known password.

#![allow(dead_code)] // Each test file uses the part it needs.
#![allow(unreachable_pub)] // `pub` is for the test files that include this module.

use std::path::PathBuf;
use std::process::{Command, Output};

use patchwarden_store::Role;
use patchwarden_testkit::TestServer;
use serde_json::Value;

/// The password of every user made by [`user`].
pub const PASSWORD: &str = "correct horse battery staple";

/// The CLI as one operator on this machine.
pub struct Cli {
    pub config_home: PathBuf,
    pub server: String,
    pub fingerprint: String,
}

impl Cli {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_patchwarden"));
        c.env("XDG_CONFIG_HOME", &self.config_home)
            .env_remove("PATCHWARDEN_TOKEN")
            .env_remove("PATCHWARDEN_SERVER")
            .env("NO_COLOR", "1")
            .env("PATCHWARDEN_LOG", "warn");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("running patchwarden")
    }

    /// Runs and expects success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "patchwarden {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs with `--format json`, expects success, and parses stdout as `T`.
    pub fn typed<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{args:?}: not the expected JSON ({e}): {text}"))
    }

    /// [`Cli::typed`] as plain JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        self.typed(args)
    }

    /// `patchwarden login` with `password_lines` on its standard input.
    pub fn login(&self, user: &str, password_lines: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(["login", "--server", &self.server])
            .args(["--ca-fingerprint", &self.fingerprint])
            .args(["--user", user, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password_lines.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Makes `name` with `roles` and [`PASSWORD`] (one-time with `must_change`).
pub async fn user(server: &TestServer, name: &str, roles: &[Role], must_change: bool) {
    server.user(name, roles, &[], PASSWORD, must_change).await;
}
