//! What a benchmark run measured, and how it is printed: per-client counters merged into
//! latency percentiles per kind of request, errors by kind, commits and memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::workload::OpKind;
use super::{Api, BenchConfig};

/// Significant digits kept by the latency histograms: 2 is within 1 %, and keeps each one at a
/// few kilobytes, so a thousand clients with their own histograms stay cheap.
const SIGNIFICANT_DIGITS: u8 = 2;

/// Why a request failed, as shown in reports: an HTTP status, a connection error, or the name of
/// the in-process error.
pub type ErrorKind = Cow<'static, str>;

/// What one client counted; merged with the others' at the end of a run.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Latencies in nanoseconds, one histogram per `OpKind`, created on first use.
    latencies: [Option<Histogram<u32>>; OpKind::ALL.len()],
    errors: BTreeMap<ErrorKind, u64>,
}

impl ClientStats {
    /// Records one request: its latency if it succeeded, its error otherwise.
    pub fn record(&mut self, kind: OpKind, latency: Duration, outcome: Result<(), ErrorKind>) {
        match outcome {
            Ok(()) => {
                let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                let histogram = self.latencies[kind.index()].get_or_insert_with(new_histogram);
                // `record` grows the histogram as needed; `saturating_record` would clamp.
                if histogram.record(nanos.max(1)).is_err() {
                    histogram.saturating_record(nanos);
                }
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: ClientStats) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies) {
            match (mine.as_mut(), theirs) {
                (Some(mine), Some(theirs)) => mine
                    .add(&theirs)
                    .expect("auto-resizing histograms of one precision always add"),
                (None, theirs) => *mine = theirs,
                (_, None) => {}
            }
        }
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }

    /// Successful requests.
    pub fn n_ok(&self) -> u64 {
        self.latencies.iter().flatten().map(Histogram::len).sum()
    }

    /// Failed requests.
    pub fn n_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn new_histogram() -> Histogram<u32> {
    Histogram::new(SIGNIFICANT_DIGITS).expect("2 significant digits is a valid precision")
}

/// The result of a load run, as printed and as `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `in-process` or the URL.
    pub target: String,
    /// The workload's name.
    pub workload: String,
    /// `book` or `json` for HTTP runs.
    pub api: Option<String>,
    /// Simulated clients (connections, for HTTP).
    pub clients: usize,
    /// Lists the requests are spread over.
    pub lists: usize,
    /// The most writes per commit the in-process database was allowed.
    pub max_batch: Option<usize>,
    /// Length of the measured part of the run, in seconds.
    pub elapsed_secs: f64,
    /// Successful requests.
    pub requests: u64,
    /// Successful requests per second.
    pub throughput: f64,
    /// Latencies by kind of request, for the successful ones.
    pub operations: Vec<OpReport>,
    /// Failed requests.
    pub n_errors: u64,
    /// Failed requests by kind of error.
    pub errors: BTreeMap<String, u64>,
    /// Commits and writes during the measured part, from the server's counters.
    pub commits: Option<CommitReport>,
    /// Seconds after the last request until every accepted cast was committed.
    pub drain_secs: Option<f64>,
    /// The server's memory, where it can be seen.
    pub memory: Option<MemoryReport>,
}

/// Latency percentiles of one kind of request, in microseconds.
#[derive(Debug, Serialize)]
pub struct OpReport {
    /// The kind.
    pub kind: &'static str,
    /// Successful requests of this kind.
    pub count: u64,
    /// Of them per second.
    pub throughput: f64,
    /// Mean latency.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest.
    pub max_us: f64,
}

/// What the database committed during the run.
#[derive(Debug, Serialize)]
pub struct CommitReport {
    /// Transactions.
    pub commits: u64,
    /// Writes in them.
    pub writes: u64,
    /// Writes per transaction: the size of the average group.
    pub writes_per_commit: f64,
    /// Seconds the workers spent committing (fsync included), summed over workers.
    pub commit_secs: f64,
    /// Mean time of one commit, in microseconds.
    pub mean_commit_us: f64,
}

/// Resident memory of the server process, in bytes.
#[derive(Debug, Serialize)]
pub struct MemoryReport {
    /// Which process: `this process` or a pid.
    pub process: String,
    /// Resident set size at the end of the run.
    pub rss_bytes: u64,
    /// The highest resident set size since the process started (VmHWM).
    pub peak_rss_bytes: u64,
}

impl OpReport {
    /// The percentiles of `histogram`, for a run of `elapsed`.
    pub fn new(kind: OpKind, histogram: &Histogram<u32>, elapsed: Duration) -> OpReport {
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        OpReport {
            kind: kind.name(),
            count: histogram.len(),
            throughput: histogram.len() as f64 / elapsed.as_secs_f64(),
            mean_us: histogram.mean() / 1_000.0,
            p50_us: micros(histogram.value_at_quantile(0.50)),
            p90_us: micros(histogram.value_at_quantile(0.90)),
            p99_us: micros(histogram.value_at_quantile(0.99)),
            p999_us: micros(histogram.value_at_quantile(0.999)),
            max_us: micros(histogram.max()),
        }
    }
}

