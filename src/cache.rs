//! The cache of list actors: the book's `Todo.Cache`.
//!
//! It maps list names to `ListHandle`s and starts an actor on first use. Spawning is synchronous
//! and no lock is held across an `.await`, so plain read-write locks are enough, one per shard of
//! the names: finding a list takes its shard's read lock (most requests), starting, parking or
//! forgetting one the write lock, under which concurrent first requests for one name get one
//! actor. A stopped actor (after a panic) is replaced on next use.
//! An idle actor hibernates: it hands its list to the cache and stops, freeing its task and
//! mailbox, and wakes with that list on next use. Lists unused for `idle_timeout` are forgotten.
//! An actor only goes while nobody else holds its handle, which the cache checks under its lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListsConfig;
use crate::database::{Database, StorageError, fixed_hash};
use crate::list::{Changes, Entry, EntryId, ListName, NewEntry};
use crate::lists::{
    ActorContext, ActorStats, Command, Committed, Created, Dump, EntriesQuery, Imported,
    ListHandle, ParkedList, Request, RequestError, Responder, SharedList, Subscription,
};

/// List name -> actor. Cloning is cheap and shares the same actors.
#[derive(Clone)]
pub struct Cache {
    shared: Arc<CacheShared>,
}

/// How many candidates an eviction compares to find the least recently used one: an
/// approximate LRU, as Redis does it, so eviction costs the same with a thousand lists or a
/// million.
const EVICTION_SAMPLE: usize = 32;
/// How many lists an eviction looks through for those candidates, at most.
const EVICTION_SCAN: usize = 1_024;

/// How many maps the lists are spread over.
const SHARDS: usize = 16;

/// Bounds on how often hibernating lists are checked for expiry.
const SWEEP_INTERVAL: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(60));

struct CacheShared {
    /// The lists, in `SHARDS` maps by a hash of the name: finding a list read-locks its
    /// shard, starting, parking or forgetting one write-locks it, so readers of different
    /// lists seldom share a lock (one lock's reader count, bounced between cores, was half of
    /// an in-process read).
    shards: Box<[RwLock<HashMap<ListName, Slot>>]>,
    context: Arc<ActorContext>,
    config: ListsConfig,
    /// What `last_used` counts from.
    epoch: Instant,
    /// Set when shutdown starts: read by every read, so an atomic rather than the token's
    /// `is_cancelled`, which takes a lock.
    stopping: AtomicBool,
}

/// One list in memory and when it was last asked for.
struct Slot {
    list: SlotState,
    /// Milliseconds from the cache's `epoch` to the last use; atomic, so that finding a list
    /// (under the read lock) can mark it used.
    last_used: AtomicU64,
}

impl Slot {
    fn new(list: SlotState, epoch: Instant) -> Slot {
        let last_used = AtomicU64::new(millis_since(epoch));
        Slot { list, last_used }
    }

    fn touch(&self, epoch: Instant) {
        self.last_used.store(millis_since(epoch), Ordering::Relaxed);
    }

    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

enum SlotState {
    /// Its actor is running.
    Running(ListHandle),
    /// Its actor hibernates; the list waits here for its next use.
    Parked(ParkedList),
}

impl Cache {
    /// An empty cache whose actors use `database`. Starts the task that forgets lists unused
    /// for `config.idle_timeout`; it stops with the cache.
    pub fn new(database: Database, config: ListsConfig) -> Cache {
        let shared = Arc::new_cyclic(|weak: &Weak<CacheShared>| {
            let weak = weak.clone();
            let context = ActorContext {
                database,
                mailbox_capacity: config.mailbox_capacity,
                hibernate_after: config.hibernate_after,
                idle_timeout: config.idle_timeout,
                retire: Box::new(move |name, actor_id, unused, parked| match weak.upgrade() {
                    Some(shared) => shared.retire(name, actor_id, unused, parked),
                    None => Err(parked),
                }),
                stats: ActorStats::default(),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
            };
            CacheShared {
                shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
                context: Arc::new(context),
                config,
                epoch: Instant::now(),
                stopping: AtomicBool::new(false),
            }
        });
        tokio::spawn(sweep(
            Arc::downgrade(&shared),
            shared.context.shutdown.clone(),
        ));
        Cache { shared }
    }

