//! The accounts' SQL, written once for both backends: each function runs inside a transaction
//! the caller opened (`Storage::transaction`), so a multi-statement change is all or nothing.

use crate::database::StorageError;
use crate::database::sql::{self, Cell, CommitSteps, ListScope, Param};
use crate::list::ListName;

use super::{AccountError, Role, UserName};

/// A user, without their password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Never reused, also after the user is removed.
    pub id: i64,
    /// The user's name.
    pub name: UserName,
    /// Whether the user manages accounts.
    pub admin: bool,
    /// When the account was made, in Unix seconds.
    pub created_at: i64,
}

/// An API token, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The id used to revoke it.
    pub id: i64,
    /// What its owner called it.
    pub name: String,
    /// When it was made, in Unix seconds.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When a request last used it (updated at most once a minute), if ever.
    pub last_used_at: Option<i64>,
}

/// A share link, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    /// The id used to revoke it.
    pub id: i64,
    /// What the link allows.
    pub role: Role,
    /// When it was made, in Unix seconds.
    pub created_at: i64,
}

/// Whether a token signs in a person (a login) or a program (made with `POST /tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// From `POST /auth/login`, also sent as the session cookie.
    Session,
    /// From `POST /tokens`.
    Api,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

/// What a stored token hash leads to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The token's id.
    pub token_id: i64,
    /// The stored hash, compared again in constant time.
    pub hash: String,
    /// When the token stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was last used, if ever.
    pub last_used_at: Option<i64>,
    /// Its user.
    pub user: UserRow,
}

/// How many accounts exist: none means the server runs open (protected mode).
pub fn count_users(steps: &mut dyn CommitSteps) -> Result<i64, StorageError> {
    let rows = steps.query("SELECT count(*) FROM users", &[])?;
    first_int(&rows)
}

/// Makes a user. The first user is always an admin and adopts every list made while no
/// account existed (its key gains the owner prefix); returns the user and how many lists it
/// adopted.
pub fn create_user(
    steps: &mut dyn CommitSteps,
    name: &UserName,
    password_hash: &str,
    admin: bool,
    now: i64,
) -> Result<(UserRow, u64), AccountError> {
    if user_row(steps, name.as_str())?.is_some() {
        return Err(AccountError::UserExists(name.clone()));
    }
    let first = count_users(steps)? == 0;
    let admin = admin || first;
    let rows = steps.query(
        "INSERT INTO users (name, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        &[
            Param::Text(name.as_str()),
            Param::Text(password_hash),
            Param::Int(i64::from(admin)),
            Param::Int(now),
        ],
    )?;
    let id = first_int(&rows)?;
    let adopted = if first { adopt_lists(steps, id)? } else { 0 };
    let user = UserRow {
        id,
        name: name.clone(),
        admin,
        created_at: now,
    };
    Ok((user, adopted))
}

/// Gives every list without an owner to `owner`, one list at a time. A list whose owned key
/// is taken (a write that reached the old key while the first account was being made) stays
/// where it is and is logged by name, so nothing is overwritten.
fn adopt_lists(steps: &mut dyn CommitSteps, owner: i64) -> Result<u64, StorageError> {
    let prefix = ListName::owner_prefix(owner);
    let bare = steps.query("SELECT name FROM lists WHERE name NOT LIKE '%:%'", &[])?;
    let mut adopted = 0;
    for row in &bare {
        let name = row[0].text("lists.name")?;
        let key = format!("{prefix}{name}");
        let taken = steps.query("SELECT 1 FROM lists WHERE name = ?1", &[Param::Text(&key)])?;
        if !taken.is_empty() {
            tracing::warn!(list = %name.escape_debug(), "a list without an owner stays unadopted: its owner's list of that name exists");
            continue;
        }
        let rename = [Param::Text(name), Param::Text(&key)];
        for statement in [
            "UPDATE lists SET name = ?2 WHERE name = ?1",
            "UPDATE entries SET list = ?2 WHERE list = ?1",
            "UPDATE idempotency_keys SET list = ?2 WHERE list = ?1",
        ] {
            steps.execute(statement, &rename)?;
        }
        adopted += 1;
    }
    Ok(adopted)
}

