//! `todo bench --workload watch`: live updates under load. Subscribers follow lists over
//! `GET /lists/{list}/events` while writers add entries at a steady rate; each entry's title
//! carries the moment its write was sent, so every subscriber measures how long the change
//! took to reach it (write sent → event read: the commit, with its fsync, included).
//!
//! It runs against a server (`--url`) or one started in this process (`--inproc`), on lists
//! of its own (`bench-watch-N`), which it deletes at the end.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::client::{Client, ListRef};

use super::process_memory;

/// Writes per second, over all writers.
pub const WRITE_RATE: u64 = 200;
/// Writers sharing `WRITE_RATE`.
const WRITERS: u64 = 4;
/// How long subscribers keep reading after the last write, for its events to arrive.
const SETTLE: Duration = Duration::from_secs(2);
/// The date of every entry written.
const DATE: &str = "2026-12-03";

/// What a watch run is asked to do.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The server: its URL, a token and a CA certificate, as the `todo` client takes them.
    pub url: String,
    pub token: Option<String>,
    pub ca_cert: Option<std::path::PathBuf>,
    /// Whose memory to read: the server's pid, or this process (`None`).
    pub pid: Option<u32>,
    /// Subscribers, spread evenly over the lists.
    pub subscribers: usize,
    /// Lists followed and written.
    pub lists: usize,
    /// How long writers write.
    pub duration: Duration,
}

/// What a watch run measured.
#[derive(Debug, Serialize)]
pub struct WatchReport {
    pub target: String,
    pub subscribers: usize,
    pub lists: usize,
    pub elapsed_secs: f64,
    /// Writes acknowledged.
    pub writes: u64,
    /// Events that carried a write to a subscriber.
    pub deliveries: u64,
    /// Deliveries expected: each write, once to each subscriber of its list.
    pub expected_deliveries: u64,
    /// Fresh snapshots after the first: a subscriber fell behind, or its list was reloaded.
    pub resyncs: u64,
    /// Write sent → event read, in milliseconds.
    pub latency_ms: Latency,
    /// Memory added by the open streams, per subscriber, where it can be read.
    pub bytes_per_subscriber: Option<u64>,
    /// Whose memory that is.
    pub memory_of: String,
}

/// Delivery latency percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Counters the subscribers share; each event is one atomic add, never a lock.
#[derive(Default)]
struct Tally {
    deliveries: AtomicU64,
    resyncs: AtomicU64,
}

