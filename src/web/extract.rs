//! The extractors that turn a request's query and body into the handler's types, with every
//! rejection answered as the API's JSON error (`ApiError`), so a handler states what it reads
//! and never sees a malformed request.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The query string as `T`; a missing or malformed parameter is 400 `invalid_parameter`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::from_request_parts(parts, state).await?;
        Ok(Params(params))
    }
}

/// The UTF-8 encoding of U+FEFF, the byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A JSON object body as `T`. Only an object: serde would also fill a struct from an array of
/// its fields in order, which no document of this API describes. The content type was
/// checked at the edge (415); a body too large is 413, bad JSON or fields 400 `invalid_json`.
/// A leading byte order mark is skipped.
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state).await?;
        // A byte order mark is ignored, as RFC 8259 allows: some Windows tools write one.
        let body = body.strip_prefix(UTF8_BOM).unwrap_or(&body);
        if body.trim_ascii_start().first() != Some(&b'{') {
            let message = "the body must be a JSON object";
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                message,
            ));
        }
        Ok(JsonObject(serde_json::from_slice(body)?))
    }
}
