//! Criterion benches of the hot paths: `TodoList` operations by list size, an actor call's round
//! trip through `Cache::call`, a cache lookup of a live list, a read of the book's `entries`
//! through the whole HTTP service without a socket (beside the same stack's bare router, alone
//! and behind the server's edge), and
//! group commits of 1, 10 and 100 concurrent durable writes. Run with
//! `cargo bench --bench hot_paths`.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hyper_util::service::TowerToHyperService;
use todo::app::App;
use todo::config::{Config, WebConfig};
use todo::list::{Date, ListName, NewEntry, Title, TodoList};
use todo::lists::EntriesQuery;

/// The server's allocator (mimalloc, `src/main.rs`), counting its allocations, so the HTTP
/// bench can print how many a request makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to mimalloc, which upholds `GlobalAlloc`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` hold for mimalloc too.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `realloc` above, that is, from mimalloc.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and the caller's guarantees for `new_size` hold.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Dates the entries are spread over, as in the book's load: one month.
const N_DATES: u64 = 31;

fn first_date() -> Date {
    Date::parse("2018-12-01").expect("a valid date")
}

fn new_entry(n: u64) -> NewEntry {
    let date = first_date()
        .plus_days(n % N_DATES)
        .expect("December has 31 days");
    NewEntry::new(date, Title::parse("some title").expect("a valid title"))
}

fn list_of(n_entries: u64) -> TodoList {
    let mut list = TodoList::default();
    for n in 0..n_entries {
        list.add_entry(new_entry(n)).expect("ids do not run out");
    }
    list
}

fn todo_list(c: &mut Criterion) {
    let mut group = c.benchmark_group("todo_list");
    for n_entries in [10, 1_000, 100_000] {
        // Each add is undone by a delete, so the list keeps its size however long criterion
        // runs; the pair is timed, which keeps timer calls out of the measurement.
        let mut list = list_of(n_entries);
        let entry = new_entry(7);
        group.bench_with_input(
            BenchmarkId::new("add_entry_then_delete", n_entries),
            &n_entries,
            |b, _| {
                b.iter(|| {
                    let id = list
                        .add_entry(black_box(entry.clone()))
                        .map(|entry| entry.id);
                    list.delete_entry(id.expect("ids do not run out"))
                })
            },
        );
        let list = list_of(n_entries);
        let date = first_date().plus_days(7).expect("a December date");
        group.bench_with_input(
            BenchmarkId::new("entries", n_entries),
            &n_entries,
            |b, _| b.iter(|| list.entries(black_box(date)).count()),
        );
    }
    group.finish();
}

/// A two-thread runtime, as on the benchmark machine, and a server on a temporary directory
/// with `db_workers` database workers.
fn start_app(db_workers: usize) -> (tokio::runtime::Runtime, App, tempfile::TempDir) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::with_data_dir(dir.path());
    config.web.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.database.workers = Some(db_workers);
    let app = runtime
        .block_on(App::start(config))
        .expect("the server starts");
    (runtime, app, dir)
}

fn name(text: &str) -> ListName {
    ListName::parse(text).expect("a valid list name")
}

fn actor(c: &mut Criterion) {
    let (runtime, app, _dir) = start_app(3);
    let cache = app.cache().clone();
    let list = name("bench");
    runtime.block_on(async {
        for n in 0..10 {
            let add = cache.add_entry(&list, new_entry(n), None).await;
            add.expect("the write is stored");
        }
    });
    let mut group = c.benchmark_group("actor");
    group.bench_function("call_round_trip", |b| {
        b.iter_custom(|iterations| {
            // The caller runs on a runtime thread, as a request handler does.
            let (cache, list) = (cache.clone(), list.clone());
            let caller = runtime.spawn(async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    let read = cache.entries(&list, EntriesQuery::On(first_date())).await;
                    black_box(read.expect("the read answers"));
                }
                started.elapsed()
            });
            runtime.block_on(caller).expect("the caller does not panic")
        })
    });
    group.bench_function("cache_lookup_live_list", |b| {
        let _runtime = runtime.enter();
        b.iter(|| cache.server_process(black_box(&list)))
    });
    group.finish();
    runtime.block_on(app.shutdown());
}

