//! Request and response bodies of the JSON API, owned by `web` so storage and actor types never
//! leak into the wire format.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::{Changes, Date, Entry, EntryId, NewEntry, Title};
use crate::lists::{Dump, Imported};

use super::error::ApiError;

/// An entry as the JSON API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// Assigned by the list; starts at 1, increases, never reused.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "whole::positive")]
    pub id: u64,
    /// The day the entry is for.
    #[schema(format = Date, example = "2018-12-19")]
    pub date: String,
    /// What is to be done.
    #[schema(min_length = 1, max_length = 1000, example = "Dentist")]
    pub title: String,
    /// Whether it has been done.
    pub done: bool,
    /// A client-chosen position, if one was set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole::optional"
    )]
    pub order: Option<i64>,
}

impl From<&Entry> for EntryBody {
    fn from(entry: &Entry) -> EntryBody {
        EntryBody {
            id: entry.id.get(),
            date: entry.date.to_string(),
            title: entry.title.to_string(),
            done: entry.done,
            order: entry.order,
        }
    }
}

/// The body of `POST /lists/{list}/entries`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntryBody {
    /// The day the entry is for, as `YYYY-MM-DD`.
    #[schema(format = Date, example = "2018-12-19")]
    pub date: String,
    /// What is to be done: 1 to 1,000 characters, not all blank, no control characters or line and paragraph separators (U+2028, U+2029).
    #[schema(min_length = 1, max_length = 1000, example = "Dentist")]
    pub title: String,
    /// Whether it is already done; false when absent.
    #[serde(default)]
    pub done: bool,
    /// A client-chosen position.
    #[serde(default, deserialize_with = "whole::optional")]
    pub order: Option<i64>,
}

impl TryFrom<NewEntryBody> for NewEntry {
    type Error = ApiError;
    fn try_from(body: NewEntryBody) -> Result<NewEntry, ApiError> {
        Ok(NewEntry {
            date: Date::parse(&body.date)?,
            title: Title::parse(&body.title)?,
            done: body.done,
            order: body.order,
        })
    }
}

/// The body of `PATCH /lists/{list}/entries/{id}`: absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryPatch {
    /// A new title: 1 to 1,000 characters, not all blank, no control characters or line and paragraph separators (U+2028, U+2029).
    #[schema(min_length = 1, max_length = 1000)]
    pub title: Option<String>,
    /// A new date, as `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub date: Option<String>,
    /// A new done flag.
    pub done: Option<bool>,
    /// A new position.
    #[serde(default, deserialize_with = "whole::optional")]
    pub order: Option<i64>,
}

impl TryFrom<EntryPatch> for Changes {
    type Error = ApiError;
    fn try_from(patch: EntryPatch) -> Result<Changes, ApiError> {
        Ok(Changes {
            title: patch.title.as_deref().map(Title::parse).transpose()?,
            date: patch.date.as_deref().map(Date::parse).transpose()?,
            done: patch.done,
            order: patch.order,
        })
    }
}

/// The answer to `POST ...?async=true`: the write is queued, not yet stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedBody {
    /// Always true.
    pub queued: bool,
}

