//! `todo bench`: the project's load generator, in the spirit of `redis-benchmark` and `pgbench`.
//!
//! It drives either the actor system in this process (`inproc`, no HTTP) or a running server
//! (`http`) with one task per simulated client, each keeping its own counters so that nothing
//! is shared on the request path, and merges them into a `Report` at the end. It also measures
//! the memory of idle list actors and the time a restarted server takes to answer every list.

pub mod http;
pub mod inproc;
pub mod report;
pub mod watch;
pub mod workload;

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use report::{ClientStats, ErrorKind, MemoryReport};
use workload::{Op, OpKind, Workload, XorShift};

/// Everything `todo bench` needs: plain data, built by `cli`.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// What is measured.
    pub target: Target,
    /// A load run, or one of the memory and start-up measurements.
    pub scenario: Scenario,
    /// The simulated clients and what they send.
    pub load: LoadConfig,
    /// Whether to draw a progress bar (only on a terminal).
    pub progress: bool,
}

/// What the benchmark drives.
#[derive(Debug, Clone)]
pub enum Target {
    /// The actor system in this process, on a temporary data directory, without HTTP.
    InProcess(InProcessConfig),
    /// A running server, over HTTP.
    Http(HttpConfig),
}

/// Settings of the in-process server.
#[derive(Debug, Clone, Default)]
pub struct InProcessConfig {
    /// Where to put the temporary data directory; the system's temporary directory if `None`.
    pub data_dir: Option<PathBuf>,
    /// Most writes per commit; 1 turns group commit off. The server's default if `None`.
    pub max_batch: Option<usize>,
    /// Database workers. The server's default if `None`.
    pub db_workers: Option<usize>,
}

/// How to reach a running server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Its base URL, such as `http://127.0.0.1:5454`.
    pub url: String,
    /// Which of its APIs to use.
    pub api: Api,
    /// Its process id, to read its memory from `/proc`.
    pub pid: Option<u32>,
    /// A bearer token, for a server with accounts (the lists are then that user's own).
    pub token: Option<String>,
    /// A PEM certificate to trust for `https://`, besides the public roots.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Run even though the server already holds lists of its users.
    pub yes: bool,
    /// Leave the benchmark's lists on the server afterwards.
    pub keep: bool,
}

/// The server's two APIs for entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The book's `POST /add_entry` and `GET /entries`, with query parameters.
    Book,
    /// `POST /lists/{list}/entries` with a JSON body and `GET /lists/{list}/entries?date=`.
    Json,
}

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    /// Clients send the workload for a while, and latencies are reported.
    Load,
    /// Start this many list actors, leave them idle, and report the memory each one costs.
    IdleLists(usize),
    /// Subscribers follow event streams while writers write; delivery latency is reported.
    Watch,
    /// Store this many lists, restart, and time until every one answers.
    ColdStart {
        /// Lists to store.
        n_lists: usize,
        /// Entries in each.
        entries_per_list: usize,
    },
}

/// The simulated clients.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Which requests they send.
    pub workload: Workload,
    /// How many clients, each one task (and one connection over HTTP).
    pub clients: usize,
    /// How many lists the requests are spread over: `bench-1` to `bench-N`.
    pub lists: usize,
    /// When the measured part ends.
    pub stop: Stop,
    /// How long clients run, unmeasured, before measuring starts.
    pub warmup: Duration,
    /// Whether the clients first read every list once, so that measuring starts with every list
    /// actor loaded: steady state rather than start-up.
    pub preload: bool,
    /// Seed of the clients' random choices; the same seed sends the same requests.
    pub seed: u64,
}

/// When a run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many requests, spread evenly over the clients.
    Requests(u64),
}

/// What a benchmark found.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// A load run.
    Load(Box<report::Report>),
    /// Memory per idle list actor.
    IdleLists(inproc::IdleListsReport),
    /// Time to answer after a restart.
    ColdStart(inproc::ColdStartReport),
    /// Delivery of live updates.
    Watch(watch::WatchReport),
}

impl Outcome {
    /// The outcome as text for people.
    pub fn to_text(&self) -> String {
        match self {
            Outcome::Load(report) => report.to_text(),
            Outcome::IdleLists(report) => report.to_text(),
            Outcome::ColdStart(report) => report.to_text(),
            Outcome::Watch(report) => report.to_text(),
        }
    }
}

