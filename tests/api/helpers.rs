//! The harness: `spawn_app()` starts the whole server in-process on `127.0.0.1:0` over a fresh
//! temporary data directory, and `TestApp` sends requests to it over real sockets.
//!
//! With `TODO_TEST_DATABASE_URL` set to a PostgreSQL URL, every app stores its lists in a fresh
//! database of that server instead of SQLite, so the same suite checks both backends.

use std::net::SocketAddr;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use todo::app::App;
use todo::config::Config;
use todo::database::storage::Storage;

use crate::postgres;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running server and a client for it. The data directory lives as long as the app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    /// A client that never goes through a proxy.
    pub client: reqwest::Client,
    app: App,
    /// Holds the lock file, and the SQLite database unless `database_url` is set.
    _dir: TempDir,
    /// The PostgreSQL database of this app, kept across restarts.
    database_url: Option<String>,
    /// With `TODO_TEST_ACCOUNTS` set: the token of the app's one user, which `client` and
    /// `raw` send with every request.
    pub token: Option<String>,
}

/// The environment variable that makes every app protected: one account, whose token every
/// request of the harness carries, so the suite checks that accounts change nothing else.
pub const TEST_ACCOUNTS: &str = "TODO_TEST_ACCOUNTS";

/// The environment variable that points the suite at a PostgreSQL server: a URL of a database
/// the tests may connect to as a user allowed to create databases.
pub const TEST_DATABASE_URL: &str = "TODO_TEST_DATABASE_URL";

/// Starts a server on a free port over an empty data directory, and an empty PostgreSQL
/// database when `TODO_TEST_DATABASE_URL` is set.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// `spawn_app`, with `configure` changing the configuration first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database_url = match std::env::var(TEST_DATABASE_URL) {
        Ok(admin_url) => {
            let name = postgres::unique_database_name();
            postgres::create_database_at(&admin_url, &name).await;
            Some(postgres::with_database(&admin_url, &name))
        }
        Err(_) => None,
    };
    start_in(dir, database_url, configure).await
}

