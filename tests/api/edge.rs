//! What every route gets at the edge: `nosniff`, `X-Frame-Options` and `Referrer-Policy` on
//! every answer, and bad bytes, blank titles,
//! line separators and non-canonical ids refused with a 400 that stores nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, header, spawn_app};

#[tokio::test]
async fn every_answer_says_nosniff_no_frames_and_no_referrer() {
    let app = spawn_app().await;
    app.add("l", "2018-12-19", "Dentist").await;
    for path in [
        "/lists/l/entries",
        "/entries?list=l&date=2018-12-19",
        "/nope",
        "/lists/l/entries/x",
    ] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        assert_eq!(
            header(&response, "referrer-policy"),
            "no-referrer",
            "{path}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn bad_bytes_blank_titles_separators_and_padded_ids_are_refused() {
    let app = spawn_app().await;
    app.add("l", "2018-12-19", "Dentist").await;
    for (path, code) in [
        (
            "/add_entry?list=l&date=2018-12-19&title=%C3%28",
            "invalid_utf8",
        ),
        (
            "/add_entry?list=l&date=2018-12-19&title=%20%20",
            "invalid_title",
        ),
        (
            "/add_entry?list=l&date=2018-12-19&title=a%E2%80%A8b",
            "invalid_title",
        ),
    ] {
        let response = app.request(Method::POST, path).send().await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let response = app.get("/entries?list=%FF&date=2018-12-19").await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_utf8").await;
    let blank = app
        .post_json(
            "/lists/l/entries",
            &json!({"date": "2018-12-19", "title": " \t "}),
        )
        .await;
    assert_error(blank, StatusCode::BAD_REQUEST, "invalid_title").await;
    for path in [
        "/lists/l/entries/01",
        "/lists/l/entries/+1",
        "/lists/l/todos/001",
    ] {
        assert_error(app.get(path).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    }
    let entries = app.get_json("/lists/l/entries").await;
    assert_eq!(
        entries.as_array().map(Vec::len),
        Some(1),
        "nothing was stored: {entries}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_and_stores_nothing() {
    let app = spawn_app().await;
    let body = r#"{"date": "2018-12-19", "title": "x"}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let request = app
            .request(Method::POST, "/lists/typed/entries")
            .header("content-type", content_type)
            .body(body);
        let answer = app.send(request).await;
        assert_error(
            answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    assert!(app.titles("typed").await.is_empty(), "nothing stored");
    for content_type in [
        Some("application/json; charset=utf-8"),
        Some("application/merge-patch+json"),
        None,
    ] {
        let mut request = app.request(Method::POST, "/lists/typed/entries").body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        assert_eq!(
            app.send(request).await.status(),
            StatusCode::CREATED,
            "{content_type:?}"
        );
    }
    app.shutdown().await;
}
