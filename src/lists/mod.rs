//! One actor per list: the book's `Todo.Server`, and the single owner of its list.
//!
//! A list actor holds its `TodoList`, its version, the writes it has handed to the database and
//! the replies still waiting for their commits, and the reload after a failed or conflicting
//! commit. The database worker only commits and reports each write's outcome. Writes are
//! answered once committed; reads are answered at once from the list's committed state, which
//! the actor publishes before it answers a writer, so most reads need no message at all.
//! `handle.rs` is the way in (the mailbox), `actor.rs` the sequential loop behind it, and
//! `shared.rs` the list's one copy, which the actor changes and readers read.

mod actor;
pub mod feed;
mod handle;
mod shared;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::database::{Database, StorageError};
use crate::list::{Changes, Date, Entry, EntryId, ListError, ListName, NewEntry, TodoList};

pub use actor::ParkedList;
pub use handle::ListHandle;
pub use shared::{Committed, SharedList, Start, Subscription};

/// Which entries to read.
#[derive(Debug, Clone, Copy)]
pub enum EntriesQuery {
    /// Every entry, in id order.
    All,
    /// The entries on one date, in id order.
    On(Date),
    /// The entries from one date to another, both included, by date and then id.
    Between(Date, Date),
}

impl EntriesQuery {
    /// The entries of `list` this query asks for, borrowed from it.
    pub fn run(self, list: &TodoList) -> Vec<&Entry> {
        match self {
            EntriesQuery::All => list.all_entries().collect(),
            EntriesQuery::On(date) => list.entries(date).collect(),
            EntriesQuery::Between(from, to) => list.entries_between(from..=to).collect(),
        }
    }

    /// Whether `entry` is one this query asks for.
    fn wants(self, entry: &Entry) -> bool {
        match self {
            EntriesQuery::All => true,
            EntriesQuery::On(date) => entry.date == date,
            EntriesQuery::Between(from, to) => (from..=to).contains(&entry.date),
        }
    }

    /// Puts entries in this query's order: by id for one day or all, by date and id for a range.
    fn sort(self, entries: &mut [&Entry]) {
        match self {
            EntriesQuery::All | EntriesQuery::On(_) => entries.sort_by_key(|entry| entry.id),
            EntriesQuery::Between(..) => entries.sort_by_key(|entry| (entry.date, entry.id)),
        }
    }
}

/// An entry made by an add; `replayed` when an idempotency key matched an earlier add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The entry.
    pub entry: Entry,
    /// Whether this answers an earlier request with the same key.
    pub replayed: bool,
}

/// A write sent without waiting for its answer (a cast).
#[derive(Debug, Clone)]
pub enum Command {
    /// Add an entry; a repeated `idempotency_key` does nothing more.
    AddEntry {
        /// The new entry's fields.
        entry: NewEntry,
        /// The client's `Idempotency-Key`, if it sent one.
        idempotency_key: Option<String>,
    },
    /// Change some fields of an entry.
    UpdateEntry {
        /// Which entry.
        id: EntryId,
        /// The fields to change.
        changes: Changes,
    },
}

/// Why a request to a list failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// No entry has this id.
    #[error("entry {0} not found")]
    NotFound(EntryId),
    /// The list has used up every id.
    #[error("the list has run out of entry ids")]
    IdsExhausted,
    /// The idempotency key was first used for an add with other fields.
    #[error("this Idempotency-Key was already used for a different entry")]
    IdempotencyKeyReused,
    /// The idempotency key created an entry that has since been deleted.
    #[error("the entry created with this idempotency key has been deleted")]
    IdempotentEntryDeleted,
    /// Storage failed: `OutcomeUnknown` means a write may be stored; otherwise it is not.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The call got no answer within its timeout; a write may still be stored.
    #[error("the list did not answer in time")]
    Timeout,
    /// The mailbox is full and the request was a cast.
    #[error("the list is overloaded")]
    Overloaded,
    /// The actor panicked while handling the request; it restarts from storage on next use.
    #[error("the list failed while handling the request")]
    Crashed,
    /// The server is shutting down and takes no new requests.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// An import would mix with what the list holds, or reuse its ids; nothing was written.
    #[error("{0}")]
    ImportConflict(String),
}

impl From<ListError> for RequestError {
    fn from(error: ListError) -> RequestError {
        match error {
            ListError::NotFound(id) => RequestError::NotFound(id),
            ListError::IdsExhausted => RequestError::IdsExhausted,
        }
    }
}

/// Where an answer goes: a waiting caller, or nowhere for a cast.
pub type Responder<T> = Option<oneshot::Sender<Result<T, RequestError>>>;