/// Runs the watch benchmark `config` describes.
pub async fn watch(config: &WatchConfig) -> anyhow::Result<WatchReport> {
    let client = Client::new(&config.url, config.token.clone(), config.ca_cert.as_deref())?;
    let lists: Vec<ListRef> = (1..=config.lists.max(1))
        .map(|n| ListRef::parse(&format!("bench-watch-{n}")))
        .collect::<anyhow::Result<_>>()?;
    for list in &lists {
        client
            .add(list, DATE, "watch: first entry")
            .await
            .with_context(|| format!("creating {list}"))?;
    }
    let memory_before = process_memory(config.pid);
    let base = Instant::now();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut subscribers = JoinSet::new();
    for n in 0..config.subscribers {
        let mut events = client
            .events(&lists[n % lists.len()], None)
            .await
            .with_context(|| format!("subscriber {n} could not subscribe"))?;
        let (tally, stop) = (tally.clone(), stop.clone());
        subscribers.spawn(async move {
            let mut latencies = Histogram::<u64>::new(2).expect("a valid precision");
            let mut snapshots = 0;
            while !stop.load(Ordering::Relaxed) {
                let event =
                    match tokio::time::timeout(Duration::from_millis(200), events.next()).await {
                        Ok(Ok(Some(event))) => event,
                        // Waited 200 ms: look at `stop` again.
                        Err(_) => continue,
                        // The stream ended or broke: its deliveries stop here, and show as missing.
                        Ok(Ok(None) | Err(_)) => break,
                    };
                match event.event.as_str() {
                    "snapshot" => {
                        snapshots += 1;
                        if snapshots > 1 {
                            tally.resyncs.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    "added" => {
                        let sent = event.data["title"]
                            .as_str()
                            .and_then(|title| title.strip_prefix("watch at "))
                            .and_then(|micros| micros.parse::<u64>().ok());
                        if let Some(sent) = sent {
                            let now = base.elapsed().as_micros() as u64;
                            // `record` grows the histogram; `saturating_record` would clamp.
                            let _ = latencies.record(now.saturating_sub(sent).max(1));
                            tally.deliveries.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {}
                }
            }
            latencies
        });
    }
    let memory_after = process_memory(config.pid);
    let started = Instant::now();
    let writes = write_steadily(&client, &lists, config.duration, base).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Histogram::<u64>::new(2).expect("a valid precision");
    while let Some(histogram) = subscribers.join_next().await {
        latencies.add(histogram?)?;
    }
    for list in &lists {
        // Best effort: a list left behind is named in the warning.
        if let Err(error) = client.delete_list(list).await {
            tracing::warn!(%error, %list, "could not delete a benchmark list");
        }
    }
    let per_list = writes.iter().map(|(list, n)| {
        let followers = (0..config.subscribers).filter(|s| s % lists.len() == *list);
        n * followers.count() as u64
    });
    let ms = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1_000.0;
    Ok(WatchReport {
        target: config.url.clone(),
        subscribers: config.subscribers,
        lists: lists.len(),
        elapsed_secs: elapsed.as_secs_f64(),
        writes: writes.iter().map(|(_, n)| n).sum(),
        deliveries: tally.deliveries.load(Ordering::Relaxed),
        expected_deliveries: per_list.sum(),
        resyncs: tally.resyncs.load(Ordering::Relaxed),
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: latencies.max() as f64 / 1_000.0,
        },
        bytes_per_subscriber: match (memory_before, memory_after) {
            (Some(before), Some(after)) if config.subscribers > 0 => {
                Some(after.rss_bytes.saturating_sub(before.rss_bytes) / config.subscribers as u64)
            }
            _ => None,
        },
        memory_of: config.pid.map_or_else(
            || "this process (server and subscribers)".to_owned(),
            |pid| format!("pid {pid}"),
        ),
    })
}

/// `WRITERS` tasks add entries, `WRITE_RATE` per second in all, round-robin over the lists,
/// for `duration`; returns the acknowledged writes per list index.
async fn write_steadily(
    client: &Client,
    lists: &[ListRef],
    duration: Duration,
    base: Instant,
) -> Vec<(usize, u64)> {
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let (client, lists) = (client.clone(), lists.to_vec());
        writers.spawn(async move {
            let mut acknowledged = vec![0; lists.len()];
            let mut tick =
                tokio::time::interval(Duration::from_micros(1_000_000 * WRITERS / WRITE_RATE));
            let deadline = Instant::now() + duration;
            let mut n = writer as usize;
            while Instant::now() < deadline {
                tick.tick().await;
                let list = n % lists.len();
                let title = format!("watch at {}", base.elapsed().as_micros());
                if client.add(&lists[list], DATE, &title).await.is_ok() {
                    acknowledged[list] += 1;
                }
                n += WRITERS as usize;
            }
            acknowledged
        });
    }
    let mut totals = vec![0; lists.len()];
    while let Some(Ok(acknowledged)) = writers.join_next().await {
        for (total, n) in totals.iter_mut().zip(acknowledged) {
            *total += n;
        }
    }
    totals.into_iter().enumerate().collect()
}

impl WatchReport {
    /// The report as text for people.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "watch: {} subscribers over {} lists at {}, writers aiming at {WRITE_RATE} writes/s for {:.1} s",
            self.subscribers, self.lists, self.target, self.elapsed_secs
        );
        let _ = writeln!(
            text,
            "  writes {} ({:.0}/s), deliveries {} of {} expected, resyncs {}",
            self.writes,
            self.writes as f64 / self.elapsed_secs.max(1e-9),
            self.deliveries,
            self.expected_deliveries,
            self.resyncs
        );
        let latency = &self.latency_ms;
        let _ = writeln!(
            text,
            "  delivery (write sent -> event read) p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            latency.p50, latency.p90, latency.p99, latency.max
        );
        if let Some(bytes) = self.bytes_per_subscriber {
            let _ = writeln!(
                text,
                "  memory per subscriber {bytes} bytes ({})",
                self.memory_of
            );
        }
        text
    }
}
