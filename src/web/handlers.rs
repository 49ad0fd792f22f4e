//! The JSON API: one async fn per route.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::database::ListScope;
use crate::list::{Changes, Date, Entry, NewEntry};
use crate::lists::{Command, Created, EntriesQuery};

use super::auth::{Caller, EntryIdParam, ListTarget};
use super::body::{
    DumpBody, EntryBody, EntryPatch, HealthBody, ImportedBody, ListsBody, NewEntryBody, QueuedBody,
};
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonObject, Params};
use super::{AppState, WriteParams, idempotency_key};

/// Largest page of `GET /lists`.
const MAX_LISTS_PAGE: usize = 1_000;
/// Page size of `GET /lists` when `limit` is absent.
const DEFAULT_LISTS_PAGE: usize = 100;

/// Query of `GET /lists`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListsParams {
    /// Return names after this one.
    after: Option<String>,
    /// Most names to return, 1 to 1,000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Admins only: every list on the server as `OWNER:LIST`, in storage order, also those
    /// holding no entries whose id counter has moved (what `todo export --all` moves); `next`
    /// is then a position in storage, to pass back as `after`.
    all: Option<bool>,
}

/// Query of `GET /lists/{list}/entries`: every filter given applies.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntriesParams {
    /// Only entries on this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    date: Option<String>,
    /// Only entries on this date or later.
    #[param(format = Date)]
    from: Option<String>,
    /// Only entries on this date or earlier (a `to` before `from` matches nothing).
    #[param(format = Date)]
    to: Option<String>,
    /// Only done entries (`true`) or open ones (`false`).
    done: Option<bool>,
}

/// Lists names of lists that hold entries, a page at a time.
#[utoipa::path(get, path = "/lists", params(ListsParams),
    responses((status = 200, body = ListsBody), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_lists(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListsParams>,
) -> Result<Json<ListsBody>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LISTS_PAGE);
    if !(1..=MAX_LISTS_PAGE).contains(&limit) {
        return Err(ApiError::bad_parameter(
            "invalid_limit",
            format!("limit must be 1 to {MAX_LISTS_PAGE}"),
        ));
    }
    let after = params.after.unwrap_or_default();
    if params.all == Some(true) {
        caller.require_admin()?;
        return every_list(&state, &after, limit).await.map(Json);
    }
    let scope = match caller.user() {
        Ok(principal) => ListScope::Owner(principal.id),
        Err(_) => ListScope::Ownerless,
    };
    let names = state
        .cache
        .database()
        .list_names(scope, &after, limit + 1)
        .await?;
    let mut lists: Vec<String> = names.into_iter().map(|name| name.to_string()).collect();
    if let Ok(principal) = caller.user() {
        // Shared lists are `OWNER:LIST`; own names hold no `:`, so one sort merges both.
        let shared = state.accounts.shared_with(principal).await?;
        lists.extend(shared.into_iter().filter(|name| *name > after));
        lists.sort();
        lists.truncate(limit + 1);
    }
    let next = (lists.len() > limit).then(|| {
        lists.truncate(limit);
        lists[limit - 1].clone()
    });
    Ok(Json(ListsBody { lists, next }))
}

/// A page of every list in storage, named `OWNER:LIST` (or `LIST` for one without an owner).
async fn every_list(state: &AppState, after: &str, limit: usize) -> Result<ListsBody, ApiError> {
    let mut keys = state
        .cache
        .database()
        .list_names(ListScope::Everything, after, limit + 1)
        .await?;
    let next = (keys.len() > limit).then(|| {
        keys.truncate(limit);
        keys[limit - 1].to_string()
    });
    let users: HashMap<String, String> = match keys.iter().any(|key| key.as_str().contains(':')) {
        true => state.accounts.users().await?,
        false => Vec::new(),
    }
    .into_iter()
    .map(|user| (user.id.to_string(), user.name.to_string()))
    .collect();
    let mut lists = Vec::with_capacity(keys.len());
    for key in keys {
        let Some((owner_id, list)) = key.as_str().split_once(':') else {
            lists.push(key.to_string());
            continue;
        };
        match users.get(owner_id) {
            Some(owner) => lists.push(format!("{owner}:{list}")),
            // A user removed between the two reads takes their lists with them.
            None => tracing::warn!(list = key.as_str(), "a list whose owner is gone"),
        }
    }
    Ok(ListsBody { lists, next })
}

