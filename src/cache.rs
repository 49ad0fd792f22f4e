//! The cache of list actors: the book's `Todo.Cache`.
//!
//! It maps list names to `ListHandle`s and starts an actor on first use. Spawning is synchronous
//! and the lock is never held across an `.await`, so a plain mutex is enough, and concurrent first
//! requests for one name get one actor. A stopped actor (after a panic) is replaced on next use;
//! an idle one asks the cache to forget it, which only happens while nobody else holds its handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::time::Instant;

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
        self.shared.lock().values().map(ListHandle::mailbox_depth).sum()
    }

    /// Counters of the list actors.
    pub fn stats(&self) -> &ActorStats {
        &self.shared.context.stats
    }

    /// The database the actors use.
    pub fn database(&self) -> &Database {
        &self.shared.context.database
    }

    /// Forgets every actor. Each finishes the messages already in its mailbox, hands their
    /// writes to the database, and stops; the database then commits them and closes.
    pub fn shutdown(&self) {
        self.shared.lock().clear();
    }
}

impl CacheShared {
    fn lock(&self) -> MutexGuard<'_, HashMap<ListName, ListHandle>> {
        // A panic never happens while the lock is held (no user code runs under it), so a
        // poisoned lock still guards a consistent map.
        self.lists.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets an idle actor if it is still the one registered for `name` and nobody else can
    /// reach it. Checked under the lock, because new handles are only cloned under it.
    fn retire(&self, name: &ListName, actor_id: u64, unused: &dyn Fn() -> bool) -> bool {
        let mut lists = self.lock();
        let registered = lists.get(name).is_some_and(|handle| handle.actor_id() == actor_id);
        if registered && unused() {
            lists.remove(name);
            return true;
        }
        false
    }
}
