//! Users and access: accounts, API and session tokens, list members and share links.
//!
//! `store` is the SQL, written once for both backends over `CommitSteps`; the command line runs
//! it on storage directly (`todo user add`), the server through `Accounts`, which keeps what it
//! read for at most `Accounts::FRESH_FOR`, so a revocation on any node is seen within a second.

mod limiter;
mod secret;
mod service;
pub mod store;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::database::StorageError;
use crate::list::{NameRules, is_list_name_char};

pub use limiter::LoginLimiter;
pub use secret::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, check_password, hash_password, secret_hash,
};
pub use service::{Accounts, Resolved};
pub use store::{LinkRow, TokenRow, UserRow};

/// Most characters in a user name.
pub const MAX_USER_NAME_CHARS: usize = 64;

/// A user's name: 1 to 64 characters of a list name but spaces. No `:`, which separates an owner from a
/// list name in `OWNER:LIST`, and no space, so a name is one word on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Validates `name` as a user name, in its canonical form, as list names are
    /// (`ListName::parse`): NFC, and letters of one script.
    pub fn parse(name: &str) -> Result<UserName, AccountError> {
        let rules = NameRules {
            max_chars: MAX_USER_NAME_CHARS,
            is_allowed: |c| c != ' ' && is_list_name_char(c),
            allowed: "the characters of a list name but spaces",
        };
        let name = NameRules::canonical(name);
        rules.check(&name).map_err(AccountError::InvalidName)?;
        if !NameRules::single_script(&name) {
            return Err(AccountError::MixedScripts(name));
        }
        Ok(UserName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a member or a share link may do with a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read entries.
    Read,
    /// Read, add, change and delete entries.
    Write,
}

impl Role {
    /// The role as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }

    /// A stored role.
    pub fn parse(text: &str) -> Result<Role, AccountError> {
        match text {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            other => Err(AccountError::InvalidRole(other.to_owned())),
        }
    }
}

/// A signed-in user, as a request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id, the owner part of their lists' keys.
    pub id: i64,
    /// The user's name.
    pub name: UserName,
    /// Whether the user manages accounts and reads metrics.
    pub admin: bool,
    /// The token the request came with, if it is a session token (for logout).
    pub token_id: i64,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A user name breaks the rules.
    #[error("invalid user name: {0}")]
    InvalidName(String),
    /// A user name mixes scripts, so it could pass for another user's.
    #[error(
        "invalid user name {0:?}: it mixes letters of different scripts, so it could be mistaken for another name"
    )]
    MixedScripts(String),
    /// A password breaks the rules.
    #[error("invalid password: {0}")]
    InvalidPassword(String),
    /// A role is neither `read` nor `write`.
    #[error("invalid role {0:?}: use read or write")]
    InvalidRole(String),
    /// The user name is taken.
    #[error("user {0} already exists")]
    UserExists(UserName),
    /// No user has that name.
    #[error("no user {0}")]
    UserNotFound(String),
    /// The last admin cannot go while other users remain: nobody could manage them.
    #[error("{0} is the last admin; make another admin first")]
    LastAdmin(UserName),
    /// Randomness or hashing failed.
    #[error("secret generation failed: {0}")]
    Secret(String),
}

impl AccountError {
    /// The API's error code for this failure, the same from the server and the command line.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Storage(cause) => cause.code(),
            AccountError::InvalidName(_) => "invalid_user_name",
            AccountError::MixedScripts(_) => "mixed_scripts",
            AccountError::InvalidPassword(_) => "invalid_password",
            AccountError::InvalidRole(_) => "invalid_role",
            AccountError::UserExists(_) => "user_exists",
            AccountError::UserNotFound(_) => "user_not_found",
            AccountError::LastAdmin(_) => "last_admin",
            AccountError::Secret(_) => "internal",
        }
    }
}

/// Seconds since the Unix epoch, the unit of every stored time.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
