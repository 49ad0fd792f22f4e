//! `GET` and `PUT /lists/{list}/dump`: a list moves between servers with its ids and id
//! counter; a second import changes nothing; an import that would mix with other entries or
//! reuse ids is refused whole; a malformed dump stores nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn put_dump(app: &TestApp, list: &str, dump: &Value) -> reqwest::Response {
    let request = app.request(Method::PUT, &format!("/lists/{list}/dump"));
    app.send(request.json(dump)).await
}

#[tokio::test]
async fn a_list_moves_with_its_ids_and_a_second_import_changes_nothing() {
    let from = spawn_app().await;
    for (date, title) in [
        ("2026-12-03", "one"),
        ("2026-12-04", "two"),
        ("2026-12-05", "three"),
    ] {
        from.add("work", date, title).await;
    }
    assert_eq!(
        from.delete("/lists/work/entries/3").await.status(),
        StatusCode::NO_CONTENT
    );
    let patched = from
        .patch_json("/lists/work/entries/2", &json!({"done": true, "order": 7}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let dump = from.get_json("/lists/work/dump").await;
    assert_eq!(
        dump["next_id"], 4,
        "the counter counts the deleted entry: {dump}"
    );
    assert_eq!(dump["entries"].as_array().unwrap().len(), 2);
    assert!(dump["version"].as_u64().unwrap() >= 5, "{dump}");

    let to = spawn_app().await;
    let imported = put_dump(&to, "moved", &dump).await;
    assert_eq!(imported.status(), StatusCode::OK);
    assert_eq!(
        imported.json::<Value>().await.unwrap(),
        json!({"imported": 2, "unchanged": false})
    );
    let moved = to.get_json("/lists/moved/entries").await;
    assert_eq!(moved, dump["entries"], "the same entries, ids and all");
    let again = put_dump(&to, "moved", &dump).await;
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"imported": 0, "unchanged": true})
    );
    let next = to.add("moved", "2026-12-06", "four").await;
    assert_eq!(
        next["id"], 4,
        "ids are never reused, also across an export and an import"
    );
    let moved_again = put_dump(&to, "moved", &dump).await;
    assert_error(moved_again, StatusCode::CONFLICT, "import_conflict").await;
    assert_eq!(
        to.titles("moved").await,
        ["one", "two", "four"],
        "nothing half-applied"
    );
    from.shutdown().await;
    to.shutdown().await;
}

#[tokio::test]
async fn an_import_that_would_reuse_ids_or_is_malformed_stores_nothing() {
    let app = spawn_app().await;
    app.add("used", "2026-12-03", "gone soon").await;
    assert_eq!(
        app.delete("/lists/used/entries/1").await.status(),
        StatusCode::NO_CONTENT
    );
    let entry = |id: u64, date: &str, title: &str| json!({"id": id, "date": date, "title": title, "done": false});
    let reuse = json!({"next_id": 2, "entries": [entry(1, "2026-12-03", "again")]});
    assert_error(
        put_dump(&app, "used", &reuse).await,
        StatusCode::CONFLICT,
        "import_conflict",
    )
    .await;
    let (bad, inconsistent) = (StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY);
    for (dump, status, code) in [
        (
            json!({"next_id": 2, "entries": [entry(2, "2026-12-03", "x")]}),
            inconsistent,
            "invalid_dump",
        ),
        (
            json!({"next_id": 5, "entries": [entry(1, "2026-12-03", "x"), entry(1, "2026-12-04", "y")]}),
            inconsistent,
            "invalid_dump",
        ),
        (json!({"next_id": 0, "entries": []}), bad, "invalid_dump"),
        (
            json!({"next_id": 5, "entries": [entry(0, "2026-12-03", "x")]}),
            bad,
            "invalid_dump",
        ),
        (
            json!({"next_id": 5, "entries": [entry(1, "2026-02-30", "x")]}),
            bad,
            "invalid_date",
        ),
        (
            json!({"next_id": 5, "entries": [entry(1, "2026-12-03", "  ")]}),
            bad,
            "invalid_title",
        ),
        (
            json!({"next_id": 5, "entries": [], "extra": 1}),
            bad,
            "invalid_json",
        ),
    ] {
        let answer = put_dump(&app, "fresh", &dump).await;
        assert_error(answer, status, code).await;
    }
    let lists = app.get_json("/lists").await;
    assert_eq!(lists["lists"], json!([]), "nothing stored: {lists}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_list_of_thousands_of_long_entries_moves_in_one_import() {
    let from = spawn_app().await;
    let title = "x".repeat(990);
    let entries: Vec<Value> = (1..=3_000_u64)
        .map(|id| json!({"id": id, "date": "2026-12-03", "title": format!("{id} {title}"), "done": id % 2 == 0}))
        .collect();
    let dump = json!({"next_id": 3_001, "entries": entries});
    assert!(
        dump.to_string().len() > 3_000_000,
        "well past the usual 64 KiB"
    );
    let imported = put_dump(&from, "big", &dump).await;
    assert_eq!(imported.status(), StatusCode::OK);
    let exported = from.get_json("/lists/big/dump").await;
    assert_eq!(exported["entries"], dump["entries"]);
    assert_eq!(exported["next_id"], 3_001);
    // Everywhere else the usual limit holds.
    let big_add = json!({"date": "2026-12-03", "title": "x".repeat(70_000)});
    let refused = from.post_json("/lists/big/entries", &big_add).await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    from.shutdown().await;
}

#[tokio::test]
async fn a_list_that_used_every_id_moves_loads_after_a_restart_and_hands_out_no_more() {
    let app = spawn_app().await;
    let last = i64::MAX as u64 - 1;
    let entry = json!({"id": last, "date": "2026-12-03", "title": "the last", "done": false});
    let dump = json!({"next_id": last + 1, "version": 0, "entries": [entry]});
    let imported = put_dump(&app, "full", &dump).await;
    assert_eq!(imported.status(), StatusCode::OK);
    let more = json!({"date": "2026-12-03", "title": "one more"});
    let refused = app.post_json("/lists/full/entries", &more).await;
    assert_error(refused, StatusCode::CONFLICT, "ids_exhausted").await;
    let app = app.restart().await;
    let exported = app.get_json("/lists/full/dump").await;
    assert_eq!(exported["next_id"], last + 1, "{exported}");
    assert_eq!(exported["entries"], dump["entries"]);
    app.shutdown().await;
}
