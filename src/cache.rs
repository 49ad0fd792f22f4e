//! The cache of list actors: the book's `Todo.Cache`.
//!
//! It maps list names to `ListHandle`s and starts an actor on first use. Spawning is synchronous
//! and the lock is never held across an `.await`, so a plain mutex is enough, and concurrent first
//! requests for one name get one actor. A stopped actor (after a panic) is replaced on next use;
//! an idle one asks the cache to forget it, which only happens while nobody else holds its handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListsConfig;
use crate::database::Database;
use crate::list::ListName;
use crate::server::{ActorContext, ActorStats, Command, ListHandle, Reply, SendError, ServerError};

/// List name -> actor. Cloning is cheap and shares the same actors.
#[derive(Clone)]
pub struct Cache {
    shared: Arc<CacheShared>,
}

struct CacheShared {
    lists: Mutex<HashMap<ListName, ListHandle>>,
    context: Arc<ActorContext>,
    config: ListsConfig,
}

impl Cache {
    /// An empty cache whose actors use `database`.
    pub fn new(database: Database, config: ListsConfig) -> Cache {
        let shared = Arc::new_cyclic(|weak: &Weak<CacheShared>| {
            let weak = weak.clone();
            let context = ActorContext {
                database,
                mailbox_capacity: config.mailbox_capacity,
                idle_timeout: config.idle_timeout,
                retire: Box::new(move |name, actor_id, unused| match weak.upgrade() {
                    Some(shared) => shared.retire(name, actor_id, unused),
                    None => false,
                }),
                stats: ActorStats::default(),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
            };
            CacheShared {
                lists: Mutex::new(HashMap::new()),
                context: Arc::new(context),
                config,
            }
        });
        Cache { shared }
    }

    /// The actor for `name`, started now if it is not running (the book's `server_process`).
    pub fn server_process(&self, name: &ListName) -> ListHandle {
        let mut lists = self.shared.lock();
        if let Some(handle) = lists.get(name).filter(|handle| !handle.is_closed()) {
            return handle.clone();
        }
        let handle = ListHandle::spawn(name.clone(), self.shared.context.clone());
        lists.insert(name.clone(), handle.clone());
        handle
    }

    /// Sends `command` to the list and waits for the reply, at most the configured call timeout.
    pub async fn call(&self, name: &ListName, mut command: Command) -> Result<Reply, ServerError> {
        let deadline = Instant::now() + self.shared.config.call_timeout;
        loop {
            self.refuse_after_shutdown()?;
            match self.server_process(name).call(command, deadline).await {
                Ok(reply) => return Ok(reply),
                Err(SendError::Failed(error)) => return Err(error),
                // The actor stopped between lookup and send: the next lookup starts a new one.
                Err(SendError::Stopped(returned)) => command = returned,
            }
        }
    }

    /// Queues `command` for the list without waiting; fails at once if its mailbox is full.
    pub fn cast(&self, name: &ListName, mut command: Command) -> Result<(), ServerError> {
        loop {
            self.refuse_after_shutdown()?;
            match self.server_process(name).cast(command) {
                Ok(()) => return Ok(()),
                Err(SendError::Failed(error)) => return Err(error),
                Err(SendError::Stopped(returned)) => command = returned,
            }
        }
    }

    /// The number of list actors the cache holds.
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// Whether the cache holds no actor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages waiting in all mailboxes.
    pub fn mailbox_depth(&self) -> usize {
        self.shared
            .lock()
            .values()
            .map(ListHandle::mailbox_depth)
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
        context.shutdown.cancel();
        self.shared.lock().clear();
        context.tracker.close();
        context.tracker.wait().await;
    }

    /// A stopped actor refuses messages, so without this check a request arriving during
    /// shutdown would start actor after actor.
    fn refuse_after_shutdown(&self) -> Result<(), ServerError> {
        match self.shared.context.shutdown.is_cancelled() {
            true => Err(ServerError::ShuttingDown),
            false => Ok(()),
        }
    }
}

impl CacheShared {
    fn lock(&self) -> MutexGuard<'_, HashMap<ListName, ListHandle>> {
        // A panic never happens while the lock is held (no user code runs under it), so a
        // poisoned lock still guards a consistent map.
        self.lists
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets an idle actor if it is still the one registered for `name` and nobody else can
    /// reach it. Checked under the lock, because new handles are only cloned under it.
    fn retire(&self, name: &ListName, actor_id: u64, unused: &dyn Fn() -> bool) -> bool {
        let mut lists = self.lock();
        let registered = lists
            .get(name)
            .is_some_and(|handle| handle.actor_id() == actor_id);
        if registered && unused() {
            lists.remove(name);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::app::tests::{add, name, start};
    use crate::server::{Command, EntriesQuery, Reply};
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
            .call(&name("slow"), add("2018-12-19", "Dentist"))
            .await
            .unwrap();
        app.shutdown().await;
        let mut config = crate::app::tests::config(dir.path());
        config.database.workers = 1;
        let app = crate::app::App::start(config).await.unwrap();
        let blocker =
            rusqlite::Connection::open(dir.path().join(crate::database::sqlite::DATABASE_FILE))
                .unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        app.cache()
            .cast(&name("other"), add("2018-12-19", "stalls the worker"))
            .unwrap();
        // Once the actor takes this read from its mailbox, it has handed the write to the worker,
        // so the loads below queue behind the stalled commit.
        let cache = app.cache().clone();
        let read_other = tokio::spawn(async move {
            cache
                .call(&name("other"), Command::Entries(EntriesQuery::All))
                .await
        });
        while app.cache().server_process(&name("other")).mailbox_depth() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }

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
        let mut call = tokio::spawn(async move {
            cache
                .call(&name("slow"), Command::Entries(EntriesQuery::All))
                .await
        });
        tokio::task::yield_now().await;
        assert!(is_pending(&mut call).await, "the call waits for the load");

        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        let Ok(Ok(Reply::Entries(entries))) = call.await else {
            panic!("the call is answered after the load")
        };
        assert_eq!(entries.len(), 1);
        assert!(matches!(read_other.await, Ok(Ok(Reply::Entries(entries))) if entries.len() == 1));
        app.shutdown().await;
    }

    async fn is_pending<T>(task: &mut tokio::task::JoinHandle<T>) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, task)
            .await
            .is_err()
    }
}
