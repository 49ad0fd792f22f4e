//! The web app's files at `/`: served to anyone (the page shows the login form), with a tag a
//! browser revalidates, a policy that runs only this server's own script, and small; and
//! `/auth/me`, which the page asks first.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_error, header, spawn_app};

/// The web app's files and the type each is served as.
const FILES: [(&str, &str); 4] = [
    ("/", "text/html; charset=utf-8"),
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/icon.svg", "image/svg+xml"),
];

#[tokio::test]
async fn the_page_and_its_files_are_served_small_with_tags_and_a_strict_policy() {
    let app = spawn_app().await;
    let stranger = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut total = 0;
    for (path, content_type) in FILES {
        let url = format!("{}{path}", app.address);
        let response = stranger.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        let etag = header(&response, "etag");
        assert!(etag.starts_with('"') && etag.len() > 2, "{path}: {etag}");
        total += response.bytes().await.unwrap().len();

        let again = stranger.get(&url).header("if-none-match", &etag);
        let again = again.send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.bytes().await.unwrap().is_empty(), "{path}");
        let stale = stranger.get(&url).header("if-none-match", "\"old\"");
        assert_eq!(stale.send().await.unwrap().status(), StatusCode::OK);
    }
    assert!(
        total < 100 * 1024,
        "the page and its files weigh {total} bytes"
    );

    let page = stranger.get(&app.address).send().await.unwrap();
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.unwrap();
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        assert!(tag.contains("src="), "an inline script: <script{tag}>");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_file_that_is_not_part_of_the_page_is_not_found() {
    let app = spawn_app().await;
    for path in [
        "/index.html",
        "/app.js/",
        "/../Cargo.toml",
        "/src/web/app/app.js",
    ] {
        let response = app.get(path).await;
        assert_error(response, StatusCode::NOT_FOUND, "no_route").await;
    }
    let post = app.send(app.request(Method::POST, "/")).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.shutdown().await;
}

#[tokio::test]
async fn auth_me_says_how_the_server_runs_and_who_asks() {
    let app = spawn_app().await;
    let me: Value = app.get_json("/auth/me").await;
    match &app.token {
        None => assert_eq!(me, json!({"mode": "open"})),
        Some(_) => assert_eq!(
            me,
            json!({"mode": "accounts", "user": "tester", "admin": true})
        ),
    }
    let body = json!({"name": "alice", "password": "correct horse"});
    let made = app.post_json("/users", &body).await;
    assert_eq!(made.status(), StatusCode::CREATED);

    let stranger = reqwest::Client::builder().no_proxy().build().unwrap();
    for cookie in ["", "todo_session=expired-or-made-up"] {
        let me = stranger
            .get(format!("{}/auth/me", app.address))
            .header("cookie", cookie);
        let me: Value = me.send().await.unwrap().json().await.unwrap();
        assert_eq!(me, json!({"mode": "accounts"}), "cookie {cookie:?}");
    }
    let login = stranger.post(format!("{}/auth/login", app.address));
    let login = login.json(&json!({"user": "alice", "password": "correct horse"}));
    let token: Value = login.send().await.unwrap().json().await.unwrap();
    let me = stranger.get(format!("{}/auth/me", app.address));
    let me = me.bearer_auth(token["token"].as_str().unwrap());
    let me: Value = me.send().await.unwrap().json().await.unwrap();
    // The first account is an admin; with the harness's account, alice is the second.
    let admin = app.token.is_none();
    assert_eq!(
        me,
        json!({"mode": "accounts", "user": "alice", "admin": admin})
    );
    app.shutdown().await;
}
