//! The agent packages a server hands out to new hosts: the regular files directly in the
//! configured `downloads.dir`, served without authentication at `/downloads/{file}` and named,
//! with their SHA-256, in the install commands `patchwarden admin token create` prints.
//!
//! A host that runs the install script does not trust the server's certificate yet, so what
//! makes a download trustworthy is the SHA-256 the script carries (docs/install.md). This
//! module therefore only has to make sure that nothing but those packages ever leaves the
//! server: a name is served only when it is a plain file name (no separator, no leading dot,
//! so no `..`, no absolute path, whatever the URL's encoding was), the file is opened and then
//! checked to be the very regular file the directory lists under that name (a symlink, even
//! one that points inside the directory, a directory, a device are not served), and the
//! hash is computed over the opened file. Hashes are cached by the file's identity (device,
//! inode, size, modification time), so a package is hashed once, and again when it is
//! replaced.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// The largest file served or hashed: the install script refuses larger downloads too
/// (`curl --max-filesize`), and a real package is a few megabytes.
pub const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;

/// The response header that carries a download's SHA-256, lower-case hex.
pub const SHA256_HEADER: &str = "x-patchwarden-sha256";

/// The longest file name served (the usual file system limit).
const MAX_NAME: usize = 255;

/// Why the downloads directory or one of its files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DownloadsError {
    #[error("downloads directory {path}: {reason}")]
    Dir { path: PathBuf, reason: String },
    #[error("package {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// What kind of package a file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Deb,
    Rpm,
}

impl Format {
    /// The format a file name ends in, if any.
    pub fn of(name: &str) -> Option<Format> {
        if name.ends_with(".deb") {
            Some(Format::Deb)
        } else if name.ends_with(".rpm") {
            Some(Format::Rpm)
        } else {
            None
        }
    }

    /// The media type a download of this format is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Deb => "application/vnd.debian.binary-package",
            Format::Rpm => "application/x-rpm",
        }
    }

    /// The hosts that install this format, for people.
    pub fn hosts(self) -> &'static str {
        match self {
            Format::Deb => "Debian and Ubuntu",
            Format::Rpm => "RHEL, AlmaLinux, Rocky, Fedora and SUSE",
        }
    }
}

/// One package ready to be served.
#[derive(Debug)]
pub struct Opened {
    /// The open file, positioned at its start.
    pub file: File,
    pub name: String,
    pub len: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// A package listed in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub format: Format,
    pub len: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// What identifies one version of a file: a replaced or rewritten package gets a new hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileKey {
    fn of(m: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

/// The downloads directory and the hashes of its files.
#[derive(Debug)]
pub struct Downloads {
    dir: PathBuf,
    hashes: Mutex<HashMap<String, (FileKey, String)>>,
}

/// Whether `name` is a file name this module serves: 1 to 255 of the characters package file
/// names use (letters, digits, `.`, `_`, `-`, `+`, `~`), not starting with a dot. No
/// separator, so nothing outside the directory can be named, and no hidden files.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+~".contains(c))
}

impl Downloads {
    /// The downloads of `dir`, which must be a directory (it may be reached through a
    /// symlink: the operator chose it; the files in it may not).
    pub fn open(dir: &Path) -> Result<Downloads, DownloadsError> {
        let err = |reason: String| DownloadsError::Dir {
            path: dir.to_owned(),
            reason,
        };
        let dir = dir.canonicalize().map_err(|e| err(e.to_string()))?;
        if !dir.is_dir() {
            return Err(err("not a directory".into()));
        }
        Ok(Downloads {
            dir,
            hashes: Mutex::new(HashMap::new()),
        })
    }

