//! The in-process target: `App` on a temporary data directory, driven through `Cache` directly.
//!
//! This measures the architecture without HTTP: the cache, the list actors and the database
//! workers with their group commit, every durable write fsync'd. It also measures the memory of
//! idle list actors and how quickly a restarted server answers for all its stored lists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tempfile::TempDir;

use crate::app::App;
use crate::cache::Cache;
use crate::config::Config;
use crate::list::{Date, ListName, NewEntry, Title};
use crate::lists::{Command, EntriesQuery, RequestError};

use super::report::{CommitReport, ErrorKind, Report, human_bytes};
use super::watch::{WatchConfig, WatchReport};
use super::workload::{self, DATES, Op, OpKind, Workload};
use super::{BenchConfig, InProcessConfig, Run, Session, process_memory};

/// How soon idle actors hibernate in the idle-list measurement.
const IDLE_HIBERNATE_AFTER: Duration = Duration::from_millis(50);
/// How many lists the idle-list measurement starts before letting them hibernate.
const IDLE_CHUNK: usize = 20_000;

/// How many tasks load or check lists at once in the idle-list and cold-start measurements.
const TOUCH_CONCURRENCY: usize = 256;

/// The lists and dates of a run, parsed once and shared by all clients.
struct Lists {
    names: Vec<ListName>,
    dates: Vec<Date>,
    /// One new entry per date, cloned for each add.
    entries: Vec<NewEntry>,
}

impl Lists {
    fn new(n_lists: usize) -> anyhow::Result<Lists> {
        let title = Title::parse(workload::TITLE)?;
        let dates = DATES
            .iter()
            .map(|date| Date::parse(date))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Lists {
            names: list_names(n_lists)?,
            entries: dates
                .iter()
                .map(|date| NewEntry::new(*date, title.clone()))
                .collect(),
            dates,
        })
    }

    fn add(&self, date: usize) -> Command {
        Command::AddEntry {
            entry: self.entries[date].clone(),
            idempotency_key: None,
        }
    }
}

fn list_names(n_lists: usize) -> anyhow::Result<Vec<ListName>> {
    (0..n_lists)
        .map(|index| Ok(ListName::parse(&workload::list_name(index))?))
        .collect()
}

/// One simulated client: a clone of the cache.
struct CacheSession {
    cache: Cache,
    lists: Arc<Lists>,
}

impl Session for CacheSession {
    async fn execute(&mut self, op: Op) -> Result<(), ErrorKind> {
        let name = &self.lists.names[op.list];
        let outcome = match op.kind {
            OpKind::Read => {
                let query = EntriesQuery::On(self.lists.dates[op.date]);
                self.cache.entries(name, query).await.map(drop)
            }
            OpKind::Write => {
                let entry = self.lists.entries[op.date].clone();
                self.cache.add_entry(name, entry, None).await.map(drop)
            }
            OpKind::WriteAsync => {
                let queued = self.cache.cast(name, self.lists.add(op.date));
                // A cast never waits, so without this a client would keep its thread forever.
                tokio::task::consume_budget().await;
                queued
            }
            OpKind::Healthz => self
                .cache
                .database()
                .ping()
                .await
                .map_err(RequestError::from),
        };
        outcome.map_err(error_kind)
    }
}

/// A short name for each error, so that they group in the report.
fn error_kind(error: RequestError) -> ErrorKind {
    match error {
        RequestError::NotFound(_) => "not_found".into(),
        RequestError::IdsExhausted => "ids_exhausted".into(),
        RequestError::IdempotencyKeyReused => "idempotency_key_reused".into(),
        RequestError::IdempotentEntryDeleted => "idempotent_entry_deleted".into(),
        RequestError::Storage(error) => format!("storage: {error}").into(),
        RequestError::Timeout => "timeout".into(),
        RequestError::Overloaded => "overloaded".into(),
        RequestError::Crashed => "crashed".into(),
        RequestError::ShuttingDown => "shutting_down".into(),
        RequestError::ImportConflict(_) => "import_conflict".into(),
    }
}

/// A fresh temporary data directory, removed when dropped.
fn data_dir(target: &InProcessConfig) -> anyhow::Result<TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("todo-bench-");
    let dir = match &target.data_dir {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    };
    dir.context("creating a temporary data directory")
}

fn server_config(target: &InProcessConfig, dir: &TempDir) -> Config {
    let mut config = Config::with_data_dir(dir.path());
    // The HTTP server starts too, on a free port; nothing talks to it.
    config.web.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    if let Some(max_batch) = target.max_batch {
        config.database.max_batch = max_batch;
    }
    if let Some(workers) = target.db_workers {
        config.database.workers = Some(workers);
    }
    config
}

