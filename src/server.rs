//! One actor per list: the book's `Todo.Server`.
//!
//! A `ListActor` owns one `TodoList` and handles the messages of its bounded mailbox one at a
//! time, so there are no races inside a list. It loads its list as its first act, after it is
//! spawned, so its creator never waits for storage. Writes are applied in memory, handed to the
//! list's database worker, and acknowledged by that worker after the commit: the actor moves on
//! to its next message without waiting for the disk, yet no reply reveals an uncommitted write.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::database::{Ack, Change, Database, ListSync, StorageError, StoredList, Write};
use crate::list::{Changes, Date, Entry, EntryId, ListError, ListName, NewEntry, TodoList};

/// What a list actor can be asked to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Add an entry; a repeated `idempotency_key` returns the entry it first created.
    AddEntry {
        /// The new entry's fields.
        entry: NewEntry,
        /// The client's `Idempotency-Key`, if it sent one.
        idempotency_key: Option<String>,
    },
    /// Read entries.
    Entries(EntriesQuery),
    /// Read one entry.
    Entry(EntryId),
    /// Change some fields of an entry.
    UpdateEntry {
        /// Which entry.
        id: EntryId,
        /// The fields to change.
        changes: Changes,
    },
    /// Delete one entry.
    DeleteEntry(EntryId),
    /// Delete every entry.
    Clear,
}

/// Which entries to read.
#[derive(Debug, Clone, Copy)]
pub enum EntriesQuery {
    /// Every entry, in id order.
    All,
    /// The entries on one date.
    On(Date),
    /// The entries from one date to another, both included.
    Between(Date, Date),
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An entry added by `AddEntry`; `replayed` when an idempotency key matched an earlier add.
    Created {
        /// The entry.
        entry: Entry,
        /// Whether this is the answer to an earlier request with the same key.
        replayed: bool,
    },
    /// One entry, as read or as updated.
    Entry(Entry),
    /// The entries a query asked for.
    Entries(Vec<Entry>),
    /// A delete or clear that is done.
    Done,
}

/// Why a request to a list failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServerError {
    /// No entry has this id.
    #[error("entry {0} not found")]
    NotFound(EntryId),
    /// The list has used up every id.
    #[error("the list has run out of entry ids")]
    IdsExhausted,
    /// The idempotency key created an entry that has since been deleted.
    #[error("the entry created with this idempotency key has been deleted")]
    IdempotentEntryDeleted,
    /// Storage failed; the write, if any, is not stored.
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
}

impl From<ListError> for ServerError {
    fn from(error: ListError) -> ServerError {
        match error {
            ListError::NotFound(id) => ServerError::NotFound(id),
            ListError::IdsExhausted => ServerError::IdsExhausted,
        }
    }
}

/// The result a caller waits for.
type Response = Result<Reply, ServerError>;

/// What a mailbox holds.
enum ListMessage {
    /// A command; `respond_to` is `None` for a cast.
    Request {
        /// Boxed, because a mailbox allocates its slots up front and an idle list's mailbox
        /// should stay small.
        command: Box<Command>,
        respond_to: Option<oneshot::Sender<Response>>,
    },
    /// The cache holds too many actors and asks this one to stop, if nobody is using it.
    Retire,
}