/// Gives the lists without an owner to the first admin, if there is one: for writes that
/// reached a list's old key while a running server learned that accounts exist.
pub fn adopt_leftovers(steps: &mut dyn CommitSteps) -> Result<u64, StorageError> {
    let rows = steps.query("SELECT min(id) FROM users WHERE admin = 1", &[])?;
    match rows.first().and_then(|row| row.first()) {
        Some(Cell::Int(owner)) => adopt_lists(steps, *owner),
        _ => Ok(0),
    }
}

/// Every user, by name.
pub fn users(steps: &mut dyn CommitSteps) -> Result<Vec<UserRow>, StorageError> {
    let rows = steps.query(
        "SELECT id, name, admin, created_at FROM users ORDER BY name",
        &[],
    )?;
    rows.iter().map(|row| user_from(row)).collect()
}

/// One user by name.
pub fn user_row(steps: &mut dyn CommitSteps, name: &str) -> Result<Option<UserRow>, StorageError> {
    let rows = steps.query(
        "SELECT id, name, admin, created_at FROM users WHERE name = ?1",
        &[Param::Text(name)],
    )?;
    rows.first().map(|row| user_from(row)).transpose()
}

/// One user by name, with their password hash, for logging in.
pub fn user_with_password(
    steps: &mut dyn CommitSteps,
    name: &str,
) -> Result<Option<(UserRow, String)>, StorageError> {
    let rows = steps.query(
        "SELECT id, name, admin, created_at, password_hash FROM users WHERE name = ?1",
        &[Param::Text(name)],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some((
        user_from(row)?,
        row[4].text("password_hash")?.to_owned(),
    )))
}

/// Replaces a user's password hash and signs out their sessions.
pub fn set_password(
    steps: &mut dyn CommitSteps,
    name: &UserName,
    password_hash: &str,
) -> Result<(), AccountError> {
    let user = existing_user(steps, name)?;
    steps.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        &[Param::Int(user.id), Param::Text(password_hash)],
    )?;
    steps.execute(
        "DELETE FROM tokens WHERE user_id = ?1 AND kind = 'session'",
        &[Param::Int(user.id)],
    )?;
    Ok(())
}

/// Removes a user with everything they own: their lists and entries, tokens, memberships (in
/// their lists and of them in others') and share links. Refuses to remove the last admin
/// while other users remain.
pub fn remove_user(steps: &mut dyn CommitSteps, name: &UserName) -> Result<UserRow, AccountError> {
    let user = existing_user(steps, name)?;
    if user.admin {
        let rows = steps.query(
            "SELECT count(*) FROM users WHERE admin = 1 AND id <> ?1",
            &[Param::Int(user.id)],
        )?;
        if first_int(&rows)? == 0 && count_users(steps)? > 1 {
            return Err(AccountError::LastAdmin(user.name));
        }
    }
    // A pattern, not a range (`ID:` to `ID;`): a range would follow the column's collation on
    // PostgreSQL, where `;` may sort before `:`. The prefix holds digits and `:` only, which
    // LIKE matches literally.
    let pattern = format!("{}%", ListName::owner_prefix(user.id));
    let owned = [Param::Text(&pattern)];
    for statement in [
        "DELETE FROM entries WHERE list LIKE ?1",
        "DELETE FROM idempotency_keys WHERE list LIKE ?1",
        "DELETE FROM lists WHERE name LIKE ?1",
        "DELETE FROM links WHERE list LIKE ?1",
    ] {
        steps.execute(statement, &owned)?;
    }
    let id = [Param::Int(user.id)];
    for statement in [
        "DELETE FROM members WHERE user_id = ?1 OR owner_id = ?1",
        "DELETE FROM tokens WHERE user_id = ?1",
        "DELETE FROM users WHERE id = ?1",
    ] {
        steps.execute(statement, &id)?;
    }
    Ok(user)
}

