//! Bad input against the real binary, table-driven over every route: each request gets its 4xx,
//! and afterwards storage holds exactly what it held before and nothing appeared outside it.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Server, stored_rows};

const BAD_DATES: &[&str] = &["2018-13-01", "2018-02-30", "", "yesterday"];
/// List names, already escaped for a URL path or query. (A bare `%2E%2E` is normalised away by
/// the client before it is sent; `tests/api/` sends it over a raw socket.)
const BAD_LISTS: &[&str] = &["..%2Fx", "%2Fetc%2Fx", "a%2Fb", "a%00b", "%252e%252e", ""];

fn bad_titles() -> Vec<String> {
    vec![
        String::new(),
        "x".repeat(1_001),
        "tab\there".into(),
        "nul\0".into(),
    ]
}

/// `(method, path and query, JSON body, expected status)`.
type Case = (Method, String, Option<Value>, u16);

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let long_list = "l".repeat(300);
    for list in BAD_LISTS
        .iter()
        .copied()
        .chain([long_list.as_str()])
        .filter(|list| !list.is_empty())
    {
        let entry = json!({"date": "2018-12-19", "title": "x"});
        cases.extend([
            (Method::GET, format!("/lists/{list}/entries"), None, 400),
            (
                Method::POST,
                format!("/lists/{list}/entries"),
                Some(entry.clone()),
                400,
            ),
            (Method::GET, format!("/lists/{list}/entries/1"), None, 400),
            (
                Method::PATCH,
                format!("/lists/{list}/entries/1"),
                Some(json!({"done": true})),
                400,
            ),
            (
                Method::DELETE,
                format!("/lists/{list}/entries/1"),
                None,
                400,
            ),
            (Method::DELETE, format!("/lists/{list}"), None, 400),
            (Method::GET, format!("/lists/{list}/todos"), None, 400),
            (
                Method::POST,
                format!("/lists/{list}/todos"),
                Some(json!({"title": "x"})),
                400,
            ),
            (Method::DELETE, format!("/lists/{list}/todos"), None, 400),
            (
                Method::PATCH,
                format!("/lists/{list}/todos/1"),
                Some(json!({"completed": true})),
                400,
            ),
        ]);
    }
    for list in BAD_LISTS {
        cases.push((
            Method::POST,
            format!("/add_entry?list={list}&date=2018-12-19&title=x"),
            None,
            400,
        ));
        cases.push((
            Method::GET,
            format!("/entries?list={list}&date=2018-12-19"),
            None,
            400,
        ));
    }
    for date in BAD_DATES {
        cases.extend([
            (
                Method::POST,
                "/lists/ok/entries".into(),
                Some(json!({"date": date, "title": "x"})),
                400,
            ),
            (
                Method::GET,
                format!("/lists/ok/entries?date={date}"),
                None,
                400,
            ),
            (
                Method::PATCH,
                "/lists/ok/entries/1".into(),
                Some(json!({"date": date})),
                400,
            ),
            (
                Method::POST,
                "/lists/ok/todos".into(),
                Some(json!({"title": "x", "date": date})),
                400,
            ),
            (
                Method::POST,
                format!("/add_entry?list=ok&date={date}&title=x"),
                None,
                400,
            ),
            (
                Method::GET,
                format!("/entries?list=ok&date={date}"),
                None,
                400,
            ),
        ]);
    }
    for title in bad_titles() {
        let escaped = title.replace('\t', "%09").replace('\0', "%00");
        cases.extend([
            (
                Method::POST,
                "/lists/ok/entries".into(),
                Some(json!({"date": "2018-12-19", "title": title})),
                400,
            ),
            (
                Method::PATCH,
                "/lists/ok/entries/1".into(),
                Some(json!({"title": title})),
                400,
            ),
            (
                Method::POST,
                "/lists/ok/todos".into(),
                Some(json!({"title": title})),
                400,
            ),
            (
                Method::PATCH,
                "/lists/ok/todos/1".into(),
                Some(json!({"title": title})),
                400,
            ),
            (
                Method::POST,
                format!("/add_entry?list=ok&date=2018-12-19&title={escaped}"),
                None,
                400,
            ),
        ]);
    }
    cases.extend([
        (
            Method::POST,
            "/lists/ok/entries".into(),
            Some(json!({"date": 20181219, "title": "x"})),
            400,
        ),
        (
            Method::POST,
            "/lists/ok/entries".into(),
            Some(json!({"date": "2018-12-19", "title": ["x"]})),
            400,
        ),
        (
            Method::POST,
            "/lists/ok/entries".into(),
            Some(json!({"date": "2018-12-19", "title": "x", "owner": "eve"})),
            400,
        ),
        (
            Method::PATCH,
            "/lists/ok/entries/1".into(),
            Some(json!({"done": "yes"})),
            400,
        ),
        (
            Method::PATCH,
            "/lists/ok/entries/1".into(),
            Some(json!({"id": 7})),
            400,
        ),
        (
            Method::POST,
            "/lists/ok/todos".into(),
            Some(json!({"title": "x", "completed": 1})),
            400,
        ),
        (
            Method::POST,
            "/lists/ok/entries".into(),
            Some(json!({"date": "2018-12-19", "title": "x".repeat(1 << 20)})),
            413,
        ),
        (Method::GET, "/lists/ok/entries/0".into(), None, 400),
        (Method::GET, "/lists/ok/entries/abc".into(), None, 400),
        (Method::DELETE, "/lists/ok/entries/99".into(), None, 404),
        (
            Method::GET,
            "/lists/ok/entries?from=2018-12-32".into(),
            None,
            400,
        ),
        (Method::GET, "/lists?limit=0".into(), None, 400),
        (
            Method::POST,
            "/add_entry?list=ok&date=2018-12-19".into(),
            None,
            400,
        ),
        (Method::PUT, "/lists/ok/entries".into(), None, 405),
    ]);
    cases
}

/// Every file under `dir`, with its path relative to `dir`.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            files.insert(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_4xx_and_changes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let server = Server::start(&data_dir, &[]);
    // A fresh connection per request: the server closes a connection whose oversized body it
    // refused to read, and a pooled connection could be reused just as it closes.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let entry = json!({"date": "2018-12-19", "title": "Dentist"});
    let created = client
        .post(format!("{}/lists/ok/entries", server.url))
        .json(&entry)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let rows_before = stored_rows(&data_dir);
    let files_before = files_under(parent.path());

    let cases = cases();
    for (method, path, body, expected) in &cases {
        let mut request = client.request(method.clone(), format!("{}{path}", server.url));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, *expected, "{method} {path} {body:?}: {text}");
        let error: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(
            error["error"]["code"].is_string() && error["error"]["message"].is_string(),
            "{text}"
        );
    }

    assert_eq!(
        stored_rows(&data_dir),
        rows_before,
        "storage is unchanged after {} bad requests",
        cases.len()
    );
    assert_eq!(
        files_under(parent.path()),
        files_before,
        "no file appeared or vanished"
    );
    assert_eq!(server.terminate(), Some(0));
}
