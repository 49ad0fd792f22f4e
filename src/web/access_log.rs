//! The access log: one line per request at `info`, under the target `access` (turn it off with
//! `--log info,access=off`), and an `x-request-id` on every answer. The edge calls `record`
//! for every answer, which also counts it in the metrics.
//!
//! A line holds the method, the route's template (never the path: it may hold a share link's
//! secret, and the query a title), the status, the time taken and the request id: the
//! client's `x-request-id` when it sent a usable one, else one made here.

use std::io::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;

use super::metrics;

/// The header that carries the request id, in and out: a `HeaderName`, since one built from
/// a string for each answer would be allocated each time.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
const MAX_REQUEST_ID_BYTES: usize = 64;

/// The id to answer `headers`' request with: the client's, when it sent a usable one, else a
/// new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|id| usable(id))
        .cloned()
        .unwrap_or_else(new_id)
}

/// Logs an answered request, and counts it in the metrics when it matched `route`.
pub fn record(
    method: &Method,
    route: Option<&MatchedPath>,
    response: &Response,
    elapsed: Duration,
    id: &HeaderValue,
) {
    if let Some(route) = route {
        metrics::record_request(route.as_str(), method, response.status(), elapsed);
    }
    tracing::info!(
        target: "access",
        %method,
        route = route.map_or("-", MatchedPath::as_str),
        status = response.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        request_id = id.to_str().unwrap_or_default(),
    );
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
    // Written on the stack, then copied once into the header's own allocation.
    let mut text = std::io::Cursor::new([0u8; 32]);
    let _ = write!(text, "{:08x}-{n:x}", *PREFIX);
    let length = usize::try_from(text.position()).unwrap_or(0);
    HeaderValue::from_bytes(&text.get_ref()[..length]).unwrap_or(HeaderValue::from_static("0"))
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