fn existing_user(steps: &mut dyn CommitSteps, name: &UserName) -> Result<UserRow, AccountError> {
    user_row(steps, name.as_str())?.ok_or_else(|| AccountError::UserNotFound(name.to_string()))
}

/// Stores a new token of `user` by its hash.
pub fn create_token(
    steps: &mut dyn CommitSteps,
    user: i64,
    kind: TokenKind,
    name: &str,
    hash: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<TokenRow, StorageError> {
    let rows = steps.query(
        "INSERT INTO tokens (user_id, kind, name, hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        &[
            Param::Int(user),
            Param::Text(kind.as_str()),
            Param::Text(name),
            Param::Text(hash),
            Param::Int(now),
            Param::OptionalInt(expires_at),
        ],
    )?;
    Ok(TokenRow {
        id: first_int(&rows)?,
        name: name.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
    })
}

/// The token with this hash and its user, if it exists (expired or not).
pub fn token_owner(
    steps: &mut dyn CommitSteps,
    hash: &str,
) -> Result<Option<TokenOwner>, StorageError> {
    let rows = steps.query(
        "SELECT users.id, users.name, users.admin, users.created_at,
                tokens.id, tokens.hash, tokens.expires_at, tokens.last_used_at
         FROM tokens JOIN users ON users.id = tokens.user_id WHERE tokens.hash = ?1",
        &[Param::Text(hash)],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(TokenOwner {
        user: user_from(row)?,
        token_id: row[4].int("tokens.id")?,
        hash: row[5].text("tokens.hash")?.to_owned(),
        expires_at: row[6].optional_int("tokens.expires_at")?,
        last_used_at: row[7].optional_int("tokens.last_used_at")?,
    }))
}

/// Records that a token was used now.
pub fn touch_token(steps: &mut dyn CommitSteps, token: i64, now: i64) -> Result<(), StorageError> {
    steps.execute(
        "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
        &[Param::Int(token), Param::Int(now)],
    )?;
    Ok(())
}

/// The API tokens of `user`, oldest first.
pub fn tokens(steps: &mut dyn CommitSteps, user: i64) -> Result<Vec<TokenRow>, StorageError> {
    let rows = steps.query(
        "SELECT id, name, created_at, expires_at, last_used_at FROM tokens
         WHERE user_id = ?1 AND kind = 'api' ORDER BY id",
        &[Param::Int(user)],
    )?;
    rows.iter()
        .map(|row| {
            Ok(TokenRow {
                id: row[0].int("id")?,
                name: row[1].text("name")?.to_owned(),
                created_at: row[2].int("created_at")?,
                expires_at: row[3].optional_int("expires_at")?,
                last_used_at: row[4].optional_int("last_used_at")?,
            })
        })
        .collect()
}

/// Revokes a token of `user` (of any kind); whether it existed.
pub fn revoke_token(
    steps: &mut dyn CommitSteps,
    user: i64,
    token: i64,
) -> Result<bool, StorageError> {
    let n_rows = steps.execute(
        "DELETE FROM tokens WHERE id = ?1 AND user_id = ?2",
        &[Param::Int(token), Param::Int(user)],
    )?;
    Ok(n_rows > 0)
}

/// Removes expired tokens, so the table does not grow with every login.
pub fn remove_expired_tokens(steps: &mut dyn CommitSteps, now: i64) -> Result<u64, StorageError> {
    steps.execute(
        "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at < ?1",
        &[Param::Int(now)],
    )
}

/// Gives `user` a role in the list `key` of `owner`, replacing the role they had.
pub fn share(
    steps: &mut dyn CommitSteps,
    key: &ListName,
    owner: i64,
    user: i64,
    role: Role,
) -> Result<(), StorageError> {
    steps.execute(
        "INSERT INTO members (list, user_id, owner_id, role) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (list, user_id) DO UPDATE SET role = excluded.role",
        &[
            Param::Text(key.as_str()),
            Param::Int(user),
            Param::Int(owner),
            Param::Text(role.as_str()),
        ],
    )?;
    Ok(())
}

