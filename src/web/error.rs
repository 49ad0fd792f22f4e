//! `ApiError`: every way a request can fail, and the status and JSON body each one gets.
//!
//! Handlers return `Result<_, ApiError>` and use `?`; the `From` impls below do the mapping once.
//! Internal causes are logged, never sent to the client.

use std::borrow::Cow;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::accounts::AccountError;
use crate::database::StorageError;
use crate::list::ValidationError;
use crate::lists::RequestError;

/// Seconds a client is told to wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

/// A failed request: a status, a stable machine-readable code, and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds to send in `Retry-After` with a 429.
    retry_after: Option<u64>,
}

/// The JSON body of every error: `{"error": {"code": ..., "message": ...}}`; the `todo` client
/// reads it back with this same type.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an error body.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code such as `invalid_date` or `entry_not_found`. With a 503:
    /// `storage_unavailable` (a write was not stored; on `/healthz`, storage does not answer),
    /// `storage_damaged` (`/healthz`: storage reported damage), `outcome_unknown` (a write may or may not
    /// be stored; a retry with the same `Idempotency-Key` is safe), `overloaded`, `timeout`,
    /// `shutting_down`.
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// A failure with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 401: the request needs credentials, or its credentials are not valid.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A 403 for a caller who may see the target but not do this to it.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    /// A 404 for a list the caller may not see, worded like one that does not exist, so
    /// that names do not leak.
    pub fn list_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "list_not_found", "no such list")
    }

    /// A 429 telling the client to wait `wait` before trying again.
    pub fn too_many(message: impl Into<String>, wait: std::time::Duration) -> ApiError {
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message);
        error.retry_after = Some(wait.as_secs().max(1));
        error
    }

    /// A 400 for a bad or missing query parameter.
    pub fn bad_parameter(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 404 for a path that names no route.
    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route")
    }

    /// A 503 telling the client to come back later.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: Cow::Borrowed(self.code),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            let retry_after = HeaderValue::from_static(RETRY_AFTER_SECONDS);
            headers.insert(header::RETRY_AFTER, retry_after);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static("Bearer realm=\"todo\"");
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> ApiError {
        // 400 for what the OpenAPI document's patterns refuse; 422 for a well-formed value
        // refused by a rule no pattern can state.
        let status = match error {
            ValidationError::MixedScripts(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> ApiError {
        let message = error.to_string();
        match error {
            RequestError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "entry_not_found", message)
            }
            RequestError::IdsExhausted => {
                ApiError::new(StatusCode::CONFLICT, "ids_exhausted", message)
            }
            RequestError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                message,
            ),
            RequestError::IdempotentEntryDeleted => {
                ApiError::new(StatusCode::CONFLICT, "idempotent_entry_deleted", message)
            }
            RequestError::ImportConflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "import_conflict", message)
            }
            RequestError::Storage(cause @ StorageError::Conflict) => {
                ApiError::new(StatusCode::CONFLICT, cause.code(), message)
            }
            RequestError::Storage(cause @ StorageError::OutcomeUnknown(_)) => {
                tracing::warn!(%cause, "commit outcome unknown; answered with 503");
                ApiError::unavailable(
                    cause.code(),
                    "storage failed while committing; the write may or may not have been stored, \
                     and a retry with the same Idempotency-Key is safe",
                )
            }
            RequestError::Storage(cause) => {
                tracing::warn!(%cause, "storage error answered with 503");
                ApiError::unavailable(
                    cause.code(),
                    "storage is unavailable; the request was not stored",
                )
            }
            RequestError::Timeout => ApiError::unavailable("timeout", message),
            RequestError::Overloaded => ApiError::unavailable("overloaded", message),
            RequestError::ShuttingDown => ApiError::unavailable("shutting_down", message),
            RequestError::Crashed => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> ApiError {
        let status = match error {
            AccountError::Storage(cause) => return ApiError::from(cause),
            AccountError::Secret(ref cause) => {
                tracing::error!(%cause, "secret generation failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                );
            }
            AccountError::MixedScripts(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AccountError::UserExists(_) | AccountError::LastAdmin(_) => StatusCode::CONFLICT,
            AccountError::UserNotFound(_) => StatusCode::NOT_FOUND,
            AccountError::InvalidName(_)
            | AccountError::InvalidPassword(_)
            | AccountError::InvalidRole(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        ApiError::from(RequestError::Storage(error))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_parameter("invalid_parameter", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        let code = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "invalid_body",
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", error.to_string())
    }
}
