//! One database worker: a thread that owns one storage connection and commits in groups.
//!
//! The worker takes everything queued (up to `max_batch` messages), applies the writes in one
//! transaction, and only then answers each of them, so one fsync acknowledges a whole group.
//! It runs on its own OS thread because storage calls block.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::list::ListName;

use super::DatabaseStats;
use super::storage::{Change, Conflicts, Storage, StorageError, StoredList, VersionedChange};
use crate::config::DatabaseConfig;

/// How many messages may wait for one worker; past this, list actors wait to send.
pub const WORKER_QUEUE_CAPACITY: usize = 4_096;

/// The shortest pause between two attempts to reopen a failed storage connection, so that a
/// broken disk or database does not turn the worker into a busy loop.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);

/// What a writer is told once its write's group has committed, or failed.
pub type Ack = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// What the worker and one list actor share about that actor's writes.
///
/// The actor numbers its writes; the worker records the last committed number, so the actor
/// knows whether a read may be answered at once or must wait for the commit. After a failed
/// commit the worker sets `failed`, refuses the actor's later writes, and the actor reloads.
#[derive(Debug, Default)]
pub struct ListSync {
    committed: AtomicU64,
    failed: AtomicBool,
}

impl ListSync {
    /// The number of the last write of this actor that is committed.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Whether a write of this actor failed, so its memory may differ from storage.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records that a write failed, so the actor reloads before serving again.
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Release);
    }
}

/// A change to store, with the acknowledgement to send once it is committed.
pub struct Write {
    /// The list it changes.
    pub list: ListName,
    /// What to store.
    pub change: Change,
    /// The writing actor's shared state.
    pub sync: Arc<ListSync>,
    /// The actor's number for this write.
    pub seq: u64,
    /// The list's version in storage right before this write, as the actor believes it.
    pub expected_version: u64,
    /// Called after the commit, with its outcome.
    pub ack: Ack,
}

/// A request to a worker.
pub enum WorkerMessage {
    /// Read one list.
    Load {
        list: ListName,
        respond_to: oneshot::Sender<Result<StoredList, StorageError>>,
    },
    /// Store a change.
    Write(Write),
    /// Call `ack` once every write queued before it has committed: a read that must not be
    /// answered before the writes it has seen are durable.
    AfterWrites { sync: Arc<ListSync>, ack: Ack },
    /// Names of lists.
    ListNames {
        after: String,
        limit: usize,
        respond_to: oneshot::Sender<Result<Vec<ListName>, StorageError>>,
    },
    /// Read one list's version.
    Version {
        list: ListName,
        respond_to: oneshot::Sender<Result<u64, StorageError>>,
    },
    /// Check that storage answers.
    Ping {
        respond_to: oneshot::Sender<Result<(), StorageError>>,
    },
    /// Commit what came before, then stop.
    Close,
}

/// A handle to one worker thread.
#[derive(Clone)]
pub struct WorkerHandle {
    sender: mpsc::Sender<WorkerMessage>,
}

