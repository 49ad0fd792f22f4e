//! `GET /lists/{list}/events` over real sockets: a snapshot, then every committed change in
//! order with the list's version as its id; resuming with `Last-Event-ID`; streams that
//! outlive the actor's hibernation; the subscriber cap; and streams that end at shutdown.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};

/// How long a test waits for one event before it fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One event: its name, id and data.
#[derive(Debug)]
struct SseEvent {
    name: String,
    id: u64,
    data: Value,
}

/// An open event stream, read a chunk at a time.
struct Stream {
    response: Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, list: &str, last_event_id: Option<&str>) -> Stream {
        let mut request = app.request(reqwest::Method::GET, &format!("/lists/{list}/events"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "text/event-stream");
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, skipping comments (heartbeats).
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some((block, rest)) = self.buffer.split_once("\n\n") {
                let (block, rest) = (block.to_owned(), rest.to_owned());
                self.buffer = rest;
                if let Some(event) = parse(&block) {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(EVENT_TIMEOUT, self.response.chunk())
                .await
                .expect("an event within the timeout")
                .expect("the stream reads")
                .expect("the stream is still open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let (mut name, mut id, mut data) = (None, None, String::new());
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event: ") {
            name = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("id: ") {
            id = value.parse().ok();
        } else if let Some(value) = line.strip_prefix("data: ") {
            data.push_str(value);
        }
    }
    Some(SseEvent {
        name: name?,
        id: id?,
        data: serde_json::from_str(&data).expect("JSON data"),
    })
}

#[tokio::test]
async fn a_subscriber_gets_a_snapshot_then_every_change_in_order() {
    let app = spawn_app().await;
    let first = app.add("live", "2026-12-03", "first").await;
    let mut stream = Stream::open(&app, "live", None).await;
    let snapshot = stream.next().await;
    assert_eq!(snapshot.name, "snapshot");
    assert_eq!(snapshot.data, json!([first]));
    let version = snapshot.id;

    let second = app.add("live", "2026-12-04", "second").await;
    let added = stream.next().await;
    assert_eq!((added.name.as_str(), added.id), ("added", version + 1));
    assert_eq!(added.data, second);

    let patched = app
        .patch_json("/lists/live/entries/1", &json!({"done": true}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let updated = stream.next().await;
    assert_eq!(
        (updated.name.as_str(), updated.id),
        ("updated", version + 2)
    );
    assert_eq!(updated.data["done"], true);

    assert_eq!(
        app.delete("/lists/live/entries/2").await.status(),
        StatusCode::NO_CONTENT
    );
    let deleted = stream.next().await;
    assert_eq!(
        (deleted.name.as_str(), deleted.id),
        ("deleted", version + 3)
    );
    assert_eq!(deleted.data, json!({"id": 2}));

    // A cast is published once its group commits.
    let cast = app
        .post_json(
            "/lists/live/entries?async=true",
            &json!({"date": "2026-12-05", "title": "cast"}),
        )
        .await;
    assert_eq!(cast.status(), StatusCode::ACCEPTED);
    let added = stream.next().await;
    assert_eq!(
        (added.name.as_str(), added.data["title"].as_str()),
        ("added", Some("cast"))
    );

    assert_eq!(
        app.delete("/lists/live").await.status(),
        StatusCode::NO_CONTENT
    );
    let cleared = stream.next().await;
    assert_eq!(
        (cleared.name.as_str(), cleared.id),
        ("cleared", version + 5)
    );
}

#[tokio::test]
async fn last_event_id_resumes_without_a_snapshot_when_the_changes_are_kept() {
    let app = spawn_app().await;
    app.add("resume", "2026-12-03", "before").await;
    let mut stream = Stream::open(&app, "resume", None).await;
    let seen = stream.next().await.id;
    drop(stream);
    app.add("resume", "2026-12-03", "missed 1").await;
    app.add("resume", "2026-12-03", "missed 2").await;

    let mut resumed = Stream::open(&app, "resume", Some(&seen.to_string())).await;
    for (n, title) in ["missed 1", "missed 2"].into_iter().enumerate() {
        let event = resumed.next().await;
        assert_eq!(event.name, "added", "no snapshot first");
        assert_eq!(event.id, seen + 1 + n as u64);
        assert_eq!(event.data["title"], title);
    }

    let mut unknown = Stream::open(&app, "resume", Some("999999")).await;
    let event = unknown.next().await;
    assert_eq!(event.name, "snapshot", "a version never sent: start over");
    assert_eq!(event.data.as_array().unwrap().len(), 3);

    let bad = app
        .request(reqwest::Method::GET, "/lists/resume/events")
        .header("last-event-id", "yesterday");
    assert_error(
        app.send(bad).await,
        StatusCode::BAD_REQUEST,
        "invalid_last_event_id",
    )
    .await;
}

#[tokio::test]
async fn a_stream_outlives_the_actor_s_hibernation() {
    let app =
        spawn_app_with(|config| config.lists.hibernate_after = Duration::from_millis(20)).await;
    app.add("sleepy", "2026-12-03", "one").await;
    let mut stream = Stream::open(&app, "sleepy", None).await;
    assert_eq!(stream.next().await.name, "snapshot");
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.add("sleepy", "2026-12-03", "after a nap").await;
    let event = stream.next().await;
    assert_eq!(
        (event.name.as_str(), event.data["title"].as_str()),
        ("added", Some("after a nap"))
    );
}

#[tokio::test]
async fn subscribers_are_capped_and_streams_end_at_shutdown() {
    let app = spawn_app_with(|config| config.web.max_subscribers = 1).await;
    let mut stream = Stream::open(&app, "capped", None).await;
    assert_eq!(stream.next().await.name, "snapshot");
    let second = app.get("/lists/capped/events").await;
    assert_error(
        second,
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_subscribers",
    )
    .await;
    // Shutdown does not wait out the open stream (it would wait 30 s for its connection).
    tokio::time::timeout(Duration::from_secs(10), app.shutdown())
        .await
        .expect("shutdown ends the open stream");
    let ended = tokio::time::timeout(EVENT_TIMEOUT, stream.response.chunk()).await;
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "the stream ended: {ended:?}"
    );
}
