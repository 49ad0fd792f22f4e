//! The floor: the book's two routes on the same stack as `todo serve` (tokio, hyper, axum,
//! mimalloc), answering a fixed body with no actor and no storage. What it serves per second
//! on a machine is what the stack itself costs there, so the server's figures can be given as
//! a ratio to it, measured in the same window (BENCHMARKS.md):
//!
//! ```sh
//! cargo run --release --example bare -- 127.0.0.1:5612
//! wrk -t2 -c64 -d5s -s book.lua http://127.0.0.1:5612
//! ```
//!
//! With `--edge` (`bare 127.0.0.1:5613 --edge`), the same routes sit behind `todo serve`'s
//! edge and connection settings (`todo::web::edge`, `todo::web::serve`): CORS, the cap on
//! requests in flight, the request timeout, request ids, the access log's metrics and the
//! browser headers. The three together split a request's cost: the stack, the edge, and what
//! the server's routes do (authentication, parsing, the list's read or durable write).

use std::future::pending;

use axum::extract::MatchedPath;
use axum::routing::{get, post};
use axum::{Extension, Router};
use todo::config::WebConfig;
use todo::web::connections::Connections;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `GET /entries` answers: one entry in the book's text form, as a list of one day would.
const ENTRIES: &str = "2018-12-19 some title";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let with_edge = args.next().as_deref() == Some("--edge");
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare server on http://{}", listener.local_addr()?);
    if !with_edge {
        let router = Router::new()
            .route("/add_entry", post(|| async { "OK" }))
            .route("/entries", get(|| async { ENTRIES }));
        return axum::serve(listener, router).await;
    }
    // Each answer carries its route, as `todo serve`'s routes do, so the edge counts it.
    let router = Router::new()
        .route(
            "/add_entry",
            post(|route: MatchedPath| async { (Extension(route), "OK") }),
        )
        .route(
            "/entries",
            get(|route: MatchedPath| async { (Extension(route), ENTRIES) }),
        );
    let config = WebConfig::default();
    // Installs the metrics recorder, as `todo serve` does, so the edge's counts cost what
    // they cost there.
    let _ = todo::web::metrics::handle();
    let edge = todo::web::edge(router, &config);
    let connections = Connections::new(todo::web::connections::cap(None));
    todo::web::serve(listener, edge, None, connections, pending()).await;
    Ok(())
}