    /// The directory, as resolved at opening.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the package `name` for serving, with its length and SHA-256; `None` when the
    /// directory holds no regular file of that name (or the name is not one it could hold).
    /// Blocking: it may read the whole file to hash it.
    pub fn open_package(&self, name: &str) -> Result<Option<Opened>, DownloadsError> {
        if !valid_name(name) {
            return Ok(None);
        }
        let path = self.dir.join(name);
        let err = |reason: String| DownloadsError::File {
            path: path.clone(),
            reason,
        };
        // What the directory lists under the name, not followed: a symlink is not served.
        let listed = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        if !listed.file_type().is_file() {
            return Ok(None);
        }
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let opened = file.metadata().map_err(|e| err(e.to_string()))?;
        // The name may have been replaced by a symlink between the look and the open: the
        // file opened must be the one that was listed.
        if !opened.file_type().is_file()
            || opened.dev() != listed.dev()
            || opened.ino() != listed.ino()
        {
            return Ok(None);
        }
        let len = opened.len();
        if len > MAX_PACKAGE_BYTES {
            tracing::warn!(path = %path.display(), len, "package larger than served; not served");
            return Ok(None);
        }
        let key = FileKey::of(&opened);
        let cached = self
            .hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .filter(|(k, _)| *k == key)
            .map(|(_, sha)| sha.clone());
        let sha256 = match cached {
            Some(sha) => sha,
            None => {
                let sha = hash(&mut file, len).map_err(|e| err(e.to_string()))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| err(e.to_string()))?;
                self.hashes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_owned(), (key, sha.clone()));
                sha
            }
        };
        Ok(Some(Opened {
            file,
            name: name.to_owned(),
            len,
            sha256,
        }))
    }

    /// The `.deb` and `.rpm` packages the directory serves, the `.deb` first, then by name. Blocking: it hashes the
    /// files not hashed yet.
    pub fn packages(&self) -> Result<Vec<Package>, DownloadsError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| DownloadsError::Dir {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DownloadsError::Dir {
                path: self.dir.clone(),
                reason: e.to_string(),
            })?;
            // A name that is not UTF-8 cannot be in a URL we print; it is not a package of
            // ours either.
            if let Ok(name) = entry.file_name().into_string()
                && Format::of(&name).is_some()
            {
                names.push(name);
            }
        }
        names.sort_by(|a, b| (Format::of(a), a).cmp(&(Format::of(b), b)));
        let mut packages = Vec::new();
        for name in names {
            let Some(format) = Format::of(&name) else {
                continue;
            };
            if let Some(opened) = self.open_package(&name)? {
                packages.push(Package {
                    name,
                    format,
                    len: opened.len,
                    sha256: opened.sha256,
                });
            }
        }
        Ok(packages)
    }
}

/// The SHA-256 of the first `len` bytes of `file`, read from where it stands; fails when the
/// file is shorter (it changed while being read).
fn hash(file: &mut File, len: u64) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    let mut limited = file.take(len);
    while left > 0 {
        let n = limited.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was hashed",
            ));
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        left = left.saturating_sub(n as u64);
    }
    Ok(patchwarden_api::v1::signing::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn sha256_hex(bytes: &[u8]) -> String {
        patchwarden_api::v1::signing::hex(&Sha256::digest(bytes))
    }

    #[test]
    fn names_are_plain_file_names() {
        for good in [
            "patchwarden_0.1.0_amd64.deb",
            "patchwarden-0.1.0-1.x86_64.rpm",
            "p_1.0~rc1+b2_arm64.deb",
        ] {
            assert!(valid_name(good), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "/etc/passwd",
            ".hidden.deb",
            "a/b.deb",
            "a\\b.deb",
            "a%2fb.deb",
            "a b.deb",
            "a\0.deb",
            "é.deb",
            long.as_str(),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn regular_files_are_served_with_their_hash_and_nothing_else_is() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("downloads");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("p_1_amd64.deb"), b"a deb").unwrap();
        std::fs::write(dir.join("p-1-1.x86_64.rpm"), b"an rpm").unwrap();
        std::fs::write(dir.join("notes.txt"), b"not a package").unwrap();
        std::fs::write(tmp.path().join("secret.deb"), b"outside").unwrap();
        symlink(tmp.path().join("secret.deb"), dir.join("out.deb")).unwrap();
        symlink(dir.join("p_1_amd64.deb"), dir.join("in.deb")).unwrap();
        std::fs::create_dir(dir.join("sub.deb")).unwrap();
        let downloads = Downloads::open(&dir).unwrap();

        let opened = downloads.open_package("p_1_amd64.deb").unwrap().unwrap();
        assert_eq!(
            (opened.len, opened.sha256.as_str()),
            (5, &*sha256_hex(b"a deb"))
        );
        // A plain file that is not a package is served, but not listed.
        assert!(downloads.open_package("notes.txt").unwrap().is_some());
        for refused in [
            "out.deb",
            "in.deb",
            "sub.deb",
            "missing.deb",
            "../secret.deb",
        ] {
            assert!(
                downloads.open_package(refused).unwrap().is_none(),
                "{refused}"
            );
        }
        let listed = downloads.packages().unwrap();
        assert_eq!(
            listed,
            [
                Package {
                    name: "p_1_amd64.deb".into(),
                    format: Format::Deb,
                    len: 5,
                    sha256: sha256_hex(b"a deb"),
                },
                Package {
                    name: "p-1-1.x86_64.rpm".into(),
                    format: Format::Rpm,
                    len: 6,
                    sha256: sha256_hex(b"an rpm"),
                },
            ]
        );

        // A replaced package is hashed again.
        std::fs::remove_file(dir.join("p_1_amd64.deb")).unwrap();
        std::fs::write(dir.join("p_1_amd64.deb"), b"a newer deb").unwrap();
        let opened = downloads.open_package("p_1_amd64.deb").unwrap().unwrap();
        assert_eq!(opened.sha256, sha256_hex(b"a newer deb"));
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Downloads::open(&tmp.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let e = Downloads::open(&tmp.path().join("file")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }
}
