//! The SQLite backend and database discovery, on databases the real rpm wrote: whatever
//! `rpm -qa` lists, the reader lists, and reading leaves no trace beside the database.

mod rpm_support;

use std::path::Path;

use patchwarden_agent::inventory::rpm::{
    self, Backend, Limits, RpmDbError, SqliteError, read_database, read_packages,
};
use patchwarden_agent::root::{HostRoot, RootError};
use rpm_support::*;

fn locate(root: &Path) -> Result<rpm::Database, RpmDbError> {
    rpm::locate(&HostRoot::new(root).unwrap())
}

#[test]
fn sqlite_database_written_by_rpm_matches_rpm_qa() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = standard_root(dir.path(), "sqlite_database_written_by_rpm_matches_rpm_qa")
    else {
        return;
    };
    let oracle = rpm_qa(&root, "/var/lib/rpm", "sqlite");
    let packages = read_packages(&root).unwrap();
    assert_eq!(rows(&packages), without_keys(&oracle));
    assert_eq!(packages.len(), 5, "{packages:#?}");

    let db = locate(&root).unwrap();
    assert_eq!(db.backend, Backend::Sqlite);
    assert!(
        db.path.ends_with("var/lib/rpm/rpmdb.sqlite"),
        "{}",
        db.path.display()
    );

    // The fields the matcher relies on, spelled out once.
    let find = |name: &str| packages.iter().find(|p| p.name == name).unwrap();
    let lib = find("libhello");
    assert_eq!(lib.epoch, Some(3));
    assert_eq!(lib.version, "1.2-4.el9");
    assert_eq!(lib.full_version(), "3:1.2-4.el9");
    assert_eq!(lib.source_name.as_deref(), Some("hello"));
    assert_eq!(lib.source_version.as_deref(), Some("1.2-4.el9"));
    assert_eq!(
        lib.module.as_deref(),
        Some("hello:1.2:9040020240101:abcdef12")
    );
    assert_eq!(find("zero-epoch").epoch, Some(0));
    let py = find("python3-foo-bar");
    assert_eq!((py.epoch, py.arch.as_deref()), (None, Some("noarch")));
    assert_eq!(py.source_name.as_deref(), Some("python3-foo-bar"));
    assert_eq!(py.source_version.as_deref(), Some("2.0~rc1-1.fc40"));
    assert_eq!(py.module, None);
}

#[test]
fn gpg_pubkey_records_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let test = "gpg_pubkey_records_are_left_out";
    let Some(root) = standard_root(dir.path(), test) else {
        return;
    };
    let oracle = rpm_qa(&root, "/var/lib/rpm", "sqlite");
    if !oracle.iter().any(|l| l.starts_with("gpg-pubkey|")) {
        // Only when gpg is missing (and allowed to be) is there no key to leave out.
        assert!(std::env::var_os("PATCHWARDEN_REQUIRE_TOOLS").is_none());
        return;
    }
    let packages = read_packages(&root).unwrap();
    assert!(packages.iter().all(|p| p.name != "gpg-pubkey"));
    assert_eq!(packages.len() + 1, oracle.len());
}

#[test]
fn sysimage_location_is_found_through_var_lib_rpm_symlink() {
    let dir = tempfile::tempdir().unwrap();
    if !have_rpm("sysimage_location_is_found_through_var_lib_rpm_symlink") {
        return;
    }
    let rpms = build_rpms(dir.path(), &standard_specs());
    let root = dir.path().join("root");
    install(&root, "/usr/lib/sysimage/rpm", "sqlite", &rpms);
    // Fedora 36+ and openSUSE: /var/lib/rpm is a relative link to the sysimage directory.
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink("../../usr/lib/sysimage/rpm", root.join("var/lib/rpm")).unwrap();
    let db = locate(&root).unwrap();
    assert!(
        db.path.ends_with("usr/lib/sysimage/rpm/rpmdb.sqlite"),
        "{}",
        db.path.display()
    );
    let oracle = rpm_qa(&root, "/usr/lib/sysimage/rpm", "sqlite");
    assert_eq!(rows(&read_packages(&root).unwrap()), without_keys(&oracle));
}

#[test]
fn absolute_symlink_is_resolved_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    if !have_rpm("absolute_symlink_is_resolved_inside_the_root") {
        return;
    }
    let rpms = build_rpms(dir.path(), &standard_specs());
    let root = dir.path().join("root");
    install(&root, "/opt/patchwarden-rpmdb-in-root", "sqlite", &rpms);
    // Followed on the agent's own host this link would lead nowhere (or to the host's own
    // database); inside the root it leads to the database rpm just wrote.
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink("/opt/patchwarden-rpmdb-in-root", root.join("var/lib/rpm")).unwrap();
    let oracle = rpm_qa(&root, "/opt/patchwarden-rpmdb-in-root", "sqlite");
    assert_eq!(rows(&read_packages(&root).unwrap()), without_keys(&oracle));
}