/// A page of list names.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListsBody {
    /// Names in byte order.
    pub lists: Vec<String>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok` when storage answers.
    pub status: &'static str,
}

/// A todo of the Todo-Backend contract (todobackend.com).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TodoBody {
    /// The entry id.
    pub id: u64,
    /// What is to be done.
    #[schema(min_length = 1, max_length = 1000)]
    pub title: String,
    /// Whether it has been done (the entry's `done`).
    pub completed: bool,
    /// A client-chosen position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// The entry's date.
    #[schema(format = Date)]
    pub date: String,
    /// The absolute URL of this todo.
    pub url: String,
}

/// The body of a Todo-Backend create; the date is today (UTC) when absent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTodoBody {
    /// What is to be done.
    #[schema(min_length = 1, max_length = 1000)]
    pub title: String,
    /// Whether it is already done; false when absent.
    #[serde(default)]
    pub completed: bool,
    /// A client-chosen position.
    #[serde(default, deserialize_with = "whole::optional")]
    pub order: Option<i64>,
    /// The day it is for, as `YYYY-MM-DD`; today (UTC) when absent.
    #[schema(format = Date)]
    pub date: Option<String>,
}

impl TryFrom<NewTodoBody> for NewEntry {
    type Error = ApiError;
    fn try_from(body: NewTodoBody) -> Result<NewEntry, ApiError> {
        let date = match body.date {
            Some(date) => Date::parse(&date)?,
            None => Date::today(),
        };
        Ok(NewEntry {
            date,
            title: Title::parse(&body.title)?,
            done: body.completed,
            order: body.order,
        })
    }
}

/// The body of a Todo-Backend patch: absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TodoPatch {
    /// A new title.
    #[schema(min_length = 1, max_length = 1000)]
    pub title: Option<String>,
    /// A new completed flag.
    pub completed: Option<bool>,
    /// A new position.
    #[serde(default, deserialize_with = "whole::optional")]
    pub order: Option<i64>,
    /// A new date.
    #[schema(format = Date)]
    pub date: Option<String>,
}

impl TryFrom<TodoPatch> for Changes {
    type Error = ApiError;
    fn try_from(patch: TodoPatch) -> Result<Changes, ApiError> {
        Changes::try_from(EntryPatch {
            title: patch.title,
            date: patch.date,
            done: patch.completed,
            order: patch.order,
        })
    }
}

/// A whole list with its id counter: what `GET /lists/{list}/dump` answers (and `todo export`
/// writes), and what `PUT /lists/{list}/dump` takes back.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DumpBody {
    /// The id the list hands out next; no entry's id may be at or above it.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "whole::positive")]
    pub next_id: u64,
    /// The list's version where it was exported; an import ignores it.
    #[serde(default)]
    pub version: u64,
    /// Every entry, with its id.
    pub entries: Vec<EntryBody>,
}

impl From<&Dump> for DumpBody {
    fn from(dump: &Dump) -> DumpBody {
        DumpBody {
            next_id: dump.next_id.get(),
            version: dump.version,
            entries: dump.entries.iter().map(EntryBody::from).collect(),
        }
    }
}

impl DumpBody {
    /// The entries, validated as any other entry is, in id order, with the id counter; ids
    /// must be distinct and below the counter.
    pub fn into_entries(self) -> Result<(Vec<Entry>, EntryId), ApiError> {
        let invalid = |message: String| {
            ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_dump", message)
        };
        // Well-formed, but its parts disagree: a rule the OpenAPI document cannot state.
        let inconsistent = |message: String| {
            let status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            ApiError::new(status, "invalid_dump", message)
        };
        let next_id = EntryId::counter(self.next_id)
            .ok_or_else(|| invalid(format!("next_id {} is out of range", self.next_id)))?;
        let mut entries = Vec::with_capacity(self.entries.len());
        for body in self.entries {
            let id = EntryId::new(body.id)
                .ok_or_else(|| invalid(format!("entry id {} is out of range", body.id)))?;
            if id >= next_id {
                return Err(inconsistent(format!(
                    "entry id {id} is not below next_id {next_id}"
                )));
            }
            entries.push(Entry {
                id,
                date: Date::parse(&body.date)?,
                // The rules of a new title: an import must not be a way around them.
                title: Title::parse(&body.title)?,
                done: body.done,
                order: body.order,
            });
        }
        entries.sort_by_key(|entry| entry.id);
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].id == pair[1].id) {
            return Err(inconsistent(format!(
                "entry id {} appears twice",
                pair[0].id
            )));
        }
        Ok((entries, next_id))
    }
}

/// What `PUT /lists/{list}/dump` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportedBody {
    /// Entries stored; 0 when the list already held exactly these.
    pub imported: usize,
    /// Whether the list already held exactly these entries, so nothing was written.
    pub unchanged: bool,
}

impl From<Imported> for ImportedBody {
    fn from(imported: Imported) -> ImportedBody {
        match imported {
            Imported::Applied(n) => ImportedBody {
                imported: n,
                unchanged: false,
            },
            Imported::Unchanged => ImportedBody {
                imported: 0,
                unchanged: true,
            },
        }
    }
}

/// Integers as JSON Schema counts them: `7.0` is the integer 7, as the OpenAPI document's
/// `integer` fields promise (clients in languages without integers send such numbers).
mod whole {
    use serde::de::{Deserialize, Deserializer, Error};
    use serde_json::Number;

    /// 2^63: whole `f64`s below it in magnitude are exact `i64`s. -2^63 is refused too: it is
    /// also what `-9223372036854775809`, one past the range, reads as.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;

    fn integer<E: Error>(number: &Number) -> Result<i64, E> {
        if let Some(value) = number.as_i64() {
            return Ok(value);
        }
        match number.as_f64() {
            Some(value) if value.fract() == 0.0 && value.abs() < LIMIT => Ok(value as i64),
            _ => Err(E::custom(format!(
                "{number} is not a whole number from -2^63 to 2^63-1"
            ))),
        }
    }

    /// An optional whole number.
    pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        let number = Option::<Number>::deserialize(deserializer)?;
        number.as_ref().map(integer).transpose()
    }

    /// A whole number of at least 1.
    pub fn positive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let number = Number::deserialize(deserializer)?;
        if let Some(value) = number.as_u64() {
            return Ok(value);
        }
        let value = integer(&number)?;
        u64::try_from(value).map_err(|_| D::Error::custom(format!("{number} is below 1")))
    }
}