/// The book's `GET /entries` through everything a request over HTTP passes once hyper has
/// parsed it (the edge, CORS, admission, routing, `admit`, the handler, the cache), and the
/// same request to a router that answers a fixed body (`examples/bare.rs`, run as
/// `axum::serve` runs it): the ratio is the request path's cost in user space over the
/// stack's own, without the kernel's share that `wrk` measures too. Prints the allocations
/// a request makes on each.
fn http_stack(c: &mut Criterion) {
    let (runtime, app, _dir) = start_app(1);
    let cache = app.cache().clone();
    let list = name("bench");
    runtime.block_on(async {
        for n in 0..N_DATES {
            let add = cache.add_entry(&list, new_entry(n), None).await;
            add.expect("the write is stored");
        }
    });
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let full = app.edge().for_peer(peer);
    // The bare router behind the server's edge, its answers carrying their route as the
    // server's do, so the edge counts them (`examples/bare.rs --edge`).
    let tagged = Router::new().route(
        "/entries",
        get(|route: MatchedPath| async { (Extension(route), ENTRIES) }),
    );
    let edge = todo::web::edge(tagged, &WebConfig::default()).for_peer(peer);
    let bare = TowerToHyperService::new(Router::new().route("/entries", get(|| async { ENTRIES })));
    let allocations = [
        allocations_per_request(&runtime, &full),
        allocations_per_request(&runtime, &edge),
        allocations_per_request(&runtime, &bare),
    ];
    println!(
        "http_stack: allocations per request: book_entries {:.1}, bare_behind_edge {:.1}, bare_router {:.1}",
        allocations[0], allocations[1], allocations[2],
    );
    let mut group = c.benchmark_group("http_stack");
    group.bench_function("book_entries", |b| {
        b.iter_custom(|iterations| runtime.block_on(answer(&full, iterations)))
    });
    group.bench_function("bare_behind_edge", |b| {
        b.iter_custom(|iterations| runtime.block_on(answer(&edge, iterations)))
    });
    group.bench_function("bare_router", |b| {
        b.iter_custom(|iterations| runtime.block_on(answer(&bare, iterations)))
    });
    group.finish();
    runtime.block_on(app.shutdown());
}

/// What the bare router answers: one entry in the book's text form.
const ENTRIES: &str = "2018-12-08 some title";

/// Allocations `service` makes per answer, over 1,000 answers.
fn allocations_per_request<S>(runtime: &tokio::runtime::Runtime, service: &S) -> f64
where
    S: hyper::service::Service<Request<Body>, Response = Response>,
    S::Error: std::fmt::Debug,
{
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    runtime.block_on(answer(service, 1_000));
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1_000.0
}

/// How long `service` takes to answer the book's `GET /entries` `iterations` times in a row.
async fn answer<S>(service: &S, iterations: u64) -> Duration
where
    S: hyper::service::Service<Request<Body>, Response = Response>,
    S::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for _ in 0..iterations {
        let request = Request::get("/entries?list=bench&date=2018-12-08").body(Body::empty());
        let response = service.call(request.expect("a valid request")).await;
        black_box(response.expect("the service answers"));
    }
    started.elapsed()
}

/// Group commits with the default three database workers, and with one.
fn group_commit(c: &mut Criterion) {
    for db_workers in [3, 1] {
        group_commit_with(c, db_workers);
    }
}

fn group_commit_with(c: &mut Criterion, db_workers: usize) {
    let (runtime, app, _dir) = start_app(db_workers);
    let cache = app.cache().clone();
    let lists: Vec<ListName> = (0..100).map(|n| name(&format!("list_{n}"))).collect();
    let mut group = c.benchmark_group(format!("group_commit_{db_workers}_workers"));
    group.measurement_time(Duration::from_secs(5));
    for n_writes in [1_usize, 10, 100] {
        group.throughput(Throughput::Elements(n_writes as u64));
        group.bench_with_input(
            BenchmarkId::new("concurrent_writes", n_writes),
            &n_writes,
            |b, &n_writes| {
                b.iter_custom(|iterations| {
                    let (cache, lists) = (cache.clone(), lists.clone());
                    let writer = runtime.spawn(async move {
                        let started = Instant::now();
                        for _ in 0..iterations {
                            let writes: Vec<_> = lists[..n_writes]
                                .iter()
                                .map(|list| {
                                    let (cache, list) = (cache.clone(), list.clone());
                                    tokio::spawn(async move {
                                        cache.add_entry(&list, new_entry(1), None).await
                                    })
                                })
                                .collect();
                            for write in writes {
                                write
                                    .await
                                    .expect("the writer does not panic")
                                    .expect("the write is stored");
                            }
                        }
                        started.elapsed()
                    });
                    runtime.block_on(writer).expect("the writers do not panic")
                })
            },
        );
    }
    group.finish();
    runtime.block_on(app.shutdown());
}

criterion_group!(benches, todo_list, actor, http_stack, group_commit);
criterion_main!(benches);