    /// The actor for `name`, started (or woken) now if it is not running (the book's
    /// `server_process`).
    pub fn server_process(&self, name: &ListName) -> ListHandle {
        let epoch = self.shared.epoch;
        if let Some(slot) = self.shared.read(name).get(name)
            && let SlotState::Running(handle) = &slot.list
            && !handle.is_closed()
        {
            slot.touch(epoch);
            return handle.clone();
        }
        let mut lists = self.shared.write(name);
        // Another caller may have started it between the two locks.
        if let Some(slot) = lists.get(name) {
            slot.touch(epoch);
            if let SlotState::Running(handle) = &slot.list
                && !handle.is_closed()
            {
                return handle.clone();
            }
        }
        let parked = match lists.remove(name) {
            Some(Slot {
                list: SlotState::Parked(parked),
                ..
            }) => Some(parked),
            _ => None,
        };
        let handle = ListHandle::spawn(name.clone(), self.shared.context.clone(), parked);
        let slot = Slot::new(SlotState::Running(handle.clone()), epoch);
        lists.insert(name.clone(), slot);
        drop(lists);
        if self.len() > self.shared.config.max_lists_in_memory {
            self.shared.make_room(name);
        }
        handle
    }

    /// Adds an entry; answers once it is committed. A repeated `idempotency_key` answers with
    /// the entry it first created.
    pub async fn add_entry(
        &self,
        list: &ListName,
        entry: NewEntry,
        idempotency_key: Option<String>,
    ) -> Result<Created, RequestError> {
        self.call(list, |respond_to| Request::AddEntry {
            entry,
            idempotency_key,
            respond_to,
        })
        .await
    }

    /// Reads entries of the list, as committed.
    pub async fn entries(
        &self,
        list: &ListName,
        query: EntriesQuery,
    ) -> Result<Vec<Entry>, RequestError> {
        if let Some(entries) = self.read_committed(list, |committed| committed.entries(query)) {
            yield_sometimes().await;
            return Ok(entries);
        }
        self.call(list, |respond_to| Request::Entries { query, respond_to })
            .await
    }

    /// Runs `read` on entries of the list, as committed: in memory, under the list's read
    /// lock, so an answer rendered there copies no entry (keep `read` short: the list's
    /// actor waits for it to publish a commit).
    pub async fn with_entries<T>(
        &self,
        list: &ListName,
        query: EntriesQuery,
        read: impl Fn(&[&Entry]) -> T,
    ) -> Result<T, RequestError> {
        if let Some(answer) = self.read_committed(list, |committed| read(&committed.select(query)))
        {
            yield_sometimes().await;
            return Ok(answer);
        }
        let entries: Vec<Entry> = self
            .call(list, |respond_to| Request::Entries { query, respond_to })
            .await?;
        Ok(read(&entries.iter().collect::<Vec<_>>()))
    }

    /// Reads one entry, as committed.
    pub async fn entry(&self, list: &ListName, id: EntryId) -> Result<Entry, RequestError> {
        if let Some(entry) = self.read_committed(list, |committed| committed.entry(id)) {
            yield_sometimes().await;
            return entry.ok_or(RequestError::NotFound(id));
        }
        self.call(list, |respond_to| Request::Entry { id, respond_to })
            .await
    }

    /// Subscribes to the list's committed changes (see `SharedList::subscribe`), loading the
    /// list first through its actor when it is not in memory or may differ from storage.
    pub async fn subscribe(
        &self,
        list: &ListName,
        after: Option<u64>,
    ) -> Result<Subscription, RequestError> {
        // A few tries: the list may be forgotten, or a write fail, between the load and here.
        for _ in 0..3 {
            if let Some(subscription) = self
                .shared_list(list)
                .and_then(|shared| shared.subscribe(after))
            {
                if self.database().is_shared() {
                    // Another node may have written while no one here followed the list: a
                    // read through the actor compares versions, and a reload reaches the new
                    // subscriber as a fresh snapshot.
                    self.entries(list, EntriesQuery::All).await?;
                }
                return Ok(subscription);
            }
            let query = EntriesQuery::All;
            self.call(list, |respond_to| Request::Entries { query, respond_to })
                .await?;
        }
        Err(RequestError::Storage(StorageError::Unavailable))
    }

