//! The rpm collector: reads the installed packages from the rpm database under a root, with
//! our own parsers of rpm's formats rather than the `rpm` tool, so that it works on any host
//! (or mounted image) whether or not rpm, its libraries or its configuration are present.
//!
//! rpm has stored its database in three formats over the years, and a scanned root may hold
//! any of them:
//!
//! | backend | file | used by |
//! |---|---|---|
//! | SQLite ([`sqlite`]) | `rpmdb.sqlite` | rpm ≥ 4.16: Fedora 33+, EL 9+, openSUSE 2022+ |
//! | NDB ([`ndb`]) | `Packages.db` | SUSE (SLES 15, openSUSE 2019–2022) |
//! | Berkeley DB ([`bdb`]) | `Packages` | rpm < 4.16: EL 5–8, Amazon Linux 2 |
//!
//! each under `usr/lib/sysimage/rpm/` (the newer location) or `var/lib/rpm/`. Whatever the
//! backend, each record is a header blob that [`parse_header`] turns into a [`Package`].
//!
//! Everything read is bounded by [`Limits`]: the database file's size, the number of packages
//! and the size of one header. A corrupt record is an error naming the file and the record,
//! never a panic, and never a silently shorter inventory.

mod bdb;
mod header;
mod ndb;
mod sqlite;

use std::path::{Path, PathBuf};

use patchwarden_core::inventory::Package;

use crate::root::{HostRoot, RootError};

pub use bdb::BdbError;
pub use header::{HeaderError, MAX_HEADER_BYTES, parse_header, split_source_rpm};
pub use ndb::NdbError;
pub use sqlite::SqliteError;

/// The most packages we read from one database: 200,000. The largest real systems have a few
/// thousand; the cap only stops a corrupt or hostile database from growing the inventory
/// without end.
pub const MAX_PACKAGES: usize = 200_000;

/// The largest database file we open: 4 GiB. A database of 200,000 packages of average size
/// is well under that, and nothing larger can be an honest rpm database.
pub const MAX_DATABASE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// The bounds on what one read of a database may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most packages (records, `gpg-pubkey` keys included) a database may hold.
    pub max_packages: usize,
    /// The largest header blob accepted ([`MAX_HEADER_BYTES`] at most: the parser refuses
    /// anything larger whatever this says).
    pub max_header_bytes: usize,
    /// The largest database file opened.
    pub max_database_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_packages: MAX_PACKAGES,
            max_header_bytes: MAX_HEADER_BYTES,
            max_database_bytes: MAX_DATABASE_BYTES,
        }
    }
}

/// The storage format of an rpm database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Ndb,
    BerkeleyDb,
}

impl Backend {
    /// The name rpm's `%_db_backend` macro gives the format.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Ndb => "ndb",
            Backend::BerkeleyDb => "bdb",
        }
    }
}

/// Where rpm keeps its database, in the order we look: the newest format first (a root that
/// was converted may still hold the old file beside the new one, and rpm uses the new one),
/// and within a format the newer `usr/lib/sysimage` location first. On current Fedora and
/// SUSE, `var/lib/rpm` is a symlink to `usr/lib/sysimage/rpm`, so both name the same file.
pub const DATABASE_PATHS: [(&str, Backend); 6] = [
    ("usr/lib/sysimage/rpm/rpmdb.sqlite", Backend::Sqlite),
    ("var/lib/rpm/rpmdb.sqlite", Backend::Sqlite),
    ("usr/lib/sysimage/rpm/Packages.db", Backend::Ndb),
    ("var/lib/rpm/Packages.db", Backend::Ndb),
    ("usr/lib/sysimage/rpm/Packages", Backend::BerkeleyDb),
    ("var/lib/rpm/Packages", Backend::BerkeleyDb),
];

/// An rpm database found under a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub backend: Backend,
    /// The file, with the root's symlinks resolved inside the root.
    pub path: PathBuf,
}

/// Why the rpm database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmDbError {
    #[error("no rpm database under {root}: none of {looked} exists")]
    NotFound { root: PathBuf, looked: String },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("{path} is {len} bytes, over the {limit}-byte limit for an rpm database")]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    #[error("{path} (rpm {} database): {source}", Backend::Sqlite.name())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: SqliteError,
    },
    #[error("{path} (rpm {} database): {source}", Backend::Ndb.name())]
    Ndb {
        path: PathBuf,
        #[source]
        source: NdbError,
    },
    #[error("{path} (rpm Berkeley DB database): {source}")]
    Bdb {
        path: PathBuf,
        #[source]
        source: BdbError,
    },
    #[error("{path}: record {record}: {source}")]
    Header {
        path: PathBuf,
        record: u32,
        #[source]
        source: HeaderError,
    },
    #[error("{path} holds more than {limit} packages")]
    TooManyPackages { path: PathBuf, limit: usize },
}

