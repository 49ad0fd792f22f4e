//! The README's screenshots, taken from a real run: a server with a week's entries, the page
//! in Chromium at desktop width and at 375 px, light and dark. Not part of the suite (the
//! pictures change with every style change); run it to refresh `docs/screenshots/`:
//!
//! ```text
//! cargo test --release --test process browser::screenshots -- --ignored
//! ```

use chrono::Days;
use serde_json::json;

use super::driver::Browser;
use super::{IN_GROUP, PASSWORD, Site, today};

#[tokio::test]
#[ignore = "writes docs/screenshots/; run by hand after a change to the page"]
async fn screenshots() {
    let site = Site::with_users(&["alice", "bob"]).await;
    let token = site.token("alice").await;
    let token = Some(token.as_str());
    for (title, days_ahead, done) in [
        ("Renew the passport", -2_i64, false),
        ("Dentist at 9:30", 0, false),
        ("Buy milk and bread", 0, true),
        ("Call the plumber about the kitchen tap", 1, false),
        ("Book train tickets for the holidays", 3, false),
        ("Quarterly taxes", 12, false),
    ] {
        let date = match days_ahead {
            ahead if ahead < 0 => today().checked_sub_days(Days::new(ahead.unsigned_abs())),
            ahead => today().checked_add_days(Days::new(ahead as u64)),
        };
        let body = json!({"date": date.expect("a date").to_string(), "title": title, "done": done});
        site.api(token, "POST", "/lists/week/entries", body).await;
    }
    let groceries = json!({"date": today().to_string(), "title": "Apples"});
    site.api(token, "POST", "/lists/groceries/entries", groceries)
        .await;
    site.api(
        token,
        "PUT",
        "/lists/week/members/bob",
        json!({"role": "write"}),
    )
    .await;

    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots");
    std::fs::create_dir_all(folder).expect("the folder is made");
    for (width, scheme) in [(1280, "light"), (375, "dark")] {
        let browser = Browser::start(&site.server.url, width, scheme).await;
        browser.open("/").await;
        browser.find("#login-form").await;
        save(&browser, &format!("{folder}/login-{width}-{scheme}.png")).await;
        browser.log_in("alice", PASSWORD).await;
        save(&browser, &format!("{folder}/lists-{width}-{scheme}.png")).await;
        browser.open("/#/list/week").await;
        browser
            .wait_until(
                "the list",
                IN_GROUP,
                vec![json!("today"), json!("Dentist at 9:30")],
            )
            .await;
        save(&browser, &format!("{folder}/list-{width}-{scheme}.png")).await;
        browser.close().await;
    }
}

async fn save(browser: &Browser, path: &str) {
    let png = browser.client.screenshot().await.expect("a screenshot");
    std::fs::write(path, png).expect("the screenshot is written");
}
