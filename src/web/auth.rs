//! Who is asking, and what a list name means for them: decided once per request, here.
//!
//! `identify` runs before every route's handler (in `admit::Admit`, the layer on every route
//! `web::router` registers): in protected mode (some account
//! exists) it turns a bearer token or the session cookie into a `Caller`, or answers 401. The
//! `ListTarget` extractor then turns the request's list name (`LIST`, `OWNER:LIST`, `?list=`,
//! or a share link's secret) into a storage key and the caller's role, or answers 404 for a
//! list the caller may not see. Handlers never see a raw list name, so a route added later
//! cannot forget a check (ARCHITECTURE.md, "Users and access").

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde::Deserialize;

use crate::accounts::{AccountError, Principal, Resolved, Role, UserName};
use crate::list::{EntryId, ListName};

use super::error::ApiError;
use super::extract::Params;
use super::{AppState, encode_path_segment};

/// The name of the session cookie set by `POST /auth/login`.
pub const SESSION_COOKIE: &str = "todo_session";

/// Paths that need no credentials: liveness, logging in and asking whether one is, the web
/// app's files (the page shows the login form), and share links (whose secret is the
/// credential, checked by `ListTarget`).
fn is_public(path: &str) -> bool {
    path == "/healthz"
        || path == "/auth/login"
        || path == "/auth/me"
        || path.starts_with("/s/")
        || super::assets::paths().any(|page| page == path)
}

/// Who sent a request, as decided by `identify`.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No account exists and the server may serve without credentials: the caller may do
    /// anything to lists without an owner, as in the book.
    Open,
    /// A signed-in user.
    User {
        /// Who, and with which token.
        principal: Principal,
    },
}

impl Caller {
    /// The signed-in user, or a 401 when the server runs without accounts.
    pub fn user(&self) -> Result<&Principal, ApiError> {
        match self {
            Caller::User { principal } => Ok(principal),
            Caller::Open => Err(ApiError::unauthorized(
                "this needs an account; create one with `todo user add NAME`",
            )),
        }
    }

    /// Whether the caller may manage accounts: an admin, or anyone while none exist.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Open => Ok(()),
            Caller::User { principal, .. } if principal.admin => Ok(()),
            Caller::User { .. } => Err(ApiError::forbidden(
                "admin_required",
                "only an admin may do this",
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("this route needs credentials"))
    }
}

/// Puts the `Caller` into the request, or answers 401 (no or bad credentials on a protected
/// server) or 403 (a cookie on a cross-site write, or a non-admin asking for `/metrics`).
/// Called by `admit::Admit` for a request `identify_now` could not decide.
pub async fn identify(state: &AppState, request: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let caller = match credential(state, &parts)? {
        Credential::Decided(caller) => caller,
        Credential::Token { token, by_cookie } => {
            let principal = state.accounts.authenticate(token).await?;
            signed_in(state, &parts, principal, by_cookie)?
        }
    };
    if let Some(caller) = caller {
        parts.extensions.insert(caller);
    }
    Ok(Request::from_parts(parts, body))
}

/// `identify` without waiting: `None` when the request's token is not among those the
/// accounts remember, and must be looked up in storage. Most requests (open mode, no
/// credentials, a token in use) are decided here, so their route is called at once.
pub fn identify_now(state: &AppState, parts: &mut Parts) -> Option<Result<(), ApiError>> {
    let caller = match credential(state, parts) {
        Err(refused) => return Some(Err(refused)),
        Ok(Credential::Decided(caller)) => caller,
        Ok(Credential::Token { token, by_cookie }) => {
            let principal = state.accounts.remembered(token)?;
            match signed_in(state, parts, principal, by_cookie) {
                Ok(caller) => caller,
                Err(refused) => return Some(Err(refused)),
            }
        }
    };
    if let Some(caller) = caller {
        parts.extensions.insert(caller);
    }
    Some(Ok(()))
}

/// What a request's headers say about its caller before any token is looked up.
enum Credential<'a> {
    /// Decided: `None` is an anonymous request to a public path.
    Decided(Option<Caller>),
    /// A token to look up, sent as a bearer token or in the session cookie.
    Token { token: &'a str, by_cookie: bool },
}

