//! `GET /lists/{list}/events`: a list's changes as Server-Sent Events, in the list's order.
//!
//! A subscriber gets `snapshot` (every entry) first, then one event per committed change
//! (`added`, `updated`, `deleted`, `cleared`), each with the list's version after it as `id`.
//! With `Last-Event-ID` it gets the changes it missed instead of a snapshot, when the list
//! still keeps them. A subscriber that falls behind, or whose list was reloaded from storage,
//! gets a fresh snapshot. Comments keep idle connections alive through proxies. A stream
//! asks every few seconds (`ACCESS_RECHECK`) whether its caller may still read the list, and
//! ends when not.
//!
//! The stream is written by hand rather than with axum's `Sse`, so that each change is
//! rendered once into `Bytes` (kept in its `Published`) and every subscriber's connection
//! sends the same bytes: one list followed by a thousand subscribers costs one rendering per
//! change, and a reference count per subscriber.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::list::{Entry, ListName};
use crate::lists::feed::{FeedChange, Published};
use crate::lists::{Start, Subscription};

use super::AppState;
use super::auth::{self, Caller, ListTarget};
use super::body::EntryBody;
use super::error::{ApiError, ErrorBody};

/// How often an idle stream sends a comment, so proxies and browsers keep it open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a stream asks again whether its caller may read the list: a revoked token or
/// link, a member removed or the first account made (which ends open mode) ends the stream
/// within this, where a request would be refused at once. Not shorter: a check may read the
/// accounts' storage (1,000 streams with tokens of their own took a tenth of a core checked
/// every second).
pub const ACCESS_RECHECK: Duration = Duration::from_secs(5);
/// Most subscribers of one list.
pub const MAX_SUBSCRIBERS_PER_LIST: usize = 1_000;

/// Follows a list's changes.
#[utoipa::path(get, path = "/lists/{list}/events", params(("list" = String, Path),
        ("Last-Event-ID" = Option<u64>, Header, description = "the last version seen: resume after it")),
    responses((status = 200, content_type = "text/event-stream", body = String,
            description = "snapshot, then added, updated, deleted and cleared events; `id` is the list's version"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    target: ListTarget,
    RequestHead(head): RequestHead,
) -> Result<Response, ApiError> {
    let after = last_event_id(&head.headers)?;
    if state.cache.subscribers(&target.key) >= MAX_SUBSCRIBERS_PER_LIST {
        return Err(too_many("this list has too many subscribers"));
    }
    let slot = SubscriberSlot::take(&state.subscribers, state.max_subscribers)?;
    let subscription = state.cache.subscribe(&target.key, after).await?;
    let mut follow = Follow {
        cache: state.cache.clone(),
        list: target.key,
        stopping: state.stopping.clone(),
        version: 0,
        changes: None,
        queue: VecDeque::new(),
        heartbeat: every(HEARTBEAT),
        access: Access {
            state: state.clone(),
            head,
            recheck: every(ACCESS_RECHECK),
        },
        _slot: slot,
    };
    follow.start(subscription);
    let stream = futures_util::stream::unfold(follow, Follow::next);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A tick every `period`, the first one `period` from now.
fn every(period: Duration) -> Interval {
    let start = tokio::time::Instant::now() + period;
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// The request's head (method, address, headers, what routing and `identify` added), kept
/// by a stream to ask again, as for a new request, whether its caller may read the list.
pub struct RequestHead(Parts);

impl<S: Send + Sync> FromRequestParts<S> for RequestHead {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<RequestHead, Infallible> {
        Ok(RequestHead(parts.clone()))
    }
}

/// What a stream needs to check its caller's access again.
struct Access {
    state: AppState,
    head: Parts,
    /// When to check next.
    recheck: Interval,
}

impl Access {
    /// Whether the request, sent again now, would still reach `list`: the same `identify`
    /// and `ListTarget` that admitted it decide. Storage failing to answer is not a refusal;
    /// the stream goes on until it does answer.
    async fn holds(&self, list: &ListName) -> bool {
        let mut head = self.head.clone();
        head.extensions.remove::<Caller>();
        let request = Request::from_parts(head, Body::empty());
        let target = async {
            let (mut head, _) = auth::identify(&self.state, request).await?.into_parts();
            ListTarget::from_request_parts(&mut head, &self.state).await
        };
        match target.await {
            Ok(target) => target.key == *list,
            Err(refused) => refused.status().is_server_error(),
        }
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    // Versions are stored as signed 64-bit integers: none is above `i64::MAX`.
    let version = text
        .parse::<u64>()
        .ok()
        .filter(|v| i64::try_from(*v).is_ok());
    version.map(Some).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_last_event_id",
            "Last-Event-ID must be a version this stream sent (a non-negative integer)",
        )
    })
}

fn too_many(message: &str) -> ApiError {
    ApiError::unavailable("too_many_subscribers", message)
}

/// One place among the server's subscribers, given back when the stream ends.
struct SubscriberSlot(Arc<AtomicUsize>);

impl SubscriberSlot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Result<SubscriberSlot, ApiError> {
        let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        taken.map_err(|_| too_many("the server has too many subscribers (--max-subscribers)"))?;
        Ok(SubscriberSlot(count.clone()))
    }
}

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The state of one stream.
struct Follow {
    cache: Cache,
    list: ListName,
    /// Cancelled when the server starts its shutdown, so streams end and connections close.
    stopping: CancellationToken,
    /// The version of the last change sent.
    version: u64,
    /// `None`: take a snapshot before following again.
    changes: Option<broadcast::Receiver<Arc<Published>>>,
    /// Events ready to send, rendered.
    queue: VecDeque<Bytes>,
    /// When to send a comment, so that proxies and browsers keep an idle stream open.
    heartbeat: Interval,
    /// The caller's access, checked again every `ACCESS_RECHECK`.
    access: Access,
    _slot: SubscriberSlot,
}

