//! The SQL both backends run, written once, and the one commit path they share.
//!
//! Statements use SQLite's numbered placeholders (`?1`); PostgreSQL gets them as `$1` through
//! `for_postgres`. Only the statements whose dialects differ (migrations, collation) live in
//! the backends.

use std::collections::BTreeMap;

use crate::list::{Date, Entry, EntryId, ListName, Title};

use super::change::{Change, Conflicts, KeyedAdd, StorageError, VersionedChange};

/// A list's id counter and version.
pub const SELECT_LIST: &str = "SELECT next_id, version FROM lists WHERE name = ?1";
/// A list's version.
pub const SELECT_VERSION: &str = "SELECT version FROM lists WHERE name = ?1";
/// A list's entries, in id order; columns as `entry` reads them.
pub const SELECT_ENTRIES: &str =
    "SELECT id, date, title, done, position FROM entries WHERE list = ?1 ORDER BY id";
/// A list's idempotency keys and the entry each created.
pub const SELECT_KEYS: &str =
    "SELECT key, entry_id, fingerprint FROM idempotency_keys WHERE list = ?1";
/// A new entry: list, id, date, title, done, position.
pub const INSERT_ENTRY: &str = "INSERT INTO entries (list, id, date, title, done, position)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// A changed entry, with the same parameters as `INSERT_ENTRY`.
pub const UPDATE_ENTRY: &str = "UPDATE entries SET date = ?3, title = ?4, done = ?5, position = ?6
     WHERE list = ?1 AND id = ?2";
/// One entry gone: list, id.
pub const DELETE_ENTRY: &str = "DELETE FROM entries WHERE list = ?1 AND id = ?2";
/// Every entry of a list gone.
pub const DELETE_ENTRIES: &str = "DELETE FROM entries WHERE list = ?1";
/// An idempotency key: list, key, entry id, fingerprint of the request.
pub const INSERT_KEY: &str =
    "INSERT INTO idempotency_keys (list, key, entry_id, fingerprint) VALUES (?1, ?2, ?3, ?4)";
/// The compare-and-set of `CommitSteps::claim` on an existing row: name, expected version, new
/// version, and the id counter after the commit's adds (or NULL).
pub const CLAIM_LIST: &str = "UPDATE lists SET version = ?3,
         next_id = CASE WHEN ?4 > next_id THEN ?4 ELSE next_id END
     WHERE name = ?1 AND version = ?2";
/// The claim of a list with no row yet: name, new version, id counter (or NULL).
pub const CREATE_LIST: &str = "INSERT INTO lists (name, next_id, version)
     VALUES (?1, coalesce(CAST(?3 AS BIGINT), 1), ?2)
     ON CONFLICT (name) DO NOTHING";

/// Which lists `list_names` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// The lists of nobody (made before any account existed) that hold entries.
    Ownerless,
    /// The lists of one user that hold entries, named without the owner's prefix.
    Owner(i64),
    /// Every list under its storage key, also those holding no entries whose id counter has
    /// moved: an admin's export must keep those counters, or ids would be handed out again.
    Everything,
}

/// The bounds of `list_names` for `scope`: the first key after `after`, the first key past
/// the scope, whether keys with an owner count, and whether emptied lists do. Keys are
/// compared byte by byte, so `ID:` up to `ID;` holds exactly one owner's lists.
pub fn list_name_bounds(scope: ListScope, after: &str) -> (String, String, bool, bool) {
    match scope {
        ListScope::Owner(owner) => {
            let prefix = ListName::owner_prefix(owner);
            (format!("{prefix}{after}"), format!("{owner};"), true, false)
        }
        ListScope::Ownerless => (after.to_owned(), char::MAX.to_string(), false, false),
        ListScope::Everything => (after.to_owned(), char::MAX.to_string(), true, true),
    }
}

/// Most problems `invariant_problems` reports of each kind.
const MAX_PROBLEMS: i64 = 100;

