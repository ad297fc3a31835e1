//! What the operator tests share: a real server on 127.0.0.1 (plain HTTP, a temporary SQLite
//! file), users made in its store, logins, and a small HTTP/1.1 client that sends exactly the
//! headers a test gives it — cookies, tokens, CSRF tokens — and returns every header of the
//! answer (`Set-Cookie` included), which a browser-like client library would hide or rewrite.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use patchwarden_api::v1::operator::{SESSION_COOKIE, SessionView};
use patchwarden_api::v1::problem::{Problem, ProblemCode};
use patchwarden_core::audit::{Actor, AuditEntry};
use patchwarden_server::config::TlsMode;
use patchwarden_server::{Config, Running};
use patchwarden_store::{NewUser, Role, Store, User};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The password of every user made by [`Server::user`].
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// The argon2 hash of [`PASSWORD`], made once per test binary (it is slow on purpose).
pub(crate) fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        patchwarden_server::secrets::hash_password(PASSWORD).expect("hashing the test password")
    })
}

/// A running server and its data directory.
pub(crate) struct Server {
    pub(crate) running: Option<Running>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) addr: SocketAddr,
    pub(crate) url: String,
}

impl Server {
    /// A server with the default settings changed by `tweak`.
    pub(crate) async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.listen.api = "127.0.0.1:0".into();
        config.listen.metrics = String::new();
        config.tls.mode = TlsMode::PlainHttp;
        tweak(&mut config);
        let running = patchwarden_server::start(&config)
            .await
            .unwrap_or_else(|e| panic!("the server did not start: {e}"));
        let addr = running.api_addr;
        let url = running.url();
        Server {
            running: Some(running),
            dir,
            addr,
            url,
        }
    }

    pub(crate) fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.running().state.store.clone()
    }

    /// Makes a user with [`PASSWORD`] directly in the store (as an admin would through the
    /// API, without the one-time password round).
    pub(crate) async fn user(&self, name: &str, roles: &[Role], groups: &[&str]) -> User {
        let now = patchwarden_server::clock::now();
        self.store()
            .create_user(
                NewUser {
                    id: Uuid::new_v4(),
                    username: name.into(),
                    password_hash: password_hash().to_owned(),
                    roles: roles.iter().copied().collect(),
                    groups: groups
                        .iter()
                        .map(|g| (*g).to_owned())
                        .collect::<BTreeSet<_>>(),
                    must_change_password: false,
                    created_by: "test".into(),
                },
                now,
                AuditEntry::new(now, Actor::System("test".into()), "user.create", name),
            )
            .await
            .unwrap_or_else(|e| panic!("making user {name}: {e}"))
    }

    /// Sends a request and reads the whole answer.
    pub(crate) async fn send(&self, request: Req) -> Answer {
        send(self.addr, request).await
    }

    /// Logs in; panics unless it succeeds.
    pub(crate) async fn login(&self, name: &str, password: &str) -> Session {
        let a = self
            .send(Req::post("/api/v1/session").json(&serde_json::json!({
                "username": name,
                "password": password,
            })))
            .await;
        assert_eq!(a.status, 200, "login of {name}: {}", a.text());
        let cookie = a
            .set_cookie()
            .unwrap_or_else(|| panic!("login of {name} set no session cookie"));
        let view: SessionView = a.json();
        Session {
            cookie,
            csrf: view.csrf_token.clone().expect("a session has a CSRF token"),
            view,
        }
    }
}

/// A logged-in browser session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The session cookie's value (`pws_…`).
    pub(crate) cookie: String,
    pub(crate) csrf: String,
    pub(crate) view: SessionView,
}

impl Session {
    /// The headers a browser page would send: the cookie and, for a change, the CSRF token.
    pub(crate) fn apply(&self, r: Req) -> Req {
        r.header("cookie", &format!("{SESSION_COOKIE}={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Req {
    pub(crate) fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn get(path: &str) -> Req {
        Req::new("GET", path)
    }

    pub(crate) fn post(path: &str) -> Req {
        Req::new("POST", path)
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn json(mut self, value: &serde_json::Value) -> Req {
        self.body = serde_json::to_vec(value).expect("JSON");
        self.header("content-type", "application/json")
    }

    pub(crate) fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }
}

/// An answer as it came.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not the JSON expected: {e}: {}",
                self.status,
                self.text()
            )
        })
    }

    /// The problem document's code, for an error answer; for a page, the code its refusal
    /// names in `X-Problem-Code`.
    pub(crate) fn code(&self) -> Option<ProblemCode> {
        serde_json::from_slice::<Problem>(&self.body)
            .ok()
            .map(|p| p.code)
            .or_else(|| {
                let code = self.header("x-problem-code")?;
                serde_json::from_value(serde_json::Value::String(code.to_owned())).ok()
            })
    }

    /// The session cookie's value, when the answer sets one.
    pub(crate) fn set_cookie(&self) -> Option<String> {
        let cookie = self.header("set-cookie")?;
        let first = cookie.split(';').next()?;
        let (name, value) = first.split_once('=')?;
        (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
    }
}

/// Sends `request` on its own connection and reads the whole answer.
pub(crate) async fn send(addr: SocketAddr, request: Req) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connecting to the test server");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: pw.test\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method,
        request.path,
        request.body.len()
    );
    for (k, v) in &request.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("writing");
    stream.write_all(&request.body).await.expect("writing");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers within 30 s")
        .expect("reading");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// A chunked body's content.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}
