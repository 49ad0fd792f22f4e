//! The database: a pool of workers, each owning one storage connection.
//!
//! A request for a list always goes to worker `hash(name) mod N`, with a fixed hash, so the
//! writes of one list are applied in the order its actor sent them (the book's pooled
//! `Todo.Database`). Only this module knows which storage backends exist.

pub mod change;
pub mod postgres;
pub mod sql;
pub mod sqlite;
pub mod storage;
pub mod worker;

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::DatabaseConfig;
use crate::list::ListName;

pub use change::{Change, IdempotencyKey, KeyedAdd, StorageError, StoredList};
pub use sql::ListScope;
use worker::{WorkerHandle, WorkerMessage};
pub use worker::{Write, WriteOutcome};

/// The file in the data directory locked by the running server, so that a second server on
/// the same directory refuses to start.
pub const LOCK_FILE: &str = "LOCK";

/// The pool of database workers. Cloning is cheap; workers stop after the last clone is dropped.
#[derive(Clone)]
pub struct Database {
    workers: Arc<[WorkerHandle]>,
    stats: Arc<DatabaseStats>,
    /// Whether other nodes may write the same lists (PostgreSQL), so reads check versions.
    shared: bool,
}

/// Resolves once every worker has committed its queue and closed its connection.
pub struct DatabaseClosed {
    workers_closed: Vec<oneshot::Receiver<()>>,
    /// Held until the workers are gone, so no second server can open the directory sooner.
    _lock: Option<File>,
}

/// Why the database could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be created or locked.
    #[error("data directory {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Another server holds the data directory.
    #[error("data directory {0} is in use by another todo server")]
    Locked(String),
    /// Storage could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The SQLite file is there but cannot be used: damaged, or emptied after use.
    #[error(
        "{path} cannot be used: {cause}. Run `todo check --data-dir {data_dir}` to see what is \
         wrong, and `todo restore --data-dir {data_dir} BACKUP` to put a backup in its place"
    )]
    Damaged {
        /// The database file.
        path: String,
        /// The data directory.
        data_dir: String,
        /// What is wrong.
        cause: String,
    },
}

impl Database {
    /// Opens storage and starts the workers; returns the pool and a way to wait for its close.
    pub async fn start(config: DatabaseConfig) -> Result<(Database, DatabaseClosed), OpenError> {
        // Taking the lock creates its file: whether it was there says a server ran here.
        let used = config.data_dir.join(LOCK_FILE).exists();
        let lock = lock_data_dir(&config)?;
        if config.database_url.is_none() {
            sqlite::refuse_emptied(&config.data_dir, used)
                .map_err(|cause| damaged(&config, cause))?;
        }
        let config = Arc::new(config);
        let stats = Arc::new(DatabaseStats::default());
        let n_workers = config.n_workers();
        let mut workers = Vec::with_capacity(n_workers);
        let mut workers_closed = Vec::with_capacity(n_workers);
        for index in 0..n_workers {
            let (opened, opened_receiver) = oneshot::channel();
            let (closed, closed_receiver) = oneshot::channel();
            let worker = WorkerHandle::spawn(index, config.clone(), stats.clone(), opened, closed)
                .map_err(|source| data_dir_error(&config, source))?;
            // Each worker opens its own connection on its own thread; a bad path, URL or
            // schema fails the start.
            let opened = opened_receiver
                .await
                .map_err(|_| StorageError::Unavailable)?;
            match opened {
                Err(StorageError::Backend(cause) | StorageError::Corrupt(cause))
                    if config.database_url.is_none() =>
                {
                    return Err(damaged(&config, cause));
                }
                opened => opened?,
            }
            workers.push(worker);
            workers_closed.push(closed_receiver);
        }
        let database = Database {
            workers: workers.into(),
            stats,
            shared: config.database_url.is_some(),
        };
        Ok((
            database,
            DatabaseClosed {
                workers_closed,
                _lock: Some(lock),
            },
        ))
    }

