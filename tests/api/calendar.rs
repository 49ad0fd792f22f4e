//! `GET /lists/{list}/calendar.ics` read back by a real iCalendar parser (the `ical` crate):
//! one VTODO per entry with its date, status and title, whatever the title holds.

use ical::parser::ical::component::IcalTodo;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

fn property<'a>(todo: &'a IcalTodo, name: &str) -> &'a str {
    todo.properties
        .iter()
        .find(|property| property.name == name)
        .and_then(|property| property.value.as_deref())
        .unwrap_or_else(|| panic!("no {name} in {todo:?}"))
}

/// A TEXT value with RFC 5545's escapes undone (the parser leaves them).
fn unescape(text: &str) -> String {
    text.replace("\\n", "\n")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
}

#[tokio::test]
async fn a_list_is_a_calendar_of_todos_that_a_parser_reads_back() {
    let app = spawn_app().await;
    let titles = [
        "Dentist, then groceries; bring list".to_owned(),
        r"C:\path\to\thing".to_owned(),
        "🦀 Rust meetup 🎉".to_owned(),
        "x".repeat(700) + &"é".repeat(300),
    ];
    for (n, title) in titles.iter().enumerate() {
        let body = json!({"date": format!("2026-12-0{}", n + 1), "title": title});
        let response = app.post_json("/lists/cal/entries", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let done = app
        .patch_json("/lists/cal/entries/2", &json!({"done": true}))
        .await;
    assert_eq!(done.status(), StatusCode::OK);

    let response = app.get("/lists/cal/calendar.ics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "a line of {} octets", line.len());
    }
    let first = app
        .get("/lists/cal/calendar.ics")
        .await
        .text()
        .await
        .unwrap();
    let uids = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with("UID:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(uids(&text), uids(&first), "UIDs are stable");

    let mut parser = ical::IcalParser::new(text.as_bytes());
    let calendar = parser.next().expect("one calendar").expect("it parses");
    assert!(parser.next().is_none());
    assert_eq!(calendar.todos.len(), titles.len());
    for (n, (todo, title)) in calendar.todos.iter().zip(&titles).enumerate() {
        assert_eq!(unescape(property(todo, "SUMMARY")), *title);
        assert_eq!(property(todo, "DUE"), format!("2026120{}", n + 1));
        let status = if n == 1 { "COMPLETED" } else { "NEEDS-ACTION" };
        assert_eq!(property(todo, "STATUS"), status);
        assert!(property(todo, "UID").ends_with("@todo"));
        assert!(!property(todo, "DTSTAMP").is_empty());
    }
}
