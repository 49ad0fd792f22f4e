//! The HTTP target: a running server, driven over keep-alive HTTP/1.1 connections.
//!
//! Each simulated client owns one connection (as `wrk` does), so no pool or lock sits between
//! clients. Writes per commit come from the server's `/metrics` before and after the run, and
//! its memory from `/proc/PID/status` when `--pid` is given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::report::{CommitReport, ErrorKind, Report};
use super::workload::{self, DATES, Op, OpKind, Workload};
use super::{Api, BenchConfig, HttpConfig, Run, Session, Stopper, process_memory};
use crate::client::{Client, ListRef};

/// How long to wait for a server to commit its queued casts after a write-async run.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the server is and the parts of every request that never change.
struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    /// `Bearer TOKEN`, for a server with accounts.
    authorization: Option<HeaderValue>,
    /// For `https://`: the TLS client and the name the certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    api: Api,
    /// List names, ready for a path or a query (`bench-N` needs no escaping).
    lists: Vec<String>,
    /// The book API's `title` parameter, escaped.
    title_query: String,
    /// The JSON API's request body for each date.
    json_bodies: Vec<Bytes>,
}

impl Endpoint {
    async fn resolve(target: &HttpConfig, n_lists: usize) -> anyhow::Result<Endpoint> {
        let url = &target.url;
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid URL {url:?}"))?;
        let authority = uri.authority().context("the URL has no host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let (tls, default_port) = match uri.scheme_str() {
            Some("http") => (None, 80),
            Some("https") => {
                let name = ServerName::try_from(host.to_owned())
                    .with_context(|| format!("{host:?} is not a TLS server name"))?;
                (Some((tls_connector(target.ca_cert.as_deref())?, name)), 443)
            }
            _ => anyhow::bail!("expected an http:// or https:// URL, got {url:?}"),
        };
        let port = authority.port_u16().unwrap_or(default_port);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} has no address"))?;
        let json_bodies = DATES
            .iter()
            .map(|date| {
                let body = serde_json::json!({ "date": date, "title": workload::TITLE });
                Bytes::from(body.to_string())
            })
            .collect();
        let authorization = target
            .token
            .as_ref()
            .map(|token| HeaderValue::from_str(&format!("Bearer {token}")))
            .transpose()
            .context("the token is not a valid header value")?;
        Ok(Endpoint {
            addr,
            host: HeaderValue::from_str(authority.as_str())?,
            authorization,
            tls,
            api: target.api,
            lists: (0..n_lists).map(workload::list_name).collect(),
            title_query: utf8_percent_encode(workload::TITLE, NON_ALPHANUMERIC).to_string(),
            json_bodies,
        })
    }

    /// The request for `op`, and the status that means success.
    fn request(&self, op: Op) -> (Request<Full<Bytes>>, StatusCode) {
        let list = &self.lists[op.list];
        let date = DATES[op.date];
        let title = &self.title_query;
        let no_body = Bytes::new;
        let (method, path, body, expected) = match (self.api, op.kind) {
            (_, OpKind::Healthz) => (
                Method::GET,
                "/healthz".to_owned(),
                no_body(),
                StatusCode::OK,
            ),
            (Api::Book, OpKind::Read) => (
                Method::GET,
                format!("/entries?list={list}&date={date}"),
                no_body(),
                StatusCode::OK,
            ),
            (Api::Book, OpKind::Write) => (
                Method::POST,
                format!("/add_entry?list={list}&date={date}&title={title}"),
                no_body(),
                StatusCode::OK,
            ),
            (Api::Book, OpKind::WriteAsync) => (
                Method::POST,
                format!("/add_entry?list={list}&date={date}&title={title}&async=true"),
                no_body(),
                StatusCode::ACCEPTED,
            ),
            (Api::Json, OpKind::Read) => (
                Method::GET,
                format!("/lists/{list}/entries?date={date}"),
                no_body(),
                StatusCode::OK,
            ),
            (Api::Json, OpKind::Write) => (
                Method::POST,
                format!("/lists/{list}/entries"),
                self.json_bodies[op.date].clone(),
                StatusCode::CREATED,
            ),
            (Api::Json, OpKind::WriteAsync) => (
                Method::POST,
                format!("/lists/{list}/entries?async=true"),
                self.json_bodies[op.date].clone(),
                StatusCode::ACCEPTED,
            ),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = Uri::try_from(path).expect("benchmark paths are valid URIs");
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        if self.api == Api::Json && op.kind != OpKind::Read {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        (request, expected)
    }

    /// A new keep-alive connection.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ErrorKind> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|error| ErrorKind::from(format!("connect: {}", error.kind())))?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => handshake(stream).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|error| ErrorKind::from(format!("TLS: {error}")))?;
                handshake(stream).await
            }
        }
    }

    /// Sends one GET on a fresh connection and returns the body.
    async fn get(&self, path: &'static str) -> anyhow::Result<Bytes> {
        let mut sender = self.connect().await.map_err(anyhow::Error::msg)?;
        let mut request = Request::get(path)
            .header(HOST, self.host.clone())
            .body(Full::new(Bytes::new()))?;
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(AUTHORIZATION, authorization.clone());
        }
        let response = sender.send_request(request).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        Ok(response.into_body().collect().await?.to_bytes())
    }
}

