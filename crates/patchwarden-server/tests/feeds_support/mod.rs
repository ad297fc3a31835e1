//! What the feed tests share: the shared test data, a server on a temporary directory, and a
//! small HTTP/1.1 server on 127.0.0.1 that serves feed files the way publishers do (ETag,
//! Last-Modified, 304 on a matching `If-None-Match`) — and, when told, misbehaves: cuts a body
//! short of its `Content-Length`, or ignores the validators and sends the whole body again.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use patchwarden_server::Config;
use patchwarden_server::config::TlsMode;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shared test data directory: `../shared/data` beside the workspace, or
/// `PATCHWARDEN_SHARED_DATA`.
pub(crate) fn shared_data() -> PathBuf {
    let dir = std::env::var_os("PATCHWARDEN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        dir.join("osv").is_dir(),
        "the shared test data is not at {} (clone the project beside `shared/`, or set \
         PATCHWARDEN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// How a path is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    /// `Content-Length` of the whole body, then half of it, then the connection closes.
    Truncate,
    /// 200 with the whole body whatever the request's validators say.
    IgnoreValidators,
}

#[derive(Debug, Clone)]
struct Resource {
    body: Arc<Vec<u8>>,
    etag: String,
    mode: Mode,
}

/// A request the server saw: path and `If-None-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) path: String,
    pub(crate) if_none_match: Option<String>,
    pub(crate) status: u16,
}

/// The feed publisher.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    pub(crate) base: String,
    files: Arc<Mutex<HashMap<String, Resource>>>,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
}

impl Publisher {
    pub(crate) async fn start() -> Publisher {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let publisher = Publisher {
            base,
            files: Arc::default(),
            seen: Arc::default(),
        };
        let p = publisher.clone();
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let p = p.clone();
                tokio::spawn(async move { p.serve(conn).await });
            }
        });
        publisher
    }

    /// Publishes `body` at `path` (a new ETag when the body changed).
    pub(crate) fn put(&self, path: &str, body: Vec<u8>, mode: Mode) {
        let etag = format!("\"{}\"", &hex(&Sha256::digest(&body))[..16]);
        self.files.lock().unwrap().insert(
            path.to_owned(),
            Resource {
                body: Arc::new(body),
                etag,
                mode,
            },
        );
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }

    async fn serve(&self, mut conn: tokio::net::TcpStream) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if head.len() > 64 * 1024 {
                return;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let path = text
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let if_none_match = text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("if-none-match")
                .then(|| v.trim().to_owned())
        });
        let resource = self.files.lock().unwrap().get(&path).cloned();
        let (status, response): (u16, Vec<u8>) = match resource {
            None => (
                404,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            Some(r)
                if r.mode != Mode::IgnoreValidators
                    && if_none_match.as_deref() == Some(r.etag.as_str()) =>
            {
                (
                    304,
                    format!(
                        "HTTP/1.1 304 Not Modified\r\nETag: {}\r\nConnection: close\r\n\r\n",
                        r.etag
                    )
                    .into_bytes(),
                )
            }
            Some(r) => {
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {}\r\n\
                     Last-Modified: Wed, 25 Nov 2026 10:00:00 GMT\r\nConnection: close\r\n\r\n",
                    r.body.len(),
                    r.etag
                )
                .into_bytes();
                let sent = if r.mode == Mode::Truncate {
                    r.body.len() / 2
                } else {
                    r.body.len()
                };
                out.extend_from_slice(&r.body[..sent]);
                (200, out)
            }
        };
        self.seen.lock().unwrap().push(Seen {
            path,
            if_none_match,
            status,
        });
        let _ = conn.write_all(&response).await;
        let _ = conn.shutdown().await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A server configuration on `dir`: plain HTTP on 127.0.0.1, no metrics listener, a scheduler
/// that looks only once an hour (the tests sync by hand, with time as a parameter).
pub(crate) fn config(dir: &Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.listen.api = "127.0.0.1:0".into();
    config.listen.metrics = String::new();
    config.tls.mode = TlsMode::PlainHttp;
    config.feeds.tick_secs = 3600;
    config
}

/// A zip archive of `members` (name, bytes).
pub(crate) fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            zip.start_file(name.as_str(), options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// The `.json` members of a zip archive, in order.
pub(crate) fn members_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if !f.name().ends_with(".json") {
            continue;
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.push((f.name().to_owned(), bytes));
    }
    out
}