/// A request in a list's mailbox, with a responder typed by what it answers.
pub enum Request {
    /// Add an entry.
    AddEntry {
        /// Its fields.
        entry: NewEntry,
        /// The client's `Idempotency-Key`.
        idempotency_key: Option<String>,
        /// Gets the entry once it is committed.
        respond_to: Responder<Created>,
    },
    /// Read entries.
    Entries {
        /// Which.
        query: EntriesQuery,
        /// Gets them at once.
        respond_to: Responder<Vec<Entry>>,
    },
    /// Read one entry.
    Entry {
        /// Which.
        id: EntryId,
        /// Gets it at once.
        respond_to: Responder<Entry>,
    },
    /// Change some fields of an entry.
    UpdateEntry {
        /// Which entry.
        id: EntryId,
        /// The fields to change.
        changes: Changes,
        /// Gets the entry as changed once committed.
        respond_to: Responder<Entry>,
    },
    /// Delete one entry.
    DeleteEntry {
        /// Which.
        id: EntryId,
        /// Told once committed.
        respond_to: Responder<()>,
    },
    /// Delete every entry.
    Clear {
        /// Told once committed.
        respond_to: Responder<()>,
    },
    /// Read the whole list as committed, with its id counter and version, once every write
    /// in flight has its outcome.
    Dump {
        /// Gets the list.
        respond_to: Responder<Dump>,
    },
    /// Import entries exported elsewhere, keeping their ids: into a list that holds none, or
    /// nothing at all when the list already holds exactly these.
    Import {
        /// The entries, in id order.
        entries: Vec<Entry>,
        /// The id counter they came with.
        next_id: EntryId,
        /// Told what was done once committed.
        respond_to: Responder<Imported>,
    },
}

/// A whole list as committed: what an export writes.
#[derive(Debug, Clone)]
pub struct Dump {
    /// Every entry, in id order.
    pub entries: Vec<Entry>,
    /// The id the list hands out next.
    pub next_id: EntryId,
    /// The list's version in storage.
    pub version: u64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Stored this many entries.
    Applied(usize),
    /// The list already held exactly these entries: nothing was written.
    Unchanged,
}

impl Request {
    /// Whether a caller waited for this request and has stopped waiting.
    fn caller_left(&self) -> bool {
        match self {
            Request::AddEntry { respond_to, .. } => left(respond_to),
            Request::Entries { respond_to, .. } => left(respond_to),
            Request::Entry { respond_to, .. } | Request::UpdateEntry { respond_to, .. } => {
                left(respond_to)
            }
            Request::DeleteEntry { respond_to, .. } | Request::Clear { respond_to } => {
                left(respond_to)
            }
            Request::Dump { respond_to } => left(respond_to),
            Request::Import { respond_to, .. } => left(respond_to),
        }
    }

    /// Answers the request with `error`.
    fn fail(self, error: RequestError) {
        match self {
            Request::AddEntry { respond_to, .. } => respond(respond_to, Err(error)),
            Request::Entries { respond_to, .. } => respond(respond_to, Err(error)),
            Request::Entry { respond_to, .. } | Request::UpdateEntry { respond_to, .. } => {
                respond(respond_to, Err(error))
            }
            Request::DeleteEntry { respond_to, .. } | Request::Clear { respond_to } => {
                respond(respond_to, Err(error))
            }
            Request::Dump { respond_to } => respond(respond_to, Err(error)),
            Request::Import { respond_to, .. } => respond(respond_to, Err(error)),
        }
    }
}

impl From<Command> for Request {
    fn from(command: Command) -> Request {
        match command {
            Command::AddEntry {
                entry,
                idempotency_key,
            } => Request::AddEntry {
                entry,
                idempotency_key,
                respond_to: None,
            },
            Command::UpdateEntry { id, changes } => Request::UpdateEntry {
                id,
                changes,
                respond_to: None,
            },
        }
    }
}

fn left<T>(respond_to: &Responder<T>) -> bool {
    respond_to.as_ref().is_some_and(oneshot::Sender::is_closed)
}

/// Sends an answer, if anyone waits for it; the caller may have stopped waiting.
fn respond<T>(respond_to: Responder<T>, answer: Result<T, RequestError>) {
    if let Some(respond_to) = respond_to {
        let _ = respond_to.send(answer);
    }
}

/// Asked by an idle actor whether it may stop: given its list, its id, a test that its mailbox
/// is empty with no sender left but its owner's, and its state if it would rather hibernate
/// than forget the list. `Ok` means the owner has let the actor go (keeping the state, if one
/// was given), and the actor must stop; `Err` gives the state back, and the actor carries on.
pub type RetireFn = Box<
    dyn Fn(&ListName, u64, &dyn Fn() -> bool, Option<ParkedList>) -> Result<(), Option<ParkedList>>
        + Send
        + Sync,
>;

/// What every list actor shares: storage, limits and counters.
pub struct ActorContext {
    /// The database pool.
    pub database: Database,
    /// Capacity of each mailbox.
    pub mailbox_capacity: usize,
    /// How long an actor waits for a message before it hibernates.
    pub hibernate_after: Duration,
    /// How long a list may stay unused before it is forgotten; an actor idle this long stops
    /// without hibernating.
    pub idle_timeout: Duration,
    /// Asked when an actor has been idle long enough to hibernate or stop.
    pub retire: RetireFn,
    /// Counters for metrics and tests.
    pub stats: ActorStats,
    /// Cancelled at shutdown: every actor then closes its mailbox, drains it, and stops.
    pub shutdown: CancellationToken,
    /// Tracks the actor tasks, so shutdown can wait for all of them.
    pub tracker: TaskTracker,
}

/// Counters kept by the list actors.
#[derive(Debug, Default)]
pub struct ActorStats {
    started: AtomicU64,
    live: AtomicI64,
    skipped: AtomicU64,
}

impl ActorStats {
    /// Actors started since the server started.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Actors running now.
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed).max(0) as u64
    }

    /// Requests dropped unexecuted because their caller had already left.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}
