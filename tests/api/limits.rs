//! Size limits: a body over 64 KiB gets 413, a request head over 64 KiB gets 414 or 431, and an
//! `Idempotency-Key` must be 1 to 255 visible ASCII characters. Nothing over a limit is stored.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, error_message, spawn_app, spawn_app_with};

const MAX_BODY: usize = 64 * 1024;

/// A valid entry body padded with spaces to exactly `len` bytes.
fn padded_entry(len: usize) -> String {
    let entry = r#"{"date": "2018-12-19", "title": "Padded"}"#;
    format!("{entry}{}", " ".repeat(len - entry.len()))
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413() {
    let app = spawn_app().await;
    for len in [MAX_BODY + 1, 1024 * 1024] {
        println!("case: {len} bytes");
        let response = app
            .send_raw_body(Method::POST, "/lists/big/entries", padded_entry(len))
            .await;
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    }
    let patch = format!(r#"{{"done": true}}{}"#, " ".repeat(MAX_BODY));
    let response = app
        .send_raw_body(Method::PATCH, "/lists/big/entries/1", patch)
        .await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    assert_eq!(app.get_json("/lists/big/entries").await, json!([]));

    let response = app
        .send_raw_body(Method::POST, "/lists/big/entries", padded_entry(MAX_BODY))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "exactly 64 KiB is allowed"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_1_mb_body_on_a_raw_socket_is_a_413() {
    let app = spawn_app().await;
    let response = app
        .raw(
            "POST /lists/big/entries HTTP/1.1",
            padded_entry(1024 * 1024).as_bytes(),
        )
        .await;
    assert_eq!(response.status, 413, "{}", response.head);
    error_message(&response.body, "body_too_large");
    app.shutdown().await;
}

/// Sends each head on its own connection and asserts the answer is 414 or 431, and that the
/// server still serves afterwards.
async fn assert_head_too_large(heads: &[String]) {
    let app = spawn_app().await;
    for head in heads {
        let response = app.raw(head, b"").await;
        assert!(
            [414, 431].contains(&response.status),
            "{}... ({} bytes) answered: {}",
            &head[..40],
            head.len(),
            response.head
        );
    }
    assert_eq!(
        app.get_json("/healthz").await,
        json!({"status": "ok"}),
        "still serving"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_100_kb_url_is_a_414_or_431() {
    let long = "a".repeat(100 * 1024);
    assert_head_too_large(&[
        format!("GET /lists/x/entries?date={long} HTTP/1.1"),
        format!("GET /{long} HTTP/1.1"),
    ])
    .await;
}

#[tokio::test]
async fn a_100_kb_header_is_a_414_or_431() {
    let long = "a".repeat(100 * 1024);
    // 60 headers of 1.7 KB: over the size limit, under hyper's count limit of 100 headers.
    let many: String = (0..60)
        .map(|n| format!("X-Padding-{n}: {}\r\n", "a".repeat(1_700)))
        .collect();
    assert_head_too_large(&[
        format!("GET /lists/x/entries HTTP/1.1\r\nX-Padding: {long}"),
        format!("GET /healthz HTTP/1.1\r\nIdempotency-Key: {long}"),
        format!("GET /healthz HTTP/1.1\r\n{many}X-Last: 1"),
    ])
    .await;
}

#[tokio::test]
async fn an_idempotency_key_must_be_1_to_255_visible_ascii_characters() {
    let app = spawn_app().await;
    let post = |key: reqwest::header::HeaderValue| {
        app.request(Method::POST, "/lists/keys/entries")
            .header("idempotency-key", key)
            .json(&json!({"date": "2018-12-19", "title": "x"}))
            .send()
    };
    let bad = [
        reqwest::header::HeaderValue::from_static(""),
        reqwest::header::HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    ];
    for key in bad {
        println!("case: {key:?}");
        let response = post(key).await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    }
    assert_eq!(app.get_json("/lists/keys/entries").await, json!([]));
    let longest = reqwest::header::HeaderValue::from_str(&"k".repeat(255)).unwrap();
    assert_eq!(post(longest).await.unwrap().status(), StatusCode::CREATED);
    app.shutdown().await;
}

/// `--max-in-flight` caps the server, not each route: requests stuck sending their bodies to
/// one route make every route answer 503 `overloaded`, and the server recovers once they go.
#[tokio::test]
async fn the_in_flight_cap_is_for_the_whole_server() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|config| config.web.max_in_flight = 2).await;
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
            .await
            .unwrap();
        let head = "POST /lists/a/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
        stream.write_all(head.as_bytes()).await.unwrap();
        stuck.push(stream);
    }
    // Let the server take both requests in.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for path in ["/lists/b/entries", "/entries?list=b&date=2018-12-19"] {
        assert_error(
            app.get(path).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
        )
        .await;
    }
    drop(stuck);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = app.get("/lists/b/entries").await.status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        StatusCode::OK,
        "the server serves again once they go"
    );
    app.shutdown().await;
}

/// A body that does not arrive within `--body-timeout` is the client's fault: 408, the
/// connection closed, nothing stored.
#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        spawn_app_with(|config| config.web.body_timeout = std::time::Duration::from_millis(200))
            .await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = "POST /lists/slow/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"date\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert_eq!(app.get_json("/lists/slow/entries").await, json!([]));
    app.shutdown().await;
}
