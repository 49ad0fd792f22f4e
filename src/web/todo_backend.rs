//! The Todo-Backend contract (todobackend.com): one collection of todos per list.
//!
//! A todo is an entry seen through the contract's names: `completed` is `done`, `order` is the
//! entry's order, and `url` is the todo's absolute address, built from the request's `Host`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::list::{Changes, Entry, ListName, NewEntry};
use crate::lists::{Created, EntriesQuery};

use super::body::{NewTodoBody, TodoBody, TodoPatch};
use super::error::{ApiError, ErrorBody};
use super::{AppState, entry_path, idempotency_key, json_body, parse_entry_path, parse_list};

fn todo(entry: &Entry, list: &ListName, headers: &HeaderMap) -> TodoBody {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    TodoBody {
        id: entry.id.get(),
        title: entry.title.to_string(),
        completed: entry.done,
        order: entry.order,
        date: entry.date.to_string(),
        url: format!("http://{host}{}", entry_path(list, "todos", entry.id)),
    }
}

/// Every todo of the list.
#[utoipa::path(get, path = "/lists/{list}/todos", params(("list" = String, Path, max_length = 128)),
    responses((status = 200, body = [TodoBody]), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_todos(
    State(state): State<AppState>,
    list: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Vec<TodoBody>>, ApiError> {
    let list = parse_list(list?.0)?;
    let entries = state.cache.entries(&list, EntriesQuery::All).await?;
    Ok(Json(
        entries
            .iter()
            .map(|entry| todo(entry, &list, &headers))
            .collect(),
    ))
}

/// Creates a todo; its date is today (UTC) unless the body gives one.
#[utoipa::path(post, path = "/lists/{list}/todos", request_body = NewTodoBody,
    params(("list" = String, Path, max_length = 128), ("Idempotency-Key" = Option<String>, Header, max_length = 255)),
    responses((status = 201, body = TodoBody, headers(("Location" = String))), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_todo(
    State(state): State<AppState>,
    list: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let list = parse_list(list?.0)?;
    let entry = NewEntry::try_from(json_body::<NewTodoBody>(body)?)?;
    let idempotency_key = idempotency_key(&headers)?;
    let Created { entry, .. } = state.cache.add_entry(&list, entry, idempotency_key).await?;
    let todo = todo(&entry, &list, &headers);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, todo.url.clone())],
        Json(todo),
    )
        .into_response())
}

/// Deletes every todo of the list.
#[utoipa::path(delete, path = "/lists/{list}/todos", params(("list" = String, Path, max_length = 128)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_todos(
    State(state): State<AppState>,
    list: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let list = parse_list(list?.0)?;
    state.cache.clear(&list).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One todo.
#[utoipa::path(get, path = "/lists/{list}/todos/{id}", params(("list" = String, Path, max_length = 128), ("id" = u64, Path, minimum = 1)),
    responses((status = 200, body = TodoBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_todo(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<TodoBody>, ApiError> {
    let (list, id) = parse_entry_path(path?.0)?;
    let entry = state.cache.entry(&list, id).await?;
    Ok(Json(todo(&entry, &list, &headers)))
}

/// Changes some fields of a todo; absent fields keep their value.
#[utoipa::path(patch, path = "/lists/{list}/todos/{id}", request_body = TodoPatch,
    params(("list" = String, Path, max_length = 128), ("id" = u64, Path, minimum = 1)),
    responses((status = 200, body = TodoBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn update_todo(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TodoBody>, ApiError> {
    let (list, id) = parse_entry_path(path?.0)?;
    let changes = Changes::try_from(json_body::<TodoPatch>(body)?)?;
    let entry = state.cache.update_entry(&list, id, changes).await?;
    Ok(Json(todo(&entry, &list, &headers)))
}

/// Deletes one todo.
#[utoipa::path(delete, path = "/lists/{list}/todos/{id}", params(("list" = String, Path, max_length = 128), ("id" = u64, Path, minimum = 1)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_todo(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (list, id) = parse_entry_path(path?.0)?;
    state.cache.delete_entry(&list, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
