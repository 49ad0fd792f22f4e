//! The floor: the book's two routes on the same stack as `todo serve` (tokio, hyper, axum),
//! answering a fixed body with no middleware, no actor and no storage. What it serves per
//! second on a machine is what the stack itself costs there, so the server's figures can be
//! given as a ratio to it, measured in the same window (BENCHMARKS.md):
//!
//! ```sh
//! cargo run --release --example bare -- 127.0.0.1:5612
//! wrk -t2 -c64 -d5s -s book.lua http://127.0.0.1:5612
//! ```

use axum::Router;
use axum::routing::{get, post};

/// What `GET /entries` answers: one entry in the book's text form, as a list of one day would.
const ENTRIES: &str = "2018-12-19 some title";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare server on http://{}", listener.local_addr()?);
    let router = Router::new()
        .route("/add_entry", post(|| async { "OK" }))
        .route("/entries", get(|| async { ENTRIES }));
    axum::serve(listener, router).await
}