    /// How many subscribers follow the list (0 when it is not in memory).
    pub fn subscribers(&self, list: &ListName) -> usize {
        self.shared_list(list)
            .map_or(0, |shared| shared.subscribers())
    }

    /// The whole list as committed, with its id counter and version: what an export writes.
    pub async fn dump(&self, list: &ListName) -> Result<Dump, RequestError> {
        self.call(list, |respond_to| Request::Dump { respond_to })
            .await
    }

    /// Imports exported entries with their ids (see `Request::Import`); answers once
    /// committed.
    pub async fn import(
        &self,
        list: &ListName,
        entries: Vec<Entry>,
        next_id: EntryId,
    ) -> Result<Imported, RequestError> {
        self.call(list, |respond_to| Request::Import {
            entries,
            next_id,
            respond_to,
        })
        .await
    }

    /// Brings a list that subscribers follow up to `version`, which another node committed:
    /// a read through the actor (on shared storage it compares versions and reloads), whose
    /// reload tells the subscribers to take a fresh snapshot. Nothing for a list no one
    /// follows here, or one this node already holds at that version (its own commit).
    /// `false` when storage failed and the catch-up should be tried again.
    pub async fn catch_up(&self, list: &ListName, version: u64) -> bool {
        let Some(shared) = self.shared_list(list) else {
            return true;
        };
        if shared.subscribers() == 0 || shared.version().is_some_and(|held| held >= version) {
            return true;
        }
        match self.entries(list, EntriesQuery::All).await {
            Ok(_) => true,
            Err(error) => {
                tracing::debug!(%error, list = list.as_str(), "could not catch up a followed list");
                false
            }
        }
    }

    /// The lists that have subscribers here.
    pub fn followed(&self) -> Vec<ListName> {
        let mut followed = Vec::new();
        for shard in self.shared.shards() {
            let lists = shard.iter().filter(|(_, slot)| match &slot.list {
                SlotState::Running(handle) => handle.shared().subscribers() > 0,
                SlotState::Parked(parked) => parked.shared().subscribers() > 0,
            });
            followed.extend(lists.map(|(name, _)| name.clone()));
        }
        followed
    }

    /// The list's `SharedList`, if the list is in memory.
    fn shared_list(&self, name: &ListName) -> Option<Arc<SharedList>> {
        let lists = self.shared.read(name);
        let slot = lists.get(name)?;
        slot.touch(self.shared.epoch);
        match &slot.list {
            SlotState::Running(handle) => Some(handle.shared().clone()),
            SlotState::Parked(parked) => Some(parked.shared().clone()),
        }
    }

