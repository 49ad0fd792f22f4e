//! The book's own text interface, byte-compatible, so its examples and load script run unchanged.
//!
//! `POST /add_entry?list=L&date=D&title=T` answers `OK`; `GET /entries?list=L&date=D` answers one
//! `DATE TITLE` line per entry, joined by `\n`. Unlike the book, a missing or bad parameter gets
//! 400, and an acknowledged `add_entry` is durable.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;

use crate::list::{Date, Entry, NewEntry, Title};
use crate::lists::{Command, EntriesQuery};

use super::auth::{ListParam, ListTarget};
use super::error::{ApiError, ErrorBody};
use super::extract::Params;
use super::{AppState, idempotency_key};

/// Query of the book's `add_entry`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddParams {
    /// The date, as `YYYY-MM-DD`.
    #[param(format = Date, required = true)]
    date: Option<String>,
    /// The title: 1 to 1,000 characters, not all blank, no control characters or line and paragraph separators (U+2028, U+2029).
    #[param(required = true)]
    title: Option<String>,
    /// `true` makes `add_entry` a cast: 202 once queued, not yet stored.
    #[serde(rename = "async")]
    is_async: Option<bool>,
}

/// Query of the book's `entries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayParams {
    /// The date, as `YYYY-MM-DD`.
    #[param(format = Date, required = true)]
    date: Option<String>,
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| {
        ApiError::bad_parameter(
            "missing_parameter",
            format!("missing query parameter {name:?}"),
        )
    })
}

/// The book's `add_entry`: adds an entry and answers `OK`.
#[utoipa::path(post, path = "/add_entry", operation_id = "book_add_entry", params(ListParam, AddParams),
    responses((status = 200, content_type = "text/plain", body = String, example = "OK"), (status = 202, content_type = "text/plain", body = String),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn add_entry(
    State(state): State<AppState>,
    target: ListTarget,
    Params(params): Params<AddParams>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let list = &target.key;
    let date = Date::parse(required(&params.date, "date")?)?;
    let title = Title::parse(required(&params.title, "title")?)?;
    let entry = NewEntry::new(date, title);
    let idempotency_key = idempotency_key(&headers)?;
    if params.is_async == Some(true) {
        let command = Command::AddEntry {
            entry,
            idempotency_key,
        };
        state.cache.cast(list, command)?;
        return Ok((StatusCode::ACCEPTED, "OK"));
    }
    state.cache.add_entry(list, entry, idempotency_key).await?;
    Ok((StatusCode::OK, "OK"))
}

/// The book's `entries`: one `DATE TITLE` line per entry on that date.
#[utoipa::path(get, path = "/entries", operation_id = "book_entries", params(ListParam, DayParams),
    responses((status = 200, content_type = "text/plain", body = String, example = "2018-12-19 Dentist"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn entries(
    State(state): State<AppState>,
    target: ListTarget,
    Params(params): Params<DayParams>,
) -> Result<String, ApiError> {
    let date = Date::parse(required(&params.date, "date")?)?;
    let lines = state
        .cache
        .with_entries(&target.key, EntriesQuery::On(date), lines)
        .await?;
    Ok(lines)
}

/// One `DATE TITLE` line per entry, joined by `\n`, in one allocation.
fn lines(entries: &[&Entry]) -> String {
    // A line is the date (10), a space, the title and a newline.
    let length = entries.iter().map(|e| e.title.as_str().len() + 12).sum();
    let mut lines = String::with_capacity(length);
    for entry in entries {
        if !lines.is_empty() {
            lines.push('\n');
        }
        let _ = write!(lines, "{} {}", entry.date, entry.title);
    }
    lines
}