fn credential<'a>(state: &AppState, request: &'a Parts) -> Result<Credential<'a>, ApiError> {
    if state.accounts.is_open() {
        // Open to loopback clients only: a page whose host name was made to point at
        // 127.0.0.1 (DNS rebinding) must not get in.
        if !state.auth.insecure_open && !loopback_host(&request.headers) {
            return Err(ApiError::forbidden(
                "host_not_allowed",
                "without accounts this server answers only to localhost and loopback addresses",
            ));
        }
        return Ok(Credential::Decided(Some(Caller::Open)));
    }
    let headers = &request.headers;
    let credential = bearer(headers).map(|token| (token, false));
    let credential = credential.or_else(|| session_cookie(headers).map(|token| (token, true)));
    match credential {
        Some((token, by_cookie)) => Ok(Credential::Token { token, by_cookie }),
        None if is_public(request.uri.path()) => Ok(Credential::Decided(None)),
        None => Err(ApiError::unauthorized(
            "log in first: send Authorization: Bearer TOKEN (see `todo login`)",
        )),
    }
}

/// The caller a token's lookup found (`principal`), once the request may act as them.
fn signed_in(
    state: &AppState,
    request: &Parts,
    principal: Option<Principal>,
    by_cookie: bool,
) -> Result<Option<Caller>, ApiError> {
    let path = request.uri.path();
    let Some(principal) = principal else {
        if is_public(path) {
            return Ok(None);
        }
        return Err(ApiError::unauthorized(
            "the token is invalid, expired or revoked",
        ));
    };
    if by_cookie && !is_safe(&request.method) && !same_origin(&request.headers) {
        return Err(ApiError::forbidden(
            "cross_origin",
            "a request authenticated by cookie must come from this server's own pages",
        ));
    }
    if path == "/metrics" && !principal.admin && !state.auth.metrics_public {
        return Err(ApiError::forbidden(
            "admin_required",
            "only an admin may read metrics",
        ));
    }
    Ok(Some(Caller::User { principal }))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
        })
}

/// Whether the `Host` header names this machine (`localhost` or a loopback address); a
/// request without one is not from a browser.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return headers.get(header::HOST).is_none();
    };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Whether a browser says the request comes from a page of another site.
pub fn from_another_site(headers: &HeaderMap) -> bool {
    let from_browser =
        headers.contains_key("sec-fetch-site") || headers.contains_key(header::ORIGIN);
    from_browser && !same_origin(headers)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a browser says the request comes from this server's own pages: `Sec-Fetch-Site`
/// when the browser sends it, else `Origin` against `Host`. Neither means not a browser, or
/// an old one; a cookie alone is then not trusted for a write.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(host)) = (origin, host) else {
        return false;
    };
    let origin = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin == Some(host)
}

/// The client's IP address, which `serve` put into the request (none in tests that call the
/// router directly).
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> Result<ClientAddress, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientAddress(address.map(|ConnectInfo(addr)| addr.ip())))
    }
}

/// The list a request is about, resolved for its caller.
#[derive(Debug, Clone)]
pub struct ListTarget {
    /// The storage key.
    pub key: ListName,
    /// The caller's role; `None` for the owner (or anyone, while no account exists).
    pub role: Option<Role>,
    /// The list's address as this caller spelled it (`/lists/NAME`, `/lists/OWNER:NAME` or
    /// `/s/SECRET`), for `Location` and Todo-Backend URLs the caller can follow.
    pub base: String,
    /// Whether the caller is a signed-in user (sharing needs one).
    pub caller: Option<Principal>,
}

impl ListTarget {
    /// The owner's own list, or a 403: only the owner shares a list.
    pub fn require_owner(&self) -> Result<&Principal, ApiError> {
        if self.role.is_some() {
            return Err(ApiError::forbidden(
                "owner_required",
                "only the list's owner may manage who can use it",
            ));
        }
        self.caller.as_ref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "no_accounts",
                "sharing needs accounts; create one with `todo user add NAME`",
            )
        })
    }
}

/// `?list=` of the book's routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParam {
    /// The list: its name (1 to 128 characters, see `ListName`), or `OWNER:LIST` for a list
    /// shared with the caller.
    #[param(required = true)]
    list: Option<String>,
}