    /// Reads the list's committed state directly, without a message to its actor, when that
    /// state is in memory and sure to match storage: not on shared storage, where another node
    /// may have written, and not while its worker has reopened its connection since the load.
    /// `None` sends the read through the actor.
    fn read_committed<T>(
        &self,
        name: &ListName,
        read: impl FnOnce(&Committed<'_>) -> T,
    ) -> Option<T> {
        let database = self.database();
        if database.is_shared() || self.shared.stopping.load(Ordering::Acquire) {
            return None;
        }
        let shared = {
            let lists = self.shared.read(name);
            let slot = lists.get(name)?;
            slot.touch(self.shared.epoch);
            match &slot.list {
                SlotState::Running(handle) if !handle.is_closed() => handle.shared().clone(),
                SlotState::Running(_) => return None,
                SlotState::Parked(parked) => parked.shared().clone(),
            }
        };
        shared.read(database.generation(name), read)
    }

    /// Changes some fields of an entry; answers with the entry once committed.
    pub async fn update_entry(
        &self,
        list: &ListName,
        id: EntryId,
        changes: Changes,
    ) -> Result<Entry, RequestError> {
        self.call(list, |respond_to| Request::UpdateEntry {
            id,
            changes,
            respond_to,
        })
        .await
    }

    /// Deletes one entry; answers once committed.
    pub async fn delete_entry(&self, list: &ListName, id: EntryId) -> Result<(), RequestError> {
        self.call(list, |respond_to| Request::DeleteEntry { id, respond_to })
            .await
    }

    /// Deletes every entry of the list; answers once committed.
    pub async fn clear(&self, list: &ListName) -> Result<(), RequestError> {
        self.call(list, |respond_to| Request::Clear { respond_to })
            .await
    }

    /// Sends a request to the list and waits for its answer, at most the configured call
    /// timeout: first for a mailbox slot (backpressure), then for the answer.
    async fn call<T>(
        &self,
        list: &ListName,
        request: impl FnOnce(Responder<T>) -> Request,
    ) -> Result<T, RequestError> {
        let deadline = Instant::now() + self.shared.config.call_timeout;
        let (respond_to, answer) = tokio::sync::oneshot::channel();
        let mut request = request(Some(respond_to));
        let exchange = async {
            loop {
                self.refuse_after_shutdown()?;
                match self.server_process(list).send(request).await {
                    Ok(()) => break,
                    // The actor stopped between lookup and send: the next lookup starts a new one.
                    Err(returned) => request = returned,
                }
            }
            answer.await.map_err(|_dropped| RequestError::Crashed)?
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or(Err(RequestError::Timeout))
    }

    /// Queues a write for the list without waiting; fails at once if its mailbox is full.
    pub fn cast(&self, list: &ListName, command: Command) -> Result<(), RequestError> {
        let mut request = Request::from(command);
        loop {
            self.refuse_after_shutdown()?;
            match self.server_process(list).try_send(request) {
                Ok(()) => return Ok(()),
                Err(Err(error)) => return Err(error),
                Err(Ok(returned)) => request = returned,
            }
        }
    }

    /// The number of lists in memory, with a running or a hibernating actor.
    pub fn len(&self) -> usize {
        self.shared.shards().map(|lists| lists.len()).sum()
    }

    /// Whether no list is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages waiting in all mailboxes.
    pub fn mailbox_depth(&self) -> usize {
        let depth = |slot: &Slot| match &slot.list {
            SlotState::Running(handle) => handle.mailbox_depth(),
            SlotState::Parked(_) => 0,
        };
        let shards = self.shared.shards();
        shards
            .map(|lists| lists.values().map(depth).sum::<usize>())
            .sum()
    }

    /// Counters of the list actors.
    pub fn stats(&self) -> &ActorStats {
        &self.shared.context.stats
    }

    /// The database the actors use.
    pub fn database(&self) -> &Database {
        &self.shared.context.database
    }

    /// Stops every actor and returns once all have stopped. Each first finishes the messages
    /// already in its mailbox and hands their writes to the database.
    pub async fn shutdown(&self) {
        let context = &self.shared.context;
        self.shared.stopping.store(true, Ordering::Release);
        context.shutdown.cancel();
        for shard in self.shared.shards.iter() {
            write_lock(shard).clear();
        }
        context.tracker.close();
        context.tracker.wait().await;
    }

    /// A stopped actor refuses messages, so without this check a request arriving during
    /// shutdown would start actor after actor.
    fn refuse_after_shutdown(&self) -> Result<(), RequestError> {
        match self.shared.stopping.load(Ordering::Acquire) {
            true => Err(RequestError::ShuttingDown),
            false => Ok(()),
        }
    }
}

impl CacheShared {
    /// The shard of `name`, read-locked.
    fn read(&self, name: &ListName) -> RwLockReadGuard<'_, HashMap<ListName, Slot>> {
        read_lock(self.shard(name))
    }

    /// The shard of `name`, write-locked.
    fn write(&self, name: &ListName) -> RwLockWriteGuard<'_, HashMap<ListName, Slot>> {
        write_lock(self.shard(name))
    }

    fn shard(&self, name: &ListName) -> &RwLock<HashMap<ListName, Slot>> {
        &self.shards[shard_index(name)]
    }

    /// Evicts one list (see `evict_one`) from the first shard that has one to evict, from the
    /// shard of `name` on. Called with no shard locked, so it may lock each in turn.
    fn make_room(&self, name: &ListName) {
        let first = shard_index(name);
        for n in 0..SHARDS {
            if evict_one(&mut write_lock(&self.shards[(first + n) % SHARDS])) {
                return;
            }
        }
    }

    /// Every shard, read-locked one after the other.
    fn shards(&self) -> impl Iterator<Item = RwLockReadGuard<'_, HashMap<ListName, Slot>>> {
        self.shards.iter().map(read_lock)
    }

