//! How a failed client command ends: an exit code by kind of failure, so scripts can tell a
//! missing list from a server that is down, and with `--json` the error as JSON, carrying the
//! server's code.

use reqwest::StatusCode;

use crate::accounts::AccountError;
use crate::client::ClientError;
use crate::database::StorageError;
use crate::list::ValidationError;

/// A value the user typed that cannot be used (a date, a reversed range), with the error
/// code `--json` gives it: the server's, where the server has one for it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    code: &'static str,
    message: String,
}

impl InvalidInput {
    /// A refusal the server has no code of its own for: `invalid_input`.
    pub fn new(message: impl Into<String>) -> InvalidInput {
        InvalidInput::coded("invalid_input", message)
    }

    /// A date that names no day: `invalid_date`, as the server says.
    pub fn date(message: impl Into<String>) -> InvalidInput {
        InvalidInput::coded("invalid_date", message)
    }

    fn coded(code: &'static str, message: impl Into<String>) -> InvalidInput {
        let message = message.into();
        InvalidInput { code, message }
    }
}

/// Exit code: the command line itself is wrong (clap's own code).
pub const USAGE: u8 = 2;
/// Exit code: the list, entry or user does not exist (or is not the caller's to see).
pub const NOT_FOUND: u8 = 3;
/// Exit code: a value was refused (a name, a title, a date).
pub const INVALID: u8 = 4;
/// Exit code: the server is down, busy or cannot reach its storage; try again later.
pub const UNAVAILABLE: u8 = 5;
/// Exit code: the request conflicts with what is stored (an import into a list in use, a
/// user name taken).
pub const CONFLICT: u8 = 6;
/// Exit code: no credentials, or not enough rights.
pub const REFUSED: u8 = 7;

/// The exit code of `error` (1 when it is of no kind above).
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let (code, _) = classify(error);
    code
}

/// `error` as `{"error":{"code","message"}}`, the server's shape, for `--json`: the code is
/// the server's, also for a value the command line refused before sending it, and the
/// message the server's, without the HTTP status the human form adds.
pub fn to_json(error: &anyhow::Error) -> String {
    let (_, code) = classify(error);
    let message = error
        .chain()
        .map(|cause| match cause.downcast_ref::<ClientError>() {
            Some(ClientError::Server { message, .. }) => message.clone(),
            _ => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ");
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
        if let Some(error) = cause.downcast_ref::<ValidationError>() {
            return (INVALID, error.code().into());
        }
        if let Some(error) = cause.downcast_ref::<StorageError>() {
            return (storage_exit_code(error), error.code().into());
        }
        if let Some(error) = cause.downcast_ref::<AccountError>() {
            return (account_exit_code(error), error.code().into());
        }
        if let Some(error) = cause.downcast_ref::<InvalidInput>() {
            return (INVALID, error.code.into());
        }
    }
    (1, "error".into())
}

/// The exit code of an account command run on the data directory, as the same failure over
/// HTTP would give.
fn account_exit_code(error: &AccountError) -> u8 {
    match error {
        AccountError::UserNotFound(_) => NOT_FOUND,
        AccountError::UserExists(_) | AccountError::LastAdmin(_) => CONFLICT,
        AccountError::Storage(cause) => storage_exit_code(cause),
        AccountError::Secret(_) => 1,
        AccountError::InvalidName(_)
        | AccountError::MixedScripts(_)
        | AccountError::InvalidPassword(_)
        | AccountError::InvalidRole(_) => INVALID,
    }
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

/// The exit code of a failure of the storage a command opened itself.
fn storage_exit_code(error: &StorageError) -> u8 {
    match error {
        StorageError::Conflict => CONFLICT,
        // A damaged store does not mend by itself, so retrying is no advice: `todo check`.
        StorageError::Corrupt(_) => 1,
        _ => UNAVAILABLE,
    }
}
