//! The operations routes: `/healthz` for liveness and storage, `/metrics` for Prometheus.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{header, spawn_app};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_commits_actors_and_batch_sizes() {
    let app = spawn_app().await;
    app.add("metered", "2018-12-19", "x").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for name in [
        "todo_http_requests_total",
        "todo_http_request_seconds",
        "todo_commits_total",
        "todo_writes_committed_total",
        "todo_list_actors",
        "todo_mailbox_depth",
        "todo_writes_per_commit",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
    let post_counted = text.lines().any(|line| {
        line.starts_with("todo_http_requests_total{")
            && line.contains(r#"route="/lists/{list}/entries""#)
            && line.contains(r#"method="POST""#)
            && line.contains(r#"status="201""#)
    });
    assert!(
        post_counted,
        "the POST is counted by route template:\n{text}"
    );
    assert_eq!(app.get_json("/healthz").await, json!({"status": "ok"}));
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_describe_themselves_and_count_the_build_the_process_and_unknown_routes() {
    let app = spawn_app().await;
    let unknown = app.get("/no/such/route").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "# HELP todo_commits_total ",
        "# HELP todo_http_requests_total ",
        "# HELP todo_build_info ",
        "# HELP process_resident_memory_bytes ",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let value = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    };
    assert!(value("todo_http_unknown_route_requests_total") >= 1.0);
    assert!(value("process_resident_memory_bytes") > 1_000_000.0);
    let build = text
        .lines()
        .find(|line| line.starts_with("todo_build_info{"))
        .unwrap();
    assert!(
        build.contains("version=\"") && build.contains("commit=\"") && build.ends_with(" 1"),
        "{build}"
    );
    app.shutdown().await;
}
