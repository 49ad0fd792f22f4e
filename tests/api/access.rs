//! Users and access over real sockets: the access matrix (every list route × every kind of
//! caller), logging in and out, the login limit, tokens and cookies.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, header, spawn_app};

/// The title of the entry the matrix protects; no answer to a caller who may not read the list
/// may contain it.
const SECRET_TITLE: &str = "secret plans";

/// A user's password in these tests.
fn password(user: &str) -> String {
    format!("{user}-password")
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Read,
    Write,
    /// Only the owner: members and links.
    Owner,
}

/// One request of the matrix: `{L}` is the list's address for the caller (`/lists/NAME` or
/// `/s/SECRET`) and `{Q}` its name in `?list=`.
struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    needs: Needs,
}

fn routes() -> Vec<Route> {
    let route = |method: Method, path: &'static str, body: Option<Value>, needs| Route {
        method,
        path,
        body,
        needs,
    };
    let entry = json!({"date": "2026-12-03", "title": "written"});
    vec![
        route(Method::GET, "{L}/entries", None, Needs::Read),
        route(
            Method::GET,
            "{L}/entries?date=2026-12-03",
            None,
            Needs::Read,
        ),
        route(Method::GET, "{L}/entries/1", None, Needs::Read),
        route(Method::GET, "{L}/todos", None, Needs::Read),
        route(Method::GET, "{L}/todos/1", None, Needs::Read),
        route(Method::GET, "{L}/events", None, Needs::Read),
        route(Method::GET, "{L}/calendar.ics", None, Needs::Read),
        route(Method::GET, "{L}/dump", None, Needs::Read),
        route(
            Method::GET,
            "/entries?list={Q}&date=2026-12-03",
            None,
            Needs::Read,
        ),
        route(
            Method::POST,
            "{L}/entries",
            Some(entry.clone()),
            Needs::Write,
        ),
        route(
            Method::POST,
            "{L}/entries?async=true",
            Some(entry),
            Needs::Write,
        ),
        route(
            Method::PATCH,
            "{L}/entries/1",
            Some(json!({"done": true})),
            Needs::Write,
        ),
        route(Method::DELETE, "{L}/entries/999", None, Needs::Write),
        route(
            Method::POST,
            "{L}/todos",
            Some(json!({"title": "t"})),
            Needs::Write,
        ),
        route(
            Method::PATCH,
            "{L}/todos/1",
            Some(json!({"completed": true})),
            Needs::Write,
        ),
        route(Method::DELETE, "{L}/todos/999", None, Needs::Write),
        route(
            Method::PUT,
            "{L}/dump",
            Some(json!({"next_id": 2, "entries": []})),
            Needs::Write,
        ),
        route(
            Method::POST,
            "/add_entry?list={Q}&date=2026-12-03&title=b",
            None,
            Needs::Write,
        ),
        route(Method::GET, "{L}/members", None, Needs::Owner),
        route(
            Method::PUT,
            "{L}/members/carol",
            Some(json!({"role": "write"})),
            Needs::Owner,
        ),
        route(Method::DELETE, "{L}/members/nobody", None, Needs::Owner),
        route(Method::GET, "{L}/links", None, Needs::Owner),
        route(Method::DELETE, "{L}/links/999", None, Needs::Owner),
        // Last: they empty the list, which the routes above do not mind (a missing entry is
        // still the list's own 404, `entry_not_found`).
        route(Method::DELETE, "{L}/todos", None, Needs::Write),
        route(Method::DELETE, "{L}", None, Needs::Write),
    ]
}

/// How a caller presents itself.
#[derive(Clone)]
enum Credential {
    None,
    Bearer(String),
    /// A session cookie on a request from another site.
    CrossSiteCookie(String),
    /// A share link's path, `/s/SECRET`.
    Link(String),
}

