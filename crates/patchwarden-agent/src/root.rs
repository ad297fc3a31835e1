//! Reading files of a host that is mounted under a directory (`--root`), the way a process
//! `chroot`ed into it would see them.
//!
//! Container images and mounted disks are full of absolute symlinks (`var/run -> /run`,
//! `etc/os-release -> ../usr/lib/os-release`). Followed naively they leave the root and read
//! the agent's own host, which would report the wrong operating system or packages. So every
//! path here is resolved one component at a time: an absolute link target starts again at the
//! root, `..` stops at the root, and more than [`MAX_LINKS`] links is a loop. The live host is
//! simply the root `/`, resolved the same way.
//!
//! Every read is bounded: [`HostRoot::read`] refuses a file larger than the caller's limit
//! (with a typed error naming the file), and [`HostRoot::open`] hands back a file for streaming
//! parsers that cap their own memory.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Links followed in one resolution before it is called a loop: Linux's own limit (`ELOOP`
/// after 40).
pub const MAX_LINKS: usize = 40;

/// A directory that holds a host's file system.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    live: bool,
}

/// Why a file under the root could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("the root {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("too many symbolic links (a loop?) resolving {path} under the root")]
    SymlinkLoop { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path} holds more than {limit} entries")]
    TooManyEntries { path: PathBuf, limit: usize },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl HostRoot {
    /// Opens a root directory. `/` (after resolving symlinks) is the live host: the one whose
    /// kernel this agent talks to.
    pub fn new(root: &Path) -> Result<HostRoot, RootError> {
        let canonical = fs::canonicalize(root).map_err(|source| RootError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        if !canonical.is_dir() {
            return Err(RootError::NotADirectory { path: canonical });
        }
        let live = canonical == Path::new("/");
        Ok(HostRoot {
            root: canonical,
            live,
        })
    }

    /// The root directory (canonical).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Whether this root is `/`, the host the agent runs on: only then do the kernel's own
    /// answers (hostname, architecture) describe it.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Where `rel` (a path inside the host, such as `etc/os-release`) really is, following
    /// symlinks inside the root. `Ok(None)` when it does not exist.
    pub fn resolve(&self, rel: &str) -> Result<Option<PathBuf>, RootError> {
        // The components still to walk, last one first, so that a link's target can be pushed
        // in front of the rest.
        let mut pending: Vec<String> = Vec::new();
        push_components(&mut pending, Path::new(rel));
        let mut inside: Vec<String> = Vec::new();
        let mut links = 0usize;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    inside.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = self.join(&inside).join(&comp);
            let meta = match fs::symlink_metadata(&candidate) {
                Ok(m) => m,
                Err(e) if absent(&e) => return Ok(None),
                Err(source) => {
                    return Err(RootError::Io {
                        path: candidate,
                        source,
                    });
                }
            };
            if !meta.file_type().is_symlink() {
                inside.push(comp);
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(RootError::SymlinkLoop { path: rel.into() });
            }
            let target = fs::read_link(&candidate).map_err(|source| RootError::Io {
                path: candidate.clone(),
                source,
            })?;
            if target.is_absolute() {
                inside.clear();
            }
            push_components(&mut pending, &target);
        }
        Ok(Some(self.join(&inside)))
    }

    /// Opens `rel` for reading. `Ok(None)` when it does not exist; an error when it is a
    /// directory or something else that is not a regular file.
    pub fn open(&self, rel: &str) -> Result<Option<(PathBuf, File)>, RootError> {
        let Some(path) = self.resolve(rel)? else {
            return Ok(None);
        };
        let meta = fs::metadata(&path).map_err(|source| RootError::Io {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(RootError::NotAFile { path });
        }
        let file = File::open(&path).map_err(|source| RootError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Some((path, file)))
    }

    /// Reads all of `rel` when it is at most `limit` bytes. `Ok(None)` when it does not exist.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, RootError> {
        let Some((path, file)) = self.open(rel)? else {
            return Ok(None);
        };
        read_limited(&path, file, limit).map(Some)
    }

    /// Reads `rel` as text (invalid UTF-8 replaced), at most `limit` bytes.
    pub fn read_text(&self, rel: &str, limit: u64) -> Result<Option<String>, RootError> {
        Ok(self
            .read(rel, limit)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The entries of directory `rel`, sorted by name, as paths inside the host; at most
    /// `limit` of them, else an error (a directory of millions of entries would otherwise cost
    /// memory in proportion). `Ok(None)` when it does not exist.
    pub fn list_dir(&self, rel: &str, limit: usize) -> Result<Option<Vec<String>>, RootError> {
        let Some(path) = self.resolve(rel)? else {
            return Ok(None);
        };
        let io = |source| RootError::Io {
            path: path.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&path).map_err(io)? {
            let entry = entry.map_err(io)?;
            if names.len() >= limit {
                return Err(RootError::TooManyEntries { path, limit });
            }
            if let Some(name) = entry.file_name().to_str() {
                names.push(format!("{}/{name}", rel.trim_end_matches('/')));
            }
        }
        names.sort();
        Ok(Some(names))
    }

    fn join(&self, inside: &[String]) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(inside);
        p
    }
}

/// Reads a whole file of at most `limit` bytes, or says that it is larger.
pub fn read_limited(path: &Path, file: File, limit: u64) -> Result<Vec<u8>, RootError> {
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| RootError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(RootError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(buf)
}

/// Pushes `path`'s components onto the stack of pending components (reversed, so the first
/// component is popped first). The root and prefix components vanish: inside a root, `/` is
/// the root itself.
fn push_components(pending: &mut Vec<String>, path: &Path) {
    let comps: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(comps.into_iter().rev());
}

/// Errors that mean "there is no such file here": a missing component, or a component that is
/// a file where a directory was needed.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let (dir, root) = root();
        fs::create_dir_all(dir.path().join("run")).unwrap();
        fs::create_dir_all(dir.path().join("var")).unwrap();
        fs::write(
            dir.path().join("run/reboot-required"),
            "*** System restart required ***\n",
        )
        .unwrap();
        symlink("/run", dir.path().join("var/run")).unwrap();
        let got = root.read_text("var/run/reboot-required", 1024).unwrap();
        assert_eq!(got.as_deref(), Some("*** System restart required ***\n"));
        // A link that climbs above the root stops at the root, as in a chroot.
        symlink("../../../../../run", dir.path().join("var/up")).unwrap();
        assert!(root.read("var/up/reboot-required", 1024).unwrap().is_some());
    }

    #[test]
    fn a_link_loop_is_an_error_not_a_hang() {
        let (dir, root) = root();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        let err = root.read("a", 10).unwrap_err();
        assert!(matches!(err, RootError::SymlinkLoop { .. }), "{err}");
        assert!(err.to_string().contains("too many symbolic links"));
    }

    #[test]
    fn missing_files_and_files_used_as_directories_are_absent() {
        let (dir, root) = root();
        fs::write(dir.path().join("file"), "x").unwrap();
        assert!(root.read("nothing/here", 10).unwrap().is_none());
        assert!(root.read("file/child", 10).unwrap().is_none());
    }

    #[test]
    fn directory_listings_are_sorted_and_bounded() {
        let (dir, root) = root();
        fs::create_dir_all(dir.path().join("d")).unwrap();
        for n in ["b", "a", "c"] {
            fs::write(dir.path().join("d").join(n), "").unwrap();
        }
        let got = root.list_dir("d", 3).unwrap().unwrap();
        assert_eq!(got, ["d/a", "d/b", "d/c"]);
        let err = root.list_dir("d", 2).unwrap_err();
        assert!(
            err.to_string().ends_with("d holds more than 2 entries"),
            "{err}"
        );
        assert!(root.list_dir("missing", 2).unwrap().is_none());
    }

    #[test]
    fn directories_and_large_files_are_refused_with_their_name() {
        let (dir, root) = root();
        fs::create_dir_all(dir.path().join("etc/hostname")).unwrap();
        let err = root.read("etc/hostname", 10).unwrap_err();
        assert!(matches!(err, RootError::NotAFile { .. }), "{err}");
        fs::write(dir.path().join("big"), vec![b'x'; 11]).unwrap();
        let err = root.read("big", 10).unwrap_err();
        assert!(
            err.to_string().ends_with("big is larger than 10 bytes"),
            "{err}"
        );
    }
}
