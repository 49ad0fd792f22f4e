//! A client of a running server's JSON API, used by the `todo` command's client subcommands.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use anyhow::Context;

use crate::accounts::{Role, UserName};
use crate::list::{EntryId, ListName};
use crate::web::accounts::{
    LinkBody, LoginBody, MemberBody, NewTokenBody, RoleBody, TokenBody, TokenRequestBody,
};
use crate::web::body::{DumpBody, EntryBody, ImportedBody, ListsBody};
use crate::web::encode_path_segment;
use crate::web::error::ErrorBody;

/// How long an event stream may stay open: for ever, in effect.
const STREAM_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long the client waits for a server before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No server answered at this address.
    #[error("cannot reach the server at {server}: {reason}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{message} ({status})")]
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// The server's error code, such as `invalid_date`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server's answer could not be read.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

/// A connection to one server; clones share its connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

/// A list as the client names it: `LIST`, or `OWNER:LIST` for a list shared with the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRef(String);

impl ListRef {
    /// Validates both parts of `text`, so a bad name fails here, not on the server.
    pub fn parse(text: &str) -> anyhow::Result<ListRef> {
        match text.split_once(':') {
            Some((owner, list)) => {
                UserName::parse(owner)?;
                ListName::parse(list)?;
            }
            None => {
                ListName::parse(text)?;
            }
        }
        Ok(ListRef(text.to_owned()))
    }

    fn path(&self) -> String {
        format!("/lists/{}", encode_path_segment(&self.0))
    }
}

impl std::fmt::Display for ListRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which entries `entries` asks for: every filter given applies (`GET .../entries`).
#[derive(Debug, Default)]
pub struct EntriesFilter {
    /// Only those on this date.
    pub date: Option<String>,
    /// Only those on this date or later.
    pub from: Option<String>,
    /// Only those on this date or earlier.
    pub to: Option<String>,
    /// Only done ones, or only open ones.
    pub done: Option<bool>,
}

/// `server` with a scheme (`http://` when it has none) and no trailing slash: the form the
/// credentials file is keyed by.
pub fn server_url(server: &str) -> String {
    let server = server.trim_end_matches('/');
    match server.contains("://") {
        true => server.to_owned(),
        false => format!("http://{server}"),
    }
}

