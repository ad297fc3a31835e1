//! Both backends' migrations have the same names, and each backend's list holds exactly the
//! files of its directory: the guard against the drift that leaves one backend a migration
//! behind the other.

use std::path::Path;

fn names(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

#[test]
fn the_two_backends_have_migrations_of_the_same_names() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let postgres = names(&here.join("migrations"));
    let sqlite = names(&here.join("../patchwarden-store-sqlite/migrations"));
    assert_eq!(postgres, sqlite);
    assert!(postgres.iter().all(|n| n.ends_with(".sql") && n.len() > 9));
}

#[test]
fn the_migration_list_holds_exactly_the_files_of_the_migrations_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let listed: Vec<String> = patchwarden_store_postgres::migrate::MIGRATIONS
        .iter()
        .map(|(name, _)| format!("{name}.sql"))
        .collect();
    assert_eq!(names(&dir), listed);
}