impl Follow {
    fn start(&mut self, subscription: Subscription) {
        self.version = subscription.version;
        match subscription.start {
            Start::Snapshot(entries) => self
                .queue
                .push_back(snapshot(&entries, subscription.version)),
            Start::Resume(missed) => self
                .queue
                .extend(missed.iter().filter_map(|change| event(change))),
        }
        self.changes = Some(subscription.changes);
    }

    /// The next event; `None` ends the stream (server stopping, the caller's access gone, or
    /// the list unavailable: the client reconnects with `Last-Event-ID`, and is answered as
    /// any new request).
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Follow)> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some((Ok(event), self));
            }
            let Some(changes) = self.changes.as_mut() else {
                let subscription = tokio::select! {
                    () = self.stopping.cancelled() => return None,
                    subscription = self.cache.subscribe(&self.list, None) => subscription.ok()?,
                };
                self.start(subscription);
                continue;
            };
            let received = tokio::select! {
                () = self.stopping.cancelled() => return None,
                _ = self.access.recheck.tick() => {
                    if !self.access.holds(&self.list).await {
                        return None;
                    }
                    continue;
                }
                _ = self.heartbeat.tick() => return Some((Ok(Bytes::from_static(b":\n\n")), self)),
                received = changes.recv() => received,
            };
            match received {
                Ok(published) if published.change == FeedChange::Reloaded => self.changes = None,
                Ok(published) if published.version <= self.version => {}
                Ok(published) => {
                    self.version = published.version;
                    self.queue.extend(event(&published));
                }
                // Fell behind, or the list was forgotten from memory: start again.
                Err(RecvError::Lagged(_) | RecvError::Closed) => self.changes = None,
            }
        }
    }
}

fn snapshot(entries: &[Entry], version: u64) -> Bytes {
    let entries: Vec<EntryBody> = entries.iter().map(EntryBody::from).collect();
    render("snapshot", version, &json!(entries).to_string())
}

/// The event of one change, rendered once for every subscriber; `None` for a reload, which
/// is a snapshot instead.
fn event(published: &Published) -> Option<Bytes> {
    if published.change == FeedChange::Reloaded {
        return None;
    }
    let wire = published.wire.get_or_init(|| {
        let (name, data) = match &published.change {
            FeedChange::Added(entry) => ("added", json!(EntryBody::from(entry))),
            FeedChange::Updated(entry) => ("updated", json!(EntryBody::from(entry))),
            FeedChange::Deleted(id) => ("deleted", json!({ "id": id.get() })),
            FeedChange::Cleared | FeedChange::Reloaded => ("cleared", json!({})),
        };
        render(name, published.version, &data.to_string())
    });
    Some(wire.clone())
}

/// One event as the stream carries it. `data` is one line: JSON escapes every line break.
fn render(name: &str, id: u64, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\nid: {id}\ndata: {data}\n\n"))
}
