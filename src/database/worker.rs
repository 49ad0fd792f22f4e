//! One database worker: a thread that owns one storage connection and commits in groups.
//!
//! The worker is a plain service: "commit this group; report each write's outcome". It takes
//! everything queued (up to `max_batch` messages), applies the writes in one transaction, and
//! then sends each write's outcome to the list actor that made it, so one fsync settles a whole
//! group. It knows nothing of replies or of list state. It runs on its own OS thread because
//! storage calls block.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::list::ListName;

use super::change::{Change, Conflicts, StorageError, StoredList, VersionedChange};
use super::storage::Storage;
use super::{DatabaseStats, ListScope};
use crate::config::DatabaseConfig;

/// How many messages may wait for one worker; past this, list actors wait to send.
pub const WORKER_QUEUE_CAPACITY: usize = 4_096;

/// The shortest pause between two attempts to reopen a failed storage connection, so that a
/// broken disk or database does not turn the worker into a busy loop.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);

/// What a write's group did with it: `Ok` once committed; `Err(Conflict)` when its list's
/// version had moved on, and `Err(Refused)` when an earlier write of its list had failed, so
/// nothing of it was applied; `Err(OutcomeUnknown)` when the commit failed at a point where it
/// may already be durable; any other error means not stored.
pub type WriteOutcome = Result<(), StorageError>;

/// A change to store, and where to report its outcome.
pub struct Write {
    /// The list it changes.
    pub list: ListName,
    /// What to store.
    pub change: Change,
    /// The list's version in storage right before this write, as the actor believes it.
    pub expected_version: u64,
    /// Receives the outcome once the write's group has committed or failed.
    pub respond_to: oneshot::Sender<WriteOutcome>,
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
    /// Names of the lists in a scope.
    ListNames {
        scope: ListScope,
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
    /// Bumped each time the worker drops its connection (an unknown commit outcome, a panic,
    /// a lost PostgreSQL connection): lists loaded before may differ from what storage holds.
    generation: Arc<AtomicU64>,
}

impl WorkerHandle {
    /// Starts a worker thread; `opened` reports whether its connection opened (if not, the
    /// thread exits at once), and `closed` fires when the thread exits.
    pub fn spawn(
        index: usize,
        config: Arc<DatabaseConfig>,
        stats: Arc<DatabaseStats>,
        opened: oneshot::Sender<Result<(), StorageError>>,
        closed: oneshot::Sender<()>,
    ) -> std::io::Result<WorkerHandle> {
        let (sender, inbox) = mpsc::channel(WORKER_QUEUE_CAPACITY);
        let generation = Arc::new(AtomicU64::new(0));
        let worker_generation = generation.clone();
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
                            generation: worker_generation,
                            last_restart: None,
                            uncheckpointed: 0,
                            refused: HashSet::new(),
                        };
                        actor.run(inbox);
                    }
                    Err(error) => {
                        let _ = opened.send(Err(error));
                    }
                }
                let _ = closed.send(());
            })?;
        Ok(WorkerHandle { sender, generation })
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

    /// The worker's connection generation; a change means lists must reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

struct WorkerActor {
    /// `None` after a failure, until the connection is reopened.
    storage: Option<Storage>,
    config: Arc<DatabaseConfig>,
    stats: Arc<DatabaseStats>,
    generation: Arc<AtomicU64>,
    /// When the connection was last reopened; the first reopen is immediate.
    last_restart: Option<Instant>,
    /// Writes committed since the last checkpoint (SQLite), to keep the WAL bounded.
    uncheckpointed: usize,
    /// Lists whose write failed or conflicted, whose later writes are refused until the list
    /// is loaded again.
    refused: HashSet<ListName>,
}

