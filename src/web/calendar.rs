//! `GET /lists/{list}/calendar.ics`: a list as an iCalendar feed (RFC 5545), one `VTODO` per
//! entry, for calendar apps to subscribe to (under a share link, since they send no headers).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::database::fixed_hash;
use crate::list::Entry;
use crate::lists::EntriesQuery;

use super::AppState;
use super::auth::ListTarget;
use super::error::{ApiError, ErrorBody};

/// Longest content line in octets, without its CRLF (RFC 5545, 3.1).
const MAX_LINE_OCTETS: usize = 75;

/// The list's entries as `VTODO`s.
#[utoipa::path(get, path = "/lists/{list}/calendar.ics", params(("list" = String, Path)),
    responses((status = 200, content_type = "text/calendar", body = String,
            description = "one VTODO per entry: UID, DUE (the date), STATUS, SUMMARY (the title)"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn calendar(
    State(state): State<AppState>,
    target: ListTarget,
) -> Result<impl IntoResponse, ApiError> {
    let entries = state.cache.entries(&target.key, EntriesQuery::All).await?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let body = ics(target.key.as_str(), &entries, &stamp);
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    ))
}

/// The calendar of the list with storage key `key`; `stamp` is the `DTSTAMP` of every todo.
fn ics(key: &str, entries: &[Entry], stamp: &str) -> String {
    // Stable across requests and restarts, and unique per list without naming its owner.
    let list = format!("{:016x}", fixed_hash(key));
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//todo//todo list server//EN".to_owned(),
    ];
    for entry in entries {
        let status = if entry.done {
            "COMPLETED"
        } else {
            "NEEDS-ACTION"
        };
        lines.extend([
            "BEGIN:VTODO".to_owned(),
            format!("UID:{}-{list}@todo", entry.id),
            format!("DTSTAMP:{stamp}"),
            format!("DUE;VALUE=DATE:{}", entry.date.to_string().replace('-', "")),
            format!("STATUS:{status}"),
            format!("SUMMARY:{}", escape(entry.title.as_str())),
            "END:VTODO".to_owned(),
        ]);
    }
    lines.push("END:VCALENDAR".to_owned());
    lines.iter().map(|line| fold(line)).collect()
}

/// A TEXT value escaped (RFC 5545, 3.3.11): backslash, semicolon, comma and newline.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A content line folded into lines of at most 75 octets, each continuation starting with a
/// space, never splitting a character; every line ends in CRLF.
fn fold(line: &str) -> String {
    let mut folded = String::with_capacity(line.len() + line.len() / MAX_LINE_OCTETS * 3 + 2);
    let mut octets = 0;
    for c in line.chars() {
        if octets + c.len_utf8() > MAX_LINE_OCTETS {
            folded.push_str("\r\n ");
            octets = 1;
        }
        folded.push(c);
        octets += c.len_utf8();
    }
    folded.push_str("\r\n");
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_long_lines_fold_between_characters() {
        assert_eq!(escape(r"a,b;c\d"), r"a\,b\;c\\d");
        let line = format!("SUMMARY:{}", "é".repeat(100));
        let folded = fold(&line);
        for physical in folded.split("\r\n").filter(|line| !line.is_empty()) {
            assert!(
                physical.len() <= MAX_LINE_OCTETS,
                "{} octets",
                physical.len()
            );
        }
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, line);
    }
}