/// Runs the watch benchmark over HTTP against a fresh in-process server, with room for every
/// subscriber.
pub async fn watch(target: &InProcessConfig, config: &BenchConfig) -> anyhow::Result<WatchReport> {
    let dir = data_dir(target)?;
    let mut server_config = server_config(target, &dir);
    server_config.web.max_subscribers = server_config.web.max_subscribers.max(config.load.clients);
    let app = App::start(server_config)
        .await
        .context("starting the server")?;
    let watch_config = WatchConfig {
        url: format!("http://{}", app.local_addr()),
        token: None,
        ca_cert: None,
        pid: None,
        subscribers: config.load.clients,
        lists: config.load.lists,
        duration: super::run_length(config.load.stop),
    };
    let report = super::watch::watch(&watch_config).await;
    app.shutdown().await;
    report
}

/// Runs the load of `config` against a fresh in-process server.
pub async fn load(target: &InProcessConfig, config: &BenchConfig) -> anyhow::Result<Report> {
    let dir = data_dir(target)?;
    let server_config = server_config(target, &dir);
    let max_batch = server_config.database.max_batch;
    let app = App::start(server_config)
        .await
        .context("starting the server")?;
    let lists = Arc::new(Lists::new(config.load.lists.max(1))?);
    let sessions = (0..config.load.clients.max(1))
        .map(|_| CacheSession {
            cache: app.cache().clone(),
            lists: lists.clone(),
        })
        .collect();
    let mut run = Run::start(sessions, config);
    run.warm_up(config.load.warmup).await;
    let stats = app.cache().database().stats();
    let (commits_before, writes_before) = (stats.commits(), stats.writes_committed());
    let commit_time_before = stats.commit_time();
    let (merged, elapsed) = run.finish().await?;
    let commits = stats.commits() - commits_before;
    let writes = stats.writes_committed() - writes_before;
    let commit_time = stats.commit_time().saturating_sub(commit_time_before);
    let memory = process_memory(None);
    // Shutting down commits every queued cast: for write-async, that is the backlog's drain.
    let shutdown_started = Instant::now();
    app.shutdown().await;
    let drain = shutdown_started.elapsed();

    let mut report = Report::new("in-process".to_owned(), None, config, &merged, elapsed);
    report.max_batch = Some(max_batch);
    report.commits = Some(CommitReport::new(commits, writes, commit_time));
    report.drain_secs =
        (config.load.workload == Workload::WriteAsync).then_some(drain.as_secs_f64());
    report.memory = memory;
    Ok(report)
}

/// Memory of idle list actors.
#[derive(Debug, Serialize)]
pub struct IdleListsReport {
    /// Actors started.
    pub n_lists: usize,
    /// Actors still running when memory was read; the other lists hibernate.
    pub live_actors: usize,
    /// Resident memory after the server started, before any list.
    pub rss_before_bytes: u64,
    /// Resident memory with every list loaded and hibernating.
    pub rss_after_bytes: u64,
    /// The difference, per actor.
    pub bytes_per_list: f64,
    /// Seconds to start every actor (spawning only).
    pub spawn_secs: f64,
    /// Seconds until every list had loaded, answered once, and hibernated.
    pub loaded_secs: f64,
}

impl IdleListsReport {
    /// The report as text for people.
    pub fn to_text(&self) -> String {
        format!(
            "{} idle lists ({} live actors): RSS {} -> {}, {:.0} bytes per list\n\
             spawned in {:.2} s, all loaded, answering and hibernating after {:.2} s\n",
            self.n_lists,
            self.live_actors,
            human_bytes(self.rss_before_bytes),
            human_bytes(self.rss_after_bytes),
            self.bytes_per_list,
            self.spawn_secs,
            self.loaded_secs
        )
    }
}