/// What breaks the project's own invariants in storage, as sentences naming the list: a next
/// id not above the largest id (ids would be reused), entries or idempotency keys without
/// their list's row, a negative version, dates and titles the API would refuse, members and
/// links of users who are gone. Empty when all hold.
pub fn invariant_problems(steps: &mut dyn CommitSteps) -> Result<Vec<String>, StorageError> {
    let limit = [Param::Int(MAX_PROBLEMS)];
    let mut problems = Vec::new();
    let rows = steps.query(
        "SELECT lists.name, lists.next_id, max(entries.id) FROM lists
         JOIN entries ON entries.list = lists.name
         GROUP BY lists.name, lists.next_id HAVING max(entries.id) >= lists.next_id LIMIT ?1",
        &limit,
    )?;
    for row in &rows {
        problems.push(format!(
            "list {:?}: its next id {} is not above its largest id {}, so ids would be reused",
            row[0].text("name")?,
            row[1].int("next_id")?,
            row[2].int("max")?
        ));
    }
    for (sql, what) in [
        (
            "SELECT DISTINCT list FROM entries WHERE list NOT IN (SELECT name FROM lists) LIMIT ?1",
            "has entries but no list row",
        ),
        (
            "SELECT DISTINCT list FROM idempotency_keys WHERE list NOT IN (SELECT name FROM lists) LIMIT ?1",
            "has idempotency keys but no list row",
        ),
        (
            "SELECT name FROM lists WHERE version < 0 OR next_id < 1 LIMIT ?1",
            "has a negative version or an id counter below 1",
        ),
        (
            "SELECT DISTINCT list FROM members WHERE user_id NOT IN (SELECT id FROM users)
                OR owner_id NOT IN (SELECT id FROM users) LIMIT ?1",
            "is shared with or by a user who is gone",
        ),
        (
            "SELECT DISTINCT list FROM links WHERE list LIKE '%:%'
                AND NOT EXISTS (SELECT 1 FROM users
                    WHERE links.list LIKE CAST(users.id AS TEXT) || ':%') LIMIT ?1",
            "has share links but its owner is gone",
        ),
    ] {
        for row in steps.query(sql, &limit)? {
            problems.push(format!("list {:?} {what}", row[0].text("list")?));
        }
    }
    let rows = steps.query("SELECT list, id, date, title FROM entries", &[])?;
    for row in &rows {
        let (list, id) = (row[0].text("list")?, row[1].int("id")?);
        let date = Date::parse(row[2].text("date")?).err();
        let title = Title::stored(row[3].text("title")?).err();
        for error in [date, title].into_iter().flatten() {
            problems.push(format!("list {list:?}, entry {id}: {error}"));
        }
    }
    Ok(problems)
}

/// A list name read back by `list_names`, checked: without the owner's prefix for one
/// owner's lists, the whole key for `Everything`.
pub fn bare_list_name(scope: ListScope, key: &str) -> Result<ListName, StorageError> {
    let prefix = match scope {
        ListScope::Owner(owner) => ListName::owner_prefix(owner),
        ListScope::Ownerless => String::new(),
        ListScope::Everything => {
            let bare = key.split_once(':').map_or(key, |(_, name)| name);
            ListName::stored(bare).map_err(corrupt)?;
            return Ok(ListName::stored_key(key));
        }
    };
    let bare = key
        .strip_prefix(prefix.as_str())
        .ok_or_else(|| corrupt(format!("list {key:?} outside its owner's keys")))?;
    ListName::stored(bare).map_err(corrupt)
}

/// A statement with PostgreSQL's placeholders (`$1` for `?1`); no statement here has a `?`
/// anywhere else.
pub fn for_postgres(sql: &str) -> String {
    sql.replace('?', "$")
}

/// What an idempotency key created, from the columns of `SELECT_KEYS`, checked.
pub fn keyed_add(entry_id_column: i64, fingerprint: Option<i64>) -> Result<KeyedAdd, StorageError> {
    Ok(KeyedAdd {
        id: entry_id(entry_id_column)?,
        fingerprint,
    })
}

/// An entry from the columns of `SELECT_ENTRIES`, checked.
pub fn entry(
    id: i64,
    date: &str,
    title: &str,
    done: bool,
    position: Option<i64>,
) -> Result<Entry, StorageError> {
    Ok(Entry {
        id: entry_id(id)?,
        date: Date::parse(date).map_err(corrupt)?,
        title: Title::stored(title).map_err(corrupt)?,
        done,
        order: position,
    })
}