    /// Lets an idle actor go if it is still the one registered for `name` and nobody else can
    /// reach it, keeping its `parked` list if it hands one over. Checked under the write lock,
    /// because new handles are only cloned under the lock, read or write.
    fn retire(
        &self,
        name: &ListName,
        actor_id: u64,
        unused: &dyn Fn() -> bool,
        parked: Option<ParkedList>,
    ) -> Result<(), Option<ParkedList>> {
        let mut lists = self.write(name);
        let registered = matches!(
            lists.get(name),
            Some(Slot { list: SlotState::Running(handle), .. }) if handle.actor_id() == actor_id
        );
        if !registered || !unused() {
            return Err(parked);
        }
        match parked {
            Some(parked) => {
                let slot = lists
                    .get_mut(name)
                    .expect("registered was checked under this lock");
                slot.list = SlotState::Parked(parked);
            }
            None => {
                lists.remove(name);
            }
        }
        Ok(())
    }

    /// Forgets hibernating lists unused for `idle_timeout`.
    fn expire_parked(&self) {
        let idle_millis = self.config.idle_timeout.as_millis() as u64;
        let now = millis_since(self.epoch);
        for shard in self.shards.iter() {
            write_lock(shard).retain(|_, slot| {
                matches!(slot.list, SlotState::Running(_))
                    || now.saturating_sub(slot.last_used()) < idle_millis
            });
        }
    }
}

/// Counts a read answered from memory against the task's budget, as a message through a
/// channel would count: a task that does nothing but such reads (an in-process client) then
/// still yields now and then, instead of holding its runtime thread for good.
async fn yield_sometimes() {
    tokio::task::consume_budget().await;
}

/// Every so often, forgets hibernating lists that have not been used for `idle_timeout`; stops
/// at shutdown or when the cache is gone.
async fn sweep(shared: Weak<CacheShared>, shutdown: CancellationToken) {
    let Some(idle_timeout) = shared.upgrade().map(|shared| shared.config.idle_timeout) else {
        return;
    };
    let interval = (idle_timeout / 4).clamp(SWEEP_INTERVAL.0, SWEEP_INTERVAL.1);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        match shared.upgrade() {
            Some(shared) => shared.expire_parked(),
            None => return,
        }
    }
}

/// Makes room for one list in one shard: forgets the least recently used of a sample of its
/// hibernating lists, or else asks the least recently used of a sample of its unused running
/// actors to stop; false when it found neither. A running actor decides itself, between two
/// messages, through `retire`, so a write it is handling always reaches the database before
/// a new actor for the same list loads it.
fn evict_one(lists: &mut HashMap<ListName, Slot>) -> bool {
    let oldest_parked = lists
        .iter()
        .take(EVICTION_SCAN)
        .filter(|(_, slot)| matches!(slot.list, SlotState::Parked(_)))
        .take(EVICTION_SAMPLE)
        .min_by_key(|(_, slot)| slot.last_used())
        .map(|(name, _)| name.clone());
    if let Some(name) = oldest_parked {
        lists.remove(&name);
        return true;
    }
    let oldest_running = lists
        .values()
        .take(EVICTION_SCAN)
        .filter_map(|slot| match &slot.list {
            SlotState::Running(handle)
                if handle.is_only_handle() && handle.mailbox_depth() == 0 =>
            {
                Some((handle, slot.last_used()))
            }
            _ => None,
        })
        .take(EVICTION_SAMPLE)
        .min_by_key(|(_, last_used)| *last_used);
    match oldest_running {
        Some((handle, _)) => {
            handle.ask_to_retire();
            true
        }
        None => false,
    }
}

/// Milliseconds from `epoch` to now, as `Slot::last_used` counts.
fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

fn shard_index(name: &ListName) -> usize {
    (fixed_hash(name.as_str()) % SHARDS as u64) as usize
}

