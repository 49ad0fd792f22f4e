//! `/openapi.json` describes exactly the routes the router serves, no more and no fewer, and
//! carries the body schemas' limits.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

/// Every (method, path) of the API that the router in `src/web/mod.rs` serves, written out by
/// hand. The web app's own files (`/`, `/app.js`, ...) are pages, not API, and not documented.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/lists"),
    ("delete", "/lists/{list}"),
    ("get", "/lists/{list}/dump"),
    ("put", "/lists/{list}/dump"),
    ("get", "/lists/{list}/entries"),
    ("post", "/lists/{list}/entries"),
    ("get", "/lists/{list}/entries/{id}"),
    ("patch", "/lists/{list}/entries/{id}"),
    ("delete", "/lists/{list}/entries/{id}"),
    ("get", "/lists/{list}/todos"),
    ("post", "/lists/{list}/todos"),
    ("delete", "/lists/{list}/todos"),
    ("get", "/lists/{list}/todos/{id}"),
    ("patch", "/lists/{list}/todos/{id}"),
    ("delete", "/lists/{list}/todos/{id}"),
    ("post", "/add_entry"),
    ("get", "/entries"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("get", "/auth/me"),
    ("get", "/users"),
    ("post", "/users"),
    ("delete", "/users/{name}"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{id}"),
    ("get", "/lists/{list}/members"),
    ("put", "/lists/{list}/members/{user}"),
    ("delete", "/lists/{list}/members/{user}"),
    ("get", "/lists/{list}/links"),
    ("post", "/lists/{list}/links"),
    ("delete", "/lists/{list}/links/{id}"),
    ("get", "/lists/{list}/events"),
    ("get", "/lists/{list}/calendar.ics"),
    ("get", "/s/{secret}/calendar.ics"),
    ("get", "/s/{secret}/events"),
    ("get", "/s/{secret}/dump"),
    ("put", "/s/{secret}/dump"),
    ("get", "/s/{secret}/entries"),
    ("post", "/s/{secret}/entries"),
    ("get", "/s/{secret}/entries/{id}"),
    ("patch", "/s/{secret}/entries/{id}"),
    ("delete", "/s/{secret}/entries/{id}"),
    ("get", "/s/{secret}/todos"),
    ("post", "/s/{secret}/todos"),
    ("delete", "/s/{secret}/todos"),
    ("get", "/s/{secret}/todos/{id}"),
    ("patch", "/s/{secret}/todos/{id}"),
    ("delete", "/s/{secret}/todos/{id}"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document() -> Value {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    app.shutdown().await;
    serde_json::from_str(&text).expect("/openapi.json is JSON")
}

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("a paths object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item");
            item.keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_served_route_is_documented_and_nothing_else() {
    let document = document().await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let documented = documented(&document);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not in the router list: {unserved:?}"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let document = document().await;
    let app = spawn_app().await;
    for (method, path) in documented(&document) {
        let concrete = ["{list}", "{secret}", "{name}", "{user}"]
            .iter()
            .fold(path.replace("{id}", "1"), |path, param| {
                path.replace(param, "probe")
            });
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let response = app.send(app.request(method.clone(), &concrete)).await;
        let status = response.status();
        // An event stream that opened never ends: it is served.
        if status.is_success() && concrete.ends_with("/events") {
            continue;
        }
        let body = response.text().await.unwrap();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert!(
            !(status == StatusCode::NOT_FOUND && body.contains(r#""no_route""#)),
            "{method} {path} hits the fallback: {body}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_new_entry_schema_carries_the_title_limits() {
    let document = document().await;
    let schemas = &document["components"]["schemas"];
    for schema in ["NewEntryBody", "EntryPatch", "NewTodoBody", "TodoPatch"] {
        let title = &schemas[schema]["properties"]["title"];
        assert_eq!(title["maxLength"], 1000, "{schema}: {title}");
        assert_eq!(title["minLength"], 1, "{schema}: {title}");
    }
    let required = schemas["NewEntryBody"]["required"].as_array().unwrap();
    for field in ["date", "title"] {
        assert!(
            required.contains(&Value::from(field)),
            "NewEntryBody requires {field}"
        );
    }
    let error = &schemas["ErrorBody"]["properties"]["error"];
    assert!(!error.is_null(), "the error body is described");
}
