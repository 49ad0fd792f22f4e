//! The Todo-Backend contract (todobackend.com): one collection of todos per list.
//!
//! A todo is an entry seen through the contract's names: `completed` is `done`, `order` is the
//! entry's order, and `url` is the todo's absolute address, built from the request's `Host`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::list::{Changes, Entry, NewEntry};
use crate::lists::{Created, EntriesQuery};

use super::auth::{EntryIdParam, ListTarget};
use super::body::{NewTodoBody, TodoBody, TodoPatch};
use super::error::{ApiError, ErrorBody};
use super::extract::JsonObject;
use super::{AppState, idempotency_key};

fn todo(entry: &Entry, state: &AppState, target: &ListTarget, headers: &HeaderMap) -> TodoBody {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.auth.tls { "https" } else { "http" };
    TodoBody {
        id: entry.id.get(),
        title: entry.title.to_string(),
        completed: entry.done,
        order: entry.order,
        date: entry.date.to_string(),
        url: format!("{scheme}://{host}{}/todos/{}", target.base, entry.id),
    }
}

/// Every todo of the list.
#[utoipa::path(get, path = "/lists/{list}/todos", params(("list" = String, Path)),
    responses((status = 200, body = [TodoBody]), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_todos(
    State(state): State<AppState>,
    target: ListTarget,
    headers: HeaderMap,
) -> Result<Json<Vec<TodoBody>>, ApiError> {
    let entries = state.cache.entries(&target.key, EntriesQuery::All).await?;
    Ok(Json(
        entries
            .iter()
            .map(|entry| todo(entry, &state, &target, &headers))
            .collect(),
    ))
}

/// Creates a todo; its date is today (UTC) unless the body gives one.
#[utoipa::path(post, path = "/lists/{list}/todos", request_body = NewTodoBody,
    params(("list" = String, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255)),
    responses((status = 201, body = TodoBody, headers(("Location" = String))), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_todo(
    State(state): State<AppState>,
    target: ListTarget,
    headers: HeaderMap,
    JsonObject(body): JsonObject<NewTodoBody>,
) -> Result<Response, ApiError> {
    let entry = NewEntry::try_from(body)?;
    let idempotency_key = idempotency_key(&headers)?;
    let created = state.cache.add_entry(&target.key, entry, idempotency_key);
    let Created { entry, .. } = created.await?;
    let todo = todo(&entry, &state, &target, &headers);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, todo.url.clone())],
        Json(todo),
    )
        .into_response())
}

/// Deletes every todo of the list.
#[utoipa::path(delete, path = "/lists/{list}/todos", params(("list" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_todos(
    State(state): State<AppState>,
    target: ListTarget,
) -> Result<StatusCode, ApiError> {
    state.cache.clear(&target.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One todo.
#[utoipa::path(get, path = "/lists/{list}/todos/{id}", params(("list" = String, Path), ("id" = u64, Path, minimum = 1)),
    responses((status = 200, body = TodoBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_todo(
    State(state): State<AppState>,
    target: ListTarget,
    EntryIdParam(id): EntryIdParam,
    headers: HeaderMap,
) -> Result<Json<TodoBody>, ApiError> {
    let entry = state.cache.entry(&target.key, id).await?;
    Ok(Json(todo(&entry, &state, &target, &headers)))
}

/// Changes some fields of a todo; absent fields keep their value.
#[utoipa::path(patch, path = "/lists/{list}/todos/{id}", request_body = TodoPatch,
    params(("list" = String, Path), ("id" = u64, Path, minimum = 1)),
    responses((status = 200, body = TodoBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn update_todo(
    State(state): State<AppState>,
    target: ListTarget,
    EntryIdParam(id): EntryIdParam,
    headers: HeaderMap,
    JsonObject(body): JsonObject<TodoPatch>,
) -> Result<Json<TodoBody>, ApiError> {
    let changes = Changes::try_from(body)?;
    let entry = state.cache.update_entry(&target.key, id, changes).await?;
    Ok(Json(todo(&entry, &state, &target, &headers)))
}

/// Deletes one todo.
#[utoipa::path(delete, path = "/lists/{list}/todos/{id}", params(("list" = String, Path), ("id" = u64, Path, minimum = 1)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_todo(
    State(state): State<AppState>,
    target: ListTarget,
    EntryIdParam(id): EntryIdParam,
) -> Result<StatusCode, ApiError> {
    state.cache.delete_entry(&target.key, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