impl WorkerActor {
    fn run(mut self, mut inbox: mpsc::Receiver<WorkerMessage>) {
        let max_batch = self.config.max_batch.max(1);
        let mut batch = Vec::with_capacity(max_batch);
        let mut group = Vec::with_capacity(max_batch);
        while inbox.blocking_recv_many(&mut batch, max_batch) > 0 {
            for message in batch.drain(..) {
                match message {
                    WorkerMessage::Write(write) => group.push(write),
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
            self.maybe_checkpoint(inbox.is_empty());
        }
        self.maybe_checkpoint(true);
    }

    fn handle_read(&mut self, message: WorkerMessage) {
        match message {
            WorkerMessage::Load { list, respond_to } => {
                // The actor reloads only once every write it sent has its outcome.
                self.refused.remove(&list);
                let _ = respond_to.send(self.with_storage(|storage| storage.load(&list)));
            }
            WorkerMessage::ListNames {
                scope,
                after,
                limit,
                respond_to,
            } => {
                let names = self.with_storage(|storage| storage.list_names(scope, &after, limit));
                let _ = respond_to.send(names);
            }
            WorkerMessage::Version { list, respond_to } => {
                let _ = respond_to.send(self.with_storage(|storage| storage.version(&list)));
            }
            WorkerMessage::Ping { respond_to } => {
                let _ = respond_to.send(self.with_storage(Storage::ping));
            }
            WorkerMessage::Write(_) | WorkerMessage::Close => {
                unreachable!("run handles writes and close itself")
            }
        }
    }

    /// Commits the group's writes in one transaction, then reports each write's outcome.
    /// A list whose write failed or conflicted has its later writes refused until it is
    /// loaded again: they were made on memory that storage does not hold, and a version check
    /// alone could let one through after another writer made the same number of writes.
    fn flush(&mut self, group: &mut Vec<Write>) {
        if group.is_empty() {
            return;
        }
        let refused: Vec<bool> = group
            .iter()
            .map(|write| self.refused.contains(&write.list))
            .collect();
        let changes: Vec<VersionedChange<'_>> = group
            .iter()
            .zip(&refused)
            .filter(|(_, refused)| !**refused)
            .map(|(write, _)| VersionedChange {
                list: &write.list,
                expected_version: write.expected_version,
                change: &write.change,
            })
            .collect();
        let outcome = match changes.is_empty() {
            true => Ok(Conflicts::new()),
            false => self.commit(&changes),
        };
        drop(changes);
        if let Err(StorageError::OutcomeUnknown(_)) = &outcome {
            self.forget_connection();
        }
        for (write, refused) in group.drain(..).zip(refused) {
            let outcome = match refused {
                true => Err(StorageError::Refused),
                false => write_outcome(&write.list, &outcome),
            };
            if outcome.is_err() {
                self.refused.insert(write.list.clone());
            }
            let _ = write.respond_to.send(outcome);
        }
    }

    fn commit(&mut self, changes: &[VersionedChange<'_>]) -> Result<Conflicts, StorageError> {
        let started = Instant::now();
        let outcome = match self.with_storage(|storage| storage.commit(changes)) {
            // The panic may have come after the commit record was written.
            Err(StorageError::Panicked) => Err(StorageError::OutcomeUnknown(
                "storage panicked while committing".into(),
            )),
            outcome => outcome,
        };
        let n_writes = changes.len();
        match &outcome {
            Ok(conflicts) => {
                let n_conflicted = changes
                    .iter()
                    .filter(|change| conflicts.contains(change.list))
                    .count();
                let n_committed = n_writes - n_conflicted;
                self.uncheckpointed += n_committed;
                self.stats
                    .record_commit(n_committed as u64, started.elapsed());
            }
            Err(error) => {
                self.stats.record_failed_commit();
                tracing::error!(%error, n_writes, "group commit failed");
            }
        }
        outcome
    }

    /// Checkpoints SQLite's WAL off the commit path: when the queue is idle and enough was
    /// written, or unconditionally past a hard bound, so the WAL stays bounded under a flood.
    fn maybe_checkpoint(&mut self, idle: bool) {
        let due = (idle && self.uncheckpointed >= CHECKPOINT_WHEN_IDLE)
            || self.uncheckpointed >= CHECKPOINT_ALWAYS;
        if !due {
            return;
        }
        self.uncheckpointed = 0;
        if let Some(storage) = self.storage.as_mut()
            && let Err(error) = storage.checkpoint()
        {
            // The WAL still holds every committed frame, so a failed checkpoint loses nothing.
            tracing::warn!(%error, "checkpoint failed; the WAL keeps the data");
        }
    }

    /// Drops the connection after a commit whose outcome is unknown: the next use reopens it
    /// and sees what recovery sees, and the generation tells every list of this worker to
    /// reload before its next request.
    fn forget_connection(&mut self) {
        if self.storage.take().is_some() {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Runs `operation` on the connection, reopening it first if it was lost or an earlier
    /// panic or unknown commit dropped it.
    /// A panic inside storage is caught: the worker survives it, and restarts the connection,
    /// whose state is unknown, on next use. Plain errors (a full disk, a busy lock) leave the
    /// connection as it is.
    fn with_storage<T>(
        &mut self,
        operation: impl FnOnce(&mut Storage) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let storage = self.storage()?;
        match catch_unwind(AssertUnwindSafe(|| operation(storage))) {
            Ok(Err(StorageError::Corrupt(problem))) => {
                self.stats.record_damage();
                Err(StorageError::Corrupt(problem))
            }
            Ok(outcome) => outcome,
            Err(_panic) => {
                tracing::error!("storage panicked; the connection will be reopened");
                self.forget_connection();
                Err(StorageError::Panicked)
            }
        }
    }

    fn storage(&mut self) -> Result<&mut Storage, StorageError> {
        if self.storage.as_ref().is_some_and(Storage::is_broken) {
            tracing::warn!("the storage connection is lost; reopening it");
            self.forget_connection();
        }
        if self.storage.is_none() {
            if self
                .last_restart
                .is_some_and(|last| last.elapsed() < RESTART_BACKOFF)
            {
                return Err(StorageError::Unavailable);
            }
            self.last_restart = Some(Instant::now());
            self.stats.record_restart();
            let storage = Storage::open(&self.config).inspect_err(|error| {
                tracing::warn!(%error, "reopening storage failed");
            })?;
            self.storage = Some(storage);
        }
        Ok(self.storage.as_mut().expect("storage was just opened"))
    }
}

/// Committed writes since the last checkpoint that make an idle worker checkpoint.
const CHECKPOINT_WHEN_IDLE: usize = 1_000;
/// Committed writes since the last checkpoint that make a busy worker checkpoint anyway.
const CHECKPOINT_ALWAYS: usize = 100_000;

/// Whether `read` could see a write of `group`: a load or version check of one of its lists,
/// or a read of every list.
fn touches(group: &[Write], read: &WorkerMessage) -> bool {
    let list = match read {
        WorkerMessage::Load { list, .. } | WorkerMessage::Version { list, .. } => list,
        _ => return !group.is_empty(),
    };
    group.iter().any(|write| &write.list == list)
}

/// One write's share of its group's outcome.
fn write_outcome(list: &ListName, outcome: &Result<Conflicts, StorageError>) -> WriteOutcome {
    match outcome {
        Ok(conflicts) if conflicts.contains(list) => Err(StorageError::Conflict),
        Ok(_) => Ok(()),
        Err(error) => Err(error.clone()),
    }
}
