//! `ListActor`: the sequential loop that owns one list.
//!
//! The actor applies each write to the list's `SharedList`, hands it to the list's database
//! worker, and keeps it as a pending write with the caller's reply until the worker reports
//! the outcome. One `select!` merges its two inputs, the mailbox and the outcome of its oldest
//! pending write, so a slow fsync never holds the list still. A write is marked committed in
//! the `SharedList` before its writer is answered; reads see only what is committed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::database::{
    Change, IdempotencyKey, KeyedAdd, StorageError, StoredList, Write, WriteOutcome, fixed_hash,
};
use crate::list::{Entry, EntryId, ListError, ListName, NewEntry, TodoList};

use super::feed::FeedChange;
use super::handle::ListMessage;
use super::shared::{SharedList, Undo};
use super::{
    ActorContext, Created, Dump, EntriesQuery, Imported, Request, RequestError, Responder, respond,
};

/// The state of a hibernating list: its actor has stopped, freeing its task and mailbox, and
/// the owner keeps this until the list is used again (no load needed then) or expires. Like an
/// Erlang process's hibernation, it trades a little work on wake-up for much less idle memory.
pub struct ParkedList(Box<Parked>);

struct Parked {
    shared: Arc<SharedList>,
    state: Loaded,
}

impl ParkedList {
    /// The list's entries, which readers may read while it hibernates.
    pub fn shared(&self) -> &Arc<SharedList> {
        &self.0.shared
    }
}

/// What the actor keeps of a loaded list besides its entries, which are in the `SharedList`.
struct Loaded {
    idempotency_keys: HashMap<String, KeyedAdd>,
    /// The list's version in storage once every pending write is committed.
    version: u64,
}

/// A write handed to the database whose outcome has not arrived yet.
struct PendingWrite {
    outcome: oneshot::Receiver<WriteOutcome>,
    /// What was sent: the entry an add or update answers with, and what a repeated
    /// idempotency key looks for.
    change: Change,
    /// The request, kept for its reply and for one retry after a conflict.
    request: Request,
    /// Whether this is the request's second attempt, after a conflict.
    retried: bool,
    /// Idempotent repeats of this add that arrived before it committed.
    replays: Vec<Responder<Created>>,
}

/// What woke the actor.
enum Event {
    Outcome(WriteOutcome),
    Message(Option<ListMessage>),
    Idle,
}

pub(super) struct ListActor {
    name: ListName,
    actor_id: u64,
    context: Arc<ActorContext>,
    /// `None` until loaded, and again after storage failed to load it.
    state: Option<Loaded>,
    /// The list's entries; changed only by this actor.
    shared: Arc<SharedList>,
    /// Writes handed to the database, oldest first; outcomes arrive in this order.
    pending: VecDeque<PendingWrite>,
    /// A pending write failed, so the working list differs from storage: the actor takes no
    /// new message until every pending write has its outcome, then reloads.
    diverged: bool,
    /// Requests whose write conflicted, to run once more after the reload.
    retries: Vec<Request>,
}

