//! The HTTP API: `router(state)` builds every route; `serve` runs it on a bound listener.
//!
//! Only this module knows about HTTP and JSON. Handlers validate input into the domain's types,
//! send one command through the cache, and turn the reply into a response.

pub mod access_log;
pub mod accounts;
mod admit;
pub mod assets;
pub mod auth;
pub mod body;
pub mod book;
pub mod calendar;
pub mod connections;
pub mod edge;
pub mod error;
pub mod events;
pub mod extract;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod tls;
pub mod todo_backend;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{BoxError, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use metrics_exporter_prometheus::PrometheusHandle;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{Any, CorsLayer};

use admit::AdmitLayer;
use connections::Connections;
use edge::Edge;

use crate::accounts::{Accounts, LoginLimiter};
use crate::cache::Cache;
use crate::config::WebConfig;

use error::ApiError;

/// Largest request body; a bigger one gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body of an import (`PUT .../dump`), which carries a whole list: about 16,000
/// entries with 1,000-character titles.
pub const MAX_DUMP_BYTES: usize = 16 * 1024 * 1024;
/// Largest request head (request line and headers); a bigger one gets 414 or 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a client may take to send a request's head before the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight before it closes their connections.
pub const GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// What every handler can reach: one `Arc`, since axum clones the state for each request
/// (and each extractor that reads it), and cloning and dropping the fields themselves was
/// 13 % of a read's CPU in a profile (a `CancellationToken` clone takes a lock).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of `AppState`.
pub struct Shared {
    /// The list actors.
    pub cache: Cache,
    /// Users, tokens, members and share links.
    pub accounts: Accounts,
    /// Failed logins, per user name and address.
    pub limiter: Arc<LoginLimiter>,
    /// How the server presents itself to authentication.
    pub auth: AuthConfig,
    /// Renders the process's Prometheus recorder.
    pub metrics: PrometheusHandle,
    /// Event streams open now, server-wide.
    pub subscribers: Arc<AtomicUsize>,
    /// Most event streams open at once (`--max-subscribers`).
    pub max_subscribers: usize,
    /// Cancelled when shutdown starts, so event streams end and their connections close.
    pub stopping: CancellationToken,
    /// How long a request's body may take to arrive (`--body-timeout`).
    pub body_timeout: Duration,
}

/// The web server's settings that authentication depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthConfig {
    /// Whether `/metrics` is readable by every signed-in user, not only admins.
    pub metrics_public: bool,
    /// Whether the server speaks HTTPS: cookies get `Secure`, URLs `https://`.
    pub tls: bool,
    /// Whether, without accounts, the server answers any host name (`--insecure-open`), not
    /// only `localhost` and loopback addresses.
    pub insecure_open: bool,
}

impl AppState {
    /// State for handlers over `cache` and `accounts`, installing the metrics recorder if it
    /// is not yet.
    pub fn new(cache: Cache, accounts: Accounts, auth: AuthConfig, config: &WebConfig) -> AppState {
        AppState(Arc::new(Shared {
            cache,
            accounts,
            limiter: Arc::default(),
            auth,
            metrics: metrics::handle(),
            subscribers: Arc::default(),
            max_subscribers: config.max_subscribers,
            stopping: CancellationToken::new(),
            body_timeout: config.body_timeout,
        }))
    }
}

