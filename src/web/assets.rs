//! The web app at `/`: plain HTML, CSS and a JavaScript module, embedded in the binary so the
//! server needs no files and no network beside it (it works air-gapped). A share link's own
//! address, `/s/{secret}`, answers the same page, which then shows that one list.
//!
//! Each file is answered with a strong `ETag` (a hash of its bytes) and `Cache-Control:
//! no-cache`: a browser keeps its copy and asks each time whether it is still current, so an
//! upgraded server is picked up at the next load and an unchanged one costs a 304. The page
//! is the only answer that runs script, so it alone carries the `Content-Security-Policy`:
//! everything from this server, nothing inline, no frames.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::auth::ListTarget;
use super::error::ApiError;
use crate::accounts::Role;

/// What the page may load and run: only this server's own files, never inline script or
/// style, never inside a frame, and forms only back to this server.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// The path it is served at.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The web app's files; `src/web/app/` holds them.
const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("app/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("app/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("app/style.css"),
    },
    Asset {
        path: "/icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("app/icon.svg"),
    },
];

/// The paths the web app's files are served at, for the router.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|asset| asset.path)
}

/// Answers `GET` of one of the web app's files, or 304 when the browser's copy is current.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|asset| asset.path == uri.path()) {
        Some(index) => answer(index, &headers),
        None => ApiError::no_route().into_response(),
    }
}

/// Answers `GET /s/{secret}`, a share link opened in a browser, with the web app's page,
/// which then shows the link's list; a link that does not open a list is 404 as on its
/// API routes (`ListTarget` resolves it first). The page's `<body>` carries the link's role
/// (`data-link-role`), so a read link's page offers no edits to refuse.
pub async fn link_page(link: ListTarget, headers: HeaderMap) -> Response {
    let role = link.role.unwrap_or(Role::Write).as_str();
    let page = &ASSETS[PAGE];
    let etag = etags()[PAGE].to_str().unwrap_or_default();
    let etag = HeaderValue::from_str(&format!("{}-{role}\"", etag.trim_end_matches('"')))
        .unwrap_or_else(|_| etags()[PAGE].clone());
    let body = || {
        let page = String::from_utf8_lossy(page.body);
        page.replacen("<body>", &format!("<body data-link-role=\"{role}\">"), 1)
    };
    respond(&headers, &etag, page.content_type, body, true)
}

/// The index in `ASSETS` of the page, `/` (its first file; a test holds it to that).
const PAGE: usize = 0;

/// The file at `index` in `ASSETS`, or 304 when `headers` show the browser's copy current.
fn answer(index: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let body = || asset.body;
    respond(
        headers,
        &etags()[index],
        asset.content_type,
        body,
        index == PAGE,
    )
}

/// The `body` made, tagged `etag`, or 304 when the browser's copy is current (the body then
/// not made); the page, which alone runs script, also gets the `Content-Security-Policy`.
fn respond<B: Into<Body>>(
    headers: &HeaderMap,
    etag: &HeaderValue,
    content_type: &'static str,
    body: impl FnOnce() -> B,
    is_page: bool,
) -> Response {
    let mut response = if is_current(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body().into()).into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, etag.clone());
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if is_page {
        response_headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    response
}

/// Whether `If-None-Match` names the file's current tag (or `*`).
fn is_current(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(Ok(wanted)) = headers
        .get(header::IF_NONE_MATCH)
        .map(|value| value.to_str())
    else {
        return false;
    };
    let current = etag.to_str().unwrap_or_default();
    wanted
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == current || tag == "*")
}

/// Each file's `ETag`, in `ASSETS` order, hashed once.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header")
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_the_first_file() {
        assert_eq!(ASSETS[PAGE].path, "/");
        assert!(ASSETS[PAGE].content_type.starts_with("text/html"));
    }

    #[test]
    fn if_none_match_matches_the_current_tag_in_any_form() {
        let etag = HeaderValue::from_static("\"abc\"");
        for (sent, current) in [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"old\", \"abc\"", true),
            ("*", true),
            ("\"old\"", false),
            ("abc", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(sent));
            assert_eq!(is_current(&headers, &etag), current, "{sent}");
        }
        assert!(!is_current(&HeaderMap::new(), &etag));
    }
}