/// Runs the benchmark `config` describes.
pub async fn run(config: BenchConfig) -> anyhow::Result<Outcome> {
    match (&config.target, config.scenario) {
        (Target::InProcess(target), Scenario::Load) => Ok(Outcome::Load(Box::new(
            inproc::load(target, &config).await?,
        ))),
        (Target::InProcess(target), Scenario::IdleLists(n_lists)) => Ok(Outcome::IdleLists(
            inproc::idle_lists(target, n_lists, config.progress).await?,
        )),
        (
            Target::InProcess(target),
            Scenario::ColdStart {
                n_lists,
                entries_per_list,
            },
        ) => Ok(Outcome::ColdStart(
            inproc::cold_start(target, n_lists, entries_per_list, config.load.clients).await?,
        )),
        (Target::Http(target), Scenario::Load) => {
            Ok(Outcome::Load(Box::new(http::load(target, &config).await?)))
        }
        (Target::Http(target), Scenario::Watch) => {
            let watch_config = watch::WatchConfig {
                url: target.url.clone(),
                token: target.token.clone(),
                ca_cert: target.ca_cert.clone(),
                pid: target.pid,
                subscribers: config.load.clients,
                lists: config.load.lists,
                duration: run_length(config.load.stop),
            };
            Ok(Outcome::Watch(watch::watch(&watch_config).await?))
        }
        (Target::InProcess(target), Scenario::Watch) => {
            Ok(Outcome::Watch(inproc::watch(target, &config).await?))
        }
        (Target::Http(_), _) => {
            anyhow::bail!("idle-list and cold-start measurements need --inproc")
        }
    }
}

/// How long a watch run writes: its `--duration`, or a request count at `WRITE_RATE`.
fn run_length(stop: Stop) -> Duration {
    match stop {
        Stop::After(duration) => duration,
        Stop::Requests(n) => Duration::from_secs_f64(n as f64 / watch::WRITE_RATE as f64),
    }
}

/// One simulated client's way of sending requests: an in-process cache or an HTTP connection.
pub trait Session: Send + 'static {
    /// Sends one request and waits for its answer.
    fn execute(&mut self, op: Op) -> impl Future<Output = Result<(), ErrorKind>> + Send;
}

/// The clients' common switch: warming up, measuring, or stopped.
struct Control {
    phase: AtomicU8,
    n_measured: AtomicU64,
    /// Clients still reading their share of the lists before warming up.
    n_preloading: AtomicUsize,
    /// Told when the last client has done its preload.
    preloaded: Notify,
}

const WARMING_UP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// Stops a run early (the server stopped answering); the clients finish their request in
/// flight and the run ends.
#[derive(Clone)]
pub struct Stopper(Arc<Control>);

impl Stopper {
    /// Ends the run.
    pub fn stop(&self) {
        self.0.phase.store(STOPPED, Ordering::Relaxed);
        // Clients still preloading stop waiting for one another.
        self.0.n_preloading.store(0, Ordering::Release);
        self.0.preloaded.notify_one();
    }
}

/// Clients that are running: first warming up, then measured.
pub struct Run {
    control: Arc<Control>,
    clients: Vec<JoinHandle<ClientStats>>,
    measuring_since: Instant,
    stop: Stop,
    progress: bool,
}

impl Run {
    /// Starts one task per session; they warm up until `measure` is called.
    pub fn start<S: Session>(sessions: Vec<S>, config: &BenchConfig) -> Run {
        let load = &config.load;
        let n_clients = sessions.len() as u64;
        let control = Arc::new(Control {
            phase: AtomicU8::new(WARMING_UP),
            n_measured: AtomicU64::new(0),
            n_preloading: AtomicUsize::new(if load.preload { sessions.len() } else { 0 }),
            preloaded: Notify::new(),
        });
        let clients = sessions
            .into_iter()
            .enumerate()
            .map(|(index, session)| {
                let quota = match load.stop {
                    Stop::After(_) => None,
                    Stop::Requests(total) => {
                        Some(total / n_clients + u64::from((index as u64) < total % n_clients))
                    }
                };
                let client = Client {
                    index,
                    n_clients: n_clients as usize,
                    preload: load.preload,
                    rng: XorShift::new(load.seed, index as u64),
                    workload: load.workload,
                    n_lists: load.lists.max(1),
                    quota,
                    control: control.clone(),
                };
                tokio::spawn(client.run(session))
            })
            .collect();
        Run {
            control,
            clients,
            measuring_since: Instant::now(),
            stop: load.stop,
            progress: config.progress,
        }
    }

