//! The manifest's typed health checks and restarts, run on the host itself: `systemctl` with
//! a fixed verb and a checked unit name, a TCP connect to 127.0.0.1, a plain HTTP/1.0 `GET` on
//! loopback. No shell, no address other than loopback.
//!
//! On a sandbox root (not `/`) the units of the sandbox are not running under this kernel's
//! systemd: restarts and service checks are reported as skipped, with that reason — never as
//! passed.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use patchwarden_api::v1::jobs::CheckOutcome;
use patchwarden_api::v1::manifest::HealthCheck;

use crate::inventory::updates::command::Invocation;

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `systemctl restart` may take.
const RESTART_TIMEOUT: Duration = Duration::from_secs(300);
/// The prefix of a skipped check's detail.
pub const SKIPPED: &str = "skipped: ";

/// Whether an outcome is a skip rather than a pass or a failure.
pub fn is_skipped(outcome: &CheckOutcome) -> bool {
    !outcome.passed && outcome.detail.starts_with(SKIPPED)
}

fn skipped(check: String) -> CheckOutcome {
    CheckOutcome {
        check,
        passed: false,
        detail: format!(
            "{SKIPPED}the root is a sandbox, not this host: its services do not run here"
        ),
    }
}

fn systemctl(args: &[&str], timeout: Duration) -> Result<String, String> {
    let inv = Invocation {
        program: "systemctl",
        args: args.iter().map(Into::into).collect(),
        env: Vec::new(),
        search_path: None,
        timeout,
        stdout_limit: 64 * 1024,
    };
    match inv.run_any_status() {
        Ok(out) if out.status.success() => Ok(out.stdout.trim().to_owned()),
        Ok(out) => Err(format!(
            "{} ({}): {}",
            out.stdout.trim(),
            out.status,
            out.stderr.trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Restarts each unit in order (`systemctl restart UNIT`); stops at the first failure.
pub fn restart(units: &[String], live: bool) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    for unit in units {
        let check = format!("restart {unit}");
        if !live {
            out.push(skipped(check));
            continue;
        }
        let outcome = match systemctl(&["restart", "--", unit], RESTART_TIMEOUT) {
            Ok(_) => CheckOutcome {
                check,
                passed: true,
                detail: "restarted".into(),
            },
            Err(e) => CheckOutcome {
                check,
                passed: false,
                detail: e,
            },
        };
        let failed = !outcome.passed;
        out.push(outcome);
        if failed {
            break;
        }
    }
    out
}

/// Runs one health check.
pub fn run(check: &HealthCheck, live: bool) -> CheckOutcome {
    match check {
        HealthCheck::ServiceActive { unit } => {
            let name = format!("service {unit} active");
            if !live {
                return skipped(name);
            }
            match systemctl(&["is-active", "--", unit], PROBE_TIMEOUT) {
                Ok(state) => CheckOutcome {
                    check: name,
                    passed: state == "active",
                    detail: state,
                },
                Err(e) => CheckOutcome {
                    check: name,
                    passed: false,
                    detail: e,
                },
            }
        }
        HealthCheck::TcpConnect { port } => {
            let name = format!("tcp 127.0.0.1:{port} accepts");
            match TcpStream::connect_timeout(&loopback(*port), PROBE_TIMEOUT) {
                Ok(_) => CheckOutcome {
                    check: name,
                    passed: true,
                    detail: "connected".into(),
                },
                Err(e) => CheckOutcome {
                    check: name,
                    passed: false,
                    detail: e.to_string(),
                },
            }
        }
        HealthCheck::HttpStatus { port, path, status } => {
            let name = format!("http GET 127.0.0.1:{port}{path} is {status}");
            match http_status(*port, path) {
                Ok(got) => CheckOutcome {
                    check: name,
                    passed: got == *status,
                    detail: format!("status {got}"),
                },
                Err(e) => CheckOutcome {
                    check: name,
                    passed: false,
                    detail: e,
                },
            }
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:port; the status code of the answer.
fn http_status(port: u16, path: &str) -> Result<u16, String> {
    // The manifest check allowed only a plain path (a `/`, no blanks or control characters).
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{path:?} is not a plain path"));
    }
    let mut stream = TcpStream::connect_timeout(&loopback(port), PROBE_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(PROBE_TIMEOUT));
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: patchwarden-agent\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(format!("not an HTTP answer: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn tcp_and_http_checks_probe_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            }
        });
        let ok = run(
            &HealthCheck::HttpStatus {
                port,
                path: "/health".into(),
                status: 204,
            },
            false,
        );
        assert!(ok.passed, "{ok:?}");
        let wrong = run(
            &HealthCheck::HttpStatus {
                port,
                path: "/health".into(),
                status: 200,
            },
            false,
        );
        assert!(!wrong.passed && wrong.detail == "status 204", "{wrong:?}");
        server.join().unwrap();
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let refused = run(&HealthCheck::TcpConnect { port: closed_port }, false);
        assert!(!refused.passed && !is_skipped(&refused), "{refused:?}");
    }

    #[test]
    fn sandbox_roots_skip_services_and_restarts_rather_than_pass_them() {
        let svc = run(
            &HealthCheck::ServiceActive {
                unit: "nginx.service".into(),
            },
            false,
        );
        assert!(is_skipped(&svc), "{svc:?}");
        let r = restart(&["a.service".into(), "b.service".into()], false);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(is_skipped));
    }
}
