//! Prometheus metrics: per-route request counts and latency histograms, recorded by the access
//! log's middleware, and the actor and database counters, read when `/metrics` is scraped.
//! Every metric has a `# HELP` line, and `todo_build_info` names the version and commit
//! serving.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use super::error::ApiError;

/// Upper bounds of the latency and commit-time histograms, in seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Upper bounds of the writes-per-commit histogram.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
/// How often histogram samples are folded into buckets, which bounds their memory between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full("todo_writes_per_commit".into()),
                BATCH_BUCKETS,
            )
        })
        .expect("bucket lists are not empty")
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!(
            "a metrics recorder was already installed; /metrics will miss what it records"
        );
    }
    describe();
    metrics::gauge!("todo_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("TODO_GIT_COMMIT"))
        .set(1.0);
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the metrics upkeep thread");
    }
    handle
}

/// The answer to a path no route matches, counted: the per-route counters only see matched
/// routes, and scanners and broken clients show up here.
pub async fn no_route() -> ApiError {
    metrics::counter!("todo_http_unknown_route_requests_total").increment(1);
    ApiError::no_route()
}

/// The `# HELP` text of every metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "todo_build_info",
        "Always 1; the labels name the version and git commit serving"
    );
    describe_histogram!(
        "todo_http_request_seconds",
        Unit::Seconds,
        "Time to answer a request, by route template and method"
    );
    describe_counter!(
        "todo_http_requests_total",
        "Requests answered, by route template, method and status"
    );
    describe_counter!(
        "todo_http_unknown_route_requests_total",
        "Requests to paths that match no route (answered 404 no_route)"
    );
    describe_gauge!("todo_list_actors", "List actors running now");
    describe_gauge!(
        "todo_lists_in_memory",
        "Lists held in memory, running or hibernating"
    );
    describe_counter!(
        "todo_list_actors_started_total",
        "List actors started since the server started"
    );
    describe_gauge!(
        "todo_mailbox_depth",
        "Messages waiting in list actors' mailboxes, summed"
    );
    describe_gauge!(
        "todo_database_queue_depth",
        "Messages waiting in the database workers' queues, summed"
    );
    describe_counter!(
        "todo_skipped_requests_total",
        "Requests an actor dropped because their caller had given up"
    );
    describe_counter!("todo_commits_total", "Storage transactions committed");
    describe_counter!(
        "todo_writes_committed_total",
        "Writes committed, over all commits"
    );
    describe_counter!(
        "todo_failed_commits_total",
        "Commits that failed or whose outcome is unknown"
    );
    describe_counter!(
        "todo_storage_restarts_total",
        "Times a database worker reopened its connection"
    );
    describe_histogram!(
        "todo_writes_per_commit",
        "Writes in each commit (group commit)"
    );
    describe_histogram!("todo_commit_seconds", Unit::Seconds, "Time of each commit");
}

/// Counts one answered request of a matched route and records how long it took, labelled by
/// route template, method and status. Those label sets are few, so each thread keeps the
/// handles it has used: a map lookup per request instead of building, hashing and looking up
/// a labelled key in the recorder's registry twice.
pub fn record_request(route: &str, method: &Method, status: StatusCode, elapsed: Duration) {
    thread_local! {
        static HANDLES: RefCell<HashMap<Box<str>, ByAnswer>> = RefCell::default();
    }
    HANDLES.with_borrow_mut(|routes| {
        let by_route = match routes.get_mut(route) {
            Some(by_route) => by_route,
            None => routes.entry(route.into()).or_default(),
        };
        let handles = by_route
            .entry((method.clone(), status))
            .or_insert_with(|| RequestMetrics::new(route, method, status));
        handles.seconds.record(elapsed.as_secs_f64());
        handles.answered.increment(1);
    });
}

/// One route's metrics, by method and status.
type ByAnswer = HashMap<(Method, StatusCode), RequestMetrics>;

/// The metrics of one route, method and status.
struct RequestMetrics {
    seconds: metrics::Histogram,
    answered: metrics::Counter,
}

impl RequestMetrics {
    fn new(route: &str, method: &Method, status: StatusCode) -> RequestMetrics {
        let (route, status) = (route.to_owned(), status.as_u16().to_string());
        // A method no route takes is counted as one label, so a client cannot grow the set.
        let method = match method.as_str() {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method.to_string(),
            _ => "other".to_owned(),
        };
        RequestMetrics {
            seconds: metrics::histogram!("todo_http_request_seconds", "route" => route.clone(), "method" => method.clone()),
            answered: metrics::counter!("todo_http_requests_total", "route" => route, "method" => method, "status" => status),
        }
    }
}

/// The process's own metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_threads`, ...), described once and read at each scrape.
fn process_metrics() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// The metrics text, with the counters that live in the actors and workers brought up to date.
pub fn render(state: &AppState) -> String {
    process_metrics().collect();
    let actors = state.cache.stats();
    let database = state.cache.database();
    let stats = database.stats();
    metrics::gauge!("todo_list_actors").set(actors.live() as f64);
    metrics::gauge!("todo_lists_in_memory").set(state.cache.len() as f64);
    metrics::counter!("todo_list_actors_started_total").absolute(actors.started());
    metrics::gauge!("todo_mailbox_depth").set(state.cache.mailbox_depth() as f64);
    metrics::gauge!("todo_database_queue_depth").set(database.queue_depth() as f64);
    metrics::counter!("todo_skipped_requests_total").absolute(actors.skipped());
    metrics::counter!("todo_commits_total").absolute(stats.commits());
    metrics::counter!("todo_writes_committed_total").absolute(stats.writes_committed());
    metrics::counter!("todo_failed_commits_total").absolute(stats.failed_commits());
    metrics::counter!("todo_storage_restarts_total").absolute(stats.restarts());
    state.metrics.render()
}
