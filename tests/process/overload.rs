//! Overload of the real binary: floods get 503 (never another 5xx), memory stays bounded, and
//! connections over the cap are answered 503 at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::helpers::{Server, client};

/// The peak resident memory the server may reach under these floods.
const RSS_BOUND_BYTES: u64 = 256 * 1024 * 1024;
const CONNECTIONS: u64 = 64;

/// Sends `n_requests` requests over `CONNECTIONS` connections; `request(n)` builds request `n`.
/// Returns how many got each status.
async fn flood(
    n_requests: u64,
    request: impl Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> BTreeMap<u16, u64> {
    let next = Arc::new(AtomicU64::new(0));
    let request = Arc::new(request);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (next, request) = (next.clone(), request.clone());
            tokio::spawn(async move {
                let client = client();
                let mut statuses = BTreeMap::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= n_requests {
                        return statuses;
                    }
                    let response = request(&client, n)
                        .send()
                        .await
                        .expect("the server answers every request");
                    if response.status() == 503 {
                        assert!(
                            response.headers().contains_key("retry-after"),
                            "503 carries Retry-After"
                        );
                    }
                    *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
                }
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        for (status, n) in task.await.unwrap() {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    statuses
}

fn cast(client: &reqwest::Client, url: &str, list: String, n: u64) -> reqwest::RequestBuilder {
    let query = [
        ("list", list),
        ("date", "2018-12-19".into()),
        ("title", format!("flood {n}")),
        ("async", "true".into()),
    ];
    client.post(format!("{url}/add_entry")).query(&query)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_flood_at_one_list_gets_503_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // One write per commit makes storage the bottleneck, so queues fill for sure.
    let server = Server::start(
        dir.path(),
        &["--mailbox-capacity", "64", "--max-batch", "1"],
    );
    let url = server.url.clone();
    let statuses = flood(100_000, move |client, n| {
        cast(client, &url, "hot".into(), n)
    })
    .await;
    println!(
        "one list: {statuses:?}, peak RSS {} MiB",
        server.peak_rss_bytes() >> 20
    );
    assert!(
        statuses.keys().all(|status| [202, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&503).is_some_and(|n| *n > 0),
        "the full mailbox answered 503: {statuses:?}"
    );
    assert!(server.peak_rss_bytes() < RSS_BOUND_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_flood_at_many_lists_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-lists-in-memory", "10000"]);
    let url = server.url.clone();
    let statuses = flood(100_000, move |client, n| {
        cast(client, &url, format!("list {n}"), n)
    })
    .await;
    println!(
        "100,000 lists: {statuses:?}, peak RSS {} MiB",
        server.peak_rss_bytes() >> 20
    );
    assert!(
        statuses.keys().all(|status| [202, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(server.peak_rss_bytes() < RSS_BOUND_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_calls_past_their_timeout_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--max-batch",
            "1",
            "--call-timeout",
            "20ms",
            "--mailbox-capacity",
            "4",
        ],
    );
    let url = server.url.clone();
    let statuses = flood(3_000, move |client, n| {
        let body = serde_json::json!({"date": "2018-12-19", "title": format!("call {n}")});
        client.post(format!("{url}/lists/hot/entries")).json(&body)
    })
    .await;
    println!("durable calls: {statuses:?}");
    assert!(
        statuses.keys().all(|status| [201, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(statuses.get(&503).is_some_and(|n| *n > 0), "{statuses:?}");
}

/// Reads what the server sends on `stream` until it closes or stays silent for a second.
fn read_answer(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn connections_over_the_cap_are_answered_503_at_once_and_room_comes_back() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-connections", "3"]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    // Three clients hold every place, sending nothing.
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut fourth = TcpStream::connect(&addr).unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .unwrap();
    let answer = read_answer(&mut fourth);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("too_many_connections") && answer.contains("retry-after: 1"),
        "{answer}"
    );
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut later = TcpStream::connect(&addr).unwrap();
    later
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .unwrap();
    let answer = read_answer(&mut later);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "room again once they close: {answer}"
    );
}