// A panic never happens while a shard is locked (no user code runs under it), so a poisoned
// lock still guards a consistent map.
fn read_lock(
    shard: &RwLock<HashMap<ListName, Slot>>,
) -> RwLockReadGuard<'_, HashMap<ListName, Slot>> {
    shard
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock(
    shard: &RwLock<HashMap<ListName, Slot>>,
) -> RwLockWriteGuard<'_, HashMap<ListName, Slot>> {
    shard
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use crate::app::tests::{add, entry, name, start};
    use crate::database::StorageError;
    use crate::list::Entry;
    use crate::lists::{EntriesQuery, RequestError};
    use std::sync::Arc;

    #[tokio::test]
    async fn one_actor_per_name() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let bob = app.cache().server_process(&name("bob"));
        let bob_again = app.cache().server_process(&name("bob"));
        let alice = app.cache().server_process(&name("alice"));
        assert_eq!(bob.actor_id(), bob_again.actor_id());
        assert_ne!(bob.actor_id(), alice.actor_id());
        assert_eq!(app.cache().stats().started(), 2);
        app.shutdown().await;
    }

    /// A read answered from memory awaits nothing, so without the budget a task that only
    /// reads would never give its thread back (an in-process benchmark's client did that).
    #[test]
    fn a_task_that_only_reads_still_lets_others_run() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let app = start(dir.path()).await;
                let cache = app.cache().clone();
                cache.cast(&name("x"), add("2018-12-19", "a")).unwrap();
                cache.entries(&name("x"), EntriesQuery::All).await.unwrap();
                let reader = tokio::spawn(async move {
                    loop {
                        let _ = cache.entries(&name("x"), EntriesQuery::All).await;
                    }
                });
                // The reader runs now; this task goes on only once it yields.
                tokio::task::yield_now().await;
                reader.abort();
                let _ = done.send(());
            });
        });
        let resumed = finished.recv_timeout(std::time::Duration::from_secs(30));
        assert!(resumed.is_ok(), "the reading task held its runtime thread");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_requests_start_one_actor() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, barrier) = (app.cache().clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    cache.server_process(&name("popular")).actor_id()
                })
            })
            .collect();
        let mut actor_ids = Vec::new();
        for task in tasks {
            actor_ids.push(task.await.unwrap());
        }
        actor_ids.dedup();
        assert_eq!(actor_ids.len(), 1);
        assert_eq!(app.cache().stats().started(), 1);
        app.shutdown().await;
    }

    /// The seeds: a long `init` must not block the creator. Another connection holds SQLite's
    /// write lock, so the only worker stalls on a commit and every load queued behind it waits;
    /// spawning must still return, and calls wait in the mailbox until the lock goes. One runtime
    /// thread keeps the order of events deterministic: actors run only when the test yields.
    #[tokio::test]
    async fn spawning_does_not_wait_for_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        app.cache()
            .add_entry(&name("slow"), entry("2018-12-19", "Dentist"), None)
            .await
            .unwrap();
        app.shutdown().await;
        let mut config = crate::app::tests::config(dir.path());
        config.database.workers = Some(1);
        let app = crate::app::App::start(config).await.unwrap();
        let (blocker, read_other) = stall_the_worker(&app, dir.path()).await;

        let handles: Vec<_> = (0..10)
            .map(|n| app.cache().server_process(&name(&format!("slow{n}"))))
            .collect();
        assert_eq!(
            handles.len(),
            10,
            "spawning returned while every load is blocked"
        );
        drop(handles);
        let cache = app.cache().clone();
        let mut call =
            tokio::spawn(async move { cache.entries(&name("slow"), EntriesQuery::All).await });
        tokio::task::yield_now().await;
        assert!(is_pending(&mut call).await, "the call waits for the load");

        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        let entries = call
            .await
            .unwrap()
            .expect("the call is answered after the load");
        assert_eq!(entries.len(), 1);
        let read_other = read_other.await.unwrap().unwrap();
        assert!(read_other.is_empty(), "a read shows committed entries only");
        app.shutdown().await;
    }

    /// Takes SQLite's write lock from another connection, then makes the (single) worker start a
    /// commit, which stalls on the lock; everything queued behind it waits until the returned
    /// connection commits. Needs a single-threaded runtime, so the wait below is deterministic.
    async fn stall_the_worker(
        app: &crate::app::App,
        dir: &std::path::Path,
    ) -> (
        rusqlite::Connection,
        tokio::task::JoinHandle<Result<Vec<Entry>, RequestError>>,
    ) {
        let blocker =
            rusqlite::Connection::open(dir.join(crate::database::sqlite::DATABASE_FILE)).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        app.cache()
            .cast(&name("other"), add("2018-12-19", "stalls the worker"))
            .unwrap();
        // Once the actor takes this read from its mailbox, it has handed the write to the worker.
        let cache = app.cache().clone();
        let read_other =
            tokio::spawn(async move { cache.entries(&name("other"), EntriesQuery::All).await });
        while app.cache().server_process(&name("other")).mailbox_depth() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        (blocker, read_other)
    }

    fn entries_of(reply: Result<Vec<Entry>, RequestError>) -> Vec<String> {
        match reply {
            Ok(entries) => entries.into_iter().map(|e| e.title.to_string()).collect(),
            Err(error) => panic!("expected entries, got {error:?}"),
        }
    }

    async fn titles(cache: &super::Cache, list: &str) -> Vec<String> {
        entries_of(cache.entries(&name(list), EntriesQuery::All).await)
    }

    #[tokio::test]
    async fn a_panic_fails_one_request_and_the_list_restarts_from_storage() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let cache = app.cache();
        cache
            .add_entry(&name("fragile"), entry("2018-12-19", "kept"), None)
            .await
            .unwrap();
        cache
            .add_entry(&name("steady"), entry("2018-12-19", "untouched"), None)
            .await
            .unwrap();
        let steady_actor = cache.server_process(&name("steady")).actor_id();

        let crashed = cache
            .add_entry(
                &name("fragile"),
                entry("2018-12-19", crate::fault::PANIC_TITLE),
                None,
            )
            .await;
        assert!(matches!(crashed, Err(RequestError::Crashed)), "{crashed:?}");

        assert_eq!(titles(cache, "fragile").await, ["kept"]);
        assert_eq!(
            cache.stats().started(),
            3,
            "the crashed list got a new actor"
        );
        assert_eq!(
            cache.server_process(&name("steady")).actor_id(),
            steady_actor
        );
        assert_eq!(titles(cache, "steady").await, ["untouched"]);
        app.shutdown().await;
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported_and_memory_follows_storage() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let cache = app.cache();
        cache
            .add_entry(&name("disk"), entry("2018-12-19", "stored"), None)
            .await
            .unwrap();

        crate::fault::fail_commits(dir.path(), true);
        let failed = cache
            .add_entry(&name("disk"), entry("2018-12-19", "lost"), None)
            .await;
        assert!(
            matches!(failed, Err(RequestError::Storage(StorageError::Backend(_)))),
            "a failure before COMMIT is reported as not stored: {failed:?}"
        );
        assert_eq!(
            titles(cache, "disk").await,
            ["stored"],
            "the actor reloaded what storage holds"
        );
        crate::fault::fail_commits(dir.path(), false);

        cache
            .add_entry(&name("disk"), entry("2018-12-19", "again"), None)
            .await
            .unwrap();
        app.shutdown().await;
        let app = start(dir.path()).await;
        assert_eq!(titles(app.cache(), "disk").await, ["stored", "again"]);
        app.shutdown().await;
    }

    #[tokio::test]
    async fn a_worker_survives_a_panic_in_storage_and_reopens_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let app = start(dir.path()).await;
        let cache = app.cache();
        cache
            .add_entry(&name("shaky"), entry("2018-12-19", "before"), None)
            .await
            .unwrap();

        crate::fault::panic_in_commits(dir.path(), true);
        let failed = cache
            .add_entry(&name("shaky"), entry("2018-12-19", "during"), None)
            .await;
        assert!(
            matches!(failed, Err(RequestError::Storage(_))),
            "{failed:?}"
        );
        crate::fault::panic_in_commits(dir.path(), false);

        // The worker reopens its connection after a back-off; until then it answers Unavailable.
        let stored = loop {
            match cache.entries(&name("shaky"), EntriesQuery::All).await {
                Err(RequestError::Storage(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await
                }
                reply => break entries_of(reply),
            }
        };
        assert_eq!(stored, ["before"]);
        cache
            .add_entry(&name("shaky"), entry("2018-12-19", "after"), None)
            .await
            .unwrap();
        assert_eq!(cache.database().stats().restarts(), 1);
        app.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_lists_expire_and_racing_requests_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::app::tests::config(dir.path());
        config.lists.idle_timeout = std::time::Duration::from_millis(5);
        let app = crate::app::App::start(config).await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let cache = app.cache().clone();
                tokio::spawn(async move {
                    for n in 0..40 {
                        let title = format!("{writer}-{n}");
                        cache
                            .add_entry(&name("racy"), entry("2018-12-19", &title), None)
                            .await
                            .unwrap();
                        // Pauses around the idle timeout, so expiry races with requests.
                        tokio::time::sleep(std::time::Duration::from_millis((n % 4) * 3)).await;
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        while !app.cache().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            app.cache().stats().started() > 1,
            "the list expired and was restarted"
        );
        assert_eq!(
            titles(app.cache(), "racy").await.len(),
            8 * 40,
            "no request was lost"
        );
        app.shutdown().await;
    }

    /// An idle actor hibernates: its task stops, its list stays in the cache, a read is served
    /// from it without waking the actor, and its next write wakes it without a load. Storage is
    /// stalled meanwhile, so an answer proves that.
    #[tokio::test]
    async fn idle_actors_hibernate_and_wake_without_loading() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::app::tests::config(dir.path());
        config.database.workers = Some(1);
        config.lists.hibernate_after = std::time::Duration::from_millis(5);
        let app = crate::app::App::start(config).await.unwrap();
        app.cache()
            .add_entry(&name("sleepy"), entry("2018-12-19", "Dentist"), None)
            .await
            .unwrap();
        while app.cache().stats().live() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(app.cache().len(), 1, "the hibernating list stays in memory");

        let (blocker, _read_other) = stall_the_worker(&app, dir.path()).await;
        assert_eq!(titles(app.cache(), "sleepy").await, ["Dentist"]);
        assert_eq!(app.cache().stats().started(), 2, "the read woke no actor");

        let woken = app.cache().server_process(&name("sleepy"));
        assert_eq!(
            app.cache().stats().started(),
            3,
            "sleepy woke in a new actor"
        );
        let generation = app.cache().database().generation(&name("sleepy"));
        let size = woken
            .shared()
            .read(generation, |list| list.entries(EntriesQuery::All).len());
        assert_eq!(
            size,
            Some(1),
            "it woke with its list, before any load could answer"
        );
        blocker.execute_batch("COMMIT").unwrap();
        app.shutdown().await;
    }

    #[tokio::test]
    async fn the_number_of_live_actors_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::app::tests::config(dir.path());
        config.lists.max_lists_in_memory = 10;
        let app = crate::app::App::start(config).await.unwrap();
        for n in 0..100 {
            app.cache()
                .add_entry(&name(&format!("list {n}")), entry("2018-12-19", "x"), None)
                .await
                .unwrap();
        }
        tokio::task::yield_now().await;
        assert!(app.cache().len() <= 11, "{} actors live", app.cache().len());
        for n in 0..100 {
            assert_eq!(titles(app.cache(), &format!("list {n}")).await, ["x"]);
        }
        app.shutdown().await;
    }

    /// The seeds: "when a request times out, it isn't removed from the receiver's mailbox".
    /// Here it is skipped instead: calls that time out while their list is stuck loading are
    /// never executed.
    #[tokio::test]
    async fn requests_whose_caller_left_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::app::tests::config(dir.path());
        config.database.workers = Some(1);
        config.lists.call_timeout = std::time::Duration::from_millis(20);
        let app = crate::app::App::start(config).await.unwrap();
        let (blocker, _read_other) = stall_the_worker(&app, dir.path()).await;

        for n in 0..5 {
            let late = app
                .cache()
                .add_entry(
                    &name("stuck"),
                    entry("2018-12-19", &format!("late {n}")),
                    None,
                )
                .await;
            assert!(matches!(late, Err(RequestError::Timeout)), "{late:?}");
        }
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        // The short call timeout also applies to this read, so retry until the worker is free.
        let stored = loop {
            match app.cache().entries(&name("stuck"), EntriesQuery::All).await {
                Err(RequestError::Timeout) => continue,
                reply => break entries_of(reply),
            }
        };
        assert!(
            stored.is_empty(),
            "timed-out writes were not executed: {stored:?}"
        );
        assert!(
            app.cache().stats().skipped() >= 5,
            "the five timed-out writes were counted"
        );
        app.shutdown().await;
    }

    async fn is_pending<T>(task: &mut tokio::task::JoinHandle<T>) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, task)
            .await
            .is_err()
    }
}