impl WorkerHandle {
    /// Starts a worker thread on an already opened connection; `closed` fires when it exits.
    ///
    /// The thread opens its own connection first and reports the outcome through `opened`; if
    /// that fails, it exits at once. `closed` fires when the thread exits.
    pub fn spawn(
        index: usize,
        config: Arc<DatabaseConfig>,
        stats: Arc<DatabaseStats>,
        opened: oneshot::Sender<Result<(), StorageError>>,
        closed: oneshot::Sender<()>,
    ) -> std::io::Result<WorkerHandle> {
        let (sender, inbox) = mpsc::channel(WORKER_QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name(format!("db-worker-{index}"))
            .spawn(move || {
                match Storage::open(&config) {
                    Ok(storage) => {
                        let _ = opened.send(Ok(()));
                        let actor = WorkerActor {
                            storage: Some(storage),
                            config,
                            stats,
                            last_restart: Instant::now(),
                        };
                        actor.run(inbox);
                    }
                    Err(error) => {
                        let _ = opened.send(Err(error));
                    }
                }
                let _ = closed.send(());
            })?;
        Ok(WorkerHandle { sender })
    }

    /// Queues a message, waiting while the queue is full; gives the message back if the
    /// worker is gone.
    pub async fn send(&self, message: WorkerMessage) -> Result<(), WorkerMessage> {
        self.sender.send(message).await.map_err(|error| error.0)
    }

    /// How many messages wait in this worker's queue.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// A message of the current group, waiting for its commit.
enum Pending {
    Write(Write),
    After(Arc<ListSync>, Ack),
}

struct WorkerActor {
    /// `None` after a failure, until the connection is reopened.
    storage: Option<Storage>,
    config: Arc<DatabaseConfig>,
    stats: Arc<DatabaseStats>,
    last_restart: Instant,
}

impl WorkerActor {
    fn run(mut self, mut inbox: mpsc::Receiver<WorkerMessage>) {
        let max_batch = self.config.max_batch.max(1);
        let mut batch = Vec::with_capacity(max_batch);
        let mut group = Vec::with_capacity(max_batch);
        while inbox.blocking_recv_many(&mut batch, max_batch) > 0 {
            for message in batch.drain(..) {
                match message {
                    WorkerMessage::Write(write) => group.push(Pending::Write(write)),
                    WorkerMessage::AfterWrites { sync, ack } => {
                        group.push(Pending::After(sync, ack))
                    }
                    WorkerMessage::Close => inbox.close(),
                    read => {
                        // Reads see committed state only, so the writes before them that they
                        // could see commit first; a group without any keeps growing.
                        if touches(&group, &read) {
                            self.flush(&mut group);
                        }
                        self.handle_read(read);
                    }
                }
            }
            self.flush(&mut group);
        }
    }

    fn handle_read(&mut self, message: WorkerMessage) {
        match message {
            WorkerMessage::Load { list, respond_to } => {
                let _ = respond_to.send(self.with_storage(|storage| storage.load(&list)));
            }
            WorkerMessage::ListNames {
                after,
                limit,
                respond_to,
            } => {
                let names = self.with_storage(|storage| storage.list_names(&after, limit));
                let _ = respond_to.send(names);
            }
            WorkerMessage::Version { list, respond_to } => {
                let _ = respond_to.send(self.with_storage(|storage| storage.version(&list)));
            }
            WorkerMessage::Ping { respond_to } => {
                let _ = respond_to.send(self.with_storage(Storage::ping));
            }
            WorkerMessage::Write(_) | WorkerMessage::AfterWrites { .. } | WorkerMessage::Close => {
                unreachable!("run handles writes and close itself")
            }
        }
    }

    /// Commits the group's writes in one transaction, then answers every message of the group.
    fn flush(&mut self, group: &mut Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        // A write queued behind a failed one of the same actor was computed from state that
        // storage never got; it is refused, and decided now so the group's own outcome cannot
        // change the choice.
        let refused: Vec<bool> = group
            .iter()
            .map(|pending| match pending {
                Pending::Write(write) => write.sync.failed(),
                Pending::After(..) => false,
            })
            .collect();
        let changes: Vec<VersionedChange<'_>> = group
            .iter()
            .zip(&refused)
            .filter_map(|(pending, refused)| match pending {
                Pending::Write(write) if !refused => Some(VersionedChange {
                    list: &write.list,
                    expected_version: write.expected_version,
                    change: &write.change,
                }),
                _ => None,
            })
            .collect();
        let outcome = match changes.is_empty() {
            true => Ok(Conflicts::new()),
            false => self.commit(&changes),
        };
        for (pending, refused) in group.drain(..).zip(refused) {
            match pending {
                Pending::Write(write) => answer_write(write, refused, &outcome),
                Pending::After(sync, ack) => ack(match sync.failed() {
                    true => Err(StorageError::Diverged),
                    false => Ok(()),
                }),
            }
        }
    }

    fn commit(&mut self, changes: &[VersionedChange<'_>]) -> Result<Conflicts, StorageError> {
        let started = Instant::now();
        let outcome = self.with_storage(|storage| storage.commit(changes));
        let n_writes = changes.len() as u64;
        match &outcome {
            Ok(conflicts) => {
                let n_conflicted = changes
                    .iter()
                    .filter(|change| conflicts.contains(change.list))
                    .count();
                self.stats
                    .record_commit(n_writes - n_conflicted as u64, started.elapsed());
            }
            Err(error) => {
                self.stats.record_failed_commit(n_writes);
                tracing::error!(%error, n_writes, "group commit failed");
            }
        }
        outcome
    }

    /// Runs `operation` on the connection, reopening it first if it was lost or an earlier
    /// panic closed it.
    /// A panic inside storage is caught: the worker survives it, and restarts the connection,
    /// whose state is unknown, on next use. Plain errors (a full disk, a busy lock) leave the
    /// connection as it is.
    fn with_storage<T>(
        &mut self,
        operation: impl FnOnce(&mut Storage) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let storage = self.storage()?;
        match catch_unwind(AssertUnwindSafe(|| operation(storage))) {
            Ok(outcome) => outcome,
            Err(_panic) => {
                tracing::error!("storage panicked; the connection will be reopened");
                self.storage = None;
                Err(StorageError::Backend("storage panicked".into()))
            }
        }
    }

    fn storage(&mut self) -> Result<&mut Storage, StorageError> {
        if self.storage.as_ref().is_some_and(Storage::is_broken) {
            tracing::warn!("the storage connection is lost; reopening it");
            self.storage = None;
        }
        if self.storage.is_none() {
            if self.last_restart.elapsed() < RESTART_BACKOFF {
                return Err(StorageError::Unavailable);
            }
            self.last_restart = Instant::now();
            self.stats.record_restart();
            let storage = Storage::open(&self.config).inspect_err(|error| {
                tracing::warn!(%error, "reopening storage failed");
            })?;
            self.storage = Some(storage);
        }
        Ok(self.storage.as_mut().expect("storage was just opened"))
    }
}

/// Whether `read` could see a write of `group`: a load or version check of one of its lists,
/// or a read of every list.
fn touches(group: &[Pending], read: &WorkerMessage) -> bool {
    let list = match read {
        WorkerMessage::Load { list, .. } | WorkerMessage::Version { list, .. } => list,
        _ => return !group.is_empty(),
    };
    group
        .iter()
        .any(|pending| matches!(pending, Pending::Write(write) if &write.list == list))
}

fn answer_write(write: Write, refused: bool, outcome: &Result<Conflicts, StorageError>) {
    if refused {
        return (write.ack)(Err(StorageError::Diverged));
    }
    match outcome {
        Ok(conflicts) if conflicts.contains(&write.list) => {
            write.sync.mark_failed();
            (write.ack)(Err(StorageError::Conflict))
        }
        Ok(_) => {
            write.sync.committed.store(write.seq, Ordering::Release);
            (write.ack)(Ok(()))
        }
        Err(error) => {
            write.sync.mark_failed();
            (write.ack)(Err(error.clone()))
        }
    }
}