/// Reads a list's entries: all of them, one day's, or a range of days.
#[utoipa::path(get, path = "/lists/{list}/entries", params(("list" = String, Path), EntriesParams),
    responses((status = 200, body = [EntryBody]), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_entries(
    State(state): State<AppState>,
    target: ListTarget,
    Params(params): Params<EntriesParams>,
) -> Result<Json<Vec<EntryBody>>, ApiError> {
    let query = entries_query(&params)?;
    let entries = state.cache.entries(&target.key, query).await?;
    let wanted = |entry: &&Entry| params.done.is_none_or(|done| entry.done == done);
    Ok(Json(
        entries.iter().filter(wanted).map(EntryBody::from).collect(),
    ))
}

/// The dates `params` ask for: all, one, or a range (open at either end), their intersection
/// when several are given.
fn entries_query(params: &EntriesParams) -> Result<EntriesQuery, ApiError> {
    let date = |text: &Option<String>| text.as_deref().map(Date::parse).transpose();
    let (on, from, to) = (date(&params.date)?, date(&params.from)?, date(&params.to)?);
    Ok(match (on, from, to) {
        (None, None, None) => EntriesQuery::All,
        (Some(on), None, None) => EntriesQuery::On(on),
        (on, from, to) => {
            let first = on.into_iter().chain(from).max().unwrap_or(Date::EARLIEST);
            let last = on.into_iter().chain(to).min().unwrap_or(Date::LATEST);
            EntriesQuery::Between(first, last)
        }
    })
}

/// Adds an entry. With `?async=true` it is a cast: 202 once queued, not yet stored.
#[utoipa::path(post, path = "/lists/{list}/entries", request_body = NewEntryBody,
    params(("list" = String, Path), WriteParams,
        ("Idempotency-Key" = Option<String>, Header, max_length = 255, description = "a retry with the same key returns the first result")),
    responses((status = 201, body = EntryBody, headers(("Location" = String))), (status = 202, body = QueuedBody),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the Idempotency-Key was used for a different entry"), (status = 503, body = ErrorBody)))]
pub async fn add_entry(
    State(state): State<AppState>,
    target: ListTarget,
    Params(params): Params<WriteParams>,
    headers: HeaderMap,
    JsonObject(body): JsonObject<NewEntryBody>,
) -> Result<Response, ApiError> {
    let list = &target.key;
    let entry = NewEntry::try_from(body)?;
    let idempotency_key = idempotency_key(&headers)?;
    if params.is_async() {
        let command = Command::AddEntry {
            entry,
            idempotency_key,
        };
        state.cache.cast(list, command)?;
        return Ok((StatusCode::ACCEPTED, Json(QueuedBody { queued: true })).into_response());
    }
    let Created { entry, .. } = state.cache.add_entry(list, entry, idempotency_key).await?;
    let location = format!("{}/entries/{}", target.base, entry.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(EntryBody::from(&entry)),
    )
        .into_response())
}

/// Reads one entry.
#[utoipa::path(get, path = "/lists/{list}/entries/{id}", params(("list" = String, Path), ("id" = u64, Path, minimum = 1)),
    responses((status = 200, body = EntryBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_entry(
    State(state): State<AppState>,
    target: ListTarget,
    EntryIdParam(id): EntryIdParam,
) -> Result<Json<EntryBody>, ApiError> {
    let entry = state.cache.entry(&target.key, id).await?;
    Ok(Json(EntryBody::from(&entry)))
}

/// Changes some fields of an entry; absent fields keep their value.
#[utoipa::path(patch, path = "/lists/{list}/entries/{id}", request_body = EntryPatch,
    params(("list" = String, Path), ("id" = u64, Path, minimum = 1), WriteParams),
    responses((status = 200, body = EntryBody), (status = 202, body = QueuedBody), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn update_entry(
    State(state): State<AppState>,
    target: ListTarget,
    EntryIdParam(id): EntryIdParam,
    Params(params): Params<WriteParams>,
    JsonObject(body): JsonObject<EntryPatch>,
) -> Result<Response, ApiError> {
    let list = &target.key;
    let changes = Changes::try_from(body)?;
    if params.is_async() {
        state
            .cache
            .cast(list, Command::UpdateEntry { id, changes })?;
        return Ok((StatusCode::ACCEPTED, Json(QueuedBody { queued: true })).into_response());
    }
    let entry = state.cache.update_entry(list, id, changes).await?;
    Ok(Json(EntryBody::from(&entry)).into_response())
}

/// Deletes one entry.
#[utoipa::path(delete, path = "/lists/{list}/entries/{id}", params(("list" = String, Path), ("id" = u64, Path, minimum = 1)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_entry(
    State(state): State<AppState>,
    target: ListTarget,
    EntryIdParam(id): EntryIdParam,
) -> Result<StatusCode, ApiError> {
    state.cache.delete_entry(&target.key, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes every entry of a list. Ids already handed out are not reused.
#[utoipa::path(delete, path = "/lists/{list}", params(("list" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_list(
    State(state): State<AppState>,
    target: ListTarget,
) -> Result<StatusCode, ApiError> {
    state.cache.clear(&target.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The whole list with its id counter and version, once every write in flight has its
/// outcome: what `todo export` writes.
#[utoipa::path(get, path = "/lists/{list}/dump", params(("list" = String, Path)),
    responses((status = 200, body = DumpBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn export_list(
    State(state): State<AppState>,
    target: ListTarget,
) -> Result<Json<DumpBody>, ApiError> {
    let dump = state.cache.dump(&target.key).await?;
    Ok(Json(DumpBody::from(&dump)))
}

/// Imports a list exported by `GET .../dump`, keeping ids and the id counter, in one commit:
/// into a list that holds no entries and has handed out none of those ids; a list that
/// already holds exactly these entries is left as it is (importing twice changes nothing);
/// anything else is 409 `import_conflict` and changes nothing.
#[utoipa::path(put, path = "/lists/{list}/dump", request_body = DumpBody, params(("list" = String, Path)),
    responses((status = 200, body = ImportedBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn import_list(
    State(state): State<AppState>,
    target: ListTarget,
    JsonObject(dump): JsonObject<DumpBody>,
) -> Result<Json<ImportedBody>, ApiError> {
    let (entries, next_id) = dump.into_entries()?;
    let imported = state.cache.import(&target.key, entries, next_id).await?;
    Ok(Json(ImportedBody::from(imported)))
}

/// Liveness, and whether storage is sound: 503 `storage_damaged` once storage has reported a
/// damaged file or data no `todo` wrote (until a restart, after `todo check`), and 503
/// `storage_unavailable` while a database worker's storage does not answer. The cause goes to
/// the log, never to the client.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = HealthBody), (status = 503, body = ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<HealthBody>, ApiError> {
    let database = state.cache.database();
    if database.stats().damaged() {
        return Err(ApiError::unavailable(
            "storage_damaged",
            "storage is damaged: stop the server and run `todo check`",
        ));
    }
    match database.ping().await {
        Ok(()) => Ok(Json(HealthBody { status: "ok" })),
        Err(error) => {
            tracing::warn!(%error, "health check: storage does not answer");
            Err(ApiError::unavailable(
                "storage_unavailable",
                "storage does not answer",
            ))
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = super::metrics::render(&state);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// This API's OpenAPI description.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}
