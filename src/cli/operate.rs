//! Operating the store: `todo backup`, `todo restore` and `todo check` work on the storage
//! directly (blocking, outside the async runtime); `todo ping` asks a running server.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::DatabaseConfig;
use crate::database::sql::invariant_problems;
use crate::database::sqlite::{DATABASE_FILE, Sqlite};
use crate::database::storage::Storage;
use crate::database::{OpenError, StorageError, lock_data_dir};

use super::accounts::StorageArgs;

/// `todo backup FILE`: a consistent copy of the SQLite store, taken while a server may be
/// running and writing; then checked.
pub fn backup(storage: &StorageArgs, file: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(
        storage.database_url.is_none(),
        "todo backup copies the SQLite store; for PostgreSQL use pg_dump (see the README)"
    );
    anyhow::ensure!(!file.exists(), "{} exists; give a new file", file.display());
    let database = existing_database(&storage.data_dir)?;
    let mut source = Sqlite::open(&storage.data_dir).map_err(storage_error)?;
    source
        .backup_into(file)
        .with_context(|| format!("cannot write the backup {}", file.display()))?;
    let summary = check_file(file)?;
    Ok(format!(
        "backed up {} to {}: {summary}\n",
        database.display(),
        file.display()
    ))
}

/// `todo restore FILE`: replaces the store of a data directory no server holds with a backup
/// that passes the checks; the database it replaces is kept beside it, renamed.
pub fn restore(storage: &StorageArgs, file: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(
        storage.database_url.is_none(),
        "todo restore replaces a SQLite store; for PostgreSQL use pg_restore (see the README)"
    );
    let config = sqlite_config(&storage.data_dir);
    let _lock = lock_data_dir(&config).map_err(|error| match error {
        OpenError::Locked(path) => {
            anyhow::anyhow!("a todo server is running on {path}; stop it before restoring")
        }
        other => anyhow::anyhow!(other),
    })?;
    let summary = check_file(file).context("the backup is not fit to restore")?;
    let target = storage.data_dir.join(DATABASE_FILE);
    let mut text = String::new();
    if target.exists() {
        let kept = set_aside(&target)?;
        text += &format!("kept the database it replaces as {}\n", kept.display());
    }
    let restoring = storage.data_dir.join(format!("{DATABASE_FILE}.restoring"));
    fs::copy(file, &restoring).with_context(|| format!("cannot copy {}", file.display()))?;
    File::open(&restoring)?.sync_all()?;
    fs::rename(&restoring, &target)?;
    File::open(&storage.data_dir)?.sync_all()?;
    text += &format!(
        "restored {} from {}: {summary}\n",
        target.display(),
        file.display()
    );
    Ok(text)
}

/// Renames the database and its WAL and shared-memory files out of the way; returns the
/// database's new name.
fn set_aside(database: &Path) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let kept = database.with_file_name(format!("{DATABASE_FILE}.before-restore-{stamp}"));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", database.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", kept.display()));
            fs::rename(&from, &to).with_context(|| format!("cannot move {}", from.display()))?;
        }
    }
    Ok(kept)
}

/// `todo check`: SQLite's integrity check (on SQLite) and the project's invariants; a report,
/// and an error when anything is wrong.
pub fn check(storage: &StorageArgs) -> anyhow::Result<String> {
    let Some(url) = &storage.database_url else {
        let database = existing_database(&storage.data_dir)?;
        let name = database.display();
        return Ok(format!("{name}: {}\n", check_file(&database)?));
    };
    let config = DatabaseConfig {
        database_url: Some(url.clone()),
        ..DatabaseConfig::default()
    };
    let mut opened = Storage::open(&config).map_err(storage_error)?;
    let problems = opened
        .transaction(false, invariant_problems)
        .map_err(storage_error)?;
    let name = "the PostgreSQL database";
    Ok(format!(
        "{name}: {}\n",
        report(name, &problems, &mut opened)?
    ))
}

/// Checks a SQLite file (a store or a backup): SQLite's integrity check, then, when the pages
/// are sound, the project's invariants; a summary when it is sound.
fn check_file(file: &Path) -> anyhow::Result<String> {
    let mut sqlite = Sqlite::open_read_only(file).map_err(storage_error)?;
    let mut problems = sqlite.integrity_problems().map_err(storage_error)?;
    let mut opened = Storage::Sqlite(sqlite);
    if problems.is_empty() {
        problems = opened
            .transaction(false, invariant_problems)
            .map_err(storage_error)?;
    }
    report(&file.display().to_string(), &problems, &mut opened)
}

/// An error listing `problems`, or when there are none, what `storage` holds.
fn report(name: &str, problems: &[String], storage: &mut Storage) -> anyhow::Result<String> {
    if !problems.is_empty() {
        let list: String = problems
            .iter()
            .map(|problem| format!("\n  {problem}"))
            .collect();
        anyhow::bail!("{name} is damaged ({} problems):{list}", problems.len());
    }
    let counts = storage
        .transaction(false, |steps| {
            let lists = steps.query("SELECT count(*) FROM lists", &[])?;
            let entries = steps.query("SELECT count(*) FROM entries", &[])?;
            let count = |rows: &[Vec<crate::database::sql::Cell>]| {
                rows.first()
                    .and_then(|row| row.first())
                    .map_or(Ok(0), |cell| cell.int("count"))
            };
            Ok::<_, StorageError>((count(&lists)?, count(&entries)?))
        })
        .map_err(storage_error)?;
    Ok(format!("ok, {} lists, {} entries", counts.0, counts.1))
}

/// The database file of a data directory, which must exist: a check or backup of a directory
/// that holds none is a mistake (a wrong path), not an empty store.
fn existing_database(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let database = data_dir.join(DATABASE_FILE);
    anyhow::ensure!(
        database.is_file(),
        "{} holds no todo database ({DATABASE_FILE})",
        data_dir.display()
    );
    Ok(database)
}

fn sqlite_config(data_dir: &Path) -> DatabaseConfig {
    DatabaseConfig {
        data_dir: data_dir.to_owned(),
        ..DatabaseConfig::default()
    }
}

fn storage_error(error: StorageError) -> anyhow::Error {
    anyhow::anyhow!("storage: {error}")
}