/// One open transaction of a backend: the only thing a backend must provide to commit lists
/// (`apply_versioned`) and to keep accounts (`crate::accounts::store`).
pub trait CommitSteps {
    /// Runs one statement with its parameters; returns the rows changed.
    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StorageError>;

    /// Runs one query with its parameters; returns its rows, each as its columns in order.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Vec<Cell>>, StorageError>;
}

/// One column of a result row, as both backends read it: booleans come back as integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl Cell {
    /// The integer, or a corruption error naming `column`.
    pub fn int(&self, column: &str) -> Result<i64, StorageError> {
        match self {
            Cell::Int(int) => Ok(*int),
            other => Err(corrupt(format!("{column} is {other:?}, not an integer"))),
        }
    }

    /// The integer, NULL as `None`.
    pub fn optional_int(&self, column: &str) -> Result<Option<i64>, StorageError> {
        match self {
            Cell::Null => Ok(None),
            other => other.int(column).map(Some),
        }
    }

    /// The text, or a corruption error naming `column`.
    pub fn text(&self, column: &str) -> Result<&str, StorageError> {
        match self {
            Cell::Text(text) => Ok(text),
            other => Err(corrupt(format!("{column} is {other:?}, not text"))),
        }
    }
}

/// A statement parameter, typed the way both backends bind it.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// Text.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// An integer or NULL.
    OptionalInt(Option<i64>),
    /// A boolean.
    Bool(bool),
}

/// Applies one change to the entry rows of `list`: the statements of a change, once for
/// every backend.
fn apply(
    steps: &mut impl CommitSteps,
    list: &ListName,
    change: &Change,
) -> Result<(), StorageError> {
    let name = Param::Text(list.as_str());
    match change {
        // The list's id counter is written once per commit, by `claim`.
        Change::Add {
            entry,
            idempotency_key,
            ..
        } => {
            let date = entry.date.to_string();
            steps.execute(INSERT_ENTRY, &entry_params(name, entry, &date))?;
            if let Some(key) = idempotency_key {
                let id = Param::Int(sql_id(entry.id));
                let key = [name, Param::Text(&key.key), id, Param::Int(key.fingerprint)];
                steps.execute(INSERT_KEY, &key)?;
            }
        }
        Change::Update(entry) => {
            let date = entry.date.to_string();
            let n_rows = steps.execute(UPDATE_ENTRY, &entry_params(name, entry, &date))?;
            expect_one_row(n_rows)?;
        }
        Change::Delete(id) => {
            let n_rows = steps.execute(DELETE_ENTRY, &[name, Param::Int(sql_id(*id))])?;
            expect_one_row(n_rows)?;
        }
        Change::Clear => {
            steps.execute(DELETE_ENTRIES, &[name])?;
        }
        Change::Import { entries, .. } => {
            for entry in entries {
                let date = entry.date.to_string();
                steps.execute(INSERT_ENTRY, &entry_params(name, entry, &date))?;
            }
        }
    }
    Ok(())
}

/// The parameters of `INSERT_ENTRY` and `UPDATE_ENTRY`.
fn entry_params<'a>(name: Param<'a>, entry: &'a Entry, date: &'a str) -> [Param<'a>; 6] {
    [
        name,
        Param::Int(sql_id(entry.id)),
        Param::Text(date),
        Param::Text(entry.title.as_str()),
        Param::Bool(entry.done),
        Param::OptionalInt(entry.order),
    ]
}