#[test]
fn symlink_loop_under_the_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink("rpm-b", root.join("var/lib/rpm")).unwrap();
    std::os::unix::fs::symlink("rpm", root.join("var/lib/rpm-b")).unwrap();
    let err = read_packages(root).unwrap_err();
    assert!(
        matches!(err, RpmDbError::Root(RootError::SymlinkLoop { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("var/lib/rpm"), "{err}");
}

#[test]
fn a_root_without_an_rpm_database_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_packages(dir.path()).unwrap_err();
    assert!(matches!(err, RpmDbError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("var/lib/rpm/rpmdb.sqlite") && msg.contains("Packages.db"),
        "{msg}"
    );
}

/// Copies a database into a fresh root that holds nothing but `var/lib/rpm/<file>`.
fn root_with(dir: &Path, file: &str, bytes: &[u8]) -> std::path::PathBuf {
    let root = dir.join("copy");
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    std::fs::write(root.join("var/lib/rpm").join(file), bytes).unwrap();
    root
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn reading_creates_no_wal_or_shm_files() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = standard_root(dir.path(), "reading_creates_no_wal_or_shm_files") else {
        return;
    };
    let bytes = std::fs::read(root.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let copy = root_with(dir.path(), "rpmdb.sqlite", &bytes);
    let db_dir = copy.join("var/lib/rpm");
    // A normal read-only open would leave -wal and -shm files here (rpm uses WAL mode).
    let before = listing(&db_dir);
    let packages = read_packages(&copy).unwrap();
    assert_eq!(packages.len(), 5);
    assert_eq!(listing(&db_dir), before);
    assert_eq!(std::fs::read(db_dir.join("rpmdb.sqlite")).unwrap(), bytes);
}

#[test]
fn committed_transactions_still_in_the_wal_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = standard_root(
        dir.path(),
        "committed_transactions_still_in_the_wal_are_read",
    ) else {
        return;
    };
    // Record one package a second time in a transaction that stays in the write-ahead log, as
    // when rpm is interrupted before its final checkpoint. (Deleting would trip the index
    // tables' foreign keys; a duplicate is just as visible.)
    let db_path = root.join("var/lib/rpm/rpmdb.sqlite");
    {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let added = conn
            .execute(
                "INSERT INTO Packages (blob) SELECT blob FROM Packages \
                 WHERE hnum = (SELECT min(hnum) FROM Packages)",
                [],
            )
            .unwrap();
        assert_eq!(added, 1);
    }
    let wal = root.join("var/lib/rpm/rpmdb.sqlite-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the test needs a non-empty WAL"
    );
    let packages = read_packages(&root).unwrap();
    assert_eq!(packages.len(), 6);
    // rpm, which reads the log, is the judge.
    let oracle = rpm_qa(&root, "/var/lib/rpm", "sqlite");
    assert_eq!(rows(&packages), without_keys(&oracle));
}

#[test]
fn zero_byte_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), "rpmdb.sqlite", b"");
    let err = read_packages(&root).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Sqlite {
                source: SqliteError::Empty,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("rpmdb.sqlite (rpm sqlite database): the file is empty (0 bytes)"),
        "{err}"
    );
}

#[test]
fn garbage_in_place_of_the_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), "rpmdb.sqlite", &[0x5a; 10_000]);
    let err = read_packages(&root).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Sqlite {
                source: SqliteError::NotSqlite,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_database_without_a_packages_table_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with(dir.path(), "rpmdb.sqlite", b"");
    let path = root.join("var/lib/rpm/rpmdb.sqlite");
    std::fs::remove_file(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE Other (x)").unwrap();
    drop(conn);
    let err = read_packages(&root).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Sqlite {
                source: SqliteError::NoPackagesTable,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_database_path_that_is_a_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let err = read_packages(dir.path()).unwrap_err();
    assert!(
        matches!(err, RpmDbError::Root(RootError::NotAFile { .. })),
        "{err:?}"
    );
}

/// The standard database with one SQL change applied to a copy.
fn altered(dir: &Path, test: &str, sql: &str) -> Option<std::path::PathBuf> {
    let root = standard_root(dir, test)?;
    let conn = rusqlite::Connection::open(root.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    conn.execute_batch(sql).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    Some(root)
}

#[test]
fn a_truncated_header_names_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "UPDATE Packages SET blob = substr(blob, 1, 100) WHERE hnum = 2";
    let Some(root) = altered(dir.path(), "a_truncated_header_names_its_record", sql) else {
        return;
    };
    let err = read_packages(&root).unwrap_err();
    assert!(
        matches!(err, RpmDbError::Header { record: 2, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("rpmdb.sqlite: record 2: header declares"),
        "{msg}"
    );
}

#[test]
fn text_in_the_blob_column_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "UPDATE Packages SET blob = 'not a header' WHERE hnum = 3";
    let Some(root) = altered(dir.path(), "text_in_the_blob_column_is_an_error", sql) else {
        return;
    };
    let err = read_packages(&root).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Sqlite {
                source: SqliteError::NotBlob { record: 3, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn limits_on_packages_and_header_size_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = standard_root(
        dir.path(),
        "limits_on_packages_and_header_size_are_enforced",
    ) else {
        return;
    };
    let db = locate(&root).unwrap();
    let few = Limits {
        max_packages: 2,
        ..Limits::default()
    };
    let err = read_database(&db, &few).unwrap_err();
    assert!(
        matches!(err, RpmDbError::TooManyPackages { limit: 2, .. }),
        "{err:?}"
    );
    let small = Limits {
        max_header_bytes: 100,
        ..Limits::default()
    };
    let err = read_database(&db, &small).unwrap_err();
    assert!(
        matches!(
            &err,
            RpmDbError::Sqlite {
                source: SqliteError::TooLarge { limit: 100, .. },
                ..
            }
        ),
        "{err:?}"
    );
    let tiny_file = Limits {
        max_database_bytes: 1000,
        ..Limits::default()
    };
    let err = read_database(&db, &tiny_file).unwrap_err();
    assert!(
        matches!(err, RpmDbError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
}
