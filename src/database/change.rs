//! What the database stores and how storing can fail: the vocabulary shared by the pool, its
//! workers and every backend.

use std::collections::{HashMap, HashSet};

use crate::list::{Entry, EntryId, ListName, TodoList};

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
    /// An earlier write of the same list failed or conflicted and the list has not been
    /// reloaded since, so this write was not applied.
    #[error("an earlier write of this list failed; this one was not applied")]
    Refused,
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

impl StorageError {
    /// The API's error code for this failure, the same from the server and the command line:
    /// `outcome_unknown` only where the write may have been stored.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Conflict => "conflict",
            StorageError::OutcomeUnknown(_) => "outcome_unknown",
            _ => "storage_unavailable",
        }
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
        idempotency_key: Option<IdempotencyKey>,
    },
    /// Overwrite an existing entry.
    Update(Entry),
    /// Delete one entry.
    Delete(EntryId),
    /// Delete every entry of the list; its id counter stays.
    Clear,
    /// Insert entries exported elsewhere, with their ids, and raise the id counter to
    /// `next_id`: an import into a list that holds none of them.
    Import {
        /// The entries, with their ids.
        entries: Vec<Entry>,
        /// The id the list will hand out next.
        next_id: EntryId,
    },
}

/// A list as storage holds it: its entries, id counter, idempotency keys and version.
#[derive(Debug, Clone, Default)]
pub struct StoredList {
    /// The entries and the next id.
    pub list: TodoList,
    /// Idempotency keys of earlier creates, with the id each created.
    pub idempotency_keys: HashMap<String, KeyedAdd>,
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

/// An `Idempotency-Key` as stored with the entry it created.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The key the client sent.
    pub key: String,
    /// A fingerprint of the request's fields, so a key reused for another request is told
    /// apart from a retry.
    pub fingerprint: i64,
}

/// What an idempotency key created: its entry, and the fingerprint of the request (`None` for
/// keys stored before fingerprints were).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedAdd {
    /// The entry the key created.
    pub id: EntryId,
    /// The fingerprint of the request that created it.
    pub fingerprint: Option<i64>,
}
