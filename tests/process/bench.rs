//! `todo bench --workload watch` against a real server: every write reaches every subscriber
//! of its list, the report says so, and the benchmark's lists are gone afterwards.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{Server, get_json};

#[tokio::test]
async fn the_watch_benchmark_delivers_every_write_to_every_subscriber_and_cleans_up() {
    let dir = tempfile::tempdir().expect("a data directory");
    let server = Server::start(dir.path(), &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(["bench", "--url", &server.url, "--workload", "watch"])
        .args([
            "--clients",
            "30",
            "--lists",
            "3",
            "--duration",
            "1s",
            "--json",
        ])
        .output()
        .expect("todo bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["subscribers"], 30);
    assert!(report["writes"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["deliveries"], report["expected_deliveries"],
        "{report}"
    );
    assert_eq!(
        report["deliveries"].as_u64().unwrap(),
        report["writes"].as_u64().unwrap() * 10,
        "each list has 10 of the 30 subscribers: {report}"
    );
    assert!(
        report["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );

    let lists = get_json(&format!("{}/lists", server.url)).await;
    assert_eq!(
        lists["lists"],
        serde_json::json!([]),
        "the benchmark's lists are removed"
    );
}

/// `todo bench --url URL` with a short mixed load and `extra` flags.
fn bench_against(url: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_todo"))
        .args([
            "bench",
            "--url",
            url,
            "--api",
            "json",
            "--clients",
            "4",
            "--lists",
            "5",
        ])
        .args(["--warmup", "0s"])
        .args(extra)
        .output()
        .expect("todo bench runs")
}

/// `bench_against`, which must succeed.
fn bench_succeeds(url: &str, extra: &[&str]) {
    let ran = bench_against(url, extra);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "todo bench {extra:?}: {stderr}");
}

#[tokio::test]
async fn the_load_benchmark_leaves_users_lists_alone_and_removes_its_own() {
    let dir = tempfile::tempdir().expect("a data directory");
    let server = Server::start(dir.path(), &[]);
    let entry = serde_json::json!({"date": "2026-12-03", "title": "milk"});
    let added = crate::helpers::client()
        .post(format!("{}/lists/groceries/entries", server.url))
        .json(&entry)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);

    let refused = bench_against(&server.url, &["--duration", "1s"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a server with lists of its users: {stderr}"
    );
    assert!(
        stderr.contains("--yes") && stderr.contains("groceries"),
        "{stderr}"
    );
    let lists = get_json(&format!("{}/lists", server.url)).await;
    assert_eq!(
        lists["lists"],
        serde_json::json!(["groceries"]),
        "nothing written"
    );

    bench_succeeds(&server.url, &["--duration", "1s", "--yes", "--keep"]);
    let lists = get_json(&format!("{}/lists", server.url)).await;
    assert_eq!(
        lists["lists"],
        serde_json::json!([
            "bench-1",
            "bench-2",
            "bench-3",
            "bench-4",
            "bench-5",
            "groceries"
        ]),
        "--keep keeps them: {lists}"
    );

    bench_succeeds(&server.url, &["--duration", "1s", "--yes"]);
    let lists = get_json(&format!("{}/lists", server.url)).await;
    assert_eq!(
        lists["lists"],
        serde_json::json!(["groceries"]),
        "only the user's list is left"
    );
    let milk = get_json(&format!("{}/lists/groceries/entries", server.url)).await;
    assert_eq!(
        milk.as_array().unwrap().len(),
        1,
        "the user's list untouched: {milk}"
    );
}

#[test]
fn the_load_benchmark_stops_and_fails_when_the_server_goes_away() {
    let dir = tempfile::tempdir().expect("a data directory");
    let server = Server::start(dir.path(), &[]);
    let url = server.url.clone();
    let bench = std::thread::spawn(move || bench_against(&url, &["--duration", "60s"]));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let killed_at = std::time::Instant::now();
    server.kill();
    let output = bench.join().expect("the bench thread ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("stopped answering"), "{stderr}");
    assert!(
        killed_at.elapsed() < std::time::Duration::from_secs(30),
        "it stopped well before its 60 s: {:?}",
        killed_at.elapsed()
    );
}