/// Per-kind reports of merged client stats, in `OpKind::ALL` order, leaving out unused kinds.
pub fn op_reports(stats: &ClientStats, elapsed: Duration) -> Vec<OpReport> {
    OpKind::ALL
        .iter()
        .zip(&stats.latencies)
        .filter_map(|(kind, histogram)| Some(OpReport::new(*kind, histogram.as_ref()?, elapsed)))
        .collect()
}

/// The errors of merged client stats, keyed by their text.
pub fn error_counts(stats: &ClientStats) -> BTreeMap<String, u64> {
    stats
        .errors
        .iter()
        .map(|(kind, count)| (kind.to_string(), *count))
        .collect()
}

impl Report {
    /// The report as aligned text for people.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let api = self
            .api
            .as_deref()
            .map(|api| format!(", {api} API"))
            .unwrap_or_default();
        let batch = self
            .max_batch
            .map(|max| format!(", max batch {max}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "{} on {}{api}: {} clients, {} lists{batch}",
            self.workload, self.target, self.clients, self.lists
        );
        let _ = writeln!(
            text,
            "{} requests in {:.2} s: {:.0} requests/s, {} errors",
            self.requests, self.elapsed_secs, self.throughput, self.n_errors
        );
        let _ = writeln!(
            text,
            "{:<12} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency", "count", "per s", "mean", "p50", "p90", "p99", "p99.9", "max"
        );
        for op in &self.operations {
            let _ = writeln!(
                text,
                "{:<12} {:>10} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                op.kind,
                op.count,
                op.throughput,
                human_micros(op.mean_us),
                human_micros(op.p50_us),
                human_micros(op.p90_us),
                human_micros(op.p99_us),
                human_micros(op.p999_us),
                human_micros(op.max_us)
            );
        }
        for (kind, count) in &self.errors {
            let _ = writeln!(text, "error {kind}: {count}");
        }
        if let Some(commits) = &self.commits {
            let _ = writeln!(
                text,
                "commits: {} for {} writes, {:.1} writes per commit, {} per commit, workers committing {:.2} s",
                commits.commits,
                commits.writes,
                commits.writes_per_commit,
                human_micros(commits.mean_commit_us),
                commits.commit_secs
            );
        }
        if let Some(drain) = self.drain_secs {
            let _ = writeln!(text, "casts drained {drain:.2} s after the last request");
        }
        if let Some(memory) = &self.memory {
            let _ = writeln!(
                text,
                "memory of {}: RSS {}, peak {}",
                memory.process,
                human_bytes(memory.rss_bytes),
                human_bytes(memory.peak_rss_bytes)
            );
        }
        text
    }
}

impl CommitReport {
    /// Commits and writes, with their ratio.
    pub fn new(commits: u64, writes: u64, commit_time: Duration) -> CommitReport {
        CommitReport {
            commits,
            writes,
            writes_per_commit: writes as f64 / commits.max(1) as f64,
            commit_secs: commit_time.as_secs_f64(),
            mean_commit_us: commit_time.as_secs_f64() * 1e6 / commits.max(1) as f64,
        }
    }
}

impl Report {
    /// A report of merged client counters, without the server-side parts.
    pub fn new(
        target: String,
        api: Option<Api>,
        config: &BenchConfig,
        merged: &ClientStats,
        elapsed: Duration,
    ) -> Report {
        let requests = merged.n_ok();
        Report {
            target,
            workload: config.load.workload.name().to_owned(),
            api: api.map(|api| api.name().to_owned()),
            clients: config.load.clients,
            lists: config.load.lists,
            max_batch: None,
            elapsed_secs: elapsed.as_secs_f64(),
            requests,
            throughput: requests as f64 / elapsed.as_secs_f64(),
            operations: op_reports(merged, elapsed),
            n_errors: merged.n_errors(),
            errors: error_counts(merged),
            commits: None,
            drain_secs: None,
            memory: None,
        }
    }
}

/// A latency for people: `850us`, `12.3ms`, `1.20s`.
pub fn human_micros(micros: f64) -> String {
    match micros {
        m if m < 1_000.0 => format!("{m:.0}us"),
        m if m < 1_000_000.0 => format!("{:.2}ms", m / 1_000.0),
        m => format!("{:.2}s", m / 1_000_000.0),
    }
}

/// A size for people, in binary units.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b => format!("{:.2} GiB", b as f64 / (1 << 30) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stats_count_everything() {
        let mut first = ClientStats::default();
        let mut second = ClientStats::default();
        for micros in 1..=100 {
            first.record(OpKind::Read, Duration::from_micros(micros), Ok(()));
        }
        second.record(OpKind::Write, Duration::from_millis(3), Ok(()));
        second.record(OpKind::Write, Duration::ZERO, Err("HTTP 503".into()));
        first.merge(second);
        assert_eq!(first.n_ok(), 101);
        assert_eq!(first.n_errors(), 1);
        let reports = op_reports(&first, Duration::from_secs(1));
        assert_eq!(reports.len(), 2);
        assert!(
            (49.0..=51.0).contains(&reports[0].p50_us),
            "{:?}",
            reports[0]
        );
        assert!(
            (2_970.0..=3_030.0).contains(&reports[1].max_us),
            "{:?}",
            reports[1]
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_micros(850.0), "850us");
        assert_eq!(human_micros(12_345.0), "12.35ms");
        assert_eq!(human_bytes(3 * 1024), "3.0 KiB");
    }
}