    /// Reads a list, after every write already queued for it.
    pub async fn load(&self, list: &ListName) -> Result<StoredList, StorageError> {
        let (respond_to, response) = oneshot::channel();
        let message = WorkerMessage::Load {
            list: list.clone(),
            respond_to,
        };
        self.send(list, message).await?;
        response.await.map_err(|_| StorageError::Unavailable)?
    }

    /// The list's version in storage, after every write already queued for it.
    pub async fn version(&self, list: &ListName) -> Result<u64, StorageError> {
        let (respond_to, response) = oneshot::channel();
        let message = WorkerMessage::Version {
            list: list.clone(),
            respond_to,
        };
        self.send(list, message).await?;
        response.await.map_err(|_| StorageError::Unavailable)?
    }

    /// Whether other nodes may write the same lists, so reads must check versions.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Queues a write, waiting while its worker's queue is full; its outcome arrives on
    /// `write.respond_to`, also when the worker is gone (then certainly not stored).
    pub async fn write(&self, write: Write) {
        if let Err(WorkerMessage::Write(write)) = self
            .worker(&write.list)
            .send(WorkerMessage::Write(write))
            .await
        {
            let _ = write.respond_to.send(Err(StorageError::Unavailable));
        }
    }

    /// The connection generation of the worker that serves `list`: when it differs from the
    /// one read before the list was loaded, the list must be loaded again.
    pub fn generation(&self, list: &ListName) -> u64 {
        self.worker(list).generation()
    }

    /// Names of the lists of `owner` (or of nobody) holding entries, in order, after
    /// `after`, at most `limit`; without the owner's prefix.
    pub async fn list_names(
        &self,
        scope: ListScope,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ListName>, StorageError> {
        let (respond_to, response) = oneshot::channel();
        let message = WorkerMessage::ListNames {
            scope,
            after: after.to_owned(),
            limit,
            respond_to,
        };
        self.send_to(&self.workers[0], message).await?;
        response.await.map_err(|_| StorageError::Unavailable)?
    }

    /// Checks that every worker's storage answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        for worker in self.workers.iter() {
            let (respond_to, response) = oneshot::channel();
            self.send_to(worker, WorkerMessage::Ping { respond_to })
                .await?;
            response.await.map_err(|_| StorageError::Unavailable)??;
        }
        Ok(())
    }

    /// Tells every worker to commit what is queued and stop; later requests get `Unavailable`.
    pub async fn close(&self) {
        for worker in self.workers.iter() {
            let _ = worker.send(WorkerMessage::Close).await;
        }
    }

    /// Counters of commits and writes, shared by all workers.
    pub fn stats(&self) -> &DatabaseStats {
        &self.stats
    }

    /// Messages waiting in the workers' queues, summed.
    pub fn queue_depth(&self) -> usize {
        self.workers.iter().map(WorkerHandle::queue_depth).sum()
    }

    async fn send(&self, list: &ListName, message: WorkerMessage) -> Result<(), StorageError> {
        self.send_to(self.worker(list), message).await
    }

    async fn send_to(
        &self,
        worker: &WorkerHandle,
        message: WorkerMessage,
    ) -> Result<(), StorageError> {
        worker
            .send(message)
            .await
            .map_err(|_| StorageError::Unavailable)
    }

    fn worker(&self, list: &ListName) -> &WorkerHandle {
        let index = fixed_hash(list.as_str()) % self.workers.len() as u64;
        &self.workers[index as usize]
    }
}

impl DatabaseClosed {
    /// Waits until every worker has exited.
    pub async fn wait(self) {
        for closed in self.workers_closed {
            let _ = closed.await;
        }
    }
}

