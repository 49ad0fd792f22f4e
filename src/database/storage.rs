//! What the database workers ask of a storage backend, and the backends there are.
//!
//! `Storage` is a closed enum of backends, so only the `database` module knows they exist. Every
//! backend stores entry rows, so a write touches a constant number of rows whatever the list's size.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::DatabaseConfig;
use crate::list::{Entry, EntryId, ListName, TodoList};

use super::postgres::Postgres;
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
    /// The commit failed at or after the point where the database may already have made it
    /// durable (a failed fsync; the connection lost during `COMMIT`): it may be stored or not.
    #[error("the commit's outcome is unknown: {0}")]
    OutcomeUnknown(String),
    /// Memory and storage disagree (an update or delete found no row, or a list's writes do
    /// not follow one another); nothing of the group was applied.
    #[error("memory and storage disagree; nothing was applied")]
    Diverged,
    /// Storage panicked; the worker reopens its connection.
    #[error("storage panicked")]
    Panicked,
    /// The database worker is gone (it failed too often, or the server is stopping).
    #[error("the database worker is unavailable")]
    Unavailable,
    /// Another node changed the list since this node loaded it; the list is reloaded and the
    /// write was not applied.
    #[error("another node changed this list; retry on its current state")]
    Conflict,
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

/// A list as storage holds it: its entries, id counter, idempotency keys and version.
#[derive(Debug, Clone, Default)]
pub struct StoredList {
    /// The entries and the next id.
    pub list: TodoList,
    /// Idempotency keys of earlier creates, with the id each created.
    pub idempotency_keys: HashMap<String, EntryId>,
    /// Bumped by every committed change; 0 for a list never written.
    pub version: u64,
}

/// One change as a commit applies it: `expected_version` is the list's version in storage
/// right before it, as the writing actor believes it to be.
pub struct VersionedChange<'a> {
    /// The list it changes.
    pub list: &'a ListName,
    /// The version the list must have for the change to apply.
    pub expected_version: u64,
    /// What to store.
    pub change: &'a Change,
}

/// Lists whose stored version differed from what their writes expected: another node changed
/// them since this node loaded them. None of their changes in the commit were applied.
pub type Conflicts = HashSet<ListName>;

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

    /// Names of lists that hold entries, in order, after `after`, at most `limit`.
    pub fn list_names(&mut self, after: &str, limit: usize) -> Result<Vec<ListName>, StorageError> {
        match self {
            Storage::Sqlite(sqlite) => sqlite.list_names(after, limit),
            Storage::Postgres(postgres) => postgres.list_names(after, limit),
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

    /// Whether other nodes may write the same lists, so a read must check the list's version.
    pub fn is_shared(&self) -> bool {
        matches!(self, Storage::Postgres(_))
    }
}

/// The statements a backend runs inside one open transaction, for `apply_versioned`.
pub trait CommitSteps {
    /// Compare-and-set on a list's row: if its version is `expected` (0 and no row for a new
    /// list), sets it to `new` and raises its id counter to `next_id`, and returns true;
    /// otherwise changes nothing and returns false. On PostgreSQL this also locks the row
    /// until the commit, so nodes writing one list take turns.
    fn claim(
        &mut self,
        list: &ListName,
        expected: u64,
        new: u64,
        next_id: Option<EntryId>,
    ) -> Result<bool, StorageError>;
    /// Applies one change to the entry rows of `list`.
    fn apply(&mut self, list: &ListName, change: &Change) -> Result<(), StorageError>;
}

/// What one commit does to one list's row.
struct ListPlan {
    /// The version the list's first write expects.
    expected: u64,
    /// How many of the commit's writes are for this list.
    n_changes: u64,
    /// The list's id counter after its adds, if it has any.
    next_id: Option<EntryId>,
}

/// Applies `changes` through `steps` with a compare-and-set on each list's version: the one
/// code path that makes several nodes on one database safe, on every backend. Each list's row
/// is claimed once per commit, in name order so that two nodes never deadlock; the changes of
/// lists whose version moved on are skipped and returned as conflicts.
pub fn apply_versioned(
    steps: &mut impl CommitSteps,
    changes: &[VersionedChange<'_>],
) -> Result<Conflicts, StorageError> {
    let mut plans: BTreeMap<&ListName, ListPlan> = BTreeMap::new();
    for change in changes {
        let plan = plans.entry(change.list).or_insert(ListPlan {
            expected: change.expected_version,
            n_changes: 0,
            next_id: None,
        });
        // An actor's writes follow one another, so within a list the chain never breaks; if
        // it does, memory and storage disagree and nothing may commit.
        if change.expected_version != plan.expected + plan.n_changes {
            return Err(StorageError::Diverged);
        }
        plan.n_changes += 1;
        if let Change::Add { next_id, .. } = change.change {
            plan.next_id = plan.next_id.max(Some(*next_id));
        }
    }
    let mut conflicts = Conflicts::new();
    for (list, plan) in &plans {
        if !steps.claim(
            list,
            plan.expected,
            plan.expected + plan.n_changes,
            plan.next_id,
        )? {
            conflicts.insert((*list).clone());
        }
    }
    for change in changes {
        if !conflicts.contains(change.list) {
            steps.apply(change.list, change.change)?;
        }
    }
    Ok(conflicts)
}

/// An id as both backends store it.
pub fn sql_id(id: EntryId) -> i64 {
    i64::try_from(id.get())
        .expect("ids and counters stay at or below EntryId::MAX + 1, which fits in i64")
}

/// A stored id, checked.
pub fn entry_id(id: i64) -> Result<EntryId, StorageError> {
    u64::try_from(id)
        .ok()
        .and_then(EntryId::new)
        .ok_or_else(|| StorageError::Corrupt(format!("entry id {id} is not positive")))
}

/// A stored list version, checked.
pub fn stored_version(version: i64) -> Result<u64, StorageError> {
    u64::try_from(version)
        .map_err(|_| StorageError::Corrupt(format!("list version {version} is negative")))
}

/// A version as both backends store it.
pub fn sql_version(version: u64) -> Result<i64, StorageError> {
    i64::try_from(version)
        .map_err(|_| StorageError::Corrupt(format!("list version {version} overflows")))
}

/// An update or delete of an entry the list holds must touch exactly one row; anything else
/// means memory and storage disagree, and the group must not commit.
pub fn expect_one_row(n_rows: u64) -> Result<(), StorageError> {
    match n_rows {
        1 => Ok(()),
        _ => Err(StorageError::Diverged),
    }
}

/// A stored value that does not validate.
pub fn corrupt(error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(error.to_string())
}
