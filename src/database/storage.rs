//! The storage backends there are, as one closed enum, so only the `database` module knows
//! they exist. Every backend stores entry rows, so a write touches a constant number of rows
//! whatever the list's size.

use crate::config::DatabaseConfig;
use crate::list::ListName;

use super::change::{Conflicts, StorageError, StoredList, VersionedChange};
use super::postgres::Postgres;
use super::sql::{CommitSteps, ListScope};
use super::sqlite::Sqlite;

/// A storage backend, owned by one database worker.
pub enum Storage {
    /// SQLite in a file, the embedded default.
    Sqlite(Sqlite),
    /// A PostgreSQL server, shared by several nodes.
    Postgres(Postgres),
}

impl Storage {
    /// Opens a connection to the configured backend, creating and migrating the schema as needed.
    pub fn open(config: &DatabaseConfig) -> Result<Storage, StorageError> {
        match &config.database_url {
            Some(url) => Postgres::connect(url).map(Storage::Postgres),
            None => Sqlite::open(&config.data_dir).map(Storage::Sqlite),
        }
    }

    /// Reads one list.
    pub fn load(&mut self, name: &ListName) -> Result<StoredList, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.load(name),
            Storage::Postgres(postgres) => postgres.load(name),
        }
    }

    /// The list's version in storage (0 if it was never written).
    pub fn version(&mut self, name: &ListName) -> Result<u64, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.version(name),
            Storage::Postgres(postgres) => postgres.version(name),
        }
    }

    /// Applies `changes` in one transaction, except those of lists whose version moved on
    /// (returned as conflicts); if anything else fails, nothing is applied.
    pub fn commit(&mut self, changes: &[VersionedChange<'_>]) -> Result<Conflicts, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.commit(changes),
            Storage::Postgres(postgres) => postgres.commit(changes),
        }
    }

    /// Names of the lists in `scope`, in order, after `after`, at most `limit`.
    pub fn list_names(
        &mut self,
        scope: ListScope,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ListName>, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.list_names(scope, after, limit),
            Storage::Postgres(postgres) => postgres.list_names(scope, after, limit),
        }
    }

    /// Runs `work` in one transaction and commits it; `writes` says whether it may write.
    pub fn transaction<R, E: From<StorageError>>(
        &mut self,
        writes: bool,
        work: impl FnOnce(&mut dyn CommitSteps) -> Result<R, E>,
    ) -> Result<R, E> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.transaction(writes, work),
            Storage::Postgres(postgres) => postgres.transaction(writes, work),
        }
    }

    /// Checks that storage answers.
    pub fn ping(&mut self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.ping(),
            Storage::Postgres(postgres) => postgres.ping(),
        }
    }

    /// Copies committed WAL frames into the database file, so the WAL stays bounded; a no-op
    /// on PostgreSQL, which checkpoints itself.
    pub fn checkpoint(&mut self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.checkpoint(),
            Storage::Postgres(_) => Ok(()),
        }
    }

    /// Whether the connection is lost for good, so the worker must open a new one.
    pub fn is_broken(&self) -> bool {
        match self {
            Storage::Sqlite(_) => false,
            Storage::Postgres(postgres) => postgres.is_broken(),
        }
    }
}
