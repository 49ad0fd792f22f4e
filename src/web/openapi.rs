//! The OpenAPI description of every route, served at `/openapi.json`.

use std::sync::OnceLock;

use utoipa::OpenApi;

use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::accounts::{MAX_PASSWORD_CHARS, MAX_USER_NAME_CHARS, MIN_PASSWORD_CHARS};
use crate::list::{EntryId, MAX_LIST_NAME_CHARS, MAX_TITLE_CHARS, REFUSED_IN_NAMES};

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

/// The characters a name may not hold (`REFUSED_IN_NAMES`) as a regular expression's class
/// body, in `\uXXXX` escapes that ECMAScript and Python read alike.
fn refused_in_names() -> String {
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    let ranges = REFUSED_IN_NAMES
        .iter()
        .map(|(first, last)| match first == last {
            true => escape(*first),
            false => format!("{}-{}", escape(*first), escape(*last)),
        });
    ranges.collect()
}

/// A list as a request names it: its own name (`ListName::parse`), or `OWNER:LIST`.
fn list_schema() -> Value {
    let refused = refused_in_names();
    let own = format!(r"^(?!\.+$)[^{refused}]+$");
    let shared = format!(r"^(?!\.+:)[^{refused} ]{{1,64}}:(?!\.+$)[^{refused}]{{1,128}}$");
    json!({"anyOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_LIST_NAME_CHARS, "pattern": own},
        {"type": "string", "minLength": 3, "maxLength": MAX_LIST_NAME_CHARS + 65, "pattern": shared}
    ]})
}

/// A user name (`UserName::parse`).
fn user_schema() -> Value {
    let pattern = format!(r"^(?!\.+$)[^{} ]+$", refused_in_names());
    json!({"type": "string", "minLength": 1, "maxLength": MAX_USER_NAME_CHARS, "pattern": pattern})
}

/// A title: 1 to 1,000 characters, not all blank, no control characters and no line or
/// paragraph separators (`Title::parse`).
/// The blank characters are Rust's `char::is_whitespace`, spelled out: `\s` means other sets
/// in ECMAScript and Python.
const TITLE_PATTERN: &str = r"^(?![\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$)[^\u0000-\u001f\u007f-\u009f\u2028\u2029]+$";
/// Statuses any route may answer before its handler runs: a query that is not UTF-8 (400),
/// missing or bad credentials (401), a refused origin or host (403), a body too slow (408) or
/// too large (413), a server at its limits (503).
const EDGE_STATUSES: [&str; 6] = ["400", "401", "403", "408", "413", "503"];
/// Statuses of every route about one list: a list the caller may not see (404), a name mixing
/// scripts (422).
const LIST_STATUSES: [&str; 2] = ["404", "422"];

/// The statuses an operation at `path` may answer besides its own: the edge's to any request;
/// 404 and 422 (`mixed_scripts`) where a list or user is named; 409 `no_accounts` for sharing
/// without accounts; 422 for a new user or token refused by a rule no schema states; 415 for a
/// body that is not JSON.
fn extra_statuses(path: &str, operation: &Value) -> Vec<&'static str> {
    let mut statuses = EDGE_STATUSES.to_vec();
    let names_one = ["{list}", "{secret}", "{name}"]
        .iter()
        .any(|part| path.contains(part));
    if names_one || path == "/add_entry" || path == "/entries" {
        statuses.extend(LIST_STATUSES);
    }
    if path.contains("/members") || path.contains("/links") {
        statuses.push("409");
    }
    if path == "/users" || path == "/tokens" {
        statuses.push("422");
    }
    if operation.get("requestBody").is_some() {
        statuses.push("415");
    }
    statuses
}

/// States on every parameter and body field what the server checks, so that a request the
/// document calls valid is accepted and one it calls invalid is refused (schemathesis checks
/// both ways in `.ci/run`).
fn add_constraints(document: &mut Value) {
    let (list, user) = (list_schema(), user_schema());
    let entry_id =
        json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": EntryId::MAX.get()});
    let title = json!({"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS, "pattern": TITLE_PATTERN});
    let row_id = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX});
    let last_event_id =
        json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX});
    let idempotency_key = json!({"type": "string", "minLength": 1,
        "maxLength": super::MAX_IDEMPOTENCY_KEY_BYTES, "pattern": "^[\\u0021-\\u007e]+$"});
    for (path, item) in document["paths"].as_object_mut().into_iter().flatten() {
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|item| item.values_mut())
        {
            let parameters = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                let schema = match (parameter["name"].as_str(), parameter["in"].as_str()) {
                    (Some("list"), _) => &list,
                    (Some("user" | "name"), Some("path")) => &user,
                    (Some("id"), Some("path"))
                        if path.contains("/entries/") || path.contains("/todos/") =>
                    {
                        &entry_id
                    }
                    (Some("id"), Some("path")) => &row_id,
                    (Some("title"), Some("query")) => &title,
                    (Some("Last-Event-ID"), _) => &last_event_id,
                    (Some("Idempotency-Key"), _) => &idempotency_key,
                    _ => continue,
                };
                parameter["schema"] = schema.clone();
            }
            let statuses = extra_statuses(path, operation);
            let responses = &mut operation["responses"];
            for status in statuses {
                if responses.get(status).is_none() {
                    responses[status] = json!({
                        "description": "refused at the edge; see the error's code",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                    });
                }
            }
        }
    }
    let events = &mut document["paths"]["/lists/{list}/events"]["get"]["responses"]["200"];
    events["content"]["text/event-stream"]["schema"] = json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"enum": ["snapshot", "added", "updated", "deleted", "cleared"]},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {"type": "string"}
        }
    });
    let schemas = &mut document["components"]["schemas"];
    for name in [
        "NewEntryBody",
        "EntryPatch",
        "NewTodoBody",
        "TodoPatch",
        "EntryBody",
    ] {
        let field = &mut schemas[name]["properties"]["title"];
        let nullable = field["type"].is_array();
        *field = title.clone();
        if nullable {
            field["type"] = json!(["string", "null"]);
        }
        let order = &mut schemas[name]["properties"]["order"];
        order["minimum"] = json!(i64::MIN);
        order["maximum"] = json!(i64::MAX);
    }
    schemas["EntryBody"]["properties"]["id"] = entry_id.clone();
    schemas["DumpBody"]["properties"]["next_id"]["maximum"] = json!(EntryId::MAX.get() + 1);
    schemas["NewUserBody"]["properties"]["name"] = user.clone();
    schemas["NewUserBody"]["properties"]["password"] =
        json!({"type": "string", "minLength": MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS});
    schemas["TokenRequestBody"]["properties"]["name"] = json!({"type": "string", "minLength": 1, "maxLength": accounts::MAX_TOKEN_NAME_CHARS, "pattern": r"^[^\x00-\x1f\x7f-\x9f]+$"});
    schemas["TokenRequestBody"]["properties"]["expires_at"] =
        json!({"type": ["string", "null"], "format": "date-time"});
}

/// The OpenAPI document, built once.
pub fn document() -> serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document =
                serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
            add_share_link_routes(&mut document);
            add_constraints(&mut document);
            document
        })
        .clone()
}
