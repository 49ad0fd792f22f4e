//! The OpenAPI description of every route, served at `/openapi.json`.

use std::sync::OnceLock;

use utoipa::OpenApi;

use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{accounts, body, book, calendar, error, events, handlers, todo_backend};

/// The list routes a share link opens, after `/lists/{list}` and again after `/s/{secret}`.
const SHARED_ROUTES: [&str; 7] = [
    "/dump",
    "/entries",
    "/entries/{id}",
    "/todos",
    "/todos/{id}",
    "/events",
    "/calendar.ics",
];

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
        handlers::export_list,
        handlers::import_list,
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
        accounts::login,
        accounts::logout,
        accounts::me,
        accounts::create_user,
        accounts::list_users,
        accounts::delete_user,
        accounts::create_token,
        accounts::list_tokens,
        accounts::revoke_token,
        accounts::list_members,
        accounts::put_member,
        accounts::delete_member,
        accounts::create_link,
        accounts::list_links,
        accounts::revoke_link,
        events::list_events,
        calendar::calendar,
    ),
    components(schemas(
        body::EntryBody,
        body::NewEntryBody,
        body::EntryPatch,
        body::QueuedBody,
        body::ListsBody,
        body::HealthBody,
        body::DumpBody,
        body::ImportedBody,
        body::TodoBody,
        body::NewTodoBody,
        body::TodoPatch,
        error::ErrorBody,
        error::ErrorDetail,
        accounts::LoginBody,
        accounts::MeBody,
        accounts::NewTokenBody,
        accounts::NewUserBody,
        accounts::UserBody,
        accounts::TokenRequestBody,
        accounts::TokenBody,
        accounts::RoleBody,
        accounts::MemberBody,
        accounts::LinkBody,
    )),
    modifiers(&Credentials),
    security((), ("bearer" = []), ("session" = []))
)]
struct ApiDoc;

/// The two ways to authenticate once an account exists: a bearer token, or the session cookie
/// of `POST /auth/login`. While no account exists, neither is needed.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let cookie = ApiKey::Cookie(ApiKeyValue::new(super::auth::SESSION_COOKIE));
        components.add_security_scheme("session", SecurityScheme::ApiKey(cookie));
    }
}

/// The share-link routes: the list routes of `SHARED_ROUTES` under `/s/{secret}`, where the
/// link's secret stands for both the list and the credentials.
fn add_share_link_routes(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for suffix in SHARED_ROUTES {
        let Some(mut item) = paths.get(&format!("/lists/{{list}}{suffix}")).cloned() else {
            continue;
        };
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|item| item.values_mut())
        {
            if let Some(id) = operation["operationId"].as_str() {
                operation["operationId"] = json!(format!("{id}_by_link"));
            }
            operation["security"] = json!([{}]);
            for parameter in operation["parameters"].as_array_mut().into_iter().flatten() {
                if parameter["name"] == "list" && parameter["in"] == "path" {
                    *parameter = json!({
                        "name": "secret", "in": "path", "required": true,
                        "description": "the share link's secret",
                        "schema": {"type": "string"}
                    });
                }
            }
        }
        paths.insert(format!("/s/{{secret}}{suffix}"), item);
    }
}

/// The OpenAPI document, built once.
pub fn document() -> serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document =
                serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
            add_share_link_routes(&mut document);
            document
        })
        .clone()
}