/// Every route, with authentication, CORS, limits, the access log, metrics and JSON errors.
pub fn router(state: AppState, config: &WebConfig) -> Edge {
    let routes = Router::new()
        .route("/auth/login", post(accounts::login))
        .route("/auth/logout", post(accounts::logout))
        .route("/auth/me", get(accounts::me))
        .route(
            "/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route("/users/{name}", delete(accounts::delete_user))
        .route(
            "/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route("/tokens/{id}", delete(accounts::revoke_token))
        .route("/lists/{list}/members", get(accounts::list_members))
        .route(
            "/lists/{list}/members/{user}",
            put(accounts::put_member).delete(accounts::delete_member),
        )
        .route(
            "/lists/{list}/links",
            get(accounts::list_links).post(accounts::create_link),
        )
        .route("/lists/{list}/links/{id}", delete(accounts::revoke_link))
        .route("/lists/{list}/events", get(events::list_events))
        .route("/s/{secret}/events", get(events::list_events))
        .route("/lists/{list}/calendar.ics", get(calendar::calendar))
        .route("/s/{secret}/calendar.ics", get(calendar::calendar))
        .route("/lists", get(handlers::list_lists))
        .route("/lists/{list}", delete(handlers::delete_list))
        .route("/lists/{list}/dump", dump_routes())
        .route(
            "/lists/{list}/entries",
            get(handlers::list_entries).post(handlers::add_entry),
        )
        .route(
            "/lists/{list}/entries/{id}",
            get(handlers::get_entry)
                .patch(handlers::update_entry)
                .delete(handlers::delete_entry),
        )
        .route(
            "/lists/{list}/todos",
            get(todo_backend::list_todos)
                .post(todo_backend::create_todo)
                .delete(todo_backend::delete_todos),
        )
        .route(
            "/lists/{list}/todos/{id}",
            get(todo_backend::get_todo)
                .patch(todo_backend::update_todo)
                .delete(todo_backend::delete_todo),
        )
        .route("/s/{secret}", get(assets::link_page))
        .route("/s/{secret}/dump", dump_routes())
        .route(
            "/s/{secret}/entries",
            get(handlers::list_entries).post(handlers::add_entry),
        )
        .route(
            "/s/{secret}/entries/{id}",
            get(handlers::get_entry)
                .patch(handlers::update_entry)
                .delete(handlers::delete_entry),
        )
        .route(
            "/s/{secret}/todos",
            get(todo_backend::list_todos)
                .post(todo_backend::create_todo)
                .delete(todo_backend::delete_todos),
        )
        .route(
            "/s/{secret}/todos/{id}",
            get(todo_backend::get_todo)
                .patch(todo_backend::update_todo)
                .delete(todo_backend::delete_todo),
        )
        .route("/add_entry", post(book::add_entry))
        .route("/entries", get(book::entries))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi));
    let routes = assets::paths().fold(routes, |routes, path| {
        routes.route(path, get(assets::serve))
    });
    let routes = routes
        // After every route: it applies to the routes registered before it.
        .method_not_allowed_fallback(method_not_allowed)
        // Route layers run after routing, for requests that matched a route, so that even a
        // refusal (400, 401, 403, 408, 413, 415) is logged and counted under its route.
        .route_layer(AdmitLayer::new(state.clone()))
        .fallback(metrics::no_route)
        .with_state(state);
    edge(routes, config)
}

/// `routes` behind the edge every answer passes: CORS, the cap on requests in flight, the
/// request timeout, the request id, the access log and metrics, the browser headers.
pub fn edge(routes: Router, config: &WebConfig) -> Edge {
    Edge::new(routes, cors(), config.max_in_flight, config.request_timeout)
}

/// Export and import of a whole list. `admit::Admit` has read the body within the route's
/// limit already, so axum's own limit, lower than an import's, is lifted here: one place
/// decides how large a body may be.
fn dump_routes() -> MethodRouter<AppState> {
    get(handlers::export_list)
        .put(handlers::import_list)
        .layer(DefaultBodyLimit::disable())
}

/// Any origin may call the API (the Todo-Backend clients are pages of other sites); a token,
/// not a cookie, is what lets a cross-site call in. The answers are the same for every origin
/// and preflight, so they carry no `Vary`.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .vary([])
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("idempotency-key"),
        ])
}

/// The answer to a known path with a method it does not take; axum adds the `Allow` header.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Serves `edge` on `listener` (over TLS when `tls` is set) until `shutdown` resolves, then
/// stops accepting and waits for the requests in flight to finish.
///
/// hyper is driven directly rather than through `axum::serve`, to set a header read timeout
/// (which needs a timer, or it is silently off), a bound on the request head, and TLS.
pub async fn serve(
    listener: TcpListener,
    edge: Edge,
    tls: Option<TlsAcceptor>,
    connections: Connections,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(error) => {
                    // Usually out of file descriptors: wait for connections to close.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = connections.admit() else {
            if let Some(refusal) = connections.refusal() {
                tokio::spawn(connections::refuse(stream, tls.clone(), refusal));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = edge.for_peer(peer);
        let connection = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            _permit: permit,
        };
        match &tls {
            None => {
                tokio::spawn(connection.serve(TokioIo::new(stream), service));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tokio::spawn(async move {
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => connection.serve(TokioIo::new(stream), service).await,
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(GRACEFUL_SHUTDOWN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
}

/// What one accepted connection needs to be served and to take part in graceful shutdown.
struct Connection {
    builder: http1::Builder,
    watcher: Watcher,
    /// Its place under the connection cap, given back when the connection ends.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve<I, S>(self, io: I, service: S)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: hyper::service::HttpService<Incoming> + Send,
        S::Future: Send + 'static,
        S::ResBody: 'static,
        <S::ResBody as hyper::body::Body>::Error: Into<BoxError>,
    {
        let connection = self.builder.serve_connection(io, service);
        if let Err(error) = self.watcher.watch(connection).await {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// Query flags of the write routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// `true` makes the write a cast: 202 once queued, not yet stored; a crash may lose it.
    #[serde(rename = "async")]
    is_async: Option<bool>,
}

impl WriteParams {
    fn is_async(&self) -> bool {
        self.is_async == Some(true)
    }
}

/// The request's `Idempotency-Key`, if it has one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_IDEMPOTENCY_KEY_BYTES).contains(&key.len()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Characters escaped in a path segment: all but letters, digits and `-_.~`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` escaped for use as one segment of a URL path.
pub fn encode_path_segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}