/// Starts `n_lists` list actors, has each answer once and then hibernate, and reads how much
/// memory the idle lists hold.
pub async fn idle_lists(
    target: &InProcessConfig,
    n_lists: usize,
    progress: bool,
) -> anyhow::Result<IdleListsReport> {
    let dir = data_dir(target)?;
    let mut config = server_config(target, &dir);
    config.lists.max_lists_in_memory = config.lists.max_lists_in_memory.max(n_lists + 1);
    config.lists.idle_timeout = Duration::from_secs(24 * 60 * 60);
    config.lists.hibernate_after = IDLE_HIBERNATE_AFTER;
    let app = App::start(config).await.context("starting the server")?;
    // The names exist before the baseline: the cache's own copies are part of each list's cost.
    let names: Vec<ListName> = list_names(n_lists)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = process_memory(None).context("reading /proc/self/status")?;
    let started = Instant::now();
    let mut spawn_secs = 0.0;
    // A chunk at a time, each left to hibernate before the next, as lists used now and then
    // would be: the memory read at the end is what idle lists cost, not a million running
    // actors at once.
    for chunk in names.chunks(IDLE_CHUNK) {
        let spawning = Instant::now();
        for name in chunk {
            app.cache().server_process(name);
        }
        spawn_secs += spawning.elapsed().as_secs_f64();
        touch_all(app.cache(), &chunk.to_vec().into(), None, progress).await?;
        while app.cache().stats().live() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let loaded_secs = started.elapsed().as_secs_f64();
    let after = process_memory(None).context("reading /proc/self/status")?;
    let live_actors = app.cache().stats().live() as usize;
    app.shutdown().await;
    Ok(IdleListsReport {
        n_lists,
        live_actors,
        rss_before_bytes: before.rss_bytes,
        rss_after_bytes: after.rss_bytes,
        bytes_per_list: (after.rss_bytes as f64 - before.rss_bytes as f64) / n_lists.max(1) as f64,
        spawn_secs,
        loaded_secs,
    })
}

/// Asks every list for all its entries, `TOUCH_CONCURRENCY` at a time; with `expected`, checks
/// that each has that many.
async fn touch_all(
    cache: &Cache,
    names: &Arc<[ListName]>,
    expected: Option<usize>,
    progress: bool,
) -> anyhow::Result<()> {
    let bar = progress.then(|| indicatif::ProgressBar::new(names.len() as u64));
    let tasks: Vec<_> = (0..TOUCH_CONCURRENCY)
        .map(|first| {
            let (cache, names, bar) = (cache.clone(), names.clone(), bar.clone());
            tokio::spawn(async move {
                for name in names.iter().skip(first).step_by(TOUCH_CONCURRENCY) {
                    let n_entries = match cache.entries(name, EntriesQuery::All).await {
                        Ok(entries) => entries.len(),
                        Err(error) => anyhow::bail!("list {name}: {error}"),
                    };
                    if expected.is_some_and(|expected| expected != n_entries) {
                        anyhow::bail!("list {name}: {n_entries} entries, expected {expected:?}");
                    }
                    if let Some(bar) = &bar {
                        bar.inc(1);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// How quickly a restarted server answers for every stored list.
#[derive(Debug, Serialize)]
pub struct ColdStartReport {
    /// Lists stored.
    pub n_lists: usize,
    /// Entries in each.
    pub entries_per_list: usize,
    /// Seconds it took to store them (durable calls from many clients).
    pub store_secs: f64,
    /// Seconds from the restart until `App::start` returned.
    pub start_secs: f64,
    /// Seconds from the restart until every list had answered with all its entries.
    pub all_answered_secs: f64,
}

impl ColdStartReport {
    /// The report as text for people.
    pub fn to_text(&self) -> String {
        format!(
            "cold start: {} lists of {} entries (stored in {:.2} s)\n\
             restarted in {:.3} s; every list answered with all its entries after {:.3} s\n",
            self.n_lists,
            self.entries_per_list,
            self.store_secs,
            self.start_secs,
            self.all_answered_secs
        )
    }
}

/// Stores `n_lists` lists of `entries_per_list` entries, restarts the server on the same data,
/// and times until every list has answered with all its entries.
pub async fn cold_start(
    target: &InProcessConfig,
    n_lists: usize,
    entries_per_list: usize,
    n_writers: usize,
) -> anyhow::Result<ColdStartReport> {
    let dir = data_dir(target)?;
    let mut config = server_config(target, &dir);
    config.lists.max_lists_in_memory = config.lists.max_lists_in_memory.max(n_lists + 1);
    let lists = Arc::new(Lists::new(n_lists)?);

    let app = App::start(config.clone())
        .await
        .context("starting the server")?;
    let started = Instant::now();
    store(
        app.cache(),
        &lists,
        entries_per_list,
        n_writers.clamp(1, n_lists.max(1)),
    )
    .await?;
    let store_secs = started.elapsed().as_secs_f64();
    app.shutdown().await;

    let names: Arc<[ListName]> = lists.names.clone().into();
    let restarted = Instant::now();
    let app = App::start(config).await.context("restarting the server")?;
    let start_secs = restarted.elapsed().as_secs_f64();
    touch_all(app.cache(), &names, Some(entries_per_list), false).await?;
    let all_answered_secs = restarted.elapsed().as_secs_f64();
    app.shutdown().await;
    Ok(ColdStartReport {
        n_lists,
        entries_per_list,
        store_secs,
        start_secs,
        all_answered_secs,
    })
}

/// Adds `entries_per_list` entries to every list, with `n_writers` clients writing at once.
async fn store(
    cache: &Cache,
    lists: &Arc<Lists>,
    entries_per_list: usize,
    n_writers: usize,
) -> anyhow::Result<()> {
    let writers: Vec<_> = (0..n_writers)
        .map(|first| {
            let (cache, lists) = (cache.clone(), lists.clone());
            tokio::spawn(async move {
                for name in lists.names.iter().skip(first).step_by(n_writers) {
                    for n in 0..entries_per_list {
                        let entry = lists.entries[n % DATES.len()].clone();
                        cache
                            .add_entry(name, entry, None)
                            .await
                            .with_context(|| format!("adding to {name}"))?;
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(())
}