/// 64-bit FNV-1a: fixed for all time, unlike std's hashers, so a list's worker never changes
/// between runs or builds.
pub fn fixed_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Takes the data directory's lock, as a server does: `OpenError::Locked` while a server runs
/// on it. `todo restore` holds it while it replaces the database file.
pub fn lock_data_dir(config: &DatabaseConfig) -> Result<File, OpenError> {
    if config.data_dir.exists() && !config.data_dir.is_dir() {
        let not_a_directory = std::io::Error::other("it exists and is not a directory");
        return Err(data_dir_error(config, not_a_directory));
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| data_dir_error(config, source))?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(config.data_dir.join(LOCK_FILE))
        .map_err(|source| data_dir_error(config, source))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(OpenError::Locked(config.data_dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(data_dir_error(config, source)),
    }
}

fn damaged(config: &DatabaseConfig, cause: String) -> OpenError {
    OpenError::Damaged {
        path: config
            .data_dir
            .join(sqlite::DATABASE_FILE)
            .display()
            .to_string(),
        data_dir: config.data_dir.display().to_string(),
        cause,
    }
}

fn data_dir_error(config: &DatabaseConfig, source: std::io::Error) -> OpenError {
    OpenError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    }
}

/// Counters kept by the workers; they feed `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct DatabaseStats {
    commits: AtomicU64,
    writes_committed: AtomicU64,
    failed_commits: AtomicU64,
    restarts: AtomicU64,
    commit_micros: AtomicU64,
    /// Set when storage reported damage (a corrupt page, a value no `todo` wrote); damage
    /// does not heal, so it stays set until the server restarts.
    damaged: AtomicBool,
}

impl DatabaseStats {
    /// Transactions committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Writes committed, over all transactions.
    pub fn writes_committed(&self) -> u64 {
        self.writes_committed.load(Ordering::Relaxed)
    }

    /// Transactions that failed.
    pub fn failed_commits(&self) -> u64 {
        self.failed_commits.load(Ordering::Relaxed)
    }

    /// Times a worker reopened its connection after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Total time spent committing, fsync included.
    pub fn commit_time(&self) -> Duration {
        Duration::from_micros(self.commit_micros.load(Ordering::Relaxed))
    }

    fn record_commit(&self, n_writes: u64, elapsed: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes_committed.fetch_add(n_writes, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
        metrics::histogram!("todo_writes_per_commit").record(n_writes as f64);
        metrics::histogram!("todo_commit_seconds").record(elapsed.as_secs_f64());
    }

    /// Whether storage has reported damage since the server started.
    pub fn damaged(&self) -> bool {
        self.damaged.load(Ordering::Relaxed)
    }

    fn record_damage(&self) {
        self.damaged.store(true, Ordering::Relaxed);
    }

    fn record_failed_commit(&self) {
        self.failed_commits.fetch_add(1, Ordering::Relaxed);
    }

    fn record_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::{Change, Database, StorageError, Write};
    use crate::app::tests::{config, name};
    use crate::list::{Date, Entry, EntryId, Title};

    fn add(list: &str, expected_version: u64) -> (Write, oneshot::Receiver<super::WriteOutcome>) {
        let entry = Entry {
            id: EntryId::new(expected_version + 1).unwrap(),
            date: Date::parse("2018-12-19").unwrap(),
            title: Title::parse("x").unwrap(),
            done: false,
            order: None,
        };
        let (respond_to, outcome) = oneshot::channel();
        let change = Change::Add {
            next_id: EntryId::new(expected_version + 2).unwrap(),
            entry,
            idempotency_key: None,
        };
        let write = Write {
            list: name(list),
            change,
            expected_version,
            respond_to,
        };
        (write, outcome)
    }

    #[tokio::test]
    async fn each_write_of_a_group_gets_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let (database, closed) = Database::start(config(dir.path()).database).await.unwrap();
        let (fresh, fresh_outcome) = add("fresh", 0);
        let (stale, stale_outcome) = add("stale", 7);
        let (next, next_outcome) = add("fresh", 1);
        for write in [fresh, stale, next] {
            database.write(write).await;
        }
        assert!(matches!(fresh_outcome.await, Ok(Ok(()))));
        assert!(matches!(
            stale_outcome.await,
            Ok(Err(StorageError::Conflict))
        ));
        assert!(matches!(next_outcome.await, Ok(Ok(()))));
        let stored = database.load(&name("fresh")).await.unwrap();
        assert_eq!((stored.list.size(), stored.version), (2, 2));
        assert_eq!(database.load(&name("stale")).await.unwrap().version, 0);
        database.close().await;
        closed.wait().await;
    }
}
