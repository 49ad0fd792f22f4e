//! Durability over HTTP: what was acknowledged is still there after the server restarts on the
//! same data directory, ids keep increasing, and idempotency keys are still honoured.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn acknowledged_writes_survive_a_restart() {
    let app = spawn_app().await;
    app.add("kept", "2018-12-19", "Dentist").await;
    app.add("kept", "2018-12-20", "Movies").await;
    app.add("kept", "2018-12-21", "Deleted").await;
    let add_with_key = |app: &crate::helpers::TestApp| {
        app.request(Method::POST, "/lists/kept/entries")
            .header("idempotency-key", "once")
            .json(&json!({"date": "2018-12-22", "title": "Once"}))
            .send()
    };
    assert_eq!(
        add_with_key(&app).await.unwrap().status(),
        StatusCode::CREATED
    );
    app.patch_json("/lists/kept/entries/1", &json!({"done": true, "order": 2}))
        .await;
    assert_eq!(
        app.delete("/lists/kept/entries/3").await.status(),
        StatusCode::NO_CONTENT
    );
    let response = app
        .request(Method::POST, "/lists/cast/entries?async=true")
        .json(&json!({"date": "2018-12-19", "title": "Queued"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let before = app.get_json("/lists/kept/entries").await;

    let app = app.restart().await;
    assert_eq!(app.get_json("/lists/kept/entries").await, before);
    assert_eq!(
        before[0],
        json!({"id": 1, "date": "2018-12-19", "title": "Dentist", "done": true, "order": 2})
    );
    assert_eq!(
        app.titles("cast").await,
        ["Queued"],
        "a queued cast is committed at shutdown"
    );
    assert_eq!(
        app.get_json("/lists").await,
        json!({"lists": ["cast", "kept"]})
    );
    let retry: Value = add_with_key(&app).await.unwrap().json().await.unwrap();
    assert_eq!(
        retry["id"], 4,
        "the idempotency key is remembered across a restart"
    );
    assert_eq!(
        app.add("kept", "2018-12-23", "New").await["id"],
        5,
        "ids are never reused"
    );
    let gone = app.get("/lists/kept/entries/3").await;
    assert_error(gone, StatusCode::NOT_FOUND, "entry_not_found").await;
    app.shutdown().await;
}
