//! A client of a running server's JSON API, used by the `todo` command's client subcommands.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::list::{EntryId, ListName};

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

/// The JSON error body the server sends.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A connection to one server.
pub struct Client {
    http: reqwest::Client,
    server: String,
}

/// An entry as the server sends it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct EntryView {
    /// The entry id.
    pub id: u64,
    /// The date, `YYYY-MM-DD`.
    pub date: String,
    /// The title.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
    /// The client-chosen order, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
}

/// Which entries `entries` asks for.
pub enum EntriesFilter {
    /// All of them.
    All,
    /// Those on one date.
    On(String),
    /// Those from one date to another, both included.
    Between(String, String),
}

impl Client {
    /// A client of the server at `server`, such as `http://127.0.0.1:5454`; without a scheme
    /// (`localhost:5454`) it is `http://`.
    pub fn new(server: &str) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        let server = server.trim_end_matches('/');
        let server = match server.contains("://") {
            true => server.to_owned(),
            false => format!("http://{server}"),
        };
        Ok(Client { http, server })
    }

    /// Adds an entry and returns it.
    pub async fn add(
        &self,
        list: &ListName,
        date: &str,
        title: &str,
    ) -> Result<EntryView, ClientError> {
        let request = self
            .request(Method::POST, &entries_path(list))
            .json(&json!({"date": date, "title": title}));
        self.send(request).await
    }

    /// Reads entries.
    pub async fn entries(
        &self,
        list: &ListName,
        filter: &EntriesFilter,
    ) -> Result<Vec<EntryView>, ClientError> {
        let request = self.request(Method::GET, &entries_path(list));
        let request = match filter {
            EntriesFilter::All => request,
            EntriesFilter::On(date) => request.query(&[("date", date)]),
            EntriesFilter::Between(from, to) => request.query(&[("from", from), ("to", to)]),
        };
        self.send(request).await
    }

    /// Changes some fields of an entry and returns it.
    pub async fn update(
        &self,
        list: &ListName,
        id: EntryId,
        changes: Value,
    ) -> Result<EntryView, ClientError> {
        let request = self
            .request(Method::PATCH, &entry_path(list, id))
            .json(&changes);
        self.send(request).await
    }

    /// Deletes an entry.
    pub async fn delete(&self, list: &ListName, id: EntryId) -> Result<(), ClientError> {
        let response = self
            .execute(self.request(Method::DELETE, &entry_path(list, id)))
            .await?;
        drop(response);
        Ok(())
    }

    /// Names of every list holding entries, following the pages.
    pub async fn lists(&self) -> Result<Vec<String>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            lists: Vec<String>,
            next: Option<String>,
        }
        let mut names = Vec::new();
        let mut after = String::new();
        loop {
            let request = self
                .request(Method::GET, "/lists")
                .query(&[("after", after.as_str()), ("limit", "1000")]);
            let page: Page = self.send(request).await?;
            names.extend(page.lists);
            match page.next {
                Some(next) => after = next,
                None => return Ok(names),
            }
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.server))
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
                code: body.error.code,
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

fn entries_path(list: &ListName) -> String {
    format!(
        "/lists/{}/entries",
        crate::web::encode_path_segment(list.as_str())
    )
}

fn entry_path(list: &ListName, id: EntryId) -> String {
    format!("{}/{id}", entries_path(list))
}
