//! The access log: one line per request at `info`, under the target `access` (turn it off with
//! `--log info,access=off`), and an `x-request-id` on every answer.
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

/// The header that carries the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest request id taken from a client.
const MAX_REQUEST_ID_BYTES: usize = 64;

/// Logs the request once it is answered.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // A clone of the matched path shares its text: no copy per request.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|id| usable(id))
        .cloned()
        .unwrap_or_else(new_id);
    let mut response = next.run(request).await;
    tracing::info!(
        target: "access",
        %method,
        route = route.as_ref().map_or("unmatched", MatchedPath::as_str),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        request_id = id.to_str().unwrap_or_default(),
    );
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

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
    HeaderValue::from_str(&format!("{:08x}-{n:x}", *PREFIX))
        .unwrap_or(HeaderValue::from_static("0"))
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
