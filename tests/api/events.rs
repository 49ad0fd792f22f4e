//! `GET /lists/{list}/events` over real sockets: a snapshot, then every committed change in
//! order with the list's version as its id, also under concurrent writers; resuming with
//! `Last-Event-ID`; a subscriber that stops reading, which gets a snapshot later and never
//! holds the list back; streams that outlive the actor's hibernation; the subscriber cap; and
//! streams that end at shutdown.

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

#[tokio::test]
async fn under_concurrent_writers_every_subscriber_sees_the_list_s_own_order() {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let app = spawn_app().await;
    app.add("busy", "2026-12-03", "start").await;
    let mut streams = [
        Stream::open(&app, "busy", None).await,
        Stream::open(&app, "busy", None).await,
    ];
    let mut first_version = 0;
    for stream in &mut streams {
        first_version = stream.next().await.id;
    }
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (client, address) = (app.client.clone(), app.address.clone());
            tokio::spawn(async move {
                for n in 0..EACH {
                    let body = json!({"date": "2026-12-03", "title": format!("w{writer} n{n}")});
                    let url = format!("{address}/lists/busy/entries");
                    let answer = client.post(url).json(&body).send().await.unwrap();
                    assert_eq!(answer.status(), StatusCode::CREATED);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut seen = Vec::new();
    for stream in &mut streams {
        let mut events = Vec::new();
        for n in 1..=(WRITERS * EACH) as u64 {
            let event = stream.next().await;
            assert_eq!(
                (event.name.as_str(), event.id),
                ("added", first_version + n)
            );
            events.push((
                event.data["id"].as_u64().unwrap(),
                event.data["title"].clone(),
            ));
        }
        seen.push(events);
    }
    assert_eq!(seen[0], seen[1], "both subscribers saw one order");
    let stored: Vec<_> = app
        .get_json("/lists/busy/entries")
        .await
        .as_array()
        .unwrap()[1..]
        .iter()
        .map(|entry| (entry["id"].as_u64().unwrap(), entry["title"].clone()))
        .collect();
    assert_eq!(
        seen[0], stored,
        "the events' order is the list's (id) order"
    );
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_gets_a_snapshot_and_never_holds_the_list_back() {
    const WRITES: usize = 6_000;
    let app = spawn_app().await;
    app.add("slow", "2026-12-03", "start").await;
    // A reader with a tiny receive window that reads nothing while the list changes: the
    // writes' events (over 6 MB) outgrow the list's feed (256 changes) and the socket buffers
    // (Linux lets the server's grow to 4 MB), so the server must drop it behind.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut slow = socket.connect(app.addr()).await.unwrap();
    let authorization = app
        .token
        .as_ref()
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "GET /lists/slow/events HTTP/1.1\r\nHost: {}\r\n{authorization}\r\n",
        app.addr()
    );
    tokio::io::AsyncWriteExt::write_all(&mut slow, head.as_bytes())
        .await
        .unwrap();
    let mut fast = Stream::open(&app, "slow", None).await;
    // A subscriber that reads: rebuilt from its events, the list reaches every write (through
    // snapshots too, if it ever falls behind).
    let reader = tokio::spawn(async move {
        let mut entries = std::collections::BTreeSet::new();
        while entries.len() < WRITES + 1 {
            let event = fast.next().await;
            match event.name.as_str() {
                "snapshot" => {
                    entries.clear();
                    entries.extend(
                        event
                            .data
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|e| e["id"].clone().to_string()),
                    );
                }
                "added" => {
                    entries.insert(event.data["id"].to_string());
                }
                other => panic!("unexpected {other}"),
            }
        }
    });

    let title = |n: usize| format!("n{n:05} {}", "x".repeat(900));
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let (client, address) = (app.client.clone(), app.address.clone());
            tokio::spawn(async move {
                for n in (writer..WRITES).step_by(16) {
                    let body = json!({"date": "2026-12-03", "title": title(n)});
                    let url = format!("{address}/lists/slow/entries");
                    let answer = client.post(url).json(&body).send().await.unwrap();
                    assert_eq!(answer.status(), StatusCode::CREATED);
                }
            })
        })
        .collect();
    // Every write is acknowledged, and the reading subscriber follows, while the other holds
    // its stream still.
    for writer in writers {
        writer.await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reading subscriber sees every write")
        .unwrap();

    // The stalled subscriber, once it reads, gets a fresh snapshot that ends with the last
    // write, rather than the changes it could not keep up with.
    let mut received = Vec::new();
    let last = format!("\"id\":{}", WRITES + 1);
    let mut buffer = vec![0; 64 * 1024];
    let read_all = async {
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut slow, &mut buffer)
                .await
                .unwrap();
            assert!(n > 0, "the stream stays open");
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received);
            if text.matches("event: snapshot").count() >= 2 && text.contains(&last) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_all)
        .await
        .expect("a second snapshot, holding the last write");
}
