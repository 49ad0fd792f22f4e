//! The JSON API under `/lists`: every route's success path, and the 4xx answers (always with a
//! JSON error body) for bad ids, names, dates, titles and bodies, wrong methods and unknown paths.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, error_message, header, spawn_app};

const DENTIST: &str = r#"{"date": "2018-12-19", "title": "Dentist"}"#;

#[tokio::test]
async fn lists_are_paged_by_name_with_after_limit_and_next() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/lists").await, json!({"lists": []}));
    for list in ["cherry", "apple", "banana"] {
        app.add(list, "2018-12-19", "x").await;
    }
    let cases = [
        ("/lists", json!({"lists": ["apple", "banana", "cherry"]})),
        (
            "/lists?limit=3",
            json!({"lists": ["apple", "banana", "cherry"]}),
        ),
        (
            "/lists?limit=2",
            json!({"lists": ["apple", "banana"], "next": "banana"}),
        ),
        (
            "/lists?limit=1",
            json!({"lists": ["apple"], "next": "apple"}),
        ),
        ("/lists?after=banana&limit=2", json!({"lists": ["cherry"]})),
        (
            "/lists?after=apple&limit=1",
            json!({"lists": ["banana"], "next": "banana"}),
        ),
        ("/lists?after=b", json!({"lists": ["banana", "cherry"]})),
        ("/lists?after=cherry", json!({"lists": []})),
    ];
    for (path, expected) in cases {
        assert_eq!(app.get_json(path).await, expected, "GET {path}");
    }
    for (path, code) in [
        ("/lists?limit=0", "invalid_limit"),
        ("/lists?limit=1001", "invalid_limit"),
        ("/lists?limit=-1", "invalid_parameter"),
        ("/lists?limit=ten", "invalid_parameter"),
    ] {
        println!("case: {path}");
        assert_error(app.get(path).await, StatusCode::BAD_REQUEST, code).await;
    }
    assert_eq!(
        app.delete("/lists/banana").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get_json("/lists").await,
        json!({"lists": ["apple", "cherry"]}),
        "a list without entries is not listed"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_created_entry_answers_201_with_a_location_that_fetches_it() {
    let app = spawn_app().await;
    let cases = [
        ("work", "/lists/work/entries/1"),
        ("my list@home", "/lists/my%20list%40home/entries/1"),
        ("été", "/lists/%C3%A9t%C3%A9/entries/1"),
    ];
    for (list, location) in cases {
        let url = format!("{}/lists/{list}/entries", app.address);
        let response = app
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(DENTIST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "list {list:?}");
        assert_eq!(header(&response, "location"), location);
        assert_eq!(header(&response, "content-type"), "application/json");
        let created: Value = response.json().await.unwrap();
        let expected = json!({"id": 1, "date": "2018-12-19", "title": "Dentist", "done": false});
        assert_eq!(created, expected);
        assert_eq!(app.get_json(location).await, expected);
    }
    let second = app
        .post_json(
            "/lists/work/entries",
            &json!({"date": "2018-12-20", "title": "Movies", "done": true, "order": -3}),
        )
        .await;
    assert_eq!(header(&second, "location"), "/lists/work/entries/2");
    let expected =
        json!({"id": 2, "date": "2018-12-20", "title": "Movies", "done": true, "order": -3});
    assert_eq!(second.json::<Value>().await.unwrap(), expected);
    assert_eq!(app.get_json("/lists/work/entries/2").await, expected);
    app.shutdown().await;
}

#[tokio::test]
async fn entries_are_read_all_by_date_or_by_range() {
    let app = spawn_app().await;
    for (date, title) in [
        ("2018-12-21", "d"),
        ("2018-12-19", "a"),
        ("2018-12-18", "b"),
        ("2018-12-19", "c"),
    ] {
        app.add("days", date, title).await;
    }
    let cases = [
        ("", vec![(1, "d"), (2, "a"), (3, "b"), (4, "c")]),
        ("?date=2018-12-19", vec![(2, "a"), (4, "c")]),
        ("?date=2018-12-20", vec![]),
        (
            "?from=2018-12-19&to=2018-12-21",
            vec![(2, "a"), (4, "c"), (1, "d")],
        ),
        (
            "?from=2018-12-18&to=2018-12-19",
            vec![(3, "b"), (2, "a"), (4, "c")],
        ),
        ("?from=2018-12-20&to=2018-12-20", vec![]),
    ];
    for (query, expected) in cases {
        let entries = app.get_json(&format!("/lists/days/entries{query}")).await;
        let actual: Vec<(u64, &str)> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["id"].as_u64().unwrap(), e["title"].as_str().unwrap()))
            .collect();
        assert_eq!(actual, expected, "query {query:?}");
    }
    assert_eq!(app.get_json("/lists/never-used/entries").await, json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_entries_query_is_a_400() {
    let app = spawn_app().await;
    let cases = [
        ("?done=maybe", "invalid_parameter"),
        ("?date=2018-13-01", "invalid_date"),
        ("?date=", "invalid_date"),
        ("?from=yesterday&to=2018-12-20", "invalid_date"),
        ("?from=2018-12-19&to=2018-02-30", "invalid_date"),
    ];
    for (query, code) in cases {
        println!("case: {query}");
        let response = app.get(&format!("/lists/q/entries{query}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn entry_filters_combine_and_a_range_may_be_open_at_either_end() {
    let app = spawn_app().await;
    for date in ["2018-12-18", "2018-12-19", "2018-12-20"] {
        app.add("f", date, date).await;
    }
    let patched = app
        .patch_json("/lists/f/entries/2", &json!({"done": true}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    for (query, titles) in [
        ("?from=2018-12-19", vec!["2018-12-19", "2018-12-20"]),
        ("?to=2018-12-19", vec!["2018-12-18", "2018-12-19"]),
        (
            "?date=2018-12-19&from=2018-12-19&to=2018-12-20",
            vec!["2018-12-19"],
        ),
        ("?date=2018-12-18&from=2018-12-19", vec![]),
        ("?from=2018-12-20&to=2018-12-18", vec![]),
        ("?done=true", vec!["2018-12-19"]),
        ("?done=false&from=2018-12-19", vec!["2018-12-20"]),
    ] {
        let entries = app.get_json(&format!("/lists/f/entries{query}")).await;
        let got: Vec<&str> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(got, titles, "{query}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_async_post_answers_202_and_the_entry_is_visible_afterwards() {
    let app = spawn_app().await;
    let response = app
        .send_raw_body(Method::POST, "/lists/casts/entries?async=true", DENTIST)
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&response, "location"), "");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"queued": true})
    );
    let entries = app
        .get_json_once("/lists/casts/entries", |entries| entries != &json!([]))
        .await;
    assert_eq!(
        entries,
        json!([{"id": 1, "date": "2018-12-19", "title": "Dentist", "done": false}])
    );

    let response = app
        .patch_json("/lists/casts/entries/1?async=true", &json!({"done": true}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"queued": true})
    );
    let entry = app
        .get_json_once("/lists/casts/entries/1", |entry| entry["done"] == true)
        .await;
    assert_eq!(entry["done"], true);

    let response = app
        .send_raw_body(Method::POST, "/lists/casts/entries?async=yes", DENTIST)
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_missing_entry_is_a_404_entry_not_found() {
    let app = spawn_app().await;
    app.add("l", "2018-12-19", "Dentist").await;
    for (method, body) in [
        (Method::GET, ""),
        (Method::PATCH, r#"{"done": true}"#),
        (Method::DELETE, ""),
    ] {
        for path in ["/lists/l/entries/2", "/lists/empty/entries/1"] {
            println!("case: {method} {path}");
            let response = app.send_raw_body(method.clone(), path, body).await;
            let message = assert_error(response, StatusCode::NOT_FOUND, "entry_not_found").await;
            assert!(message.contains("not found"), "{message}");
        }
    }
    assert_eq!(app.titles("l").await, ["Dentist"]);
    app.shutdown().await;
}

#[tokio::test]
async fn an_id_that_is_not_a_positive_integer_is_a_400() {
    let app = spawn_app().await;
    app.add("l", "2018-12-19", "Dentist").await;
    let ids = [
        "0",
        "abc",
        "-1",
        "1.5",
        "%201",
        "9223372036854775807",
        "18446744073709551616",
    ];
    for id in ids {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            println!("case: {method} {id}");
            let path = format!("/lists/l/entries/{id}");
            let response = app.send_raw_body(method, &path, r#"{"done": true}"#).await;
            assert_error(response, StatusCode::BAD_REQUEST, "invalid_id").await;
        }
    }
    assert_eq!(app.get_json("/lists/l/entries/1").await["done"], false);
    app.shutdown().await;
}

#[tokio::test]
async fn patch_changes_only_the_fields_it_names() {
    let app = spawn_app().await;
    app.add("p", "2018-12-19", "Dentist").await;
    let steps = [
        (
            json!({}),
            json!({"id": 1, "date": "2018-12-19", "title": "Dentist", "done": false}),
        ),
        (
            json!({"done": true}),
            json!({"id": 1, "date": "2018-12-19", "title": "Dentist", "done": true}),
        ),
        (
            json!({"title": "Doctor"}),
            json!({"id": 1, "date": "2018-12-19", "title": "Doctor", "done": true}),
        ),
        (
            json!({"date": "2019-01-02"}),
            json!({"id": 1, "date": "2019-01-02", "title": "Doctor", "done": true}),
        ),
        (
            json!({"order": 7}),
            json!({"id": 1, "date": "2019-01-02", "title": "Doctor", "done": true, "order": 7}),
        ),
        (
            json!({"done": false, "title": "Both"}),
            json!({"id": 1, "date": "2019-01-02", "title": "Both", "done": false, "order": 7}),
        ),
    ];
    for (patch, expected) in steps {
        let response = app.patch_json("/lists/p/entries/1", &patch).await;
        assert_eq!(response.status(), StatusCode::OK, "patch {patch}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            expected,
            "patch {patch}"
        );
        assert_eq!(
            app.get_json("/lists/p/entries/1").await,
            expected,
            "after {patch}"
        );
    }
    assert_eq!(
        app.get_json("/lists/p/entries?date=2019-01-02")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "a changed date moves the entry to that day"
    );
    assert_eq!(
        app.get_json("/lists/p/entries?date=2018-12-19").await,
        json!([])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_patch_body_is_a_400_and_changes_nothing() {
    let app = spawn_app().await;
    let before = app.add("p", "2018-12-19", "Dentist").await;
    let long_title = json!({"title": "a".repeat(1001)}).to_string();
    let cases = [
        (r#"{"color": "red"}"#, "invalid_json"),
        (r#"{"done": "yes"}"#, "invalid_json"),
        (r#"{"title": 5}"#, "invalid_json"),
        (r#"{"title": "x""#, "invalid_json"),
        ("", "invalid_json"),
        (r#"{"title": ""}"#, "invalid_title"),
        (r#"{"title": "a\u0000b"}"#, "invalid_title"),
        (&long_title, "invalid_title"),
        (r#"{"date": "2018-02-30"}"#, "invalid_date"),
        (r#"{"date": "yesterday", "done": true}"#, "invalid_date"),
    ];
    for (body, code) in cases {
        println!("case: {body}");
        let response = app
            .send_raw_body(Method::PATCH, "/lists/p/entries/1", body)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    assert_eq!(app.get_json("/lists/p/entries/1").await, before);
    app.shutdown().await;
}

#[tokio::test]
async fn a_body_starting_with_a_byte_order_mark_is_read_as_without_it() {
    let app = spawn_app().await;
    app.add("p", "2018-12-19", "Dentist").await;
    let body = "\u{feff}{\"title\": \"Dentist at ten\"}";
    let response = app
        .send_raw_body(Method::PATCH, "/lists/p/entries/1", body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let entry = app.get_json("/lists/p/entries/1").await;
    assert_eq!(entry["title"], "Dentist at ten");
    // Only at the start: a mark inside the text is bad JSON.
    let response = app
        .send_raw_body(Method::PATCH, "/lists/p/entries/1", "{\u{feff}}")
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_deleted_entry_answers_204_and_is_gone() {
    let app = spawn_app().await;
    for title in ["one", "two", "three"] {
        app.add("d", "2018-12-19", title).await;
    }
    let response = app.delete("/lists/d/entries/2").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(app.titles("d").await, ["one", "three"]);
    let again = app.get("/lists/d/entries/2").await;
    assert_error(again, StatusCode::NOT_FOUND, "entry_not_found").await;
    let again = app.delete("/lists/d/entries/2").await;
    assert_error(again, StatusCode::NOT_FOUND, "entry_not_found").await;
    assert_eq!(
        app.add("d", "2018-12-19", "four").await["id"],
        4,
        "ids are not reused"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_deleted_list_is_empty_and_its_ids_continue() {
    let app = spawn_app().await;
    app.add("gone", "2018-12-19", "one").await;
    app.add("gone", "2018-12-20", "two").await;
    app.add("kept", "2018-12-19", "stays").await;
    let response = app.delete("/lists/gone").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(app.get_json("/lists/gone/entries").await, json!([]));
    assert_eq!(app.titles("kept").await, ["stays"]);
    let next = app.add("gone", "2018-12-19", "three").await;
    assert_eq!(
        next["id"], 3,
        "a new entry's id continues after the old ones"
    );
    assert_eq!(
        app.delete("/lists/never-used").await.status(),
        StatusCode::NO_CONTENT
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_entry_body_is_a_400_and_stores_nothing() {
    let app = spawn_app().await;
    let entry = |date: &str, title: &str| json!({"date": date, "title": title}).to_string();
    let long_title = entry("2018-12-19", &"a".repeat(1001));
    let cases = [
        (
            r#"{"date": "2018-12-19", "title": "x", "color": "red"}"#.to_owned(),
            "invalid_json",
        ),
        (
            r#"{"date": "2018-12-19", "title": 5}"#.to_owned(),
            "invalid_json",
        ),
        (
            r#"{"date": "2018-12-19", "title": "x", "done": "no"}"#.to_owned(),
            "invalid_json",
        ),
        (r#"{"date": "2018-12-19"}"#.to_owned(), "invalid_json"),
        (r#"{"title": "x"}"#.to_owned(), "invalid_json"),
        (
            r#"{"date": "2018-12-19", "title": "x""#.to_owned(),
            "invalid_json",
        ),
        (r#"["2018-12-19", "x"]"#.to_owned(), "invalid_json"),
        ("not json".to_owned(), "invalid_json"),
        (String::new(), "invalid_json"),
        (entry("2018-12-19", ""), "invalid_title"),
        (long_title, "invalid_title"),
        (entry("2018-12-19", "tab\there"), "invalid_title"),
        (entry("2018-12-19", "line\nbreak"), "invalid_title"),
        (entry("2018-12-19", "bell\u{7}"), "invalid_title"),
        (entry("2018-12-19", "c1\u{85}"), "invalid_title"),
        (entry("2018-13-01", "x"), "invalid_date"),
        (entry("2018-02-30", "x"), "invalid_date"),
        (entry("", "x"), "invalid_date"),
        (entry("yesterday", "x"), "invalid_date"),
        (entry("2018-1-05", "x"), "invalid_date"),
        (entry("2018-12-19T10:00:00Z", "x"), "invalid_date"),
        (entry("+2018-12-19", "x"), "invalid_date"),
    ];
    for (body, code) in cases {
        println!("case: {body}");
        let response = app
            .send_raw_body(Method::POST, "/lists/bad/entries", body)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    assert_eq!(app.get_json("/lists/bad/entries").await, json!([]));
    assert_eq!(app.get_json("/lists").await, json!({"lists": []}));

    let longest = "é".repeat(1000);
    let created = app.add("bad", "2018-12-19", &longest).await;
    assert_eq!(created["title"], longest, "1,000 characters is allowed");
    app.shutdown().await;
}

/// `GET /lists/{name}/entries` sent on a raw socket, so that `..` is not normalised away.
async fn get_entries_raw(app: &TestApp, name: &str) -> (u16, String) {
    let response = app
        .raw(&format!("GET /lists/{name}/entries HTTP/1.1"), b"")
        .await;
    (response.status, response.body)
}

#[tokio::test]
async fn a_bad_list_name_is_a_400_on_every_route() {
    let app = spawn_app().await;
    let too_long = "a".repeat(129);
    let names = [
        ("..", "invalid_list_name"),
        (".", "invalid_list_name"),
        ("a%2Fb", "invalid_list_name"),
        ("%2e%2e", "invalid_list_name"),
        ("%2E%2E", "invalid_list_name"),
        ("a%5Cb", "invalid_list_name"),
        ("a%00b", "invalid_list_name"),
        ("a%0Ab", "invalid_list_name"),
        ("a%3Fb", "invalid_list_name"),
        ("a%25b", "invalid_list_name"),
        (too_long.as_str(), "invalid_list_name"),
        ("%FF", "invalid_path"),
    ];
    for (name, code) in names {
        println!("case: {name}");
        let (status, body) = get_entries_raw(&app, name).await;
        assert_eq!(status, 400, "GET {name}: {body}");
        error_message(&body, code);
        for (head, body) in [
            (format!("POST /lists/{name}/entries HTTP/1.1"), DENTIST),
            (format!("DELETE /lists/{name} HTTP/1.1"), ""),
            (format!("GET /lists/{name}/entries/1 HTTP/1.1"), ""),
            (
                format!("PATCH /lists/{name}/entries/1 HTTP/1.1"),
                r#"{"done":true}"#,
            ),
            (format!("DELETE /lists/{name}/entries/1 HTTP/1.1"), ""),
            (
                format!("POST /lists/{name}/todos HTTP/1.1"),
                r#"{"title":"x"}"#,
            ),
        ] {
            let response = app.raw(&head, body.as_bytes()).await;
            assert_eq!(response.status, 400, "{head}: {}", response.body);
            error_message(&response.body, code);
        }
    }
    assert_eq!(app.get_json("/lists").await, json!({"lists": []}));
    app.shutdown().await;
}

#[tokio::test]
async fn list_names_of_128_characters_are_accepted() {
    let app = spawn_app().await;
    for name in ["a".repeat(128), "é".repeat(128), "x.y-z_@+ 9".to_owned()] {
        let created = app.add(&name, "2018-12-19", "x").await;
        assert_eq!(created["id"], 1, "list {name:?}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_allow_and_a_json_body() {
    let app = spawn_app().await;
    let cases = [
        (Method::PUT, "/lists/x/entries", "GET,HEAD,POST"),
        (Method::POST, "/lists", "GET,HEAD"),
        (Method::GET, "/lists/x", "DELETE"),
        (Method::POST, "/lists/x/entries/1", "DELETE,GET,HEAD,PATCH"),
        (Method::PUT, "/lists/x/todos", "DELETE,GET,HEAD,POST"),
        (Method::POST, "/lists/x/todos/1", "DELETE,GET,HEAD,PATCH"),
        (Method::GET, "/add_entry", "POST"),
        (Method::POST, "/entries", "GET,HEAD"),
        (Method::DELETE, "/healthz", "GET,HEAD"),
    ];
    for (method, path, allowed) in cases {
        println!("case: {method} {path}");
        let response = app.send(app.request(method, path)).await;
        let mut allow: Vec<String> = header(&response, "allow")
            .split(',')
            .map(|method| method.trim().to_owned())
            .collect();
        allow.sort();
        assert_eq!(allow.join(","), allowed);
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_path_is_a_404_json() {
    let app = spawn_app().await;
    for path in [
        "/index.html",
        "/nope",
        "/lists/x/entries/1/more",
        "/lists/x/entries/",
        "/lists/x/items",
        "/LISTS",
    ] {
        println!("case: {path}");
        let response = app.get(path).await;
        let message = assert_error(response, StatusCode::NOT_FOUND, "no_route").await;
        assert_eq!(message, "no such route");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_return_the_first_entry() {
    let app = spawn_app().await;
    let post = |list: &str, key: &str, title: &str| {
        app.request(Method::POST, &format!("/lists/{list}/entries"))
            .header("idempotency-key", key)
            .json(&json!({"date": "2018-12-19", "title": title}))
            .send()
    };
    let first = post("a", "key-1", "Dentist").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = post("a", "key-1", "Dentist").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(header(&retry, "location"), "/lists/a/entries/1");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    let reused = post("a", "key-1", "Something else").await.unwrap();
    assert_error(
        reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.titles("a").await, ["Dentist"]);

    let other_list = post("b", "key-1", "Elsewhere").await.unwrap();
    assert_eq!(other_list.status(), StatusCode::CREATED);
    assert_eq!(app.titles("b").await, ["Elsewhere"]);
    let other_key = post("a", "key-2", "Dentist").await.unwrap();
    assert_eq!(other_key.json::<Value>().await.unwrap()["id"], 2);
    assert_eq!(app.titles("a").await, ["Dentist", "Dentist"]);

    assert_eq!(
        app.delete("/lists/a/entries/1").await.status(),
        StatusCode::NO_CONTENT
    );
    let after_delete = post("a", "key-1", "Dentist").await.unwrap();
    assert_error(
        after_delete,
        StatusCode::CONFLICT,
        "idempotent_entry_deleted",
    )
    .await;
    assert_eq!(app.titles("a").await, ["Dentist"]);
    app.shutdown().await;
}

#[tokio::test]
async fn the_book_route_honours_idempotency_keys_too() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let response = app
            .request(
                Method::POST,
                "/add_entry?list=bob&date=2018-12-19&title=Dentist",
            )
            .header("idempotency-key", "retry-me")
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "OK");
    }
    assert_eq!(app.titles("bob").await, ["Dentist"]);
    app.shutdown().await;
}
