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