/// Compare-and-set on a list's row: if its version is `expected` (0 and no row for a new
/// list), sets it to `new` and raises its id counter to `next_id`, and returns true; otherwise
/// changes nothing and returns false. On PostgreSQL this also locks the row until the commit,
/// so nodes writing one list take turns.
fn claim(
    steps: &mut impl CommitSteps,
    list: &ListName,
    expected: u64,
    new: u64,
    next_id: Option<EntryId>,
) -> Result<bool, StorageError> {
    let name = Param::Text(list.as_str());
    let (expected, new) = (sql_version(expected)?, sql_version(new)?);
    let next_id = Param::OptionalInt(next_id.map(sql_id));
    let params = [name, Param::Int(expected), Param::Int(new), next_id];
    let n_rows = steps.execute(CLAIM_LIST, &params)?;
    if n_rows == 1 || expected != 0 {
        return Ok(n_rows == 1);
    }
    let n_rows = steps.execute(CREATE_LIST, &[name, Param::Int(new), next_id])?;
    Ok(n_rows == 1)
}

/// What one commit does to one list's row.
struct ListPlan {
    /// The version the list's first write expects.
    expected: u64,
    /// How many of the commit's writes are for this list.
    n_changes: u64,
    /// The list's id counter after its adds, if it has any.
    next_id: Option<EntryId>,
}

/// Applies `changes` through `steps` with a compare-and-set on each list's version: the one
/// code path that makes several nodes on one database safe, on every backend. Each list's row
/// is claimed once per commit, in name order so that two nodes never deadlock; the changes of
/// lists whose version moved on are skipped and returned as conflicts.
pub fn apply_versioned(
    steps: &mut impl CommitSteps,
    changes: &[VersionedChange<'_>],
) -> Result<Conflicts, StorageError> {
    let mut plans: BTreeMap<&ListName, ListPlan> = BTreeMap::new();
    for change in changes {
        let plan = plans.entry(change.list).or_insert(ListPlan {
            expected: change.expected_version,
            n_changes: 0,
            next_id: None,
        });
        // An actor's writes follow one another, so within a list the chain never breaks; if
        // it does, memory and storage disagree and nothing may commit.
        if change.expected_version != plan.expected + plan.n_changes {
            return Err(StorageError::Diverged);
        }
        plan.n_changes += 1;
        if let Change::Add { next_id, .. } | Change::Import { next_id, .. } = change.change {
            plan.next_id = plan.next_id.max(Some(*next_id));
        }
    }
    let mut conflicts = Conflicts::new();
    for (list, plan) in &plans {
        if !claim(
            steps,
            list,
            plan.expected,
            plan.expected + plan.n_changes,
            plan.next_id,
        )? {
            conflicts.insert((*list).clone());
        }
    }
    for change in changes {
        if !conflicts.contains(change.list) {
            apply(steps, change.list, change.change)?;
        }
    }
    Ok(conflicts)
}

/// An id as both backends store it.
fn sql_id(id: EntryId) -> i64 {
    i64::try_from(id.get())
        .expect("ids and counters stay at or below EntryId::MAX + 1, which fits in i64")
}

/// A stored id, checked.
pub fn entry_id(id: i64) -> Result<EntryId, StorageError> {
    u64::try_from(id)
        .ok()
        .and_then(EntryId::new)
        .ok_or_else(|| StorageError::Corrupt(format!("entry id {id} is not positive")))
}

/// A stored id counter, checked: it may be one past the largest id.
pub fn next_id(next: i64) -> Result<EntryId, StorageError> {
    u64::try_from(next)
        .ok()
        .and_then(EntryId::counter)
        .ok_or_else(|| StorageError::Corrupt(format!("id counter {next} is not positive")))
}

/// A stored list version, checked.
pub fn stored_version(version: i64) -> Result<u64, StorageError> {
    u64::try_from(version)
        .map_err(|_| StorageError::Corrupt(format!("list version {version} is negative")))
}

/// A version as both backends store it.
fn sql_version(version: u64) -> Result<i64, StorageError> {
    i64::try_from(version)
        .map_err(|_| StorageError::Corrupt(format!("list version {version} overflows")))
}

/// An update or delete of an entry the list holds must touch exactly one row; anything else
/// means memory and storage disagree, and the group must not commit.
fn expect_one_row(n_rows: u64) -> Result<(), StorageError> {
    match n_rows {
        1 => Ok(()),
        _ => Err(StorageError::Diverged),
    }
}

/// A stored value that does not validate.
pub fn corrupt(error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(error.to_string())
}