impl Client {
    /// A client of the server at `server`, such as `https://todo.example:5454` (see
    /// `server_url`), sending `token` as a bearer token, and trusting `ca_cert` (a PEM file)
    /// besides the usual roots, for a server with its own certificate.
    pub fn new(
        server: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "{} holds no PEM certificate",
                path.display()
            );
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build()?;
        Ok(Client {
            http,
            server: server_url(server),
            token,
        })
    }

    /// Adds an entry and returns it.
    pub async fn add(
        &self,
        list: &ListRef,
        date: &str,
        title: &str,
    ) -> Result<EntryBody, ClientError> {
        let request = self
            .request(Method::POST, &entries_path(list))
            .json(&json!({"date": date, "title": title}));
        self.send(request).await
    }

    /// Reads entries.
    pub async fn entries(
        &self,
        list: &ListRef,
        filter: &EntriesFilter,
    ) -> Result<Vec<EntryBody>, ClientError> {
        let mut request = self.request(Method::GET, &entries_path(list));
        for (name, value) in [
            ("date", &filter.date),
            ("from", &filter.from),
            ("to", &filter.to),
        ] {
            if let Some(value) = value {
                request = request.query(&[(name, value)]);
            }
        }
        if let Some(done) = filter.done {
            request = request.query(&[("done", done)]);
        }
        self.send(request).await
    }

    /// One entry.
    pub async fn entry(&self, list: &ListRef, id: EntryId) -> Result<EntryBody, ClientError> {
        self.send(self.request(Method::GET, &entry_path(list, id)))
            .await
    }

    /// Changes some fields of an entry and returns it.
    pub async fn update(
        &self,
        list: &ListRef,
        id: EntryId,
        changes: Value,
    ) -> Result<EntryBody, ClientError> {
        let request = self
            .request(Method::PATCH, &entry_path(list, id))
            .json(&changes);
        self.send(request).await
    }

    /// Deletes an entry.
    pub async fn delete(&self, list: &ListRef, id: EntryId) -> Result<(), ClientError> {
        let response = self
            .execute(self.request(Method::DELETE, &entry_path(list, id)))
            .await?;
        drop(response);
        Ok(())
    }

    /// Deletes a list with all its entries.
    pub async fn delete_list(&self, list: &ListRef) -> Result<(), ClientError> {
        let response = self
            .execute(self.request(Method::DELETE, &list.path()))
            .await?;
        drop(response);
        Ok(())
    }

    /// The whole list with its id counter and version, for an export.
    pub async fn dump(&self, list: &ListRef) -> Result<DumpBody, ClientError> {
        let path = format!("{}/dump", list.path());
        self.send(self.request(Method::GET, &path)).await
    }

    /// Imports an exported list, keeping its ids (see `PUT /lists/{list}/dump`).
    pub async fn import(
        &self,
        list: &ListRef,
        dump: &DumpBody,
    ) -> Result<ImportedBody, ClientError> {
        let path = format!("{}/dump", list.path());
        self.send(self.request(Method::PUT, &path).json(dump)).await
    }

    /// Names of every list holding entries, following the pages; with `all` (admins only),
    /// every list on the server as `OWNER:LIST`, emptied ones included (`GET /lists?all=true`).
    pub async fn lists(&self, all: bool) -> Result<Vec<String>, ClientError> {
        let mut names = Vec::new();
        let mut after = String::new();
        loop {
            let request = self
                .request(Method::GET, "/lists")
                .query(&[("after", after.as_str()), ("limit", "1000")])
                .query(&[("all", all)]);
            let page: ListsBody = self.send(request).await?;
            names.extend(page.lists);
            match page.next {
                Some(next) => after = next,
                None => return Ok(names),
            }
        }
    }

    /// Logs in; the answer holds the session token.
    pub async fn login(&self, user: &str, password: &str) -> Result<NewTokenBody, ClientError> {
        let body = LoginBody {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        self.send(self.request(Method::POST, "/auth/login").json(&body))
            .await
    }

    /// Revokes the token this client sends.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.execute(self.request(Method::POST, "/auth/logout"))
            .await
            .map(drop)
    }

    /// Makes an API token.
    pub async fn create_token(
        &self,
        name: &str,
        expires_at: Option<String>,
    ) -> Result<NewTokenBody, ClientError> {
        let body = TokenRequestBody {
            name: name.to_owned(),
            expires_at,
        };
        self.send(self.request(Method::POST, "/tokens").json(&body))
            .await
    }

    /// The caller's API tokens.
    pub async fn tokens(&self) -> Result<Vec<TokenBody>, ClientError> {
        self.send(self.request(Method::GET, "/tokens")).await
    }

    /// Revokes one of the caller's tokens.
    pub async fn revoke_token(&self, id: i64) -> Result<(), ClientError> {
        let path = format!("/tokens/{id}");
        self.execute(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// Gives `user` a role in `list`.
    pub async fn share(
        &self,
        list: &ListRef,
        user: &str,
        role: Role,
    ) -> Result<MemberBody, ClientError> {
        let path = format!("{}/members/{}", list.path(), encode_path_segment(user));
        self.send(self.request(Method::PUT, &path).json(&RoleBody { role }))
            .await
    }

    /// Takes `user`'s role in `list` away.
    pub async fn unshare(&self, list: &ListRef, user: &str) -> Result<(), ClientError> {
        let path = format!("{}/members/{}", list.path(), encode_path_segment(user));
        self.execute(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// The members of `list`.
    pub async fn members(&self, list: &ListRef) -> Result<Vec<MemberBody>, ClientError> {
        let path = format!("{}/members", list.path());
        self.send(self.request(Method::GET, &path)).await
    }

    /// Makes a share link to `list`; its `path` is relative to the server.
    pub async fn create_link(&self, list: &ListRef, role: Role) -> Result<LinkBody, ClientError> {
        let path = format!("{}/links", list.path());
        self.send(self.request(Method::POST, &path).json(&RoleBody { role }))
            .await
    }

    /// The share links of `list`.
    pub async fn links(&self, list: &ListRef) -> Result<Vec<LinkBody>, ClientError> {
        let path = format!("{}/links", list.path());
        self.send(self.request(Method::GET, &path)).await
    }

    /// Revokes a share link of `list`.
    pub async fn revoke_link(&self, list: &ListRef, id: i64) -> Result<(), ClientError> {
        let path = format!("{}/links/{id}", list.path());
        self.execute(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// Opens `list`'s event stream, resuming after version `after` if given.
    pub async fn events(&self, list: &ListRef, after: Option<u64>) -> Result<Events, ClientError> {
        let path = format!("{}/events", list.path());
        // A stream has no end, so no overall timeout; only connecting is bounded.
        let mut request = self.request(Method::GET, &path).timeout(STREAM_TIMEOUT);
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        let response = self.execute(request).await?;
        Ok(Events {
            response,
            buffer: String::new(),
        })
    }

    /// `GET /healthz`: the server's status (`ok`) when it and its storage answer.
    pub async fn health(&self) -> Result<String, ClientError> {
        let body: Value = self.send(self.request(Method::GET, "/healthz")).await?;
        Ok(body["status"].as_str().unwrap_or("ok").to_owned())
    }

    /// The server's URL, as the credentials file keys it.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.server));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = self.execute(request).await?;
        response
            .json()
            .await
            .map_err(|error| ClientError::Protocol(error.to_string()))
    }

    async fn execute(&self, request: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|error| self.unreachable(error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Err(ClientError::Server {
                status,
                code: body.error.code.into_owned(),
                message: body.error.message,
            }),
            Err(_) => Err(ClientError::Protocol(format!("{status}: {text}"))),
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> ClientError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = cause.to_string();
            source = cause.source();
        }
        ClientError::Unreachable {
            server: self.server.clone(),
            reason,
        }
    }
}

/// One Server-Sent Event of a list's stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerEvent {
    /// `snapshot`, `added`, `updated`, `deleted` or `cleared`.
    pub event: String,
    /// The list's version after it.
    pub id: u64,
    /// Its JSON data.
    pub data: Value,
}

/// An open event stream.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event (heartbeat comments skipped); `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<ServerEvent>, ClientError> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block)? {
                    return Ok(Some(event));
                }
                continue;
            }
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|error| ClientError::Protocol(error.to_string()))?;
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            let text = std::str::from_utf8(&chunk)
                .map_err(|_| ClientError::Protocol("the event stream is not UTF-8".into()))?;
            self.buffer.push_str(text);
        }
    }
}

/// One block of `field: value` lines; `None` for a comment alone.
fn parse_event(block: &str) -> Result<Option<ServerEvent>, ClientError> {
    let (mut event, mut id, mut data) = (None, None, String::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = value.parse().ok(),
            "data" => data.push_str(value),
            _ => {}
        }
    }
    let (Some(event), Some(id)) = (event, id) else {
        return Ok(None);
    };
    let data = serde_json::from_str(&data)
        .map_err(|error| ClientError::Protocol(format!("event data: {error}")))?;
    Ok(Some(ServerEvent { event, id, data }))
}

fn entries_path(list: &ListRef) -> String {
    format!("{}/entries", list.path())
}

fn entry_path(list: &ListRef, id: EntryId) -> String {
    format!("{}/{id}", entries_path(list))
}
