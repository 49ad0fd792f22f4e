//! The access log: one line per request at `info`, under the target `access` (turn it off with
//! `--log info,access=off`), and an `x-request-id` on every answer. Its `observe` middleware
//! also counts the request in the metrics and adds the browser headers of `edge`.
//!
//! A line holds the method, the route's template (never the path: it may hold a share link's
//! secret, and the query a title), the status, the time taken and the request id: the
//! client's `x-request-id` when it sent a usable one, else one made here.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use super::{edge, metrics};

/// The header that carries the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest request id taken from a client.
const MAX_REQUEST_ID_BYTES: usize = 64;

/// Sees every request out, whatever answered it: logs it, counts it in the metrics (when a
/// route matched), and adds the request id and the headers every answer carries for
/// browsers. One middleware for all four, outermost, so each request pays for one.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|id| usable(id))
        .cloned()
        .unwrap_or_else(new_id);
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = response.extensions_mut().remove::<MatchedPath>();
    if let Some(route) = &route {
        metrics::record_request(route.as_str(), &method, response.status(), elapsed);
    }
    tracing::info!(
        target: "access",
        %method,
        // No route: the path names none, or the request was refused before routing (503).
        route = route.as_ref().map_or("-", MatchedPath::as_str),
        status = response.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        request_id = id.to_str().unwrap_or_default(),
    );
    let headers = response.headers_mut();
    edge::add_browser_headers(headers);
    headers.insert(REQUEST_ID, id);
    response
}

/// Hands a matched route's template to `observe`, which sees the response but not the
/// routed request: a route layer, so it runs only for requests that matched a route, around
/// `edge::admit`, so a refusal of a matched route carries it too.
pub async fn tag_route(route: MatchedPath, mut response: Response) -> Response {
    response.extensions_mut().insert(route);
    // Room for the headers the layers outside add (CORS, the browser headers, the request
    // id), so the map grows once rather than on each insert.
    response.headers_mut().reserve(ADDED_HEADERS);
    response
}

/// How many headers the layers outside a route add to its answer, at most.
const ADDED_HEADERS: usize = 8;

fn usable(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_BYTES
        && bytes.iter().all(|byte| byte.is_ascii_graphic())
}

/// A new id: this process's random prefix and a counter, unique across restarts and nodes
/// without a lock or a random draw per request.
fn new_id() -> HeaderValue {
    static PREFIX: LazyLock<u32> = LazyLock::new(|| {
        let mut bytes = [0; 4];
        // Without randomness the ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        u32::from_le_bytes(bytes)
    });
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // From `Bytes`, the text is not copied again.
    let text = bytes::Bytes::from(format!("{:08x}-{n:x}", *PREFIX));
    HeaderValue::from_maybe_shared(text).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_taken_only_when_short_and_visible() {
        assert!(usable(&HeaderValue::from_static("abc-123")));
        assert!(!usable(&HeaderValue::from_static("")));
        assert!(!usable(&HeaderValue::from_static("has space")));
        assert!(!usable(&HeaderValue::from_str(&"x".repeat(65)).unwrap()));
        assert_ne!(new_id(), new_id());
    }
}
