//! Running a package manager's command-line tool as a child process, with the limits every
//! input from outside needs: a deadline after which the child is killed, a cap on what it may
//! print, and its standard error kept (cut to a readable length) for the error message.
//!
//! The package managers are the authority on what they would install, so we ask them rather
//! than re-implement them; but a hung `apt-get` (a stale lock, a dead mirror) must not hang the
//! agent, and a runaway one must not fill its memory.

use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::UpdatesError;

/// How much of a tool's standard error an error message keeps: enough for apt's or dnf's
/// explanation, not so much that a log line becomes a page.
pub(crate) const STDERR_KEEP: usize = 4 * 1024;

/// What a finished child printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// One invocation: the program, its arguments and the environment it runs in.
#[derive(Debug)]
pub(crate) struct Invocation<'a> {
    pub(crate) program: &'a str,
    pub(crate) args: Vec<OsString>,
    /// Variables set for the child on top of the inherited environment.
    pub(crate) env: Vec<(&'a str, OsString)>,
    /// The `PATH` the program is looked up in; `None` keeps the agent's own.
    pub(crate) search_path: Option<&'a OsStr>,
    pub(crate) timeout: Duration,
    /// The most standard output we accept before killing the child.
    pub(crate) stdout_limit: usize,
}

impl Invocation<'_> {
    /// Runs the child to completion, or kills it at the deadline or when its output passes
    /// the limit. A non-zero exit is an error that carries the tool's own words.
    pub(crate) fn run(&self) -> Result<Output, UpdatesError> {
        let out = self.run_any_status()?;
        if !out.status.success() {
            return Err(UpdatesError::Failed {
                tool: self.program.to_owned(),
                args: self.args_for_humans(),
                status: out.status.to_string(),
                stderr: cut(&out.stderr, STDERR_KEEP),
            });
        }
        Ok(out)
    }

    /// Like [`Invocation::run`], but a non-zero exit is returned to the caller, for tools
    /// whose exit status carries meaning (dnf's `check-update` exits 100 when updates exist).
    pub(crate) fn run_any_status(&self) -> Result<Output, UpdatesError> {
        self.run_any_status_in(None)
    }

    /// Like [`Invocation::run_any_status`], in the working directory `dir` when given (for
    /// tools that write where they run, such as `apt-get download`).
    pub(crate) fn run_any_status_in(&self, dir: Option<&Path>) -> Result<Output, UpdatesError> {
        let mut cmd = Command::new(self.resolve()?);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The parsers read the tools' C-locale wording; a translated apt says "Installiert".
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("LANGUAGE", "");
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        if let Some(path) = self.search_path {
            cmd.env("PATH", path);
        }
        let mut child = cmd.spawn().map_err(|source| UpdatesError::Spawn {
            tool: self.program.to_owned(),
            source,
        })?;
        self.collect(&mut child)
    }

    /// Finds the program in the search path ourselves, so that a missing tool is a clear
    /// [`UpdatesError::ToolMissing`] naming the path searched rather than a bare "No such file".
    fn resolve(&self) -> Result<OsString, UpdatesError> {
        let path = match self.search_path {
            Some(p) => p.to_owned(),
            None => std::env::var_os("PATH").unwrap_or_default(),
        };
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(self.program);
            if is_executable(&candidate) {
                return Ok(candidate.into_os_string());
            }
        }
        Err(UpdatesError::ToolMissing {
            tool: self.program.to_owned(),
            search_path: path.to_string_lossy().into_owned(),
        })
    }

    fn collect(&self, child: &mut Child) -> Result<Output, UpdatesError> {
        // Both pipes are drained on their own threads: a child that fills the stderr pipe
        // while we wait on stdout would otherwise deadlock with us.
        let stdout = child
            .stdout
            .take()
            .map(|s| spawn_reader(s, self.stdout_limit));
        let stderr = child
            .stderr
            .take()
            .map(|s| spawn_reader(s, STDERR_KEEP * 4));
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    // Killing a child that exited a moment ago fails harmlessly.
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = join_reader(stderr).map(|r| r.text).unwrap_or_default();
                    return Err(UpdatesError::TimedOut {
                        tool: self.program.to_owned(),
                        after: self.timeout,
                        stderr: cut(&stderr, STDERR_KEEP),
                    });
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(source) => {
                    return Err(UpdatesError::Spawn {
                        tool: self.program.to_owned(),
                        source,
                    });
                }
            }
        };
        let out = join_reader(stdout).unwrap_or_default();
        let err = join_reader(stderr).unwrap_or_default();
        if out.truncated {
            return Err(UpdatesError::OutputTooLarge {
                tool: self.program.to_owned(),
                limit: self.stdout_limit,
            });
        }
        Ok(Output {
            status,
            stdout: out.text,
            stderr: err.text,
        })
    }

    /// The arguments as one line for an error message.
    fn args_for_humans(&self) -> String {
        let mut line = String::new();
        for a in &self.args {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&a.to_string_lossy());
        }
        cut(&line, 512)
    }
}

#[derive(Debug, Default)]
struct ReadResult {
    text: String,
    truncated: bool,
}

/// Reads a pipe to its end, keeping at most `limit` bytes. Past the limit it keeps reading
/// (and discarding), so the child is not blocked on a full pipe; the caller sees `truncated`.
fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    limit: usize,
) -> thread::JoinHandle<ReadResult> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = buf.get(..n).unwrap_or_default();
                    let room = limit.saturating_sub(kept.len());
                    if chunk.len() > room {
                        truncated = true;
                        kept.extend_from_slice(chunk.get(..room).unwrap_or_default());
                    } else {
                        kept.extend_from_slice(chunk);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        ReadResult {
            // The tools print UTF-8 (package names and versions are ASCII); anything else
            // is replaced rather than refused, and the parsers then refuse what they cannot
            // read, with the line in the message.
            text: String::from_utf8_lossy(&kept).into_owned(),
            truncated,
        }
    })
}

fn join_reader(handle: Option<thread::JoinHandle<ReadResult>>) -> Option<ReadResult> {
    handle.and_then(|h| h.join().ok())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `text` cut to at most `max` bytes on a character boundary, with a note when it was cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} … ({} more bytes)",
        text.get(..end).unwrap_or_default(),
        text.len() - end
    )
}
