//! The SQLite `rpmdb.sqlite` of rpm 4.16 and later (Fedora 33+, RHEL/AlmaLinux/Rocky 9+,
//! openSUSE since 2022, Amazon Linux 2023): the header blobs are rows of the `Packages` table
//! (`hnum INTEGER PRIMARY KEY, blob BLOB`); the other tables are indexes we do not need.
//!
//! The database belongs to the host's rpm, not to us. An ordinary read-only open still creates
//! `-wal` and `-shm` files beside it (rpm keeps the database in WAL mode) and takes locks, which
//! would leave traces in a mounted image or a root we may not write. So the database is opened
//! through an `immutable=1` URI: no locks, no side files. The one exception is a database whose
//! write-ahead log still holds committed transactions — rpm was interrupted, or is running —
//! because an immutable open would silently miss the newest packages; then we open it
//! `mode=ro`, which reads the log through the files that already exist.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What is wrong with an `rpmdb.sqlite`.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("the file is not an SQLite 3 database (it lacks the `SQLite format 3` magic)")]
    NotSqlite,
    #[error("the database has no `Packages` table")]
    NoPackagesTable,
    #[error("record {record}: the blob column holds {kind}, not a header blob")]
    NotBlob { record: i64, kind: String },
    #[error("record number {0} is not a positive 32-bit number")]
    BadRecordNumber(i64),
    #[error("record {record}: its header is {len} bytes, over the {limit}-byte header limit")]
    TooLarge { record: u32, len: i64, limit: usize },
    #[error("reading the file's first bytes: {0}")]
    Io(#[source] std::io::Error),
    #[error("sqlite: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// `path` as an SQLite URI (`file:` and the path with every byte outside the unreserved set
/// percent-encoded, so that `?`, `#` and `%` in a directory name cannot change its meaning).
fn uri(path: &Path, query: &str) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    let mut out = String::from("file:");
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

/// Whether the database's write-ahead log holds data that is not yet in the main file.
fn wal_has_data(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// Checks the magic before SQLite sees the file, so that an empty or foreign file gets a plain
/// answer instead of SQLite's generic "file is not a database".
fn check_magic(path: &Path) -> Result<(), SqliteError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(SqliteError::Io)?;
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    file.take(SQLITE_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(SqliteError::Io)?;
    match head.as_slice() {
        [] => Err(SqliteError::Empty),
        h if h == SQLITE_MAGIC => Ok(()),
        _ => Err(SqliteError::NotSqlite),
    }
}

/// Calls `visit(hnum, header_blob)` for every row of the `Packages` table, in `hnum` order.
pub(crate) fn for_each_record<E>(
    path: &Path,
    limit: usize,
    mut visit: impl FnMut(u32, &[u8]) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<SqliteError>,
{
    check_magic(path)?;
    let query = if wal_has_data(path) {
        "mode=ro"
    } else {
        "immutable=1"
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri(path, query), flags).map_err(SqliteError::from)?;
    // Belt and braces: even a bug here cannot write to the host's database.
    conn.pragma_update(None, "query_only", true)
        .map_err(SqliteError::from)?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'Packages')",
            [],
            |row| row.get(0),
        )
        .map_err(SqliteError::from)?;
    if !has_table {
        return Err(SqliteError::NoPackagesTable.into());
    }
    // `length()` of a blob comes from the record header, so an oversized blob is measured
    // without being loaded, and only blobs within the limit are fetched.
    let mut stmt = conn
        .prepare(
            "SELECT hnum, typeof(blob), length(blob), \
                    CASE WHEN length(blob) <= ?1 THEN blob END \
             FROM Packages ORDER BY hnum",
        )
        .map_err(SqliteError::from)?;
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query([limit_sql]).map_err(SqliteError::from)?;
    while let Some(row) = rows.next().map_err(SqliteError::from)? {
        let hnum: i64 = row.get(0).map_err(SqliteError::from)?;
        let record = u32::try_from(hnum)
            .ok()
            .filter(|&r| r > 0)
            .ok_or(SqliteError::BadRecordNumber(hnum))?;
        let kind: String = row.get(1).map_err(SqliteError::from)?;
        if kind != "blob" {
            return Err(SqliteError::NotBlob { record: hnum, kind }.into());
        }
        let len: i64 = row.get(2).map_err(SqliteError::from)?;
        match row.get_ref(3).map_err(SqliteError::from)? {
            ValueRef::Blob(blob) => visit(record, blob)?,
            _ => return Err(SqliteError::TooLarge { record, len, limit }.into()),
        }
    }
    Ok(())
}
