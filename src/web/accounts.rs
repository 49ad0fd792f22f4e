//! Routes for users and access: logging in and out, accounts (admins), API tokens, list
//! members and share links; with their wire types, which the `todo` client reads too.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::accounts::{LinkRow, Role, TokenRow, UserName, UserRow};

use super::AppState;
use super::auth::{Caller, ClientAddress, ListTarget, SESSION_COOKIE, from_another_site};
use super::error::{ApiError, ErrorBody};
use super::extract::JsonObject;

/// Longest name of an API token.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// Body of `POST /auth/login`.
/// No `Debug`: it holds a password.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

/// A new token: a session from `POST /auth/login`, or an API token from `POST /tokens`. No
/// `Debug`: it holds the token.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewTokenBody {
    /// The token, shown only now: send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// Its id, to revoke it (API tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// When it stops working (RFC 3339), if ever.
    pub expires_at: Option<String>,
}

/// Body of `POST /users`. No `Debug`: it holds a password.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 1 to 64 characters of a list name but spaces (see `UserName`).
    pub name: String,
    /// At least 8 characters.
    pub password: String,
    /// Whether the user manages accounts; the first user always does.
    #[serde(default)]
    pub admin: bool,
}

/// A user, as `GET /users` shows one.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserBody {
    /// The name.
    pub name: String,
    /// Whether the user manages accounts.
    pub admin: bool,
    /// When the account was made (RFC 3339).
    pub created_at: String,
}

/// Body of `POST /tokens`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequestBody {
    /// What the token is for, 1 to 100 characters.
    pub name: String,
    /// When the token stops working (RFC 3339, in the future); never when absent.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// An API token, as `GET /tokens` shows one (never the token itself).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenBody {
    /// The id, for `DELETE /tokens/{id}`.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it stops working, if ever.
    pub expires_at: Option<String>,
    /// When it was last used (to the minute), if ever.
    pub last_used_at: Option<String>,
}

/// Body of `PUT /lists/{list}/members/{user}` and `POST /lists/{list}/links`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `read` or `write`.
    pub role: Role,
}

/// A member of a list.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberBody {
    /// The member's user name.
    pub user: String,
    /// What they may do.
    pub role: Role,
}

/// A share link.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkBody {
    /// The id, for `DELETE /lists/{list}/links/{id}`.
    pub id: i64,
    /// What the link allows.
    pub role: Role,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// The link's address, only when it is made: `/s/SECRET`, under which `/todos` and
    /// `/entries` work without logging in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The answer of `GET /auth/me`: how the server runs, and who the caller is.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum MeBody {
    /// No account exists: lists have no owner and no one logs in.
    Open,
    /// Accounts exist; `user` and `admin` are absent when the caller is not logged in.
    Accounts {
        /// The caller's user name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// Whether the caller manages accounts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admin: Option<bool>,
    },
}

/// Who the caller is: the web app asks first, to know whether to show the login form. Needs no
/// credentials, so a logged-out page gets an answer rather than an error.
#[utoipa::path(get, path = "/auth/me", security(()), responses((status = 200, body = MeBody)))]
pub async fn me(caller: Result<Caller, ApiError>) -> Json<MeBody> {
    Json(match caller {
        Ok(Caller::Open) => MeBody::Open,
        Ok(Caller::User { principal }) => MeBody::Accounts {
            user: Some(principal.name.to_string()),
            admin: Some(principal.admin),
        },
        Err(_) => MeBody::Accounts {
            user: None,
            admin: None,
        },
    })
}