/// Takes `user`'s role in the list `key` away; whether they had one.
pub fn unshare(
    steps: &mut dyn CommitSteps,
    key: &ListName,
    user: i64,
) -> Result<bool, StorageError> {
    let n_rows = steps.execute(
        "DELETE FROM members WHERE list = ?1 AND user_id = ?2",
        &[Param::Text(key.as_str()), Param::Int(user)],
    )?;
    Ok(n_rows > 0)
}

/// The members of the list `key` and their roles, by name.
pub fn members(
    steps: &mut dyn CommitSteps,
    key: &ListName,
) -> Result<Vec<(UserName, Role)>, AccountError> {
    let rows = steps.query(
        "SELECT users.name, members.role FROM members JOIN users ON users.id = members.user_id
         WHERE members.list = ?1 ORDER BY users.name",
        &[Param::Text(key.as_str())],
    )?;
    rows.iter()
        .map(|row| {
            let name = UserName::parse(row[0].text("users.name")?)?;
            Ok((name, Role::parse(row[1].text("members.role")?)?))
        })
        .collect()
}

/// The role of `user` in the list `key`, if any.
pub fn role(
    steps: &mut dyn CommitSteps,
    key: &ListName,
    user: i64,
) -> Result<Option<Role>, AccountError> {
    let rows = steps.query(
        "SELECT role FROM members WHERE list = ?1 AND user_id = ?2",
        &[Param::Text(key.as_str()), Param::Int(user)],
    )?;
    rows.first()
        .map(|row| Role::parse(row[0].text("role")?))
        .transpose()
}

/// The lists shared with `user`, as `OWNER:LIST`, in byte order.
pub fn shared_with(steps: &mut dyn CommitSteps, user: i64) -> Result<Vec<String>, StorageError> {
    let rows = steps.query(
        "SELECT users.name, members.list, members.owner_id FROM members
         JOIN users ON users.id = members.owner_id WHERE members.user_id = ?1",
        &[Param::Int(user)],
    )?;
    let mut names = Vec::with_capacity(rows.len());
    for row in &rows {
        let owner = row[2].int("members.owner_id")?;
        let key = row[1].text("members.list")?;
        let list = sql::bare_list_name(ListScope::Owner(owner), key)?;
        names.push(format!("{}:{list}", row[0].text("users.name")?));
    }
    names.sort();
    Ok(names)
}

/// Stores a new share link of the list `key` by its secret's hash.
pub fn create_link(
    steps: &mut dyn CommitSteps,
    key: &ListName,
    role: Role,
    hash: &str,
    now: i64,
) -> Result<LinkRow, StorageError> {
    let rows = steps.query(
        "INSERT INTO links (list, role, hash, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        &[
            Param::Text(key.as_str()),
            Param::Text(role.as_str()),
            Param::Text(hash),
            Param::Int(now),
        ],
    )?;
    Ok(LinkRow {
        id: first_int(&rows)?,
        role,
        created_at: now,
    })
}

/// The share links of the list `key`, oldest first.
pub fn links(steps: &mut dyn CommitSteps, key: &ListName) -> Result<Vec<LinkRow>, AccountError> {
    let rows = steps.query(
        "SELECT id, role, created_at FROM links WHERE list = ?1 ORDER BY id",
        &[Param::Text(key.as_str())],
    )?;
    rows.iter()
        .map(|row| {
            Ok(LinkRow {
                id: row[0].int("id")?,
                role: Role::parse(row[1].text("role")?)?,
                created_at: row[2].int("created_at")?,
            })
        })
        .collect()
}

/// Revokes a share link of the list `key`; whether it existed.
pub fn revoke_link(
    steps: &mut dyn CommitSteps,
    key: &ListName,
    link: i64,
) -> Result<bool, StorageError> {
    let n_rows = steps.execute(
        "DELETE FROM links WHERE id = ?1 AND list = ?2",
        &[Param::Int(link), Param::Text(key.as_str())],
    )?;
    Ok(n_rows > 0)
}

