//! The SQLite backend: one file in the data directory, WAL journal, `synchronous=FULL`.
//!
//! Each database worker owns one connection. Transactions start with `BEGIN IMMEDIATE`, so
//! workers queue for SQLite's single write lock instead of failing on an upgrade.

use std::path::Path;
use std::time::Duration;

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, ToSql, TransactionBehavior, params,
};

use crate::list::{ListName, TodoList};

use super::change::{Conflicts, KeyedAdd, StorageError, StoredList, VersionedChange};
use super::sql::{
    self, Cell, CommitSteps, ListScope, Param, apply_versioned, corrupt, stored_version,
};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "todo.sqlite3";

/// How long a worker waits for another worker's write lock before its commit fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a worker sleeps between two tries for the write lock. SQLite's own busy timeout
/// backs off to sleeps of up to 100 ms, far longer than the other workers' commits take, so
/// workers would mostly wait for nothing.
const BUSY_RETRY: Duration = Duration::from_micros(50);

/// The page cache of each connection, in KiB.
const CACHE_KIB: i64 = 32 * 1024;
/// How much of the file each connection maps into memory, so reads of pages not in the cache
/// are page faults, not `pread` calls.
const MMAP_BYTES: i64 = 256 * 1024 * 1024;

/// The schema, one step per version; a database at version N runs the steps after N.
/// Steps are never edited once released, only appended.
const MIGRATIONS: &[&str] = &[
    // 1: lists with their id counter and a version for compare-and-set, and entry rows.
    "CREATE TABLE lists (
        name TEXT PRIMARY KEY,
        next_id INTEGER NOT NULL,
        version INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE entries (
        list TEXT NOT NULL,
        id INTEGER NOT NULL,
        date TEXT NOT NULL,
        title TEXT NOT NULL,
        done INTEGER NOT NULL,
        position INTEGER,
        PRIMARY KEY (list, id)
    ) WITHOUT ROWID;",
    // 2: idempotency keys of creates, written in the same transaction as the entry.
    "CREATE TABLE idempotency_keys (
        list TEXT NOT NULL,
        key TEXT NOT NULL,
        entry_id INTEGER NOT NULL,
        PRIMARY KEY (list, key)
    ) WITHOUT ROWID;",
    // 3: a fingerprint of the request that created each key, to refuse a key reused for
    // another request (NULL for keys stored before).
    "ALTER TABLE idempotency_keys ADD COLUMN fingerprint INTEGER;",
    // 4: accounts. Lists of a user are keyed `USER_ID:NAME`; ids are never reused
    // (AUTOINCREMENT), so a new user of an old name never sees the old user's lists.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        last_used_at INTEGER
    );
    CREATE INDEX tokens_by_user ON tokens (user_id);
    CREATE TABLE members (
        list TEXT NOT NULL,
        user_id INTEGER NOT NULL,
        owner_id INTEGER NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (list, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members (user_id);
    CREATE TABLE links (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        list TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX links_by_list ON links (list);",
];

/// A database file of 0 bytes in a data directory a server has `used` (it left its lock
/// file), or beside a write-ahead log, is an error, not a new empty store: starting on it
/// would hide that every list is gone. A file that does not exist yet is a new store.
pub fn refuse_emptied(data_dir: &Path, used: bool) -> Result<(), String> {
    let database = data_dir.join(DATABASE_FILE);
    let wal = data_dir.join(format!("{DATABASE_FILE}-wal"));
    let empty = std::fs::metadata(&database).is_ok_and(|metadata| metadata.len() == 0);
    if empty && (used || wal.exists()) {
        return Err("it is empty, but a server has used this data directory".into());
    }
    Ok(())
}

/// One connection to the SQLite database.
pub struct Sqlite {
    connection: Connection,
    #[cfg(test)]
    data_dir: std::path::PathBuf,
}

impl Sqlite {
    /// Opens the database in `data_dir`, creating and migrating it as needed.
    pub fn open(data_dir: &Path) -> Result<Sqlite, StorageError> {
        let mut connection = Connection::open(data_dir.join(DATABASE_FILE))?;
        connection.busy_handler(Some(wait_for_lock))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run between groups (`checkpoint`), not inside a commit.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Hot pages stay in memory, so a commit seldom reads the file.
        connection.pragma_update(None, "cache_size", -CACHE_KIB)?;
        connection.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        let mut sqlite = Sqlite {
            connection,
            #[cfg(test)]
            data_dir: data_dir.to_owned(),
        };
        sqlite.migrate()?;
        Ok(sqlite)
    }

    fn migrate(&mut self) -> Result<(), StorageError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)",
            [],
        )?;
        let current: i64 = transaction.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )?;
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            let version = index as i64 + 1;
            if version > current {
                transaction.execute_batch(migration)?;
                transaction.execute("INSERT INTO schema_migrations VALUES (?1)", [version])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Reads one list with its entries and idempotency keys.
    pub fn load(&mut self, name: &ListName) -> Result<StoredList, StorageError> {
        let row: Option<(i64, i64)> = self
            .connection
            .prepare_cached(sql::SELECT_LIST)?
            .query_row([name.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let Some((next_id, version)) = row else {
            return Ok(StoredList::default());
        };
        let mut statement = self.connection.prepare_cached(sql::SELECT_ENTRIES)?;
        let mut rows = statement.query([name.as_str()])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            let (date, title): (String, String) = (row.get(1)?, row.get(2)?);
            entries.push(sql::entry(
                row.get(0)?,
                &date,
                &title,
                row.get(3)?,
                row.get(4)?,
            )?);
        }
        Ok(StoredList {
            list: TodoList::from_entries(sql::next_id(next_id)?, entries),
            idempotency_keys: self.idempotency_keys(name)?,
            version: stored_version(version)?,
        })
    }

    fn idempotency_keys(&self, name: &ListName) -> Result<HashMap<String, KeyedAdd>, StorageError> {
        let mut statement = self.connection.prepare_cached(sql::SELECT_KEYS)?;
        let rows = statement.query_map([name.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
        })?;
        let mut keys = HashMap::new();
        for row in rows {
            let (key, id, fingerprint) = row?;
            keys.insert(key, sql::keyed_add(id, fingerprint)?);
        }
        Ok(keys)
    }

    /// Applies every change in one transaction; if one fails, none is kept.
    pub fn commit(&mut self, changes: &[VersionedChange<'_>]) -> Result<Conflicts, StorageError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let conflicts = apply_versioned(&mut Steps(&transaction), changes)?;
        #[cfg(test)]
        crate::fault::check_commit(&self.data_dir)?;
        // Up to here an error rolls back. `COMMIT` appends the frames to the WAL and then
        // fsyncs: if it fails, the frames may be on disk, and recovery would replay them.
        transaction
            .commit()
            .map_err(|error| StorageError::OutcomeUnknown(error.to_string()))?;
        #[cfg(test)]
        crate::fault::check_after_commit(&self.data_dir)?;
        Ok(conflicts)
    }

    /// Opens an existing database file read-only, as it is: no migration, no settings. For
    /// checking a backup before it is restored.
    pub fn open_read_only(file: &Path) -> Result<Sqlite, StorageError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(file, flags)?;
        Ok(Sqlite {
            connection,
            #[cfg(test)]
            data_dir: file.parent().unwrap_or(Path::new(".")).to_owned(),
        })
    }

    /// Writes a consistent copy of the database to `file`, which must not exist, while
    /// other connections go on writing: `VACUUM INTO` reads one snapshot.
    pub fn backup_into(&mut self, file: &Path) -> Result<(), StorageError> {
        let target = file
            .to_str()
            .ok_or_else(|| StorageError::Backend(format!("{} is not UTF-8", file.display())))?;
        self.connection.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }

    /// What SQLite's `integrity_check` finds wrong with the file (nothing when it is sound).
    pub fn integrity_problems(&mut self) -> Result<Vec<String>, StorageError> {
        let mut statement = self.connection.prepare("PRAGMA integrity_check(100)")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        let mut problems = Vec::new();
        for row in rows {
            let row = row?;
            if row != "ok" {
                problems.push(row);
            }
        }
        Ok(problems)
    }

    /// Copies committed WAL frames into the database file without waiting for readers.
    pub fn checkpoint(&mut self) -> Result<(), StorageError> {
        self.connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The list's version, 0 if it has no row.
    pub fn version(&mut self, name: &ListName) -> Result<u64, StorageError> {
        let version: Option<i64> = self
            .connection
            .prepare_cached(sql::SELECT_VERSION)?
            .query_row([name.as_str()], |row| row.get(0))
            .optional()?;
        version.map_or(Ok(0), stored_version)
    }

    /// Names of the lists in `scope`, after `after` in byte order, at most `limit`.
    pub fn list_names(
        &mut self,
        scope: ListScope,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ListName>, StorageError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT name FROM lists WHERE name > ?1 AND name < ?2
               AND (?3 OR name NOT LIKE '%:%')
               AND (?5 AND next_id > 1
                    OR EXISTS (SELECT 1 FROM entries WHERE entries.list = lists.name))
             ORDER BY name LIMIT ?4",
        )?;
        let (first, end, owned, emptied) = sql::list_name_bounds(scope, after);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names = statement.query_map(params![first, end, owned, limit, emptied], |row| {
            row.get::<_, String>(0)
        })?;
        let mut list_names = Vec::new();
        for name in names {
            list_names.push(sql::bare_list_name(scope, &name?)?);
        }
        Ok(list_names)
    }

    /// Runs `work` in one transaction; `writes` takes the write lock at the start, so the
    /// transaction never fails halfway on an upgrade.
    pub fn transaction<R, E: From<StorageError>>(
        &mut self,
        writes: bool,
        work: impl FnOnce(&mut dyn CommitSteps) -> Result<R, E>,
    ) -> Result<R, E> {
        let behavior = if writes {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let transaction = self
            .connection
            .transaction_with_behavior(behavior)
            .map_err(StorageError::from)?;
        let result = work(&mut Steps(&transaction))?;
        transaction.commit().map_err(StorageError::from)?;
        Ok(result)
    }

    /// Runs a trivial query.
    pub fn ping(&mut self) -> Result<(), StorageError> {
        self.connection.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

/// SQLite's busy handler: sleep briefly and retry, until `BUSY_TIMEOUT` has passed.
fn wait_for_lock(n_tries: i32) -> bool {
    let max_tries = BUSY_TIMEOUT.as_micros() / BUSY_RETRY.as_micros();
    if u128::try_from(n_tries).unwrap_or(u128::MAX) >= max_tries {
        return false;
    }
    std::thread::sleep(BUSY_RETRY);
    true
}

/// The transaction, for `apply_versioned`.
struct Steps<'a, 't>(&'a rusqlite::Transaction<'t>);

impl CommitSteps for Steps<'_, '_> {
    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StorageError> {
        let mut statement = self.0.prepare_cached(sql)?;
        let n_rows = statement.execute(rusqlite::params_from_iter(params))?;
        Ok(n_rows as u64)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Vec<Cell>>, StorageError> {
        let mut statement = self.0.prepare_cached(sql)?;
        let n_columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        let mut cells = Vec::new();
        while let Some(row) = rows.next()? {
            let mut columns = Vec::with_capacity(n_columns);
            for index in 0..n_columns {
                columns.push(match row.get_ref(index)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(int) => Cell::Int(int),
                    ValueRef::Text(text) => Cell::Text(String::from_utf8_lossy(text).into_owned()),
                    other => return Err(corrupt(format!("unexpected column {other:?}"))),
                });
            }
            cells.push(columns);
        }
        Ok(cells)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Text(text) => ToSqlOutput::from(text),
            Param::Int(int) => ToSqlOutput::from(int),
            Param::OptionalInt(int) => {
                int.map_or(ToSqlOutput::Owned(Value::Null), ToSqlOutput::from)
            }
            Param::Bool(value) => ToSqlOutput::from(value),
        })
    }
}

impl From<rusqlite::Error> for StorageError {
    /// SQLite's own verdict that the file is damaged is `Corrupt`, which `/healthz` reports;
    /// everything else is a backend failure.
    fn from(error: rusqlite::Error) -> StorageError {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StorageError::Corrupt(error.to_string())
            }
            _ => StorageError::Backend(error.to_string()),
        }
    }
}