/// Logs in: answers a session token and sets it as an `HttpOnly`, `SameSite=Strict` cookie.
/// Failed attempts are limited per user name and per address; the answer never says whether
/// the user exists.
#[utoipa::path(post, path = "/auth/login", request_body = LoginBody,
    responses((status = 200, body = NewTokenBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64)))))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonObject(LoginBody { user, password }): JsonObject<LoginBody>,
) -> Result<Response, ApiError> {
    // Counted before the slow check, under one lock with the check, so that concurrent
    // guesses count too.
    if let Err(wait) = state.limiter.attempt(&user, address) {
        let message = "too many failed logins; wait and try again";
        return Err(ApiError::too_many(message, wait));
    }
    let Some(session) = state.accounts.login(&user, &password).await? else {
        // The name only if it could be one: a password typed into the name field must not
        // reach the log.
        let shown = UserName::parse(&user)
            .map_or_else(|_| "(not a user name)".to_owned(), |name| name.to_string());
        tracing::info!(user = %shown, ?address, "failed login");
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    state.limiter.succeeded(&user, address);
    let max_age = session.expires_at - crate::accounts::now();
    let cookie = session_cookie(&session.token, max_age, state.auth.tls)?;
    let body = NewTokenBody {
        token: session.token,
        id: None,
        expires_at: Some(rfc3339(session.expires_at)),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Logs out: revokes the token or session the request came with and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.accounts.logout(caller.user()?).await?;
    let cookie = session_cookie("", 0, state.auth.tls)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

fn session_cookie(token: &str, max_age: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cookie not encodable",
        )
    })
}

/// Makes an account (admins; anyone while no account exists, as `todo user add` does).
#[utoipa::path(post, path = "/users", request_body = NewUserBody,
    responses((status = 201, body = UserBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<JsonObject<NewUserBody>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    // While no account exists anyone on loopback may make the first; a page in a browser on
    // this machine must not, or any web site could take the server.
    if matches!(caller, Caller::Open) && from_another_site(&headers) {
        return Err(ApiError::forbidden(
            "cross_origin",
            "the first account is made from this server's own pages or the command line",
        ));
    }
    let JsonObject(NewUserBody {
        name,
        password,
        admin,
    }) = body?;
    let name = UserName::parse(&name)?;
    let user = state.accounts.create_user(name, password, admin).await?;
    tracing::info!(user = %user.name, admin = user.admin, "account created");
    Ok((StatusCode::CREATED, Json(user_body(&user))).into_response())
}

/// Every account (admins).
#[utoipa::path(get, path = "/users", responses((status = 200, body = [UserBody]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserBody>>, ApiError> {
    caller.require_admin()?;
    let users = state.accounts.users().await?;
    Ok(Json(users.iter().map(user_body).collect()))
}

/// Removes an account with its lists, tokens, memberships and links (admins).
#[utoipa::path(delete, path = "/users/{name}", params(("name" = String, Path, max_length = 64)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let name = UserName::parse(&name?.0)?;
    let user = state.accounts.remove_user(name).await?;
    tracing::info!(user = %user.name, "account removed");
    Ok(StatusCode::NO_CONTENT)
}

fn user_body(user: &UserRow) -> UserBody {
    UserBody {
        name: user.name.to_string(),
        admin: user.admin,
        created_at: rfc3339(user.created_at),
    }
}

/// Makes an API token for the caller; the token is in this answer only.
#[utoipa::path(post, path = "/tokens", request_body = TokenRequestBody,
    responses((status = 201, body = NewTokenBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<JsonObject<TokenRequestBody>, ApiError>,
) -> Result<Response, ApiError> {
    let principal = caller.user()?;
    let JsonObject(TokenRequestBody { name, expires_at }) = body?;
    let n_chars = name.chars().count();
    if n_chars == 0 || n_chars > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token_name",
            format!(
                "a token name is 1 to {MAX_TOKEN_NAME_CHARS} characters, no control characters"
            ),
        ));
    }
    let expires_at = expires_at.as_deref().map(future_time).transpose()?;
    let (row, token) = state
        .accounts
        .create_token(principal, name, expires_at)
        .await?;
    let body = NewTokenBody {
        token,
        id: Some(row.id),
        expires_at: row.expires_at.map(rfc3339),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn future_time(text: &str) -> Result<i64, ApiError> {
    let invalid = |message: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
            message.to_owned(),
        )
    };
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|_| invalid("expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z"))?
        .timestamp();
    if time <= crate::accounts::now() {
        // Well-formed, but already past: 422, a rule the OpenAPI document cannot state.
        let message = "expires_at must be in the future";
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_expiry",
            message,
        ));
    }
    Ok(time)
}

/// The caller's API tokens (never the tokens themselves).
#[utoipa::path(get, path = "/tokens", responses((status = 200, body = [TokenBody]), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenBody>>, ApiError> {
    let tokens = state.accounts.tokens(caller.user()?).await?;
    Ok(Json(tokens.iter().map(token_body).collect()))
}