/// Starts a server on a free port over `dir`, storing lists in `database_url` if given.
async fn start_in(
    dir: TempDir,
    database_url: Option<String>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::with_data_dir(dir.path());
    config.web.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.database.database_url = database_url.clone();
    configure(&mut config);
    let token = match std::env::var_os(TEST_ACCOUNTS) {
        Some(_) => {
            // Blocking, and the PostgreSQL backend brings its own runtime.
            let database = config.database.clone();
            let made = tokio::task::spawn_blocking(move || account_with_token(&database));
            Some(made.await.expect("the account is made"))
        }
        None => None,
    };
    let app = App::start(config)
        .await
        .expect("the app starts on a fresh directory");
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &token {
        let value = format!("Bearer {token}").parse().expect("a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("a reqwest client");
    TestApp {
        address: format!("http://{}", app.local_addr()),
        client,
        app,
        _dir: dir,
        database_url,
        token,
    }
}

/// The API token of the one account every app has when `TODO_TEST_ACCOUNTS` is set: the same
/// for every app (each has its own storage), so the `todo` binary run by a test can get it
/// from `TODO_TOKEN`.
pub const HARNESS_TOKEN: &str = "todo_harness-token-of-every-test-app";

/// Makes the account `tester` with `HARNESS_TOKEN` on `config`'s storage, as `todo user add`
/// and `POST /tokens` would, unless it exists (after a restart); returns the token.
pub fn account_with_token(config: &todo::config::DatabaseConfig) -> String {
    use todo::accounts::{UserName, store};
    let mut storage = Storage::open(config).expect("storage opens");
    let hash = todo::accounts::secret_hash(HARNESS_TOKEN);
    storage
        .transaction(true, |steps| -> Result<(), todo::accounts::AccountError> {
            if store::user_row(steps, "tester")?.is_some() {
                return Ok(());
            }
            let name = UserName::parse("tester")?;
            let (user, _) = store::create_user(steps, &name, "unusable", true, 0)?;
            let kind = store::TokenKind::Api;
            store::create_token(steps, user.id, kind, "test", &hash, 0, None)?;
            Ok(())
        })
        .expect("the account is stored");
    HARNESS_TOKEN.to_owned()
}

/// A response read off a raw socket: the status, the head's text, and the body.
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl TestApp {
    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    /// Stops the server, waiting for every queued write to be committed.
    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }

    /// Shuts the server down and starts a new one on the same data directory and database (and
    /// a new port).
    pub async fn restart(self) -> TestApp {
        let TestApp {
            app,
            _dir: dir,
            database_url,
            ..
        } = self;
        app.shutdown().await;
        start_in(dir, database_url, |_| {}).await
    }

    /// A request to `path` (which starts with `/`); the client adds the app's token if it
    /// has one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.send(self.request(Method::PATCH, path).json(body))
            .await
    }

    /// A request with `body` sent as is, labelled JSON.
    pub async fn send_raw_body(
        &self,
        method: Method,
        path: &str,
        body: impl Into<String>,
    ) -> Response {
        let request = self
            .request(method, path)
            .header("content-type", "application/json")
            .body(body.into());
        self.send(request).await
    }

    pub async fn send(&self, request: RequestBuilder) -> Response {
        request.send().await.expect("the server answers")
    }

    /// `GET path` answered with 200, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// `GET path` as JSON, repeated until `settled` holds (at most about 5 s): a cast shows in
    /// reads once its group commits, and reads never wait for a commit.
    pub async fn get_json_once(&self, path: &str, settled: impl Fn(&Value) -> bool) -> Value {
        let mut body = self.get_json(path).await;
        for _ in 0..1_000 {
            if settled(&body) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            body = self.get_json(path).await;
        }
        body
    }

    /// Adds an entry through the JSON API and returns it.
    pub async fn add(&self, list: &str, date: &str, title: &str) -> Value {
        let path = format!("/lists/{list}/entries");
        let response = self
            .post_json(&path, &serde_json::json!({"date": date, "title": title}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "POST {path}");
        response.json().await.expect("a JSON body")
    }

    /// The titles of every entry of `list`, in id order.
    pub async fn titles(&self, list: &str) -> Vec<String> {
        let entries = self.get_json(&format!("/lists/{list}/entries")).await;
        entries
            .as_array()
            .expect("an array")
            .iter()
            .map(|entry| entry["title"].as_str().expect("a title").to_owned())
            .collect()
    }

    /// Sends `head` (a request line and headers, without the final blank line) and `body` on a
    /// fresh connection, with `Connection: close`, and reads the whole answer. No URL
    /// normalisation happens, unlike reqwest's.
    pub async fn raw(&self, head: &str, body: &[u8]) -> RawResponse {
        let mut stream = TcpStream::connect(self.addr()).await.expect("connects");
        let authorization = match &self.token {
            Some(token) => format!("Authorization: Bearer {token}\r\n"),
            None => String::new(),
        };
        let mut request = format!(
            "{head}\r\nHost: {}\r\nConnection: close\r\n{authorization}Content-Length: {}\r\n\r\n",
            self.addr(),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        // The server may answer and close before reading everything (a request too large);
        // what counts is the answer, so a failed write is not an error here.
        let _ = stream.write_all(&request).await;
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        RawResponse {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// Asserts `response` is an error with this status and code in the JSON error shape, and returns
/// its message.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> String {
    let actual = response.status();
    let content_type = header(&response, "content-type");
    let text = response.text().await.expect("a body");
    assert_eq!(actual, status, "body: {text}");
    assert_eq!(content_type, "application/json", "body: {text}");
    error_message(&text, code)
}

/// Checks `text` is `{"error": {"code": code, "message": "..."}}` and returns the message.
pub fn error_message(text: &str, code: &str) -> String {
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|error| panic!("error body is not JSON ({error}): {text:?}"));
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 1, "only an `error` key: {text}");
    assert_eq!(body["error"]["code"], code, "body: {text}");
    assert_eq!(body["error"].as_object().unwrap().len(), 2, "body: {text}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(!message.is_empty());
    message.to_owned()
}

/// The value of a header, or `""` when it is absent.
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("a visible header").to_owned())
        .unwrap_or_default()
}
