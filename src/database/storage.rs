//! What the database workers ask of a storage backend, and the backends there are.
//!
//! `Storage` is a closed enum of backends, so only the `database` module knows they exist. Every
//! backend stores entry rows, so a write touches a constant number of rows whatever the list's size.

use std::collections::HashMap;

use crate::config::DatabaseConfig;
use crate::list::{Entry, EntryId, ListName, TodoList};

use super::sqlite::Sqlite;

/// Why storage could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The backend reported an error (disk full, I/O error, lost connection, ...).
    #[error("storage failed: {0}")]
    Backend(String),
    /// A stored value does not pass validation, so the data was changed outside `todo`.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// An earlier write of this list failed, so writes queued behind it were refused.
    #[error("an earlier write of this list failed; the list is being reloaded")]
    Diverged,
    /// The database worker is gone (it failed too often, or the server is stopping).
    #[error("the database worker is unavailable")]
    Unavailable,
}

impl From<rusqlite::Error> for StorageError {
    fn from(error: rusqlite::Error) -> StorageError {
        StorageError::Backend(error.to_string())
    }
}

/// One change to one list, as it is written to storage.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert a new entry; `next_id` is the list's counter after it.
    Add {
        /// The entry, with the id the list gave it.
        entry: Entry,
        /// The id the list will hand out next.
        next_id: EntryId,
        /// The client's `Idempotency-Key`, stored with the entry in the same transaction.
        idempotency_key: Option<String>,
    },
    /// Overwrite an existing entry.
    Update(Entry),
    /// Delete one entry.
    Delete(EntryId),
    /// Delete every entry of the list; its id counter stays.
    Clear,
}

/// A list as storage holds it: its entries, id counter and idempotency keys.
#[derive(Debug, Clone, Default)]
pub struct StoredList {
    /// The entries and the next id.
    pub list: TodoList,
    /// Idempotency keys of earlier creates, with the id each created.
    pub idempotency_keys: HashMap<String, EntryId>,
}

/// A storage backend, owned by one database worker.
pub enum Storage {
    /// SQLite in a file, the embedded default.
    Sqlite(Sqlite),
}

impl Storage {
    /// Opens a connection to the configured backend, creating and migrating the schema as needed.
    pub fn open(config: &DatabaseConfig) -> Result<Storage, StorageError> {
        Sqlite::open(&config.data_dir).map(Storage::Sqlite)
    }

    /// Reads one list.
    pub fn load(&mut self, name: &ListName) -> Result<StoredList, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.load(name),
        }
    }

    /// Applies `changes` in one transaction: all of them, or none.
    pub fn commit(&mut self, changes: &[(&ListName, &Change)]) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.commit(changes),
        }
    }

    /// Names of lists that hold entries, in order, after `after`, at most `limit`.
    pub fn list_names(&mut self, after: &str, limit: usize) -> Result<Vec<ListName>, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.list_names(after, limit),
        }
    }

    /// Checks that storage answers.
    pub fn ping(&mut self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.ping(),
        }
    }
}