/// The list key, role and stored hash of the link whose secret has this hash.
pub fn link(
    steps: &mut dyn CommitSteps,
    hash: &str,
) -> Result<Option<(ListName, Role, String)>, AccountError> {
    let rows = steps.query(
        "SELECT list, role, hash FROM links WHERE hash = ?1",
        &[Param::Text(hash)],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let key = ListName::stored_key(row[0].text("list")?);
    let role = Role::parse(row[1].text("role")?)?;
    Ok(Some((key, role, row[2].text("hash")?.to_owned())))
}

fn user_from(row: &[Cell]) -> Result<UserRow, StorageError> {
    Ok(UserRow {
        id: row[0].int("users.id")?,
        name: UserName::parse(row[1].text("users.name")?).map_err(crate::database::sql::corrupt)?,
        admin: row[2].int("users.admin")? != 0,
        created_at: row[3].int("users.created_at")?,
    })
}

fn first_int(rows: &[Vec<Cell>]) -> Result<i64, StorageError> {
    rows.first()
        .and_then(|row| row.first())
        .ok_or_else(|| crate::database::sql::corrupt("a query returned no row"))?
        .int("count")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::sqlite::Sqlite;
    use crate::database::storage::Storage;

    fn storage(dir: &std::path::Path) -> Storage {
        Storage::Sqlite(Sqlite::open(dir).unwrap())
    }

    fn name(text: &str) -> UserName {
        UserName::parse(text).unwrap()
    }

    #[test]
    fn the_first_user_is_an_admin_and_adopts_the_lists_of_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = storage(dir.path());
        storage
            .transaction(true, |steps| {
                steps.execute(
                    "INSERT INTO lists (name, next_id, version) VALUES ('work', 2, 1)",
                    &[],
                )?;
                steps.execute(
                    "INSERT INTO entries (list, id, date, title, done) VALUES ('work', 1, '2026-12-03', 'x', 0)",
                    &[],
                )?;
                Ok::<_, StorageError>(())
            })
            .unwrap();
        let (alice, adopted) = storage
            .transaction(true, |steps| {
                create_user(steps, &name("alice"), "h", false, 1)
            })
            .unwrap();
        assert!(alice.admin);
        assert_eq!(adopted, 1);
        let (bob, adopted) = storage
            .transaction(true, |steps| {
                create_user(steps, &name("bob"), "h", false, 2)
            })
            .unwrap();
        assert!(!bob.admin);
        assert_eq!(adopted, 0);
        let names = storage
            .list_names(ListScope::Owner(alice.id), "", 10)
            .unwrap();
        assert_eq!(names, vec![ListName::parse("work").unwrap()]);
        let bob_lists = storage
            .list_names(ListScope::Owner(bob.id), "", 10)
            .unwrap();
        assert!(bob_lists.is_empty());
        let ownerless = storage.list_names(ListScope::Ownerless, "", 10).unwrap();
        assert!(ownerless.is_empty());
    }

    #[test]
    fn a_removed_user_takes_their_lists_and_shares_and_their_id_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = storage(dir.path());
        let result = storage.transaction(true, |steps| -> Result<(), AccountError> {
            let (alice, _) = create_user(steps, &name("alice"), "h", true, 1)?;
            let (bob, _) = create_user(steps, &name("bob"), "h", false, 1)?;
            let key = ListName::owned(bob.id, &ListName::parse("home").unwrap());
            share(steps, &key, bob.id, alice.id, Role::Read)?;
            assert_eq!(shared_with(steps, alice.id)?, vec!["bob:home".to_owned()]);
            remove_user(steps, &name("bob"))?;
            assert!(shared_with(steps, alice.id)?.is_empty());
            let (bob_again, _) = create_user(steps, &name("bob"), "h", false, 2)?;
            assert_ne!(bob_again.id, bob.id);
            let last_admin = remove_user(steps, &name("alice"));
            assert!(matches!(last_admin, Err(AccountError::LastAdmin(_))));
            Ok(())
        });
        result.unwrap();
    }
}
