//! The OpenAPI description of every route, served at `/openapi.json`.

use std::sync::OnceLock;

use utoipa::OpenApi;

use super::{body, book, error, handlers, todo_backend};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo",
        description = "A concurrent, durable to-do list server."
    ),
    paths(
        handlers::list_lists,
        handlers::list_entries,
        handlers::add_entry,
        handlers::get_entry,
        handlers::update_entry,
        handlers::delete_entry,
        handlers::delete_list,
        handlers::healthz,
        handlers::metrics,
        handlers::openapi,
        todo_backend::list_todos,
        todo_backend::create_todo,
        todo_backend::delete_todos,
        todo_backend::get_todo,
        todo_backend::update_todo,
        todo_backend::delete_todo,
        book::add_entry,
        book::entries,
    ),
    components(schemas(
        body::EntryBody,
        body::NewEntryBody,
        body::EntryPatch,
        body::QueuedBody,
        body::ListsBody,
        body::HealthBody,
        body::TodoBody,
        body::NewTodoBody,
        body::TodoPatch,
        error::ErrorBody,
        error::ErrorDetail,
    ))
)]
struct ApiDoc;

/// The OpenAPI document, built once.
pub fn document() -> serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
        })
        .clone()
}
