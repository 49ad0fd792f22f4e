//! The Todo-Backend contract (todobackend.com) at `/lists/{list}/todos`, and the CORS headers
//! its browser-based spec runner needs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, header, spawn_app};

/// Creates a todo and returns it.
async fn create(app: &TestApp, list: &str, body: Value) -> Value {
    let response = app.post_json(&format!("/lists/{list}/todos"), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "create {body}");
    let location = header(&response, "location");
    let todo: Value = response.json().await.unwrap();
    assert_eq!(location, todo["url"], "Location is the todo's url");
    todo
}

fn today_utc() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn a_created_todo_has_an_absolute_url_that_fetches_it() {
    let app = spawn_app().await;
    let before = today_utc();
    let todo = create(&app, "tb", json!({"title": "walk the dog"})).await;
    let after = today_utc();
    assert_eq!(todo["title"], "walk the dog");
    assert_eq!(todo["completed"], false);
    assert_eq!(todo["id"], 1);
    assert!(
        todo.get("order").is_none(),
        "no order unless one is set: {todo}"
    );
    let date = todo["date"].as_str().unwrap();
    assert!(date == before || date == after, "{date} is today in UTC");
    let url = todo["url"].as_str().unwrap();
    assert!(url.starts_with("http://"), "{url}");
    assert_eq!(url, format!("{}/lists/tb/todos/1", app.address));

    let fetched = app.client.get(url).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.json::<Value>().await.unwrap(), todo);

    let with_everything = create(
        &app,
        "tb",
        json!({"title": "b", "completed": true, "order": 3, "date": "2018-12-19"}),
    )
    .await;
    let expected = json!({
        "id": 2, "title": "b", "completed": true, "order": 3, "date": "2018-12-19",
        "url": format!("{}/lists/tb/todos/2", app.address),
    });
    assert_eq!(with_everything, expected);
    assert_eq!(
        app.get_json("/lists/tb/todos").await,
        json!([todo, expected])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_todo_url_escapes_the_list_name() {
    let app = spawn_app().await;
    let todo = create(&app, "my list", json!({"title": "x"})).await;
    let url = todo["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/lists/my%20list/todos/1", app.address));
    assert_eq!(
        app.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        todo
    );
    app.shutdown().await;
}

#[tokio::test]
async fn patch_changes_title_completed_and_order_each_alone() {
    let app = spawn_app().await;
    let mut expected = create(&app, "tb", json!({"title": "start", "order": 1})).await;
    let url = expected["url"].as_str().unwrap().to_owned();
    for (patch, field, value) in [
        (json!({"title": "renamed"}), "title", json!("renamed")),
        (json!({"completed": true}), "completed", json!(true)),
        (json!({"order": 10}), "order", json!(10)),
        (json!({"completed": false}), "completed", json!(false)),
        (json!({"date": "2018-12-19"}), "date", json!("2018-12-19")),
    ] {
        expected[field] = value;
        let response = app.client.patch(&url).json(&patch).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "patch {patch}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            expected,
            "patch {patch}"
        );
        assert_eq!(
            app.get_json("/lists/tb/todos/1").await,
            expected,
            "after {patch}"
        );
    }
    for (body, code) in [
        (json!({"done": true}), "invalid_json"),
        (json!({"completed": "yes"}), "invalid_json"),
        (json!({"title": ""}), "invalid_title"),
        (json!({"order": "first"}), "invalid_json"),
    ] {
        println!("case: {body}");
        let response = app.client.patch(&url).json(&body).send().await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let missing = app
        .patch_json("/lists/tb/todos/9", &json!({"completed": true}))
        .await;
    assert_error(missing, StatusCode::NOT_FOUND, "entry_not_found").await;
    assert_eq!(app.get_json("/lists/tb/todos/1").await, expected);
    app.shutdown().await;
}

#[tokio::test]
async fn delete_removes_one_todo_or_the_whole_collection() {
    let app = spawn_app().await;
    for title in ["one", "two", "three"] {
        create(&app, "tb", json!({"title": title})).await;
    }
    create(&app, "other", json!({"title": "untouched"})).await;
    let response = app.delete("/lists/tb/todos/2").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/lists/tb/todos/2").await,
        StatusCode::NOT_FOUND,
        "entry_not_found",
    )
    .await;
    assert_error(
        app.delete("/lists/tb/todos/2").await,
        StatusCode::NOT_FOUND,
        "entry_not_found",
    )
    .await;
    let titles: Vec<Value> = app
        .get_json("/lists/tb/todos")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].clone())
        .collect();
    assert_eq!(titles, [json!("one"), json!("three")]);

    let response = app.delete("/lists/tb/todos").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_json("/lists/tb/todos").await, json!([]));
    assert_eq!(
        app.get_json("/lists/other/todos")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(create(&app, "tb", json!({"title": "again"})).await["id"], 4);
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_todo_is_a_400() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "invalid_json"),
        (json!({"title": 5}), "invalid_json"),
        (json!({"title": "x", "done": true}), "invalid_json"),
        (json!({"title": ""}), "invalid_title"),
        (json!({"title": "a\u{1b}[31m"}), "invalid_title"),
        (json!({"title": "x", "date": "2018-02-30"}), "invalid_date"),
    ];
    for (body, code) in cases {
        println!("case: {body}");
        let response = app.post_json("/lists/tb/todos", &body).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    assert_eq!(app.get_json("/lists/tb/todos").await, json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn a_cors_preflight_allows_any_origin_and_the_api_s_methods_and_headers() {
    let app = spawn_app().await;
    for path in ["/lists/tb/todos", "/lists/tb/todos/1", "/lists/tb/entries"] {
        let response = app
            .request(Method::OPTIONS, path)
            .header("origin", "http://www.todobackend.com")
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        let methods = header(&response, "access-control-allow-methods").to_ascii_uppercase();
        for method in ["GET", "POST", "PATCH", "DELETE", "OPTIONS"] {
            assert!(
                methods.split(',').any(|m| m.trim() == method),
                "{method} in {methods}"
            );
        }
        let headers = header(&response, "access-control-allow-headers").to_ascii_lowercase();
        for name in ["content-type", "authorization", "idempotency-key"] {
            assert!(
                headers.split(',').any(|h| h.trim() == name),
                "{name} in {headers}"
            );
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_with_an_origin_gets_allow_origin_star() {
    let app = spawn_app().await;
    let get = |path: &str| {
        app.request(Method::GET, path)
            .header("origin", "http://example.com")
            .send()
    };
    for (path, status) in [
        ("/lists/tb/todos", StatusCode::OK),
        ("/lists/tb/todos/1", StatusCode::NOT_FOUND),
        ("/nope", StatusCode::NOT_FOUND),
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            "*",
            "{path}"
        );
    }
    app.shutdown().await;
}