    /// A handle that ends this run early.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.control.clone())
    }

    /// Waits for the clients' preload, if any, lets them run unmeasured for `warmup`, then
    /// starts measuring.
    pub async fn warm_up(&mut self, warmup: Duration) {
        while self.control.n_preloading.load(Ordering::Acquire) > 0 {
            self.control.preloaded.notified().await;
        }
        tokio::time::sleep(warmup).await;
        self.measuring_since = Instant::now();
        self.control.phase.store(MEASURING, Ordering::Relaxed);
    }

    /// Waits for the end of the run and merges the clients' counters; also returns how long the
    /// measured part took, until the last client's last answer.
    pub async fn finish(self) -> anyhow::Result<(ClientStats, Duration)> {
        let bar = self.progress.then(|| progress_bar(self.stop));
        let ticker = bar.clone().map(|bar| {
            let control = self.control.clone();
            let since = self.measuring_since;
            tokio::spawn(tick(bar, control, since, self.stop))
        });
        let deadline = match self.stop {
            Stop::After(duration) => self.measuring_since + duration,
            // A counted run ends when its clients are done, or at Ctrl-C.
            Stop::Requests(_) => self.measuring_since + Duration::from_secs(365 * 24 * 3600),
        };
        let mut clients = futures_util::future::join_all(self.clients);
        let finished = tokio::select! {
            finished = &mut clients => Some(finished),
            () = tokio::time::sleep_until(deadline.into()) => None,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: stopping the clients; the report covers the run so far");
                None
            }
        };
        self.control.phase.store(STOPPED, Ordering::Relaxed);
        let finished = match finished {
            Some(finished) => finished,
            None => clients.await,
        };
        let mut merged = ClientStats::default();
        for client in finished {
            merged.merge(client?);
        }
        let elapsed = self.measuring_since.elapsed();
        self.control.phase.store(STOPPED, Ordering::Relaxed);
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok((merged, elapsed))
    }
}

/// One simulated client: draws requests and sends them one after another.
struct Client {
    index: usize,
    n_clients: usize,
    preload: bool,
    rng: XorShift,
    workload: Workload,
    n_lists: usize,
    /// How many measured requests to send, when the run is counted in requests.
    quota: Option<u64>,
    control: Arc<Control>,
}

impl Client {
    async fn run(mut self, mut session: impl Session) -> ClientStats {
        if self.preload {
            self.preload(&mut session).await;
        }
        let mut stats = ClientStats::default();
        let mut n_measured = 0;
        loop {
            let phase = self.control.phase.load(Ordering::Relaxed);
            if phase == STOPPED || self.quota.is_some_and(|quota| n_measured >= quota) {
                return stats;
            }
            let op = self.workload.next_op(&mut self.rng, self.n_lists);
            let started = Instant::now();
            let outcome = session.execute(op).await;
            // A request sent while warming up is not counted, even if it ends later.
            if phase == MEASURING {
                stats.record(op.kind, started.elapsed(), outcome);
                n_measured += 1;
                self.control.n_measured.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Client {
    /// Reads this client's share of the lists once: every list, over all clients.
    async fn preload(&self, session: &mut impl Session) {
        for list in (self.index..self.n_lists).step_by(self.n_clients) {
            let op = Op {
                kind: OpKind::Read,
                list,
                date: 0,
            };
            // An error shows again in the measured run; a preload only needs the attempt.
            let _ = session.execute(op).await;
        }
        if self.control.n_preloading.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.control.preloaded.notify_one();
        }
    }
}

fn progress_bar(stop: Stop) -> ProgressBar {
    let (length, template) = match stop {
        Stop::After(duration) => (
            duration.as_millis() as u64,
            "{spinner} [{bar:40}] {elapsed_precise} {msg}",
        ),
        Stop::Requests(total) => (total, "{spinner} [{bar:40}] {pos}/{len} {msg}"),
    };
    let bar = ProgressBar::new(length);
    let style = ProgressStyle::with_template(template)
        .expect("the progress template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

async fn tick(bar: ProgressBar, control: Arc<Control>, since: Instant, stop: Stop) {
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        let n_measured = control.n_measured.load(Ordering::Relaxed);
        let rate = n_measured as f64 / since.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{n_measured} requests, {rate:.0}/s"));
        match stop {
            Stop::After(_) => bar.set_position(since.elapsed().as_millis() as u64),
            Stop::Requests(_) => bar.set_position(n_measured),
        }
    }
}

/// The resident and peak memory of process `pid`, or of this process, from `/proc`.
pub fn process_memory(pid: Option<u32>) -> Option<MemoryReport> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let kilobytes = |field: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(field))?;
        line[field.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(MemoryReport {
        process: pid.map_or_else(|| "this process".to_owned(), |pid| format!("pid {pid}")),
        rss_bytes: kilobytes("VmRSS:")? * 1024,
        peak_rss_bytes: kilobytes("VmHWM:")? * 1024,
    })
}

impl FromStr for Api {
    type Err = String;

    fn from_str(text: &str) -> Result<Api, String> {
        match text {
            "book" => Ok(Api::Book),
            "json" => Ok(Api::Json),
            _ => Err(format!("unknown API {text:?}: expected book or json")),
        }
    }
}

impl Api {
    /// The API's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Api::Book => "book",
            Api::Json => "json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_memory() {
        let memory = process_memory(None).expect("Linux has /proc/self/status");
        assert!(memory.rss_bytes > 0 && memory.peak_rss_bytes >= memory.rss_bytes);
    }
}
