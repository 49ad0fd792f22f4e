//! The web app in a real browser: headless Chromium, driven over WebDriver, on the real `todo`
//! binary. Each test checks what the page shows against what the server stored, through the
//! API, so a page that only looks right fails.

mod driver;
mod screenshots;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{Server, client};
use driver::Browser;

/// Everyone's password in these tests.
const PASSWORD: &str = "correct horse battery";
/// WebDriver's codes for keys.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const SPACE: &str = "\u{E00D}";
const ALT: &str = "\u{E00A}";
const ARROW_DOWN: &str = "\u{E015}";
/// Everything under `main`'s selectors for one entry.
const ENTRY: &str = "li.entry";

/// A server and the accounts made on it.
pub struct Site {
    pub server: Server,
    _dir: TempDir,
}

impl Site {
    /// A server whose first user (an admin) and the others are `users`, all with `PASSWORD`.
    pub async fn with_users(users: &[&str]) -> Site {
        let dir = tempfile::tempdir().expect("a data directory");
        let server = Server::start(dir.path(), &[]);
        let site = Site { server, _dir: dir };
        let mut admin = None;
        for user in users {
            let body = json!({"name": user, "password": PASSWORD});
            let request = client().post(format!("{}/users", site.server.url));
            let request = match &admin {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let made = request
                .json(&body)
                .send()
                .await
                .expect("the server answers");
            assert_eq!(made.status(), 201, "user {user}");
            if admin.is_none() {
                admin = Some(site.token(user).await);
            }
        }
        site
    }

    /// A fresh API token of `user`.
    pub async fn token(&self, user: &str) -> String {
        let body = json!({"user": user, "password": PASSWORD});
        let answer = client()
            .post(format!("{}/auth/login", self.server.url))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let body: Value = answer.json().await.expect("a JSON body");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// `method path` with `token` (if any) and a JSON body (if any); the answer's JSON body.
    pub async fn api(&self, token: Option<&str>, method: &str, path: &str, body: Value) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = client().request(method, format!("{}{path}", self.server.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the server answers");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap_or(Value::Null)
    }

    /// Waits until the entries of `list` (as `token`'s holder reads them) satisfy `check`, and
    /// returns them.
    pub async fn entries_until(
        &self,
        token: Option<&str>,
        list: &str,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let path = format!("/lists/{list}/entries");
            let entries = self.api(token, "GET", &path, Value::Null).await;
            let entries = entries.as_array().cloned().unwrap_or_default();
            if check(&entries) {
                return entries;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server never stored {what}: {entries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Today in the machine's time zone, which the browser shares: the page's "today".
fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

/// The entry titled `title` in `entries`.
fn titled<'a>(entries: &'a [Value], title: &str) -> Option<&'a Value> {
    entries.iter().find(|entry| entry["title"] == title)
}

/// The selector of the entry with this id.
fn entry(id: &Value) -> String {
    format!("{ENTRY}[data-id=\"{id}\"]")
}

/// A predicate: some entry in the group `group` shows `title`.
const IN_GROUP: &str = "return [...document.querySelectorAll(`section.group[data-group=\"${arguments[0]}\"] li.entry .title`)].some(t => t.textContent === arguments[1])";
/// A predicate: no entry shows `title`.
const ABSENT: &str = "return ![...document.querySelectorAll('li.entry .title')].some(t => t.textContent === arguments[0])";

/// Adds `title` through the page's form, with the date the form offers.
async fn add_in_page(browser: &Browser, title: &str) {
    browser.type_into("#add-title", title).await;
    browser.press(ENTER).await;
}

#[tokio::test]
async fn a_user_logs_in_and_adds_edits_completes_reorders_deletes_and_undoes() {
    let site = Site::with_users(&["alice"]).await;
    let token = site.token("alice").await;
    let token = Some(token.as_str());
    let browser = Browser::start(&site.server.url, 1280, "light").await;
    browser.log_in("alice", PASSWORD).await;

    browser.type_into("#new-list-name", "week").await;
    browser.press(ENTER).await;
    browser
        .wait_until(
            "the new list's view",
            "return document.querySelector('#list-name')?.textContent === 'week'",
            vec![],
        )
        .await;
    let offered = browser.find("#add-date").await.prop("value").await.unwrap();
    assert_eq!(offered.as_deref(), Some(today().to_string().as_str()));
    add_in_page(&browser, "Dentist").await;
    browser
        .wait_until(
            "Dentist under today",
            IN_GROUP,
            vec![json!("today"), json!("Dentist")],
        )
        .await;
    let tomorrow = today().succ_opt().unwrap().to_string();
    browser
        .js(
            "const d = document.querySelector('#add-date'); d.value = arguments[0]; d.dispatchEvent(new Event('input', {bubbles: true})); d.dispatchEvent(new Event('change', {bubbles: true}))",
            vec![json!(tomorrow)],
        )
        .await;
    add_in_page(&browser, "Groceries").await;
    browser
        .wait_until(
            "Groceries under tomorrow",
            IN_GROUP,
            vec![json!("tomorrow"), json!("Groceries")],
        )
        .await;
    let stored = site
        .entries_until(token, "week", "both entries", |entries| entries.len() == 2)
        .await;
    let dentist = titled(&stored, "Dentist")
        .expect("Dentist is stored")
        .clone();
    assert_eq!(dentist["date"], today().to_string());
    assert_eq!(titled(&stored, "Groceries").unwrap()["date"], tomorrow);

    // Edit in place.
    let dentist_row = entry(&dentist["id"]);
    browser.click(&format!("{dentist_row} button.edit")).await;
    browser
        .type_into(&format!("{dentist_row} input.edit-title"), "Dentist at 9")
        .await;
    browser.press(ENTER).await;
    site.entries_until(token, "week", "the new title", |entries| {
        titled(entries, "Dentist at 9").is_some()
    })
    .await;
    browser
        .wait_until(
            "the new title",
            IN_GROUP,
            vec![json!("today"), json!("Dentist at 9")],
        )
        .await;

    // Done.
    browser.click(&format!("{dentist_row} input.done")).await;
    site.entries_until(token, "week", "done", |entries| {
        titled(entries, "Dentist at 9").is_some_and(|entry| entry["done"] == true)
    })
    .await;

    // Reorder today's entries: by button, then by keyboard.
    add_in_page(&browser, "Call mum").await;
    let stored = site
        .entries_until(token, "week", "Call mum", |entries| {
            titled(entries, "Call mum").is_some()
        })
        .await;
    let call = titled(&stored, "Call mum").unwrap().clone();
    let call_row = entry(&call["id"]);
    browser.click(&format!("{call_row} button.move-up")).await;
    let order = |entries: &[Value], title: &str| titled(entries, title).unwrap()["order"].as_i64();
    site.entries_until(token, "week", "Call mum before Dentist", |entries| {
        matches!((order(entries, "Call mum"), order(entries, "Dentist at 9")), (Some(a), Some(b)) if a < b)
    })
    .await;
    browser
        .js(
            "document.querySelector(arguments[0]).focus()",
            vec![json!(call_row)],
        )
        .await;
    browser.press(&format!("{ALT}{ARROW_DOWN}")).await;
    site.entries_until(token, "week", "Call mum after Dentist again", |entries| {
        matches!((order(entries, "Call mum"), order(entries, "Dentist at 9")), (Some(a), Some(b)) if a > b)
    })
    .await;
    let focused = browser
        .js(
            "return document.activeElement.closest('li.entry')?.dataset.id",
            vec![],
        )
        .await;
    assert_eq!(
        focused,
        json!(call["id"].to_string()),
        "focus stays on the moved entry"
    );

    // Delete, then undo.
    let groceries = titled(&stored, "Groceries").unwrap().clone();
    browser
        .click(&format!("{} button.delete", entry(&groceries["id"])))
        .await;
    site.entries_until(token, "week", "Groceries deleted", |entries| {
        titled(entries, "Groceries").is_none()
    })
    .await;
    browser
        .wait_until("Groceries gone", ABSENT, vec![json!("Groceries")])
        .await;
    browser.click("#undo").await;
    let stored = site
        .entries_until(token, "week", "Groceries back", |entries| {
            titled(entries, "Groceries").is_some()
        })
        .await;
    let back = titled(&stored, "Groceries").unwrap();
    assert_eq!(back["date"], tomorrow);
    assert_ne!(back["id"], groceries["id"], "ids are never reused");
    browser
        .wait_until(
            "Groceries shown again",
            IN_GROUP,
            vec![json!("tomorrow"), json!("Groceries")],
        )
        .await;

    // Log out: the login form again, and a reload stays logged out.
    browser.click("#logout").await;
    browser.find("#login-form").await;
    browser.open("/").await;
    browser.find("#login-form").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn a_second_window_and_another_user_see_each_change_live() {
    let site = Site::with_users(&["alice", "bob"]).await;
    let alice = site.token("alice").await;
    let alice = Some(alice.as_str());
    let first = json!({"date": today().to_string(), "title": "Plan the week"});
    site.api(alice, "POST", "/lists/week/entries", first).await;
    site.api(
        alice,
        "PUT",
        "/lists/week/members/bob",
        json!({"role": "write"}),
    )
    .await;

    let mine = Browser::start(&site.server.url, 1280, "light").await;
    mine.log_in("alice", PASSWORD).await;
    mine.open("/#/list/week").await;
    let theirs = Browser::start(&site.server.url, 375, "dark").await;
    theirs.log_in("bob", PASSWORD).await;
    theirs.open("/#/list/alice%3Aweek").await;
    for browser in [&mine, &theirs] {
        browser
            .wait_until(
                "the first entry",
                IN_GROUP,
                vec![json!("today"), json!("Plan the week")],
            )
            .await;
    }

    add_in_page(&mine, "Added by alice").await;
    theirs
        .wait_until(
            "alice's entry, live",
            IN_GROUP,
            vec![json!("today"), json!("Added by alice")],
        )
        .await;
    add_in_page(&theirs, "Added by bob").await;
    mine.wait_until(
        "bob's entry, live",
        IN_GROUP,
        vec![json!("today"), json!("Added by bob")],
    )
    .await;

    let stored = site
        .entries_until(alice, "week", "three entries", |entries| entries.len() == 3)
        .await;
    let plan = titled(&stored, "Plan the week").unwrap().clone();
    theirs
        .click(&format!("{} input.done", entry(&plan["id"])))
        .await;
    mine.wait_until(
        "the done box ticked, live",
        "return document.querySelector(arguments[0])?.checked === true",
        vec![json!(format!("{} input.done", entry(&plan["id"])))],
    )
    .await;

    // A change through the API, from neither page, reaches both.
    let path = format!("/lists/week/entries/{}", plan["id"]);
    site.api(alice, "PATCH", &path, json!({"title": "Plan the month"}))
        .await;
    let by_bob = titled(&stored, "Added by bob").unwrap()["id"].clone();
    site.api(
        alice,
        "DELETE",
        &format!("/lists/week/entries/{by_bob}"),
        Value::Null,
    )
    .await;
    for browser in [&mine, &theirs] {
        browser
            .wait_until(
                "the new title, live",
                IN_GROUP,
                vec![json!("today"), json!("Plan the month")],
            )
            .await;
        browser
            .wait_until(
                "bob's entry gone, live",
                ABSENT,
                vec![json!("Added by bob")],
            )
            .await;
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
    }
    mine.close().await;
    theirs.close().await;
}

/// Makes the page's `fetch` hold back the answers to its PATCH requests (the write itself is
/// sent and stored) until `window.releaseAnswers()`, which also sets `window.answersReleased`
/// once the page has had a turn to use them.
const HOLD_PATCH_ANSWERS: &str = r#"
const realFetch = window.fetch;
const held = [];
window.fetch = async (path, init) => {
  const response = await realFetch(path, init);
  if (!init || init.method !== 'PATCH') return response;
  const text = await response.text();
  await new Promise((resolve) => held.push(resolve));
  return new Response(text, { status: response.status, headers: response.headers });
};
window.heldAnswers = () => held.length;
window.releaseAnswers = () => {
  held.splice(0).forEach((release) => release());
  setTimeout(() => { window.answersReleased = true; }, 0);
};
"#;

#[tokio::test]
async fn a_late_answer_to_the_pages_own_write_does_not_undo_a_newer_change() {
    let site = Site::with_users(&["alice"]).await;
    let token = site.token("alice").await;
    let alice = Some(token.as_str());
    let first = json!({"date": today().to_string(), "title": "Plan the week"});
    let created = site.api(alice, "POST", "/lists/week/entries", first).await;
    let page = Browser::start(&site.server.url, 1280, "light").await;
    page.log_in("alice", PASSWORD).await;
    page.open("/#/list/week").await;
    page.wait_until(
        "the entry",
        IN_GROUP,
        vec![json!("today"), json!("Plan the week")],
    )
    .await;

    // The page ticks the entry done; its answer is held back, though the write is stored and
    // its event sent.
    page.js(HOLD_PATCH_ANSWERS, vec![]).await;
    page.click(&format!("{} input.done", entry(&created["id"])))
        .await;
    site.entries_until(alice, "week", "the entry done", |entries| {
        entries.len() == 1 && entries[0]["done"] == true
    })
    .await;
    page.wait_until(
        "the answer held",
        "return window.heldAnswers() === 1",
        vec![],
    )
    .await;
    // Meanwhile another client renames it, and the page shows that live.
    let path = format!("/lists/week/entries/{}", created["id"]);
    site.api(alice, "PATCH", &path, json!({"title": "Plan the month"}))
        .await;
    page.wait_until(
        "the new title, live",
        IN_GROUP,
        vec![json!("today"), json!("Plan the month")],
    )
    .await;

    // The late answer (done, with the old title) must not put the old title back.
    page.js("window.releaseAnswers()", vec![]).await;
    page.wait_until(
        "the answer used",
        "return window.answersReleased === true",
        vec![],
    )
    .await;
    let add = json!({"date": today().to_string(), "title": "After the answer"});
    site.api(alice, "POST", "/lists/week/entries", add).await;
    page.wait_until(
        "a later entry, live",
        IN_GROUP,
        vec![json!("today"), json!("After the answer")],
    )
    .await;
    let titles = page
        .js(
            "return [...document.querySelectorAll('li.entry .title')].map(t => t.textContent)",
            vec![],
        )
        .await;
    assert!(
        titles
            .as_array()
            .is_some_and(|titles| titles.contains(&json!("Plan the month"))
                && !titles.contains(&json!("Plan the week"))),
        "{titles}"
    );
    let done = page
        .js(
            "return document.querySelector(arguments[0])?.checked",
            vec![json!(format!("{} input.done", entry(&created["id"])))],
        )
        .await;
    assert_eq!(done, json!(true));
    assert_eq!(page.console_errors().await, Vec::<String>::new());
    page.close().await;
}

#[tokio::test]
async fn a_share_link_opens_its_list_in_the_page_without_logging_in() {
    let site = Site::with_users(&["alice"]).await;
    let token = site.token("alice").await;
    let body = json!({"date": today().to_string(), "title": "Buy bread"});
    site.api(Some(&token), "POST", "/lists/trip/entries", body)
        .await;
    let mut links = Vec::new();
    for role in ["write", "read"] {
        let link = site
            .api(
                Some(&token),
                "POST",
                "/lists/trip/links",
                json!({"role": role}),
            )
            .await;
        links.push(link["path"].as_str().expect("a link's path").to_owned());
    }
    let today_has = |title: &str| vec![json!("today"), json!(title)];

    // Through the write link: the list, and a change the owner sees stored.
    let browser = Browser::start(&site.server.url, 1280, "light").await;
    browser.open(&links[0]).await;
    browser
        .wait_until("the link's list", IN_GROUP, today_has("Buy bread"))
        .await;
    let shown = browser
        .js(
            "return [document.querySelector('h1').textContent, !!document.querySelector('nav.back'), !!document.querySelector('#login-form')]",
            vec![],
        )
        .await;
    assert_eq!(shown, json!(["Shared list", false, false]));
    add_in_page(&browser, "Pack bags").await;
    site.entries_until(Some(&token), "trip", "the link's addition", |entries| {
        titled(entries, "Pack bags").is_some()
    })
    .await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;

    // Through the read link: the same list, and no form to change it.
    let browser = Browser::start(&site.server.url, 1280, "light").await;
    browser.open(&links[1]).await;
    browser
        .wait_until("the link's list", IN_GROUP, today_has("Pack bags"))
        .await;
    let reading = browser
        .js(
            "return [document.querySelector('#add-title').disabled, document.querySelector('p.note').hidden, [...document.querySelectorAll('li.entry input.done, li.entry button.edit, li.entry button.delete')].every(control => control.disabled)]",
            vec![],
        )
        .await;
    assert_eq!(
        reading,
        json!([true, false, true]),
        "the form and each entry's controls are off, the note shown"
    );
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;

    // Each link's page is tagged by its role, and a browser's current copy is a 304.
    let mut tags = Vec::new();
    for link in &links {
        let url = format!("{}{link}", site.server.url);
        let page = client().get(&url).send().await.expect("the server answers");
        let tag = page.headers()["etag"].clone();
        let again = client().get(&url).header("if-none-match", tag.clone());
        let again = again.send().await.expect("the server answers");
        assert_eq!(again.status(), 304, "{link}");
        tags.push(tag);
    }
    assert_ne!(tags[0], tags[1], "a read link's page is not a write link's");

    // A link that opens nothing is the API's 404, not a page.
    let answer = client()
        .get(format!("{}/s/no-such-link", site.server.url))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(answer.status(), 404);
    let error: Value = answer.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "list_not_found");
}

#[tokio::test]
async fn a_hostile_title_is_shown_as_text_and_runs_nothing() {
    let site = Site::with_users(&["alice"]).await;
    let token = site.token("alice").await;
    let titles = [
        "<img src=x onerror=alert(1)>",
        "<script>window.pwned = true</script>",
        "\"><b onmouseover=alert(2)>bold</b>",
        "javascript:alert(3)",
    ];
    for title in titles {
        let body = json!({"date": today().to_string(), "title": title});
        site.api(Some(&token), "POST", "/lists/week/entries", body)
            .await;
    }
    let browser = Browser::start(&site.server.url, 1280, "light").await;
    browser.log_in("alice", PASSWORD).await;
    browser.open("/#/list/week").await;
    for title in titles {
        browser
            .wait_until(
                "the title as text",
                IN_GROUP,
                vec![json!("today"), json!(title)],
            )
            .await;
    }
    let injected = browser
        .js(
            "return document.querySelectorAll('main img, main script, main b').length + (window.pwned ? 100 : 0)",
            vec![],
        )
        .await;
    assert_eq!(injected, json!(0), "no markup of a title became an element");
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert opened"
    );
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_keyboard_alone_logs_in_adds_and_completes() {
    let site = Site::with_users(&["alice"]).await;
    let token = site.token("alice").await;
    let browser = Browser::start(&site.server.url, 1280, "light").await;
    browser.open("/").await;
    browser.find("#login-form").await;
    tab_to(&browser, "#login-user").await;
    browser.press("alice").await;
    browser.press(TAB).await;
    browser.press(PASSWORD).await;
    browser.press(ENTER).await;
    browser.find("#new-list-name").await;
    tab_to(&browser, "#new-list-name").await;
    browser.press("chores").await;
    browser.press(ENTER).await;
    browser.find("#add-title").await;
    tab_to(&browser, "#add-title").await;
    browser.press("Water the plants").await;
    browser.press(ENTER).await;
    let stored = site
        .entries_until(Some(&token), "chores", "the entry", |entries| {
            entries.len() == 1
        })
        .await;
    let done_box = format!("{} input.done", entry(&stored[0]["id"]));
    browser.find(&done_box).await;
    tab_to(&browser, &done_box).await;
    browser.press(SPACE).await;
    site.entries_until(Some(&token), "chores", "done", |entries| {
        entries[0]["done"] == true
    })
    .await;
    let outline = browser
        .js(
            "return getComputedStyle(document.activeElement).outlineStyle",
            vec![],
        )
        .await;
    assert_ne!(outline, json!("none"), "the focused box shows its focus");
    browser.close().await;
}

#[tokio::test]
async fn the_views_have_no_console_errors_and_no_serious_accessibility_violations() {
    let site = Site::with_users(&["alice", "bob"]).await;
    let token = site.token("alice").await;
    for (title, date) in [("Dentist", today()), ("Taxes", today().pred_opt().unwrap())] {
        let body = json!({"date": date.to_string(), "title": title});
        site.api(Some(&token), "POST", "/lists/week/entries", body)
            .await;
    }
    site.api(
        Some(&token),
        "PUT",
        "/lists/week/members/bob",
        json!({"role": "read"}),
    )
    .await;
    for (width, scheme) in [(1280, "light"), (375, "dark")] {
        let browser = Browser::start(&site.server.url, width, scheme).await;
        browser.open("/").await;
        browser.find("#login-form").await;
        let mut problems = accessibility_problems(&browser).await;
        browser.log_in("alice", PASSWORD).await;
        problems.extend(accessibility_problems(&browser).await);
        browser.open("/#/list/week").await;
        browser
            .wait_until("the list", IN_GROUP, vec![json!("today"), json!("Dentist")])
            .await;
        problems.extend(accessibility_problems(&browser).await);
        let dark = browser
            .js(
                "return matchMedia('(prefers-color-scheme: dark)').matches",
                vec![],
            )
            .await;
        assert_eq!(dark, json!(scheme == "dark"), "the browser's colour scheme");
        let overflow = browser
            .js(
                "return document.documentElement.scrollWidth > innerWidth",
                vec![],
            )
            .await;
        assert_eq!(
            overflow,
            json!(false),
            "no sideways scrolling at {width} px"
        );
        assert_eq!(problems, Vec::<String>::new(), "{width} px, {scheme}");
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
        browser.close().await;
    }
}

#[tokio::test]
async fn the_page_shows_when_it_is_offline_and_catches_up_when_back() {
    let dir = tempfile::tempdir().expect("a data directory");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let server = Server::start_at(dir.path(), &addr, &[]);
    let url = server.url.clone();
    let body = json!({"date": today().to_string(), "title": "Before"});
    let made = client()
        .post(format!("{url}/lists/week/entries"))
        .json(&body);
    assert_eq!(made.send().await.unwrap().status(), 201);

    let browser = Browser::start(&url, 1280, "light").await;
    browser.open("/#/list/week").await;
    browser
        .wait_until("the entry", IN_GROUP, vec![json!("today"), json!("Before")])
        .await;
    const OFFLINE: &str = "return document.querySelector('#status')?.textContent.toLowerCase().includes('offline') === true";
    server.kill();
    browser
        .wait_until("the offline notice", OFFLINE, vec![])
        .await;

    let server = Server::start_at(dir.path(), &addr, &[]);
    let body = json!({"date": today().to_string(), "title": "After"});
    let made = client()
        .post(format!("{url}/lists/week/entries"))
        .json(&body);
    assert_eq!(made.send().await.unwrap().status(), 201);
    browser
        .wait_until(
            "the entry made while away",
            IN_GROUP,
            vec![json!("today"), json!("After")],
        )
        .await;
    browser
        .wait_until(
            "the offline notice gone",
            &OFFLINE.replace("return ", "return !"),
            vec![],
        )
        .await;
    drop(server);
    browser.close().await;
}

/// Presses Tab until the element `selector` matches has focus (at most 40 times).
async fn tab_to(browser: &Browser, selector: &str) {
    for _ in 0..40 {
        let there = browser
            .js(
                "return document.activeElement?.matches(arguments[0]) === true",
                vec![json!(selector)],
            )
            .await;
        if there == json!(true) {
            return;
        }
        browser.press(TAB).await;
    }
    panic!("Tab never reached {selector}");
}

/// The serious and critical violations axe-core finds in the page as it is now.
async fn accessibility_problems(browser: &Browser) -> Vec<String> {
    let axe = include_str!("../../fixtures/axe.min.js");
    browser
        .js(&format!("{axe}\nwindow.axe = axe;"), vec![])
        .await;
    let found = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(result => done(result.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)));",
            vec![],
        )
        .await
        .expect("axe runs");
    let url = browser.client.current_url().await.expect("a URL");
    found
        .as_array()
        .expect("a list of violations")
        .iter()
        .map(|problem| format!("{url}: {}", problem.as_str().unwrap_or_default()))
        .collect()
}