impl ListActor {
    pub(super) fn new(
        name: ListName,
        actor_id: u64,
        context: Arc<ActorContext>,
        shared: Arc<SharedList>,
        parked: Option<ParkedList>,
    ) -> ListActor {
        context.stats.started.fetch_add(1, Ordering::Relaxed);
        context.stats.live.fetch_add(1, Ordering::Relaxed);
        ListActor {
            name,
            actor_id,
            context,
            state: parked.map(|ParkedList(parked)| parked.state),
            shared,
            pending: VecDeque::new(),
            diverged: false,
            retries: Vec::new(),
        }
    }

    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<ListMessage>) {
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
            if self.diverged && self.pending.is_empty() {
                Box::pin(self.recover()).await;
            }
            let (writing, taking) = (!self.pending.is_empty(), !self.diverged);
            let event = tokio::select! {
                biased;
                outcome = front_outcome(&mut self.pending), if writing => Event::Outcome(outcome),
                received = inbox.recv(), if taking => Event::Message(received),
                () = &mut idle_timer, if !writing => Event::Idle,
                // Closing refuses new messages but keeps those queued, which are drained below.
                () = shutdown.cancelled(), if !inbox.is_closed() => {
                    inbox.close();
                    continue;
                }
            };
            match event {
                Event::Outcome(outcome) => self.settle_front(outcome),
                Event::Message(Some(ListMessage::Request(request))) => {
                    Box::pin(self.handle(*request)).await
                }
                Event::Message(Some(ListMessage::Retire)) if self.retire(&inbox, false) => break,
                Event::Idle if self.retire(&inbox, hibernate) => break,
                Event::Message(Some(ListMessage::Retire)) | Event::Idle => {}
                Event::Message(None) => {
                    Box::pin(self.settle_all()).await;
                    break;
                }
            }
            idle_timer.as_mut().reset(Instant::now() + idle);
        }
    }

    /// Asks the owner to let this actor, which is between messages and has nothing in flight,
    /// go: hibernating (handing over its state) or forgetting the list. True means stop now.
    fn retire(&mut self, inbox: &mpsc::Receiver<ListMessage>, hibernate: bool) -> bool {
        if !self.pending.is_empty() || self.diverged {
            return false;
        }
        let unused = || inbox.is_empty() && inbox.sender_strong_count() == 1;
        let parked = match hibernate {
            true => self.state.take().map(|state| self.park(state)),
            false => None,
        };
        match (self.context.retire)(&self.name, self.actor_id, &unused, parked) {
            Ok(()) => true,
            Err(parked) => {
                self.state = parked.map(|ParkedList(parked)| parked.state);
                false
            }
        }
    }

    fn park(&self, state: Loaded) -> ParkedList {
        let shared = self.shared.clone();
        ParkedList(Box::new(Parked { shared, state }))
    }

    async fn handle(&mut self, request: Request) {
        if request.caller_left() {
            self.context.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Err(error) = self.fresh().await {
            return request.fail(error.into());
        }
        self.dispatch(request, false).await;
    }

    /// Runs a request on the loaded list.
    async fn dispatch(&mut self, request: Request, retried: bool) {
        #[cfg(test)]
        crate::fault::maybe_panic(&request);
        match request {
            Request::Entries { query, respond_to } => respond(
                respond_to,
                Ok(self.shared.read_any(|list| list.entries(query))),
            ),
            Request::Entry { id, respond_to } => {
                let entry = self.shared.read_any(|list| list.entry(id));
                respond(respond_to, entry.ok_or(RequestError::NotFound(id)))
            }
            Request::AddEntry { .. } => self.add_entry(request, retried).await,
            Request::UpdateEntry { .. } => self.update_entry(request, retried).await,
            Request::DeleteEntry { .. } => self.delete_entry(request, retried).await,
            Request::Clear { .. } => self.clear(request, retried).await,
            Request::Dump { .. } => self.dump(request).await,
            Request::Import { .. } => self.import(request, retried).await,
        }
    }

    /// Answers with the whole list once nothing is in flight, so that the id counter and the
    /// version are those of storage.
    async fn dump(&mut self, request: Request) {
        self.settle_all().await;
        let Request::Dump { respond_to } = request else {
            unreachable!("dispatch sends only dumps here")
        };
        if let Err(error) = self.loaded().await {
            return respond(respond_to, Err(error.into()));
        }
        let dump = Dump {
            entries: self.shared.read_any(|list| list.entries(EntriesQuery::All)),
            next_id: self.shared.next_id().unwrap_or(EntryId::FIRST),
            version: self.state().version,
        };
        respond(respond_to, Ok(dump));
    }

    /// Imports entries once nothing is in flight: nothing to do when the list holds exactly
    /// these already (a repeated import), a conflict when it holds others or has handed out
    /// one of their ids, else one write of them all.
    async fn import(&mut self, request: Request, retried: bool) {
        self.settle_all().await;
        if let Err(error) = self.loaded().await {
            return request.fail(error.into());
        }
        let Request::Import {
            entries, next_id, ..
        } = &request
        else {
            unreachable!("dispatch sends only imports here")
        };
        let (entries, next_id) = (entries.clone(), *next_id);
        let held = self.shared.read_any(|list| list.entries(EntriesQuery::All));
        let held_next = self.shared.next_id().unwrap_or(EntryId::FIRST);
        if held == entries && held_next >= next_id {
            let Request::Import { respond_to, .. } = request else {
                unreachable!("checked above")
            };
            return respond(respond_to, Ok(Imported::Unchanged));
        }
        if !held.is_empty() {
            let message = format!("the list already holds {} other entries", held.len());
            return request.fail(RequestError::ImportConflict(message));
        }
        if entries.iter().any(|entry| entry.id < held_next) {
            let message = format!(
                "the list has handed out ids below {}; importing would reuse them",
                held_next.get()
            );
            return request.fail(RequestError::ImportConflict(message));
        }
        let ids = entries.iter().map(|entry| entry.id).collect();
        let restored = entries.clone();
        self.shared.write(|list| {
            list.restore(restored, next_id);
            ((), Some(Undo::Imported(ids)))
        });
        let next_id = self.shared.next_id().unwrap_or(next_id);
        self.write(Change::Import { entries, next_id }, request, retried)
            .await;
    }

    async fn add_entry(&mut self, request: Request, retried: bool) {
        let Request::AddEntry {
            entry,
            idempotency_key,
            ..
        } = &request
        else {
            unreachable!("dispatch sends only adds here")
        };
        let (new_entry, key) = (entry.clone(), idempotency_key.clone());
        let fingerprint = fingerprint(&new_entry);
        let state = self.state();
        if let Some(keyed) = key.as_ref().and_then(|key| state.idempotency_keys.get(key)) {
            // A key stored before fingerprints were has none, and counts as a retry.
            if keyed
                .fingerprint
                .is_some_and(|stored| stored != fingerprint)
            {
                return request.fail(RequestError::IdempotencyKeyReused);
            }
            let id = keyed.id;
            return self.replay(id, request);
        }
        let (entry, next_id) = match self.shared.write(|list| add(list, new_entry)) {
            Ok(added) => added,
            Err(error) => return request.fail(error.into()),
        };
        if let Some(key) = &key {
            let keyed = KeyedAdd {
                id: entry.id,
                fingerprint: Some(fingerprint),
            };
            self.state().idempotency_keys.insert(key.clone(), keyed);
        }
        let idempotency_key = key.map(|key| IdempotencyKey { key, fingerprint });
        let change = Change::Add {
            entry,
            next_id,
            idempotency_key,
        };
        self.write(change, request, retried).await;
    }

    /// Answers a repeated idempotency key: with the entry it created once that is committed,
    /// or after the commit when the first add is still in flight.
    fn replay(&mut self, id: EntryId, request: Request) {
        let Request::AddEntry { respond_to, .. } = request else {
            unreachable!("only adds carry idempotency keys")
        };
        let in_flight = self
            .pending
            .iter_mut()
            .find(|write| matches!(&write.change, Change::Add { entry, .. } if entry.id == id));
        if let Some(write) = in_flight {
            return write.replays.push(respond_to);
        }
        let replayed = match self.shared.read_any(|list| list.entry(id)) {
            Some(entry) => Ok(Created {
                entry,
                replayed: true,
            }),
            None => Err(RequestError::IdempotentEntryDeleted),
        };
        respond(respond_to, replayed);
    }

    async fn update_entry(&mut self, request: Request, retried: bool) {
        let Request::UpdateEntry { id, changes, .. } = &request else {
            unreachable!("dispatch sends only updates here")
        };
        let (id, changes) = (*id, changes.clone());
        if self.removed_in_flight(id) {
            return self.after_writes_settle(request, retried).await;
        }
        let updated = self.shared.write(|list| {
            let Some(before) = list.entry(id).cloned() else {
                return (Err(ListError::NotFound(id)), None);
            };
            match list.update_entry(id, changes) {
                Ok(entry) => (Ok(entry.clone()), Some(Undo::Replaced(before))),
                Err(error) => (Err(error), None),
            }
        });
        match updated {
            Ok(entry) => self.write(Change::Update(entry), request, retried).await,
            Err(error) => request.fail(error.into()),
        }
    }

    async fn delete_entry(&mut self, request: Request, retried: bool) {
        let Request::DeleteEntry { id, .. } = &request else {
            unreachable!("dispatch sends only deletes here")
        };
        let id = *id;
        if self.removed_in_flight(id) {
            return self.after_writes_settle(request, retried).await;
        }
        let deleted = self.shared.write(|list| match list.delete_entry(id) {
            Ok(before) => (Ok(()), Some(Undo::Replaced(before))),
            Err(error) => (Err(error), None),
        });
        match deleted {
            Ok(()) => self.write(Change::Delete(id), request, retried).await,
            Err(error) => request.fail(error.into()),
        }
    }

    async fn clear(&mut self, request: Request, retried: bool) {
        self.shared
            .write(|list| ((), Some(Undo::Cleared(list.clear()))));
        self.write(Change::Clear, request, retried).await;
    }

    /// Whether entry `id` is committed but gone from the working list: a write still in flight
    /// deleted it. Answering "not found" now would reveal that write before it is durable.
    fn removed_in_flight(&self, id: EntryId) -> bool {
        !self.pending.is_empty() && self.shared.removed_uncommitted(id)
    }

    /// Runs a request once every write in flight has its outcome: the rare request whose
    /// answer depends on one of them.
    async fn after_writes_settle(&mut self, request: Request, retried: bool) {
        self.settle_all().await;
        Box::pin(self.dispatch(request, retried)).await;
    }

    /// Hands a change, already applied to the working list, to the database, and keeps the
    /// request until its outcome arrives.
    async fn write(&mut self, change: Change, request: Request, retried: bool) {
        let list = self.name.clone();
        let state = self.state();
        state.version += 1;
        let (respond_to, outcome) = oneshot::channel();
        let write = Write {
            list,
            change: change.clone(),
            expected_version: state.version - 1,
            respond_to,
        };
        self.context.database.write(write).await;
        self.pending.push_back(PendingWrite {
            outcome,
            change,
            request,
            retried,
            replays: Vec::new(),
        });
    }

    /// Answers the oldest pending write with its outcome. A failure or a conflict means the
    /// working list holds a change storage may lack: the actor settles the rest, then reloads.
    fn settle_front(&mut self, outcome: WriteOutcome) {
        let write = self
            .pending
            .pop_front()
            .expect("outcomes are only awaited while a write is pending");
        match outcome {
            Ok(()) => {
                // Readers and subscribers see the write before its writer hears of it.
                self.shared.commit_oldest(FeedChange::from(&write.change));
                write.succeed()
            }
            Err(error) => {
                self.diverged = true;
                self.shared.mark_stale();
                match error {
                    // Another writer changed the list first, or an earlier write of it failed:
                    // this one was not applied, and runs once more on the reloaded list.
                    StorageError::Conflict | StorageError::Refused if !write.retried => {
                        self.retry(write)
                    }
                    error => write.fail(error.into()),
                }
            }
        }
    }

    /// Keeps a write that was not applied to run once more after the reload, with the
    /// idempotent repeats that wait for it, which then find it in flight again.
    fn retry(&mut self, write: PendingWrite) {
        let repeat = match &write.request {
            Request::AddEntry {
                entry,
                idempotency_key,
                ..
            } => Some((entry.clone(), idempotency_key.clone())),
            _ => None,
        };
        self.retries.push(write.request);
        let Some((entry, idempotency_key)) = repeat else {
            return;
        };
        for respond_to in write.replays {
            let (entry, idempotency_key) = (entry.clone(), idempotency_key.clone());
            self.retries.push(Request::AddEntry {
                entry,
                idempotency_key,
                respond_to,
            });
        }
    }

    /// Waits for every pending write's outcome, reloading after a failure and running the
    /// retries, until nothing is in flight.
    async fn settle_all(&mut self) {
        loop {
            while !self.pending.is_empty() {
                let outcome = front_outcome(&mut self.pending).await;
                self.settle_front(outcome);
            }
            if !self.diverged {
                return;
            }
            Box::pin(self.recover()).await;
        }
    }

    /// Reloads the list after a failed write, then runs the requests whose writes conflicted.
    async fn recover(&mut self) {
        self.diverged = false;
        self.state = None;
        let retries = std::mem::take(&mut self.retries);
        match self.loaded().await {
            Ok(()) => {
                for request in retries {
                    if request.caller_left() {
                        self.context.stats.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    self.dispatch(request, true).await;
                }
            }
            Err(error) => {
                for request in retries {
                    request.fail(error.clone().into());
                }
            }
        }
    }

    /// Makes sure memory may serve a request: loaded, reloaded if its worker reopened its
    /// connection after an unknown outcome, and on shared storage reloaded if another node
    /// wrote since.
    async fn fresh(&mut self) -> Result<(), StorageError> {
        // The shared list keeps the generation it was loaded under.
        let outdated = |actor: &ListActor| {
            let generation = actor.context.database.generation(&actor.name);
            actor.state.is_some() && actor.shared.loaded_at() != Some(generation)
        };
        if outdated(self) {
            // Settling may itself reload (after a failed write); reload only if it did not.
            self.settle_all().await;
            if outdated(self) {
                self.state = None;
            }
        }
        match self.context.database.is_shared() {
            true => self.refresh().await,
            false => self.loaded().await,
        }
    }

    /// Loads the list if it is not in memory.
    async fn loaded(&mut self) -> Result<(), StorageError> {
        if self.state.is_some() {
            return Ok(());
        }
        let generation = self.context.database.generation(&self.name);
        let StoredList {
            list,
            idempotency_keys,
            version,
        } = self.context.database.load(&self.name).await?;
        self.shared.publish(list, generation, version);
        self.state = Some(Loaded {
            idempotency_keys,
            version,
        });
        Ok(())
    }

    /// The freshness rule when other nodes share storage: before each request, settle this
    /// actor's own writes, compare the list's version in storage with this actor's, and reload
    /// if another node has written since. Reads then see every write acknowledged anywhere;
    /// updates, deletes and idempotent replays act on the entries that exist now. Here a read
    /// does wait, for the version check.
    async fn refresh(&mut self) -> Result<(), StorageError> {
        self.settle_all().await;
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
            .expect("handle loads the list before any request runs")
    }
}

impl Drop for ListActor {
    fn drop(&mut self) {
        self.context.stats.live.fetch_sub(1, Ordering::Relaxed);
        // Only a panic stops an actor with writes in flight; they may still commit.
        for write in self.pending.drain(..) {
            let unknown = StorageError::OutcomeUnknown("the list actor stopped".into());
            write.fail(unknown.into());
        }
    }
}

impl PendingWrite {
    /// Answers the request (and any replays) now that the write is committed.
    fn succeed(self) {
        let entry = match self.change {
            Change::Add { entry, .. } | Change::Update(entry) => Some(entry),
            Change::Delete(_) | Change::Clear | Change::Import { .. } => None,
        };
        match self.request {
            Request::AddEntry { respond_to, .. } => {
                let entry = entry.expect("an add sends the entry it answers with");
                for replay in self.replays {
                    let created = Created {
                        entry: entry.clone(),
                        replayed: true,
                    };
                    respond(replay, Ok(created));
                }
                let created = Created {
                    entry,
                    replayed: false,
                };
                respond(respond_to, Ok(created));
            }
            Request::UpdateEntry { respond_to, .. } => {
                respond(respond_to, Ok(entry.expect("an update sends its entry")))
            }
            Request::DeleteEntry { respond_to, .. } | Request::Clear { respond_to } => {
                respond(respond_to, Ok(()))
            }
            Request::Import {
                entries,
                respond_to,
                ..
            } => respond(respond_to, Ok(Imported::Applied(entries.len()))),
            Request::Entries { .. } | Request::Entry { .. } | Request::Dump { .. } => {
                unreachable!("reads are answered at once, never pending")
            }
        }
    }

    fn fail(self, error: RequestError) {
        fail_all(self.replays, error.clone());
        self.request.fail(error);
    }
}

fn fail_all(replays: Vec<Responder<Created>>, error: RequestError) {
    for replay in replays {
        respond(replay, Err(error.clone()));
    }
}

/// The outcome of the oldest pending write. A worker that vanished without answering may have
/// committed it or not.
async fn front_outcome(pending: &mut VecDeque<PendingWrite>) -> WriteOutcome {
    let front = pending
        .front_mut()
        .expect("outcomes are only awaited while a write is pending");
    (&mut front.outcome).await.unwrap_or_else(|_| {
        Err(StorageError::OutcomeUnknown(
            "the database worker stopped".into(),
        ))
    })
}

/// A fingerprint of an add's fields, stable across builds and restarts (it is stored).
fn fingerprint(entry: &NewEntry) -> i64 {
    let fields = format!(
        "{}\u{0}{}\u{0}{}\u{0}{:?}",
        entry.date, entry.title, entry.done, entry.order
    );
    i64::from_ne_bytes(fixed_hash(&fields).to_ne_bytes())
}

/// Adds an entry to the list; the answer is the entry and the list's next id after it.
fn add(
    list: &mut TodoList,
    new_entry: NewEntry,
) -> (Result<(Entry, EntryId), ListError>, Option<Undo>) {
    match list.add_entry(new_entry) {
        Ok(entry) => {
            let id = entry.id;
            let entry = entry.clone();
            (Ok((entry, list.next_id())), Some(Undo::Added(id)))
        }
        Err(error) => (Err(error), None),
    }
}

#[cfg(test)]
mod tests {
    use crate::app::App;
    use crate::app::tests::{add, config, entry, name};
    use crate::database::StorageError;
    use crate::database::sqlite::DATABASE_FILE;
    use crate::list::{Changes, EntryId, Title};
    use crate::lists::{Command, EntriesQuery, RequestError};

    async fn start_with_one_worker(dir: &std::path::Path) -> App {
        let mut config = config(dir);
        config.database.workers = Some(1);
        App::start(config).await.unwrap()
    }

    async fn titles(app: &App, list: &str) -> Vec<String> {
        let entries = app.cache().entries(&name(list), EntriesQuery::All).await;
        let entries = entries.unwrap_or_else(|error| panic!("reading {list}: {error}"));
        entries.iter().map(|e| e.title.to_string()).collect()
    }

    /// An app whose list `x` holds entry 1, and a connection holding SQLite's write lock, so
    /// the next commit stalls until that connection commits.
    async fn list_x_with_commits_stalled(dir: &std::path::Path) -> (App, rusqlite::Connection) {
        let app = start_with_one_worker(dir).await;
        app.cache()
            .add_entry(&name("x"), entry("2018-12-19", "a"), None)
            .await
            .unwrap();
        let blocker = other_connection(dir);
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        (app, blocker)
    }

    /// Another connection, as another node or a recovery would change storage.
    fn other_connection(dir: &std::path::Path) -> rusqlite::Connection {
        rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_during_a_pending_commit_answers_at_once_with_the_committed_state() {
        let dir = tempfile::tempdir().unwrap();
        let app = start_with_one_worker(dir.path()).await;
        let cache = app.cache();
        cache
            .add_entry(&name("x"), entry("2018-12-19", "kept"), None)
            .await
            .unwrap();
        let first = EntryId::new(1).unwrap();

        // With SQLite's write lock taken elsewhere, the next commit stalls in the worker.
        let blocker = other_connection(dir.path());
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let commits_before = cache.database().stats().commits();
        cache
            .cast(&name("x"), add("2018-12-19", "pending"))
            .unwrap();
        let rename = Changes {
            title: Some(Title::parse("renamed").unwrap()),
            ..Changes::default()
        };
        let command = Command::UpdateEntry {
            id: first,
            changes: rename,
        };
        cache.cast(&name("x"), command).unwrap();

        // The mailbox is in order: once this call through the actor is answered, both writes
        // were handed over. Reads then skip the mailbox.
        let missing = EntryId::new(99).unwrap();
        let barrier = cache
            .update_entry(&name("x"), missing, Changes::default())
            .await;
        assert!(
            matches!(barrier, Err(RequestError::NotFound(_))),
            "{barrier:?}"
        );
        assert_eq!(titles(&app, "x").await, ["kept"]);
        let second = cache.entry(&name("x"), EntryId::new(2).unwrap()).await;
        assert!(
            matches!(second, Err(RequestError::NotFound(_))),
            "{second:?}"
        );
        assert_eq!(
            cache.database().stats().commits(),
            commits_before,
            "the reads were answered while the writes still waited for their commit"
        );

        blocker.execute_batch("COMMIT").unwrap();
        while titles(&app, "x").await != ["renamed", "pending"] {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        app.shutdown().await;
    }

    #[tokio::test]
    async fn a_write_that_conflicts_is_retried_once_on_the_reloaded_list() {
        let dir = tempfile::tempdir().unwrap();
        let app = start_with_one_worker(dir.path()).await;
        let cache = app.cache();
        cache
            .add_entry(&name("x"), entry("2018-12-19", "mine"), None)
            .await
            .unwrap();
        other_connection(dir.path())
            .execute_batch(
                "INSERT INTO entries VALUES ('x', 2, '2018-12-19', 'theirs', 0, NULL);
                 UPDATE lists SET version = version + 1, next_id = 3 WHERE name = 'x';",
            )
            .unwrap();

        let created = cache
            .add_entry(&name("x"), entry("2018-12-19", "ours"), None)
            .await
            .unwrap();
        assert_eq!(
            created.entry.id.get(),
            3,
            "the retry ran on the reloaded list"
        );
        assert_eq!(titles(&app, "x").await, ["mine", "theirs", "ours"]);
        app.shutdown().await;
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_reported_and_every_list_of_the_worker_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let app = start_with_one_worker(dir.path()).await;
        let cache = app.cache();
        for (list, title) in [("a", "a1"), ("b", "b1")] {
            cache
                .add_entry(&name(list), entry("2018-12-19", title), None)
                .await
                .unwrap();
        }

        crate::fault::unknown_commits(dir.path(), true);
        let unknown = cache
            .add_entry(&name("a"), entry("2018-12-19", "a2"), None)
            .await;
        crate::fault::unknown_commits(dir.path(), false);
        assert!(
            matches!(
                unknown,
                Err(RequestError::Storage(StorageError::OutcomeUnknown(_)))
            ),
            "{unknown:?}"
        );
        // What recovery shows may differ from memory for every list of the worker.
        other_connection(dir.path())
            .execute_batch(
                "INSERT INTO entries VALUES ('b', 2, '2018-12-19', 'b2', 0, NULL);
                 UPDATE lists SET version = version + 1, next_id = 3 WHERE name = 'b';",
            )
            .unwrap();

        assert_eq!(titles(&app, "a").await, ["a1", "a2"], "a reloaded");
        assert_eq!(titles(&app, "b").await, ["b1", "b2"], "b reloaded");
        app.shutdown().await;
    }

    #[tokio::test]
    async fn an_idempotent_repeat_of_an_add_in_flight_answers_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let app = start_with_one_worker(dir.path()).await;
        let blocker = other_connection(dir.path());
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let keyed = |cache: crate::cache::Cache| async move {
            let dentist = entry("2018-12-19", "Dentist");
            cache.add_entry(&name("x"), dentist, Some("k".into())).await
        };
        let first = tokio::spawn(keyed(app.cache().clone()));
        let repeat = tokio::spawn(keyed(app.cache().clone()));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!first.is_finished() && !repeat.is_finished());
        blocker.execute_batch("COMMIT").unwrap();
        let (first, repeat) = (
            first.await.unwrap().unwrap(),
            repeat.await.unwrap().unwrap(),
        );
        assert_eq!(first.entry, repeat.entry);
        assert_ne!(first.replayed, repeat.replayed, "one created, one replayed");
        assert_eq!(titles(&app, "x").await, ["Dentist"]);
        app.shutdown().await;
    }

    /// Another writer makes as many writes as a write the worker refused: the actor's next
    /// write, queued behind it, would pass the version check, so the worker refuses it too, and
    /// both run again, in their order, on the reloaded list.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_conflict_are_refused_and_retried_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (app, blocker) = list_x_with_commits_stalled(dir.path()).await;
        let cache = app.cache().clone();
        let clear = tokio::spawn({
            let cache = cache.clone();
            async move { cache.clear(&name("x")).await }
        });
        // Let the worker take the clear and stall on the lock, so the add is a later group.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let add = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .add_entry(&name("x"), entry("2018-12-19", "b"), None)
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        blocker
            .execute_batch(
                "UPDATE entries SET title = 'theirs' WHERE list = 'x' AND id = 1;
                 UPDATE lists SET version = version + 1 WHERE name = 'x';
                 COMMIT;",
            )
            .unwrap();
        clear
            .await
            .unwrap()
            .expect("the clear is retried and stored");
        add.await
            .unwrap()
            .expect("the add is retried after the clear and stored");
        assert_eq!(
            titles(&app, "x").await,
            ["b"],
            "the clear came first, then the add"
        );
        app.shutdown().await;
    }

    /// An update of an entry that a delete still in flight removed waits for that delete's
    /// outcome, so its "not found" never reveals a delete that might fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_found_is_not_answered_before_the_delete_behind_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (app, blocker) = list_x_with_commits_stalled(dir.path()).await;
        let cache = app.cache().clone();
        let first = EntryId::new(1).unwrap();
        let delete = tokio::spawn({
            let cache = cache.clone();
            async move { cache.delete_entry(&name("x"), first).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let update = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .update_entry(&name("x"), first, Changes::default())
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !update.is_finished(),
            "the update waits for the delete's outcome"
        );
        blocker.execute_batch("COMMIT").unwrap();
        delete.await.unwrap().expect("the delete is stored");
        let update = update.await.unwrap();
        assert!(
            matches!(update, Err(RequestError::NotFound(_))),
            "{update:?}"
        );
        app.shutdown().await;
    }

    /// Keys stored before fingerprints were (NULL) still replay; a key with a fingerprint
    /// refuses a request with other fields.
    #[tokio::test]
    async fn a_key_reused_for_other_fields_is_refused_unless_stored_without_a_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let app = start_with_one_worker(dir.path()).await;
        let keyed = |cache: crate::cache::Cache, key: &'static str, title: &'static str| async move {
            let new_entry = entry("2018-12-19", title);
            cache
                .add_entry(&name("x"), new_entry, Some(key.into()))
                .await
        };
        keyed(app.cache().clone(), "old", "Dentist").await.unwrap();
        keyed(app.cache().clone(), "new", "Movies").await.unwrap();
        let reused = keyed(app.cache().clone(), "new", "Shopping").await;
        assert!(
            matches!(reused, Err(RequestError::IdempotencyKeyReused)),
            "{reused:?}"
        );
        app.shutdown().await;

        other_connection(dir.path())
            .execute_batch("UPDATE idempotency_keys SET fingerprint = NULL WHERE key = 'old'")
            .unwrap();
        let app = start_with_one_worker(dir.path()).await;
        let legacy = keyed(app.cache().clone(), "old", "Something else")
            .await
            .unwrap();
        assert!(
            legacy.replayed && legacy.entry.title.as_str() == "Dentist",
            "{legacy:?}"
        );
        let reused = keyed(app.cache().clone(), "new", "Shopping").await;
        assert!(
            matches!(reused, Err(RequestError::IdempotencyKeyReused)),
            "{reused:?}"
        );
        assert_eq!(titles(&app, "x").await, ["Dentist", "Movies"]);
        app.shutdown().await;
    }
}