/// An HTTP/1.1 connection over `io`, driven by a task of its own.
async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, ErrorKind>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|error| ErrorKind::from(format!("handshake: {error}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A TLS client trusting the usual public roots, and `ca_cert` (a PEM file) if given.
fn tls_connector(ca_cert: Option<&std::path::Path>) -> anyhow::Result<TlsConnector> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots
                .add(certificate.with_context(|| format!("{} is not PEM", path.display()))?)
                .with_context(|| format!("{} is not a usable certificate", path.display()))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One simulated client: one connection, reopened if the server closes it.
struct HttpSession {
    endpoint: Arc<Endpoint>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpSession {
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ErrorKind> {
        if self.sender.is_none() {
            self.sender = Some(self.endpoint.connect().await?);
        }
        let sender = self.sender.as_mut().expect("connected just above");
        if sender.ready().await.is_err() {
            self.sender = None;
            return Err("connection closed".into());
        }
        Ok(self.sender.as_mut().expect("checked just above"))
    }
}

impl Session for HttpSession {
    async fn execute(&mut self, op: Op) -> Result<(), ErrorKind> {
        let (request, expected) = self.endpoint.request(op);
        let sender = self.ready_sender().await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                self.sender = None;
                return Err(format!("request: {error}").into());
            }
        };
        let status = response.status();
        // Read the body to its end, without keeping it, so the connection can be reused.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Err(error) = frame {
                self.sender = None;
                return Err(format!("response body: {error}").into());
            }
        }
        match status == expected {
            true => Ok(()),
            false => Err(format!("HTTP {}", status.as_u16()).into()),
        }
    }
}

/// The server's counters that the report needs, from `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct ServerCounters {
    commits: u64,
    writes_committed: u64,
    /// Seconds spent committing, summed over workers.
    commit_secs: f64,
    /// Messages waiting in mailboxes and database queues.
    queued: u64,
}

async fn server_counters(endpoint: &Endpoint) -> anyhow::Result<ServerCounters> {
    let text = endpoint.get("/metrics").await?;
    let text = std::str::from_utf8(&text).context("/metrics is not UTF-8")?;
    Ok(ServerCounters {
        commits: metric(text, "todo_commits_total"),
        writes_committed: metric(text, "todo_writes_committed_total"),
        commit_secs: metric_f64(text, "todo_commit_seconds_sum"),
        queued: metric(text, "todo_mailbox_depth") + metric(text, "todo_database_queue_depth"),
    })
}