impl FromRequestParts<AppState> for ListTarget {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ListTarget, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "invalid_path", rejection.body_text())
            })?;
        let secret = params.iter().find(|(name, _)| *name == "secret");
        let list = params.iter().find(|(name, _)| *name == "list");
        let target = match (secret, list) {
            (Some((_, secret)), _) => by_link(state, secret).await?,
            (None, Some((_, name))) => {
                let caller = Caller::from_request_parts(parts, state).await?;
                let mut target = match is_dump(parts) {
                    true => by_name_for_dump(state, &caller, name).await?,
                    false => by_name(state, &caller, name).await?,
                };
                target.base = format!("/lists/{}", encode_path_segment(name));
                target
            }
            (None, None) => {
                let Params(query) = Params::<ListParam>::from_request_parts(parts, state).await?;
                let name = query.list.ok_or_else(|| {
                    ApiError::bad_parameter("missing_parameter", "missing query parameter \"list\"")
                })?;
                let caller = Caller::from_request_parts(parts, state).await?;
                by_name(state, &caller, &name).await?
            }
        };
        if target.role == Some(Role::Read) && !is_safe(&parts.method) {
            return Err(ApiError::forbidden(
                "read_only",
                "you may read this list but not change it",
            ));
        }
        Ok(target)
    }
}

async fn by_link(state: &AppState, secret: &str) -> Result<ListTarget, ApiError> {
    let resolved = state.accounts.link(secret).await?;
    let Resolved { key, role } = resolved.ok_or_else(ApiError::list_not_found)?;
    Ok(ListTarget {
        key,
        role,
        base: format!("/s/{}", encode_path_segment(secret)),
        caller: None,
    })
}

/// Whether the request is an export or import of one list (`/lists/{list}/dump`).
fn is_dump(parts: &Parts) -> bool {
    let route = parts.extensions.get::<MatchedPath>();
    route.is_some_and(|route| route.as_str() == "/lists/{list}/dump")
}

/// `LIST` or `OWNER:LIST` for an export or import: an admin may move any user's list (so a
/// whole server moves with its owners, PRODUCT.md "Operations"); anyone else has their usual
/// rights. This route, and only this one, widens what an admin reaches.
async fn by_name_for_dump(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ListTarget, ApiError> {
    let (Caller::User { principal }, Some((owner, list))) = (caller, name.split_once(':')) else {
        return by_name(state, caller, name).await;
    };
    if !principal.admin {
        return by_name(state, caller, name).await;
    }
    let owner = owner_name(owner)?;
    let list = ListName::parse(list)?;
    let key = state
        .accounts
        .owned_key(owner.as_str(), &list)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "user_not_found",
                format!("no user {owner} here; create the account (`todo user add {owner}`) first"),
            )
        })?;
    Ok(ListTarget {
        key,
        role: None,
        base: String::new(),
        caller: Some(principal.clone()),
    })
}

/// The `OWNER` of `OWNER:LIST`: a bad name is a bad list name (400), a name mixing scripts
/// a 422, as for list names.
fn owner_name(owner: &str) -> Result<UserName, ApiError> {
    UserName::parse(owner).map_err(|error| match error {
        AccountError::MixedScripts(_) => ApiError::from(error),
        _ => ApiError::bad_parameter("invalid_list_name", error.to_string()),
    })
}

/// `LIST` or `OWNER:LIST` for `caller`.
async fn by_name(state: &AppState, caller: &Caller, name: &str) -> Result<ListTarget, ApiError> {
    let (owner, list) = match name.split_once(':') {
        Some((owner, list)) => (Some(owner_name(owner)?), ListName::parse(list)?),
        None => (None, ListName::parse(name)?),
    };
    let base = String::new();
    match caller {
        Caller::Open if owner.is_some() => Err(ApiError::list_not_found()),
        Caller::Open => Ok(ListTarget {
            key: list,
            role: None,
            base,
            caller: None,
        }),
        Caller::User { principal } => {
            let owner = owner.as_ref().map(UserName::as_str);
            let resolved = state.accounts.resolve(principal, owner, &list).await?;
            let Resolved { key, role } = resolved.ok_or_else(ApiError::list_not_found)?;
            Ok(ListTarget {
                key,
                role,
                base,
                caller: Some(principal.clone()),
            })
        }
    }
}

/// The `{id}` of an entry route, validated.
pub struct EntryIdParam(pub EntryId);

impl<S: Send + Sync> FromRequestParts<S> for EntryIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<EntryIdParam, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "invalid_path", rejection.body_text())
            })?;
        let (_, id) = params
            .iter()
            .find(|(name, _)| *name == "id")
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "route has no id",
                )
            })?;
        Ok(EntryIdParam(EntryId::parse(id)?))
    }
}