/// Finds the rpm database under `root` (see [`DATABASE_PATHS`]).
pub fn locate(root: &HostRoot) -> Result<Database, RpmDbError> {
    for (rel, backend) in DATABASE_PATHS {
        if let Some(path) = root.resolve(rel)? {
            return Ok(Database { backend, path });
        }
    }
    Err(RpmDbError::NotFound {
        root: root.path().to_owned(),
        looked: DATABASE_PATHS.map(|(rel, _)| rel).join(", "),
    })
}

/// Reads the installed packages from the rpm database under `root`, in record order, without
/// the `gpg-pubkey` keys. Fails on the first record that is not a valid header.
pub fn read_packages(root: &Path) -> Result<Vec<Package>, RpmDbError> {
    let root = HostRoot::new(root)?;
    let db = locate(&root)?;
    read_database(&db, &Limits::default())
}

/// Everything that can stop a read, before it is given the database's path.
#[derive(Debug)]
enum Stop {
    Sqlite(SqliteError),
    Ndb(NdbError),
    Bdb(BdbError),
    Header { record: u32, source: HeaderError },
    TooMany,
}

impl From<SqliteError> for Stop {
    fn from(e: SqliteError) -> Stop {
        Stop::Sqlite(e)
    }
}

impl From<NdbError> for Stop {
    fn from(e: NdbError) -> Stop {
        Stop::Ndb(e)
    }
}

impl From<BdbError> for Stop {
    fn from(e: BdbError) -> Stop {
        Stop::Bdb(e)
    }
}

/// Reads the packages of one database file, in record order, without the `gpg-pubkey` keys.
pub fn read_database(db: &Database, limits: &Limits) -> Result<Vec<Package>, RpmDbError> {
    let mut packages: Vec<(u32, Package)> = Vec::new();
    walk(db, limits, |record, blob| match parse_header(blob) {
        Ok(Some(package)) => {
            packages.push((record, package));
            Ok(())
        }
        Ok(None) => Ok(()), // a gpg-pubkey key, not a package
        Err(source) => Err(Stop::Header { record, source }),
    })?;
    // Berkeley DB yields records in hash order; every backend is reported in record order,
    // which is the order rpm installed them.
    packages.sort_by_key(|(record, _)| *record);
    Ok(packages.into_iter().map(|(_, package)| package).collect())
}

/// Calls `visit(record, header_blob)` for every record of the database, unparsed, in the
/// backend's own order: for callers that need tags the inventory does not carry.
pub fn for_each_header(
    db: &Database,
    limits: &Limits,
    mut visit: impl FnMut(u32, &[u8]),
) -> Result<(), RpmDbError> {
    walk(db, limits, |record, blob| {
        visit(record, blob);
        Ok(())
    })
}

/// Opens the database within the limits and hands each record to `visit`.
fn walk(
    db: &Database,
    limits: &Limits,
    mut visit: impl FnMut(u32, &[u8]) -> Result<(), Stop>,
) -> Result<(), RpmDbError> {
    let path = &db.path;
    let io = |source| {
        RpmDbError::Root(RootError::Io {
            path: path.clone(),
            source,
        })
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(RpmDbError::Root(RootError::NotAFile { path: path.clone() }));
    }
    let len = meta.len();
    if len > limits.max_database_bytes {
        return Err(RpmDbError::TooLarge {
            path: path.clone(),
            len,
            limit: limits.max_database_bytes,
        });
    }
    let header_limit = limits.max_header_bytes.min(MAX_HEADER_BYTES);
    let mut records = 0usize;
    let mut counted = |record: u32, blob: &[u8]| -> Result<(), Stop> {
        records += 1;
        if records > limits.max_packages {
            return Err(Stop::TooMany);
        }
        visit(record, blob)
    };
    let outcome = match db.backend {
        Backend::Sqlite => sqlite::for_each_record(path, header_limit, &mut counted),
        Backend::Ndb => {
            let file = std::fs::File::open(path).map_err(io)?;
            ndb::for_each_record(file, len, limits.max_packages, header_limit, &mut counted)
        }
        Backend::BerkeleyDb => {
            let file = std::fs::File::open(path).map_err(io)?;
            bdb::for_each_record(file, len, header_limit, &mut counted)
        }
    };
    let path = path.clone();
    outcome.map_err(|stop| match stop {
        Stop::Sqlite(source) => RpmDbError::Sqlite { path, source },
        Stop::Ndb(NdbError::TooManyPackages { limit }) => {
            RpmDbError::TooManyPackages { path, limit }
        }
        Stop::Ndb(source) => RpmDbError::Ndb { path, source },
        Stop::Bdb(source) => RpmDbError::Bdb { path, source },
        Stop::Header { record, source } => RpmDbError::Header {
            path,
            record,
            source,
        },
        Stop::TooMany => RpmDbError::TooManyPackages {
            path,
            limit: limits.max_packages,
        },
    })
}