impl ListMessage {
    /// The command of a request that could not be delivered.
    fn into_command(self) -> Command {
        match self {
            ListMessage::Request { command, .. } => *command,
            ListMessage::Retire => {
                unreachable!("only requests are sent with a command to give back")
            }
        }
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

/// The state of a hibernating list: its actor has stopped, freeing its task and mailbox, and
/// the owner keeps this until the list is used again (no load needed then) or expires. Like an
/// Erlang process's hibernation, it trades a little work on wake-up for much less idle memory.
pub struct ParkedList(Box<Loaded>);

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

/// A handle to one list's actor. Cloning is cheap; the actor stops after the last clone is dropped.
#[derive(Clone)]
pub struct ListHandle {
    sender: mpsc::Sender<ListMessage>,
    actor_id: u64,
}

/// Why a send did not reach the actor.
pub enum SendError {
    /// The actor has stopped; the command is given back so it can go to a new actor.
    Stopped(Command),
    /// The request failed for a reason a new actor would not change.
    Failed(ServerError),
}

impl ListHandle {
    /// Starts the actor for `name` and returns at once; the actor loads the list itself, or
    /// wakes with `parked` state when the list was hibernating.
    pub fn spawn(
        name: ListName,
        context: Arc<ActorContext>,
        parked: Option<ParkedList>,
    ) -> ListHandle {
        static NEXT_ACTOR_ID: AtomicU64 = AtomicU64::new(1);
        let actor_id = NEXT_ACTOR_ID.fetch_add(1, Ordering::Relaxed);
        let (sender, inbox) = mpsc::channel(context.mailbox_capacity.max(1));
        context.stats.started.fetch_add(1, Ordering::Relaxed);
        context.stats.live.fetch_add(1, Ordering::Relaxed);
        let actor = ListActor {
            name,
            actor_id,
            context: context.clone(),
            state: parked.map(|ParkedList(state)| *state),
        };
        context.tracker.spawn(actor.run(inbox));
        ListHandle { sender, actor_id }
    }

    /// Sends a command and waits for its reply until `deadline`: first for a mailbox slot
    /// (backpressure), then for the answer.
    pub async fn call(&self, command: Command, deadline: Instant) -> Result<Reply, SendError> {
        let (respond_to, response) = oneshot::channel();
        let message = ListMessage::Request {
            command: Box::new(command),
            respond_to: Some(respond_to),
        };
        // One timer covers both the wait for a mailbox slot and the wait for the answer.
        let exchange = async {
            match self.sender.send(message).await {
                Err(closed) => Err(SendError::Stopped(closed.0.into_command())),
                Ok(()) => match response.await {
                    Err(_dropped) => Err(SendError::Failed(ServerError::Crashed)),
                    Ok(response) => response.map_err(SendError::Failed),
                },
            }
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or(Err(SendError::Failed(ServerError::Timeout)))
    }

    /// Queues a command without waiting for it; fails at once when the mailbox is full.
    pub fn cast(&self, command: Command) -> Result<(), SendError> {
        let message = ListMessage::Request {
            command: Box::new(command),
            respond_to: None,
        };
        match self.sender.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(SendError::Failed(ServerError::Overloaded))
            }
            Err(mpsc::error::TrySendError::Closed(message)) => {
                Err(SendError::Stopped(message.into_command()))
            }
        }
    }

    /// Asks the actor to stop if nobody is using it; a full mailbox means it is in use.
    pub fn ask_to_retire(&self) {
        let _ = self.sender.try_send(ListMessage::Retire);
    }

    /// Whether this handle is the only one, so no caller is about to send to the actor.
    pub fn is_only_handle(&self) -> bool {
        self.sender.strong_count() == 1
    }

    /// Whether the actor has stopped (after a panic), so the handle is of no more use.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// A number that tells this actor apart from every other actor of this process.
    pub fn actor_id(&self) -> u64 {
        self.actor_id
    }

    /// Messages waiting in the mailbox.
    pub fn mailbox_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// The in-memory state of a loaded list.
struct Loaded {
    list: TodoList,
    idempotency_keys: HashMap<String, EntryId>,
    /// Shared with the database worker; replaced on every reload.
    sync: Arc<ListSync>,
    /// The number of the last write sent to the worker.
    seq: u64,
    /// The list's version in storage once every write sent so far is committed.
    version: u64,
}

struct ListActor {
    name: ListName,
    actor_id: u64,
    context: Arc<ActorContext>,
    /// `None` until loaded, and again after storage failed to load it.
    state: Option<Loaded>,
}

impl ListActor {
    async fn run(mut self, mut inbox: mpsc::Receiver<ListMessage>) {
        // Load before serving; callers' messages wait in the mailbox meanwhile. The handling
        // futures are boxed so that an idle actor's task holds only this small loop, not the
        // largest future any message needs.
        let _ = Box::pin(self.loaded()).await;
        let shutdown = self.context.shutdown.clone();
        let idle = self.context.hibernate_after.min(self.context.idle_timeout);
        // Hibernating only pays when the list is kept longer than the actor's idle wait.
        let hibernate = self.context.hibernate_after < self.context.idle_timeout;
        // One timer for the actor's life, pushed back after each message.
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        loop {
            let message = tokio::select! {
                received = inbox.recv() => Ok(received),
                () = &mut idle_timer => Err(()),
                // Closing refuses new messages but keeps those queued, which are drained below.
                () = shutdown.cancelled(), if !inbox.is_closed() => {
                    inbox.close();
                    continue;
                }
            };
            match message {
                Ok(Some(ListMessage::Request {
                    command,
                    respond_to,
                })) => Box::pin(self.handle(*command, respond_to)).await,
                Ok(Some(ListMessage::Retire)) if self.retire(&inbox, false) => break,
                Err(()) if self.retire(&inbox, hibernate) => break,
                Ok(Some(ListMessage::Retire)) | Err(()) => {}
                Ok(None) => break,
            }
            idle_timer.as_mut().reset(Instant::now() + idle);
        }
    }

    /// Asks the owner to let this actor, which is between messages, go: hibernating (handing
    /// over its state) or forgetting the list. True means stop now.
    fn retire(&mut self, inbox: &mpsc::Receiver<ListMessage>, hibernate: bool) -> bool {
        let unused = || inbox.is_empty() && inbox.sender_strong_count() == 1;
        // A list whose last write failed is not worth keeping: it would reload anyway.
        let parked = match hibernate {
            true => self
                .state
                .take()
                .filter(|state| !state.sync.failed())
                .map(|state| ParkedList(Box::new(state))),
            false => None,
        };
        match (self.context.retire)(&self.name, self.actor_id, &unused, parked) {
            Ok(()) => true,
            Err(parked) => {
                if let Some(ParkedList(state)) = parked {
                    self.state = Some(*state);
                }
                false
            }
        }
    }

    async fn handle(&mut self, command: Command, respond_to: Option<oneshot::Sender<Response>>) {
        if respond_to.as_ref().is_some_and(oneshot::Sender::is_closed) {
            self.context.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let fresh = match self.context.database.is_shared() {
            true => self.refresh().await,
            false => self.loaded().await,
        };
        if let Err(error) = fresh {
            return reply_now(respond_to, Err(error.into()));
        }
        #[cfg(test)]
        crate::fault::maybe_panic(&command);
        match command {
            Command::AddEntry {
                entry,
                idempotency_key,
            } => self.add_entry(entry, idempotency_key, respond_to).await,
            Command::Entries(query) => self.entries(query, respond_to).await,
            Command::Entry(id) => self.entry(id, respond_to).await,
            Command::UpdateEntry { id, changes } => {
                self.update_entry(id, changes, respond_to).await
            }
            Command::DeleteEntry(id) => self.delete_entry(id, respond_to).await,
            Command::Clear => self.clear(respond_to).await,
        }
    }

    async fn add_entry(
        &mut self,
        entry: NewEntry,
        key: Option<String>,
        respond_to: Option<oneshot::Sender<Response>>,
    ) {
        let state = self.state();
        if let Some(id) = key.as_ref().and_then(|key| state.idempotency_keys.get(key)) {
            let replayed = match state.list.entry(*id) {
                Some(entry) => Ok(Reply::Created {
                    entry: entry.clone(),
                    replayed: true,
                }),
                None => Err(ServerError::IdempotentEntryDeleted),
            };
            return self.read(replayed, respond_to).await;
        }
        let entry = match state.list.add_entry(entry) {
            Ok(entry) => entry.clone(),
            Err(error) => return reply_now(respond_to, Err(error.into())),
        };
        if let Some(key) = &key {
            state.idempotency_keys.insert(key.clone(), entry.id);
        }
        let change = Change::Add {
            entry: entry.clone(),
            next_id: state.list.next_id(),
            idempotency_key: key,
        };
        self.write(
            change,
            Reply::Created {
                entry,
                replayed: false,
            },
            respond_to,
        )
        .await;
    }

    async fn entries(
        &mut self,
        query: EntriesQuery,
        respond_to: Option<oneshot::Sender<Response>>,
    ) {
        let list = &self.state().list;
        let entries = match query {
            EntriesQuery::All => list.all_entries().cloned().collect(),
            EntriesQuery::On(date) => list.entries(date).cloned().collect(),
            EntriesQuery::Between(from, to) => list.entries_between(from..=to).cloned().collect(),
        };
        self.read(Ok(Reply::Entries(entries)), respond_to).await;
    }

    async fn entry(&mut self, id: EntryId, respond_to: Option<oneshot::Sender<Response>>) {
        let entry = self
            .state()
            .list
            .entry(id)
            .cloned()
            .ok_or(ServerError::NotFound(id));
        self.read(entry.map(Reply::Entry), respond_to).await;
    }

    async fn update_entry(
        &mut self,
        id: EntryId,
        changes: Changes,
        respond_to: Option<oneshot::Sender<Response>>,
    ) {
        match self.state().list.update_entry(id, changes) {
            Ok(entry) => {
                let entry = entry.clone();
                self.write(
                    Change::Update(entry.clone()),
                    Reply::Entry(entry),
                    respond_to,
                )
                .await;
            }
            Err(error) => reply_now(respond_to, Err(error.into())),
        }
    }

    async fn delete_entry(&mut self, id: EntryId, respond_to: Option<oneshot::Sender<Response>>) {
        match self.state().list.delete_entry(id) {
            Ok(_) => {
                self.write(Change::Delete(id), Reply::Done, respond_to)
                    .await
            }
            Err(error) => reply_now(respond_to, Err(error.into())),
        }
    }

    async fn clear(&mut self, respond_to: Option<oneshot::Sender<Response>>) {
        self.state().list.clear();
        self.write(Change::Clear, Reply::Done, respond_to).await;
    }

    /// Answers a read: at once when every write it has seen is committed, otherwise through the
    /// worker, after those writes commit.
    async fn read(&mut self, response: Response, respond_to: Option<oneshot::Sender<Response>>) {
        let state = self.state();
        if state.sync.committed() == state.seq {
            return reply_now(respond_to, response);
        }
        let sync = state.sync.clone();
        let name = self.name.clone();
        self.context
            .database
            .after_writes(&name, sync, reply_after_commit(respond_to, response))
            .await;
    }

    /// Hands a change to the database; the worker replies once it is committed.
    async fn write(
        &mut self,
        change: Change,
        reply: Reply,
        respond_to: Option<oneshot::Sender<Response>>,
    ) {
        let list = self.name.clone();
        let state = self.state();
        state.seq += 1;
        state.version += 1;
        let write = Write {
            list,
            change,
            sync: state.sync.clone(),
            seq: state.seq,
            expected_version: state.version - 1,
            ack: reply_after_commit(respond_to, Ok(reply)),
        };
        self.context.database.write(write).await;
    }

    /// Loads the list if it is not in memory, or reloads it after a failed write.
    async fn loaded(&mut self) -> Result<(), StorageError> {
        if self
            .state
            .as_ref()
            .is_some_and(|state| !state.sync.failed())
        {
            return Ok(());
        }
        self.state = None;
        let StoredList {
            list,
            idempotency_keys,
            version,
        } = self.context.database.load(&self.name).await?;
        self.state = Some(Loaded {
            list,
            idempotency_keys,
            sync: Arc::default(),
            seq: 0,
            version,
        });
        Ok(())
    }

    /// The freshness rule when other nodes share storage: before each request, compare the
    /// list's version in storage with this actor's, and reload if another node has written
    /// since. Reads then see every write acknowledged anywhere; updates, deletes and
    /// idempotent replays act on the entries that exist now. The check queues behind this
    /// actor's own writes, so it sees them committed.
    async fn refresh(&mut self) -> Result<(), StorageError> {
        let stored = self.context.database.version(&self.name).await?;
        if self
            .state
            .as_ref()
            .is_some_and(|state| state.version != stored)
        {
            self.state = None;
        }
        self.loaded().await
    }

    fn state(&mut self) -> &mut Loaded {
        self.state
            .as_mut()
            .expect("handle loads the list before any command runs")
    }
}

impl Drop for ListActor {
    fn drop(&mut self) {
        self.context.stats.live.fetch_sub(1, Ordering::Relaxed);
    }
}

fn reply_now(respond_to: Option<oneshot::Sender<Response>>, response: Response) {
    if let Some(respond_to) = respond_to {
        let _ = respond_to.send(response);
    }
}

/// An acknowledgement that sends `response` once the commit succeeded, or the storage error.
fn reply_after_commit(respond_to: Option<oneshot::Sender<Response>>, response: Response) -> Ack {
    Box::new(move |outcome: Result<(), StorageError>| {
        let response = outcome.map_err(ServerError::from).and(response);
        reply_now(respond_to, response);
    })
}
