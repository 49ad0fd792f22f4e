//! How a failed client command ends: an exit code by kind of failure, so scripts can tell a
//! missing list from a server that is down, and with `--json` the error as JSON, carrying the
//! server's code.

use reqwest::StatusCode;

use crate::client::ClientError;
use crate::list::ValidationError;

/// A value the user typed that cannot be used (a date, a reversed range).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Exit code: the command line itself is wrong (clap's own code).
pub const USAGE: u8 = 2;
/// Exit code: the list or entry does not exist (or is not the caller's to see).
pub const NOT_FOUND: u8 = 3;
/// Exit code: a value was refused (a name, a title, a date).
pub const INVALID: u8 = 4;
/// Exit code: the server is down, busy or cannot reach its storage; try again later.
pub const UNAVAILABLE: u8 = 5;
/// Exit code: the request conflicts with what is stored (an import into a list in use).
pub const CONFLICT: u8 = 6;
/// Exit code: no credentials, or not enough rights.
pub const REFUSED: u8 = 7;

/// The exit code of `error` (1 when it is of no kind above).
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let (code, _) = classify(error);
    code
}

/// `error` as `{"error":{"code","message"}}`, the server's shape, for `--json`.
pub fn to_json(error: &anyhow::Error) -> String {
    let (_, code) = classify(error);
    let message = format!("{error:#}");
    serde_json::json!({"error": {"code": code, "message": message}}).to_string()
}

fn classify(error: &anyhow::Error) -> (u8, String) {
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<ClientError>() {
            return match error {
                ClientError::Server { status, code, .. } => (by_status(*status), code.clone()),
                ClientError::Unreachable { .. } => (UNAVAILABLE, "unreachable".into()),
                ClientError::Protocol(_) => (1, "protocol".into()),
            };
        }
        let invalid = cause.is::<InvalidInput>()
            || cause.is::<ValidationError>()
            || cause.is::<crate::accounts::AccountError>();
        if invalid {
            return (INVALID, "invalid_input".into());
        }
    }
    (1, "error".into())
}

fn by_status(status: StatusCode) -> u8 {
    match status.as_u16() {
        404 => NOT_FOUND,
        400 | 413 | 415 | 422 => INVALID,
        409 => CONFLICT,
        401 | 403 => REFUSED,
        429 | 500..=599 => UNAVAILABLE,
        _ => 1,
    }
}