/// A kind of caller and what it may do.
struct Caller {
    name: &'static str,
    credential: Credential,
    /// The list's name for this caller (`work` or `alice:work`).
    list: &'static str,
    /// The status class expected for each kind of route: `None` for "it works".
    read: Option<(StatusCode, &'static str)>,
    write: Option<(StatusCode, &'static str)>,
    owner: Option<(StatusCode, &'static str)>,
}

/// Codes that mean the request reached the list and did what it could: the entry or member
/// asked for is simply not there, or an import found the list holding other entries.
const LIST_LEVEL_NOT_FOUND: [&str; 5] = [
    "entry_not_found",
    "member_not_found",
    "link_not_found",
    "user_not_found",
    "import_conflict",
];

/// alice (the first account, an admin) owns `work` with one entry; bob may read it, carol may
/// change it, dave is a stranger. Returns the app and each user's session token.
async fn shared_list() -> (TestApp, Vec<(String, String)>) {
    let app = spawn_app().await;
    // The first account is made while none exists; it protects the server at once, so the
    // others are made by it, as an admin.
    let first = json!({"name": "alice", "password": password("alice")});
    let response = app.post_json("/users", &first).await;
    assert_eq!(response.status(), StatusCode::CREATED, "POST /users alice");
    let unauthenticated = app
        .client
        .get(format!("{}/lists", app.address))
        .send()
        .await;
    assert_eq!(unauthenticated.unwrap().status(), StatusCode::UNAUTHORIZED);
    let alice = login(&app, "alice").await;
    for user in ["bob", "carol", "dave"] {
        let body = json!({"name": user, "password": password(user)});
        post_as(&app, &alice, "/users", body).await;
    }
    let mut tokens = vec![("alice".to_owned(), alice)];
    for user in ["bob", "carol", "dave"] {
        tokens.push((user.to_owned(), login(&app, user).await));
    }
    let alice = &tokens[0].1;
    let entry = json!({"date": "2026-12-03", "title": SECRET_TITLE});
    let response = app
        .request(Method::POST, "/lists/work/entries")
        .bearer_auth(alice)
        .json(&entry);
    assert_eq!(app.send(response).await.status(), StatusCode::CREATED);
    for (user, role) in [("bob", "read"), ("carol", "write")] {
        let request = app
            .request(Method::PUT, &format!("/lists/work/members/{user}"))
            .bearer_auth(alice)
            .json(&json!({"role": role}));
        assert_eq!(app.send(request).await.status(), StatusCode::OK);
    }
    (app, tokens)
}

async fn login(app: &TestApp, user: &str) -> String {
    let body = json!({"user": user, "password": password(user)});
    let response = app
        .client
        .post(format!("{}/auth/login", app.address))
        .json(&body);
    let response = response.send().await.expect("answers");
    assert_eq!(response.status(), StatusCode::OK, "login {user}");
    let body: Value = response.json().await.expect("JSON");
    body["token"].as_str().expect("a token").to_owned()
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let request = app.client.post(format!("{}{path}", app.address));
    let response = request
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

/// `method path` as the holder of `token`, with a JSON body if given.
async fn send_as(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    request = request.bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the server answers")
}

#[tokio::test]
async fn every_list_route_answers_each_kind_of_caller_as_its_rights_say() {
    let (app, tokens) = shared_list().await;
    let token = |user: &str| {
        tokens
            .iter()
            .find(|(name, _)| name == user)
            .unwrap()
            .1
            .clone()
    };
    let alice = token("alice");
    let revoked = post_as(&app, &alice, "/tokens", json!({"name": "old"})).await;
    let request = app
        .client
        .delete(format!("{}/tokens/{}", app.address, revoked["id"]))
        .bearer_auth(&alice);
    assert_eq!(
        request.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let soon = chrono::Utc::now() + chrono::Duration::seconds(1);
    let expiring = json!({"name": "short", "expires_at": soon.to_rfc3339()});
    let expired = post_as(&app, &alice, "/tokens", expiring).await;
    let read_link = post_as(&app, &alice, "/lists/work/links", json!({"role": "read"})).await;
    let write_link = post_as(&app, &alice, "/lists/work/links", json!({"role": "write"})).await;
    let link = |body: &Value| Credential::Link(body["path"].as_str().unwrap().to_owned());
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    let unauthorized = Some((StatusCode::UNAUTHORIZED, "unauthorized"));
    let not_found = Some((StatusCode::NOT_FOUND, "list_not_found"));
    let read_only = Some((StatusCode::FORBIDDEN, "read_only"));
    let owner_only = Some((StatusCode::FORBIDDEN, "owner_required"));
    let callers = vec![
        Caller {
            name: "owner",
            credential: Credential::Bearer(alice.clone()),
            list: "work",
            read: None,
            write: None,
            owner: None,
        },
        Caller {
            name: "member read",
            credential: Credential::Bearer(token("bob")),
            list: "alice:work",
            read: None,
            write: read_only,
            owner: owner_only,
        },
        Caller {
            name: "member write",
            credential: Credential::Bearer(token("carol")),
            list: "alice:work",
            read: None,
            write: None,
            owner: owner_only,
        },
        Caller {
            name: "stranger",
            credential: Credential::Bearer(token("dave")),
            list: "alice:work",
            read: not_found,
            write: not_found,
            owner: not_found,
        },
        Caller {
            name: "stranger guessing",
            credential: Credential::Bearer(token("dave")),
            list: "work",
            read: None,
            write: None,
            owner: None,
        },
        Caller {
            name: "revoked token",
            credential: Credential::Bearer(revoked["token"].as_str().unwrap().to_owned()),
            list: "work",
            read: unauthorized,
            write: unauthorized,
            owner: unauthorized,
        },
        Caller {
            name: "expired token",
            credential: Credential::Bearer(expired["token"].as_str().unwrap().to_owned()),
            list: "work",
            read: unauthorized,
            write: unauthorized,
            owner: unauthorized,
        },
        Caller {
            name: "no credentials",
            credential: Credential::None,
            list: "work",
            read: unauthorized,
            write: unauthorized,
            owner: unauthorized,
        },
        Caller {
            name: "cookie from another site",
            credential: Credential::CrossSiteCookie(alice.clone()),
            list: "work",
            read: None,
            write: None,
            owner: None,
        },
        Caller {
            name: "read link",
            credential: link(&read_link),
            list: "",
            read: None,
            write: read_only,
            owner: None,
        },
        Caller {
            name: "write link",
            credential: link(&write_link),
            list: "",
            read: None,
            write: None,
            owner: None,
        },
    ];
    let mut n_cells = 0;
    for caller in &callers {
        for route in routes() {
            if let Some(outcome) = check(&app, caller, &route).await {
                n_cells += 1;
                outcome.unwrap_or_else(|failure| panic!("{failure}"));
            }
        }
    }
    println!("access matrix: {n_cells} cells, {} callers", callers.len());
    assert!(n_cells >= 259, "only {n_cells} cells ran");

    // "stranger guessing" above reached dave's own (empty) `work`, never alice's.
    let entries = app
        .request(Method::GET, "/lists/work/entries")
        .bearer_auth(token("dave"));
    let body = app.send(entries).await.text().await.unwrap();
    assert!(!body.contains(SECRET_TITLE), "{body}");
}

/// Sends `route` as `caller`; `None` when the route does not apply (a share link has no book
/// routes and manages nothing), else whether the answer was the expected one.
async fn check(app: &TestApp, caller: &Caller, route: &Route) -> Option<Result<(), String>> {
    let is_link = matches!(caller.credential, Credential::Link(_));
    if is_link && (route.path.contains("{Q}") || route.needs == Needs::Owner || route.path == "{L}")
    {
        return None;
    }
    let base = match &caller.credential {
        Credential::Link(path) => path.clone(),
        _ => format!("/lists/{}", caller.list),
    };
    let path = route.path.replace("{L}", &base).replace("{Q}", caller.list);
    let mut request = app
        .client
        .request(route.method.clone(), format!("{}{path}", app.address));
    request = match &caller.credential {
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::CrossSiteCookie(token) => request
            .header("cookie", format!("todo_session={token}"))
            .header("origin", "https://evil.example"),
        Credential::None | Credential::Link(_) => request,
    };
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let location = header(&response, "location");
    // An event stream that opened never ends: its status says enough.
    let stream = status.is_success() && path.ends_with("/events");
    let text = match stream {
        true => String::new(),
        false => response.text().await.expect("a body"),
    };
    let cross_site = matches!(caller.credential, Credential::CrossSiteCookie(_));
    let expected = match route.needs {
        _ if cross_site && route.method != Method::GET => {
            Some((StatusCode::FORBIDDEN, "cross_origin"))
        }
        Needs::Read => caller.read,
        Needs::Write => caller.write,
        // A reader's change is refused as a change before it is refused as management.
        Needs::Owner if route.method != Method::GET && caller.write.is_some() => caller.write,
        Needs::Owner => caller.owner,
    };
    let cell = format!(
        "{} {} {path} as {}: {status} {text}",
        route.method, route.path, caller.name
    );
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| body["error"]["code"].as_str().map(str::to_owned));
    let ok = match expected {
        None => {
            status.is_success()
                || code
                    .as_deref()
                    .is_some_and(|code| LIST_LEVEL_NOT_FOUND.contains(&code))
        }
        Some((expected_status, expected_code)) => {
            status == expected_status && code.as_deref() == Some(expected_code)
        }
    };
    if expected.is_some() && (text.contains(SECRET_TITLE) || location.contains("work")) {
        return Some(Err(format!("{cell}: a refusal leaks the list")));
    }
    Some(if ok {
        Ok(())
    } else {
        Err(format!("{cell}: expected {expected:?}"))
    })
}

#[tokio::test]
async fn get_lists_shows_own_and_shared_lists_and_nothing_of_strangers() {
    let (app, tokens) = shared_list().await;
    for (user, expected) in [
        ("alice", vec!["work"]),
        ("bob", vec!["alice:work"]),
        ("dave", vec![]),
    ] {
        let token = &tokens.iter().find(|(name, _)| name == user).unwrap().1;
        let request = app.request(Method::GET, "/lists").bearer_auth(token);
        let body: Value = app.send(request).await.json().await.unwrap();
        assert_eq!(body["lists"], json!(expected), "{user}");
    }
    let alice = &tokens[0].1;
    let metrics = app.request(Method::GET, "/metrics").bearer_auth(alice);
    assert_eq!(app.send(metrics).await.status(), StatusCode::OK);
    let metrics = app
        .request(Method::GET, "/metrics")
        .bearer_auth(&tokens[1].1);
    assert_error(
        app.send(metrics).await,
        StatusCode::FORBIDDEN,
        "admin_required",
    )
    .await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn failed_logins_are_limited_and_do_not_say_whether_the_user_exists() {
    let (app, _) = shared_list().await;
    let attempt = |user: &'static str| {
        let body = json!({"user": user, "password": "wrong password"});
        app.client
            .post(format!("{}/auth/login", app.address))
            .json(&body)
            .send()
    };
    let unknown = attempt("nobody").await.unwrap();
    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = assert_error(
        attempt("bob").await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(unknown, wrong);
    for _ in 0..4 {
        assert_eq!(
            attempt("bob").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = attempt("bob").await.unwrap();
    let retry_after: u64 = header(&limited, "retry-after")
        .parse()
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after));
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // The right password is refused too while the limit holds: guessing cannot go on.
    let body = json!({"user": "bob", "password": password("bob")});
    let right = app
        .client
        .post(format!("{}/auth/login", app.address))
        .json(&body)
        .send();
    assert_eq!(right.await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_revoked_token_and_a_logged_out_session_fail_on_their_next_request() {
    let (app, tokens) = shared_list().await;
    let alice = &tokens[0].1;
    let token = post_as(&app, alice, "/tokens", json!({"name": "ci"})).await;
    let secret = token["token"].as_str().unwrap();
    assert!(secret.starts_with("todo_"));
    let lists = || app.client.get(format!("{}/lists", app.address));
    assert_eq!(
        lists().bearer_auth(secret).send().await.unwrap().status(),
        StatusCode::OK
    );
    let list = app
        .client
        .get(format!("{}/tokens", app.address))
        .bearer_auth(alice);
    let list: Value = list.send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["name"], "ci");
    assert!(
        !list.to_string().contains(secret),
        "a listed token shows its secret"
    );
    let revoke = app
        .client
        .delete(format!("{}/tokens/{}", app.address, token["id"]));
    assert_eq!(
        revoke.bearer_auth(alice).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let after = lists().bearer_auth(secret).send().await.unwrap();
    assert_error(after, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let bob = &tokens[1].1;
    let logout = app
        .client
        .post(format!("{}/auth/logout", app.address))
        .bearer_auth(bob);
    let logout = logout.send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(header(&logout, "set-cookie").contains("Max-Age=0"));
    let after = lists().bearer_auth(bob).send().await.unwrap();
    assert_error(after, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn an_open_event_stream_ends_when_the_access_that_opened_it_is_revoked() {
    let (app, tokens) = shared_list().await;
    let (alice, bob) = (&tokens[0].1, &tokens[1].1);
    let token = post_as(&app, alice, "/tokens", json!({"name": "watcher"})).await;
    let link = post_as(&app, alice, "/lists/work/links", json!({"role": "read"})).await;
    let link_path = link["path"].as_str().expect("a link's path").to_owned();
    let mut streams = vec![
        (
            "a member",
            open_stream(&app, Some(bob), "/lists/alice:work/events").await,
        ),
        (
            "a token",
            open_stream(&app, token["token"].as_str(), "/lists/work/events").await,
        ),
        (
            "a link",
            open_stream(&app, None, &format!("{link_path}/events")).await,
        ),
    ];
    let mut owner = open_stream(&app, Some(alice), "/lists/work/events").await;
    for (who, stream) in &mut streams {
        assert!(
            !ends_within(stream, Duration::from_secs(2)).await,
            "{who}: ended early"
        );
    }
    let revocations = [
        "/lists/work/members/bob".to_owned(),
        format!("/tokens/{}", token["id"]),
        format!("/lists/work/links/{}", link["id"]),
    ];
    for path in revocations {
        let revoked = send_as(&app, alice, Method::DELETE, &path, None).await;
        assert_eq!(revoked.status(), StatusCode::NO_CONTENT, "DELETE {path}");
    }
    for (who, stream) in &mut streams {
        let ended = ends_within(stream, Duration::from_secs(12)).await;
        assert!(ended, "the stream opened by {who} outlived its revocation");
    }
    assert!(
        !ends_within(&mut owner, Duration::from_secs(2)).await,
        "the owner's own stream goes on"
    );
}

#[tokio::test]
async fn a_stream_opened_without_accounts_ends_when_the_first_account_is_made() {
    let app = spawn_app().await;
    let mut open = open_stream(&app, None, "/lists/work/events").await;
    assert!(
        !ends_within(&mut open, Duration::from_secs(2)).await,
        "ended early"
    );
    let first = json!({"name": "alice", "password": password("alice")});
    let made = app.post_json("/users", &first).await;
    assert_eq!(made.status(), StatusCode::CREATED);
    assert!(
        ends_within(&mut open, Duration::from_secs(12)).await,
        "an open-mode stream outlived open mode"
    );
}

/// `path`'s event stream, opened with `token` (if any); it must open.
async fn open_stream(app: &TestApp, token: Option<&str>, path: &str) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response
}

/// Whether `stream` ends within `within`; what it sends meanwhile is read and dropped.
async fn ends_within(stream: &mut reqwest::Response, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return true,
        }
    }
}

#[tokio::test]
async fn the_session_cookie_is_strict_and_works_only_from_the_same_origin() {
    let (app, _) = shared_list().await;
    let body = json!({"user": "alice", "password": password("alice")});
    let response = app
        .client
        .post(format!("{}/auth/login", app.address))
        .json(&body);
    let response = response.send().await.unwrap();
    let cookie = header(&response, "set-cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure without TLS: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |method: Method| {
        app.client
            .request(method, format!("{}/lists/work/entries", app.address))
            .header("cookie", &pair)
    };
    assert_eq!(
        with_cookie(Method::GET).send().await.unwrap().status(),
        StatusCode::OK
    );
    let entry = json!({"date": "2026-12-04", "title": "from the page"});
    let same_site = with_cookie(Method::POST)
        .header("sec-fetch-site", "same-origin")
        .json(&entry);
    assert_eq!(
        same_site.send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let same_origin = with_cookie(Method::POST)
        .header("origin", app.address.clone())
        .json(&entry);
    assert_eq!(
        same_origin.send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let no_origin = with_cookie(Method::POST).json(&entry).send().await.unwrap();
    assert_error(no_origin, StatusCode::FORBIDDEN, "cross_origin").await;
    let other_site = with_cookie(Method::POST)
        .header("sec-fetch-site", "cross-site")
        .json(&entry);
    assert_error(
        other_site.send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "cross_origin",
    )
    .await;
}

#[tokio::test]
async fn accounts_are_managed_by_admins_and_the_last_admin_stays() {
    let (app, tokens) = shared_list().await;
    let (alice, bob) = (tokens[0].1.as_str(), tokens[1].1.as_str());
    let users = send_as(&app, alice, Method::GET, "/users", None).await;
    let users: Value = users.json().await.unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);
    assert!(!users.to_string().contains("password"), "{users}");
    let refusals = [
        (
            bob,
            Method::GET,
            "/users",
            None,
            StatusCode::FORBIDDEN,
            "admin_required",
        ),
        (
            alice,
            Method::POST,
            "/users",
            Some(json!({"name": "erin", "password": "short"})),
            StatusCode::BAD_REQUEST,
            "invalid_password",
        ),
        (
            alice,
            Method::POST,
            "/users",
            Some(json!({"name": "bob", "password": "long enough"})),
            StatusCode::CONFLICT,
            "user_exists",
        ),
        (
            alice,
            Method::DELETE,
            "/users/alice",
            None,
            StatusCode::CONFLICT,
            "last_admin",
        ),
    ];
    for (token, method, path, body, status, code) in refusals {
        assert_error(send_as(&app, token, method, path, body).await, status, code).await;
    }
    let removed = send_as(&app, alice, Method::DELETE, "/users/bob", None).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let gone = send_as(&app, bob, Method::GET, "/lists", None).await;
    assert_error(gone, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn without_accounts_only_loopback_hosts_and_no_foreign_page_may_make_the_first_account() {
    let app = spawn_app().await;
    let lists = |host: &str| {
        app.client
            .get(format!("{}/lists", app.address))
            .header("host", host)
            .send()
    };
    for host in ["localhost:5454", "127.0.0.1", "[::1]:80"] {
        assert_eq!(
            lists(host).await.unwrap().status(),
            StatusCode::OK,
            "{host}"
        );
    }
    // A page whose name was pointed at 127.0.0.1 (DNS rebinding) gets nothing.
    let rebound = lists("evil.example:5454").await.unwrap();
    assert_error(rebound, StatusCode::FORBIDDEN, "host_not_allowed").await;

    let first = json!({"name": "mallory", "password": "long enough"});
    let foreign = app
        .client
        .post(format!("{}/users", app.address))
        .header("origin", "https://evil.example")
        .json(&first);
    assert_error(
        foreign.send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "cross_origin",
    )
    .await;
    let users = app.get("/users").await.json::<Value>().await.unwrap();
    assert_eq!(users, json!([]), "no account was made");
}

#[tokio::test]
async fn concurrent_guesses_count_against_the_limit_too() {
    let (app, _) = shared_list().await;
    let guesses = (0..20).map(|n| {
        let body = json!({"user": "carol", "password": format!("guess {n}")});
        app.client
            .post(format!("{}/auth/login", app.address))
            .json(&body)
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|response| response.unwrap().status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        checked <= 5,
        "{checked} of 20 concurrent guesses were checked: {statuses:?}"
    );
}

#[tokio::test]
async fn a_removed_user_s_lists_and_share_links_go_with_them() {
    let (app, tokens) = shared_list().await;
    let (alice, bob) = (&tokens[0].1, &tokens[1].1);
    let entry = json!({"date": "2026-12-03", "title": "bob's"});
    post_as(&app, bob, "/lists/home/entries", entry).await;
    let link = post_as(&app, bob, "/lists/home/links", json!({"role": "read"})).await;
    let todos = format!("{}{}/todos", app.address, link["path"].as_str().unwrap());
    assert_eq!(
        app.client.get(&todos).send().await.unwrap().status(),
        StatusCode::OK
    );
    let remove = app
        .client
        .delete(format!("{}/users/bob", app.address))
        .bearer_auth(alice);
    assert_eq!(
        remove.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let gone = app.client.get(&todos).send().await.unwrap();
    assert_error(gone, StatusCode::NOT_FOUND, "list_not_found").await;
}

#[tokio::test]
async fn an_admin_exports_and_imports_every_list_with_its_owner_and_nobody_else_may() {
    let (app, tokens) = shared_list().await;
    let (alice, bob) = (&tokens[0].1, &tokens[1].1);
    post_as(
        &app,
        bob,
        "/lists/home/entries",
        json!({"date": "2026-12-03", "title": "bob's"}),
    )
    .await;
    post_as(
        &app,
        bob,
        "/lists/emptied/entries",
        json!({"date": "2026-12-03", "title": "x"}),
    )
    .await;
    let emptied = send_as(&app, bob, Method::DELETE, "/lists/emptied", None).await;
    assert_eq!(emptied.status(), StatusCode::NO_CONTENT);

    let refused = send_as(&app, bob, Method::GET, "/lists?all=true", None).await;
    assert_error(refused, StatusCode::FORBIDDEN, "admin_required").await;
    let all = send_as(&app, alice, Method::GET, "/lists?all=true", None).await;
    let all: Value = all.json().await.unwrap();
    assert_eq!(
        all["lists"],
        json!(["alice:work", "bob:emptied", "bob:home"]),
        "every list with its owner, also an emptied one whose counter moved: {all}"
    );
    let page = send_as(&app, alice, Method::GET, "/lists?all=true&limit=2", None).await;
    let page: Value = page.json().await.unwrap();
    let rest = format!("/lists?all=true&after={}", page["next"].as_str().unwrap());
    let rest: Value = send_as(&app, alice, Method::GET, &rest, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["lists"], json!(["bob:home"]), "{page} then {rest}");

    let dump = send_as(&app, alice, Method::GET, "/lists/bob:home/dump", None).await;
    let dump: Value = dump.json().await.unwrap();
    assert_eq!(dump["entries"][0]["title"], "bob's");
    let counter = send_as(&app, alice, Method::GET, "/lists/bob:emptied/dump", None).await;
    assert_eq!(counter.json::<Value>().await.unwrap()["next_id"], 2);
    // The admin's reach is the dump route alone.
    let entries = send_as(&app, alice, Method::GET, "/lists/bob:home/entries", None).await;
    assert_error(entries, StatusCode::NOT_FOUND, "list_not_found").await;
    let by_bob = send_as(&app, bob, Method::GET, "/lists/carol:home/dump", None).await;
    assert_error(by_bob, StatusCode::NOT_FOUND, "list_not_found").await;

    let put = |path: &'static str| send_as(&app, alice, Method::PUT, path, Some(dump.clone()));
    let moved = put("/lists/bob:copy/dump").await;
    assert_eq!(moved.status(), StatusCode::OK);
    let seen = send_as(&app, bob, Method::GET, "/lists/copy/entries", None).await;
    assert_eq!(
        seen.json::<Value>().await.unwrap(),
        dump["entries"],
        "bob owns the import"
    );
    let nobody = put("/lists/erin:copy/dump").await;
    assert_error(nobody, StatusCode::NOT_FOUND, "user_not_found").await;
    let by_member = send_as(
        &app,
        token_of(&tokens, "carol"),
        Method::PUT,
        "/lists/bob:new/dump",
        Some(dump.clone()),
    )
    .await;
    assert_error(by_member, StatusCode::NOT_FOUND, "list_not_found").await;
}

fn token_of<'a>(tokens: &'a [(String, String)], user: &str) -> &'a str {
    let (_, token) = tokens
        .iter()
        .find(|(name, _)| name == user)
        .expect("a user of shared_list");
    token
}
