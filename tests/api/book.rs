//! The book's own text interface: `POST /add_entry` and `GET /entries`, byte-compatible, with
//! 400 (not the book's 500) for a missing or bad parameter.

use reqwest::{Method, StatusCode};

use crate::helpers::{assert_error, header, spawn_app};

#[tokio::test]
async fn entries_of_an_unknown_list_are_an_empty_body() {
    let app = spawn_app().await;
    let response = app.get("/entries?list=test_1&date=2018-12-19").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "");
    app.shutdown().await;
}

#[tokio::test]
async fn add_entry_answers_ok_and_entries_lists_it() {
    let app = spawn_app().await;
    let add = |query: &str| {
        app.request(Method::POST, &format!("/add_entry?{query}"))
            .send()
    };

    let response = add("list=test_2&date=2018-12-19&title=Dentist")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "OK");
    let body = app.get("/entries?list=test_2&date=2018-12-19").await;
    assert_eq!(body.text().await.unwrap(), "2018-12-19 Dentist");

    for query in [
        "list=test_2&date=2018-12-19&title=Movies%20tonight",
        "list=test_2&date=2018-12-20&title=Shopping",
        "list=other&date=2018-12-19&title=Elsewhere",
    ] {
        assert_eq!(add(query).await.unwrap().status(), StatusCode::OK);
    }
    let body = app.get("/entries?list=test_2&date=2018-12-19").await;
    assert_eq!(
        body.text().await.unwrap(),
        "2018-12-19 Dentist\n2018-12-19 Movies tonight",
        "one line per entry of that list and date, no trailing newline"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_async_add_entry_answers_202_and_is_seen_once_committed() {
    let app = spawn_app().await;
    let response = app
        .request(
            Method::POST,
            "/add_entry?list=l&date=2018-12-19&title=Cast&async=true",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.text().await.unwrap(), "OK");
    // Reads show committed state only, and never wait for a commit: the cast shows up once
    // its group commits.
    let mut body = String::new();
    for _ in 0..1_000 {
        body = app
            .get("/entries?list=l&date=2018-12-19")
            .await
            .text()
            .await
            .unwrap();
        if !body.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(body, "2018-12-19 Cast");
    app.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_bad_parameter_is_a_400_and_stores_nothing() {
    let app = spawn_app().await;
    // (method, path, code, a fragment of the message)
    let cases = [
        (
            Method::POST,
            "/add_entry?date=2018-12-19&title=Dentist",
            "missing_parameter",
            "\"list\"",
        ),
        (
            Method::POST,
            "/add_entry?list=bob&title=Dentist",
            "missing_parameter",
            "\"date\"",
        ),
        (
            Method::POST,
            "/add_entry?list=bob&date=2018-12-19",
            "missing_parameter",
            "\"title\"",
        ),
        (Method::POST, "/add_entry", "missing_parameter", "\"list\""),
        (
            Method::POST,
            "/add_entry?list=bob&date=2018-13-01&title=x",
            "invalid_date",
            "invalid date",
        ),
        (
            Method::POST,
            "/add_entry?list=bob&date=19.12.2018&title=x",
            "invalid_date",
            "invalid date",
        ),
        (
            Method::POST,
            "/add_entry?list=..&date=2018-12-19&title=x",
            "invalid_list_name",
            "invalid list name",
        ),
        (
            Method::POST,
            "/add_entry?list=a%2Fb&date=2018-12-19&title=x",
            "invalid_list_name",
            "invalid list name",
        ),
        (
            Method::POST,
            "/add_entry?list=bob&date=2018-12-19&title=",
            "invalid_title",
            "invalid title",
        ),
        (
            Method::POST,
            "/add_entry?list=bob&date=2018-12-19&title=a%07b",
            "invalid_title",
            "control",
        ),
        (
            Method::POST,
            "/add_entry?list=bob&date=2018-12-19&title=x&async=maybe",
            "invalid_parameter",
            "async",
        ),
        (
            Method::GET,
            "/entries?date=2018-12-19",
            "missing_parameter",
            "\"list\"",
        ),
        (
            Method::GET,
            "/entries?list=bob",
            "missing_parameter",
            "\"date\"",
        ),
        (
            Method::GET,
            "/entries?list=bob&date=2018-02-30",
            "invalid_date",
            "invalid date",
        ),
        (
            Method::GET,
            "/entries?list=a%2Fb&date=2018-12-19",
            "invalid_list_name",
            "invalid list name",
        ),
    ];
    for (method, path, code, fragment) in cases {
        println!("case: {method} {path}");
        let response = app.send(app.request(method.clone(), path)).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert!(message.contains(fragment), "{method} {path}: {message}");
    }
    assert_eq!(
        app.get_json("/lists").await,
        serde_json::json!({"lists": []})
    );
    app.shutdown().await;
}