fn token_body(token: &TokenRow) -> TokenBody {
    TokenBody {
        id: token.id,
        name: token.name.clone(),
        created_at: rfc3339(token.created_at),
        expires_at: token.expires_at.map(rfc3339),
        last_used_at: token.last_used_at.map(rfc3339),
    }
}

/// Revokes one of the caller's tokens, at once.
#[utoipa::path(delete, path = "/tokens/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.user()?;
    let id = numeric_id(&id?.0)?;
    if !state.accounts.revoke_token(principal, id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "token_not_found",
            "no such token",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn numeric_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && !text.starts_with(['+', '0']))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "an id is a positive integer",
            )
        })
}

/// The members of one of the caller's lists.
#[utoipa::path(get, path = "/lists/{list}/members", params(("list" = String, Path)),
    responses((status = 200, body = [MemberBody]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    target: ListTarget,
) -> Result<Json<Vec<MemberBody>>, ApiError> {
    target.require_owner()?;
    let members = state.accounts.members(target.key).await?;
    let members = members
        .into_iter()
        .map(|(user, role)| MemberBody {
            user: user.to_string(),
            role,
        })
        .collect();
    Ok(Json(members))
}

/// Gives a user a role in one of the caller's lists, or changes it.
#[utoipa::path(put, path = "/lists/{list}/members/{user}", request_body = RoleBody, params(("list" = String, Path), ("user" = String, Path)),
    responses((status = 200, body = MemberBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_member(
    State(state): State<AppState>,
    target: ListTarget,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<JsonObject<RoleBody>, ApiError>,
) -> Result<Json<MemberBody>, ApiError> {
    let owner = target.require_owner()?.clone();
    let (_, user) = path?.0;
    let JsonObject(RoleBody { role }) = body?;
    let member = UserName::parse(&user)?;
    if member == owner.name {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "owner_member",
            "the owner already has every right",
        ));
    }
    if !state
        .accounts
        .share(&owner, target.key, member.clone(), role)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("no user {member}"),
        ));
    }
    Ok(Json(MemberBody {
        user: member.to_string(),
        role,
    }))
}

/// Takes a member's role in one of the caller's lists away.
#[utoipa::path(delete, path = "/lists/{list}/members/{user}", params(("list" = String, Path), ("user" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_member(
    State(state): State<AppState>,
    target: ListTarget,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    target.require_owner()?;
    let (_, user) = path?.0;
    let member = UserName::parse(&user)?;
    if !state.accounts.unshare(target.key, member).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "member_not_found",
            "that user is not a member",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a share link to one of the caller's lists; its secret is in this answer only.
#[utoipa::path(post, path = "/lists/{list}/links", request_body = RoleBody, params(("list" = String, Path)),
    responses((status = 201, body = LinkBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_link(
    State(state): State<AppState>,
    target: ListTarget,
    body: Result<JsonObject<RoleBody>, ApiError>,
) -> Result<Response, ApiError> {
    target.require_owner()?;
    let JsonObject(RoleBody { role }) = body?;
    let (row, secret) = state.accounts.create_link(target.key, role).await?;
    let mut body = link_body(&row);
    body.path = Some(format!("/s/{secret}"));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The share links of one of the caller's lists (never their secrets).
#[utoipa::path(get, path = "/lists/{list}/links", params(("list" = String, Path)),
    responses((status = 200, body = [LinkBody]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_links(
    State(state): State<AppState>,
    target: ListTarget,
) -> Result<Json<Vec<LinkBody>>, ApiError> {
    target.require_owner()?;
    let links = state.accounts.links(target.key).await?;
    Ok(Json(links.iter().map(link_body).collect()))
}

/// Revokes a share link, at once on this node and within a second on others.
#[utoipa::path(delete, path = "/lists/{list}/links/{id}", params(("list" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_link(
    State(state): State<AppState>,
    target: ListTarget,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    target.require_owner()?;
    let (_, id) = path?.0;
    let id = numeric_id(&id)?;
    if !state.accounts.revoke_link(target.key, id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "link_not_found",
            "no such link",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn link_body(link: &LinkRow) -> LinkBody {
    LinkBody {
        id: link.id,
        role: link.role,
        created_at: rfc3339(link.created_at),
        path: None,
    }
}

/// Unix seconds as an RFC 3339 time in UTC.
fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