/// The value of an unlabelled metric in Prometheus text, or 0 when it is absent.
fn metric_f64(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// An integer metric, such as a counter.
fn metric(text: &str, name: &str) -> u64 {
    metric_f64(text, name) as u64
}

/// Waits until the server's mailboxes and database queues are empty; returns how long it took.
async fn drain(endpoint: &Endpoint) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < DRAIN_TIMEOUT {
        if server_counters(endpoint).await?.queued == 0 {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the server still had queued work after {DRAIN_TIMEOUT:?}")
}

/// How often the watchdog checks that the server still takes connections.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long one check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Checks failed in a row after which the server counts as gone.
const MISSED_PROBES: u32 = 4;

/// Refuses a server that holds lists of its users, unless `--yes`: the benchmark writes
/// thousands of entries there (into lists of its own, `bench-N`, but on their server).
async fn check_target(client: &Client, target: &HttpConfig) -> anyhow::Result<()> {
    if target.yes {
        return Ok(());
    }
    let lists = client
        .lists(false)
        .await
        .with_context(|| format!("asking {} for its lists", target.url))?;
    if let Some(other) = lists
        .iter()
        .find(|name| !name.starts_with(workload::LIST_PREFIX))
    {
        anyhow::bail!(
            "{} already holds lists ({other:?} among them), and todo bench writes thousands of \
             entries there (into lists named {}N); run it against a server of its own, or \
             pass --yes",
            target.url,
            workload::LIST_PREFIX
        );
    }
    Ok(())
}

/// Deletes the benchmark's lists, `bench-1` to `bench-N`.
async fn remove_lists(client: &Client, n_lists: usize) -> anyhow::Result<()> {
    for index in 0..n_lists {
        let list = ListRef::parse(&workload::list_name(index))?;
        client.delete_list(&list).await.with_context(|| {
            format!("removing the benchmark's list {list} (--keep leaves them)")
        })?;
    }
    Ok(())
}

/// Ends the run when the server stops taking connections (it crashed, or was stopped):
/// figures measured against a server that is gone mean nothing. Returns `true` then.
async fn watchdog(endpoint: Arc<Endpoint>, stopper: Stopper) -> bool {
    let mut missed = 0;
    while missed < MISSED_PROBES {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let probe = tokio::time::timeout(PROBE_TIMEOUT, endpoint.connect()).await;
        missed = match probe {
            Ok(Ok(_connection)) => 0,
            _ => missed + 1,
        };
    }
    stopper.stop();
    true
}

/// Runs the load of `config` against the server at `target.url`, on lists of its own, which
/// it removes afterwards unless `--keep`.
pub async fn load(target: &HttpConfig, config: &BenchConfig) -> anyhow::Result<Report> {
    let n_lists = config.load.lists.max(1);
    let client = Client::new(&target.url, target.token.clone(), target.ca_cert.as_deref())?;
    check_target(&client, target).await?;
    let endpoint = Arc::new(Endpoint::resolve(target, n_lists).await?);
    // Every connection is opened before the clients start, so setup is not measured.
    let mut sessions = Vec::with_capacity(config.load.clients);
    for _ in 0..config.load.clients.max(1) {
        let sender = endpoint
            .connect()
            .await
            .map_err(|error| anyhow::anyhow!("connecting to {}: {error}", target.url))?;
        sessions.push(HttpSession {
            endpoint: endpoint.clone(),
            sender: Some(sender),
        });
    }
    let mut run = Run::start(sessions, config);
    let watching = tokio::spawn(watchdog(endpoint.clone(), run.stopper()));
    run.warm_up(config.load.warmup).await;
    let before = server_counters(&endpoint).await;
    let (merged, elapsed) = run.finish().await?;
    watching.abort();
    if watching.await.unwrap_or(false) {
        anyhow::bail!(
            "the server at {} stopped answering during the run ({:.1} s measured): no figures",
            target.url,
            elapsed.as_secs_f64()
        );
    }
    let after = server_counters(&endpoint).await;
    let drain_secs = match config.load.workload {
        Workload::WriteAsync => Some(drain(&endpoint).await?.as_secs_f64()),
        _ => None,
    };

    let mut report = Report::new(
        target.url.clone(),
        Some(target.api),
        config,
        &merged,
        elapsed,
    );
    if let (Ok(before), Ok(after)) = (before, after) {
        report.commits = Some(CommitReport::new(
            after.commits.saturating_sub(before.commits),
            after
                .writes_committed
                .saturating_sub(before.writes_committed),
            Duration::from_secs_f64((after.commit_secs - before.commit_secs).max(0.0)),
        ));
    }
    report.drain_secs = drain_secs;
    report.memory = target.pid.and_then(|pid| process_memory(Some(pid)));
    if !target.keep {
        remove_lists(&client, n_lists).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics() {
        let text = "# TYPE todo_commits_total counter\ntodo_commits_total 42\n\
                    todo_commits_total_other 7\ntodo_mailbox_depth 3\n";
        assert_eq!(metric(text, "todo_commits_total"), 42);
        assert_eq!(metric(text, "todo_mailbox_depth"), 3);
        assert_eq!(metric(text, "todo_writes_committed_total"), 0);
    }

    #[tokio::test]
    async fn requests_match_the_apis() {
        let target = HttpConfig {
            url: "http://127.0.0.1:5454".to_owned(),
            api: Api::Book,
            pid: None,
            token: Some("todo_x".to_owned()),
            ca_cert: None,
            yes: false,
            keep: false,
        };
        let endpoint = Endpoint::resolve(&target, 3).await.unwrap();
        let op = |kind| Op {
            kind,
            list: 2,
            date: 18,
        };
        let (read, expected) = endpoint.request(op(OpKind::Read));
        assert_eq!(read.uri(), "/entries?list=bench-3&date=2018-12-19");
        assert_eq!(read.headers()[AUTHORIZATION], "Bearer todo_x");
        assert_eq!(expected, StatusCode::OK);
        let (write, _) = endpoint.request(op(OpKind::WriteAsync));
        assert_eq!(
            write.uri(),
            "/add_entry?list=bench-3&date=2018-12-19&title=some%20title&async=true"
        );
        let endpoint = Endpoint {
            api: Api::Json,
            ..endpoint
        };
        let (write, expected) = endpoint.request(op(OpKind::Write));
        assert_eq!(
            (write.method(), write.uri().path()),
            (&Method::POST, "/lists/bench-3/entries")
        );
        assert_eq!(expected, StatusCode::CREATED);
    }
}
