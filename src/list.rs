//! The to-do list itself: `TodoList` and the validated values it holds.
//!
//! This is the book's `Todo.List`: pure data with no async and no I/O, so every rule of the
//! domain can be tested on its own. Invalid names, titles and dates cannot be constructed, so
//! they never reach the actors or storage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use chrono::Datelike;

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

/// Longest list name, in characters.
pub const MAX_LIST_NAME_CHARS: usize = 128;
/// Longest entry title, in characters.
pub const MAX_TITLE_CHARS: usize = 1_000;

/// Why a value was rejected; the message is meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The list name is empty, too long, or holds a character outside the allowed set.
    #[error("invalid list name: {0}")]
    ListName(String),
    /// The list name mixes scripts (Latin with Cyrillic, say), so it could pass for another.
    #[error(
        "invalid list name {0:?}: it mixes letters of different scripts, so it could be mistaken for another name"
    )]
    MixedScripts(String),
    /// The title is empty, too long, or holds a control character.
    #[error("invalid title: {0}")]
    Title(String),
    /// The date is not a real calendar date written as `YYYY-MM-DD`.
    #[error("invalid date {0:?}: expected a calendar date as YYYY-MM-DD")]
    Date(String),
    /// The entry id is not a positive integer.
    #[error("invalid entry id {0:?}: expected a positive integer")]
    EntryId(String),
}

impl ValidationError {
    /// The API's error code for this refusal, the same from the server and the command line.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::ListName(_) => "invalid_list_name",
            ValidationError::MixedScripts(_) => "mixed_scripts",
            ValidationError::Title(_) => "invalid_title",
            ValidationError::Date(_) => "invalid_date",
            ValidationError::EntryId(_) => "invalid_id",
        }
    }
}

/// The name of a list: 1 to 128 characters, none of `REFUSED_IN_NAMES`, not dots alone, in NFC
/// and of one script.
///
/// Names are keys in storage, never file paths; the rules still refuse anything path-like so that
/// no later change can turn one into a path by accident.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListName(String);

impl ListName {
    /// The rules of a list name's characters and length.
    const RULES: NameRules = NameRules {
        max_chars: MAX_LIST_NAME_CHARS,
        is_allowed: is_list_name_char,
        allowed: NAME_CHARACTERS,
    };

    /// Validates `name` as a list name, in its canonical form (`NameRules::canonical`): the
    /// NFC and NFD spellings of `café` are one list, and a name mixing scripts is refused.
    pub fn parse(name: &str) -> Result<ListName, ValidationError> {
        let name = NameRules::canonical(name);
        Self::RULES
            .check(&name)
            .map_err(ValidationError::ListName)?;
        if !NameRules::single_script(&name) {
            return Err(ValidationError::MixedScripts(name));
        }
        Ok(ListName(name))
    }

    /// A name read back from storage, under the rules it was first written with: names
    /// stored before normalisation and the script rule stay readable.
    pub fn stored(name: &str) -> Result<ListName, ValidationError> {
        Self::RULES.check(name).map_err(ValidationError::ListName)?;
        Ok(ListName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The storage key of `name` owned by the user with id `owner`: `OWNER_ID:NAME`. Names
    /// cannot hold `:`, so a key with an owner never equals a name without one; lists made
    /// while no account existed have no owner and keep their bare name as key.
    pub fn owned(owner: i64, name: &ListName) -> ListName {
        ListName(format!("{owner}:{}", name.0))
    }

    /// A key as stored (`NAME` or `OWNER_ID:NAME`), read back from the account tables that
    /// were written with keys made here.
    pub fn stored_key(key: &str) -> ListName {
        ListName(key.to_owned())
    }

    /// The key prefix of every list owned by `owner`.
    pub fn owner_prefix(owner: i64) -> String {
        format!("{owner}:")
    }
}

/// What makes a name (of a list, or of a user): its length, the characters it may hold, and
/// not dots alone, so no name can ever be taken for a path.
pub struct NameRules {
    /// Most characters.
    pub max_chars: usize,
    /// Whether a character may appear.
    pub is_allowed: fn(char) -> bool,
    /// The allowed characters, for the error message.
    pub allowed: &'static str,
}

impl NameRules {
    /// A name as typed, in Unicode's composed form (NFC), so that one name typed on two
    /// keyboards is one name.
    pub fn canonical(name: &str) -> String {
        // ASCII is its own NFC, and most names are ASCII: no decomposition tables then.
        match name.is_ascii() {
            true => name.to_owned(),
            false => name.nfc().collect(),
        }
    }

    /// Whether the letters of `name` all belong to one script, as Unicode's security
    /// mechanisms (UTS #39) define it: digits and punctuation go with any script, and Japanese
    /// may mix Han and kana; `bob` with a Cyrillic `о` is refused.
    pub fn single_script(name: &str) -> bool {
        // ASCII letters are all Latin, and its other characters belong to every script.
        name.is_ascii() || name.is_single_script()
    }

    /// Why `name` breaks the rules, if it does.
    pub fn check(&self, name: &str) -> Result<(), String> {
        let n_chars = name.chars().count();
        if n_chars == 0 || n_chars > self.max_chars {
            return Err(format!(
                "must be 1 to {} characters, got {n_chars}",
                self.max_chars
            ));
        }
        if let Some(bad) = name.chars().find(|c| !(self.is_allowed)(*c)) {
            return Err(format!("{bad:?} is not allowed; use {}", self.allowed));
        }
        if name.chars().all(|c| c == '.') {
            return Err("dots alone are not a name".into());
        }
        Ok(())
    }
}

/// Characters no name may hold, as inclusive ranges: control characters; ASCII punctuation
/// but `-_.@+` (so a name needs no quoting in a URL path or a shell, and `:` is free to join
/// `OWNER:LIST`); spaces other than the plain space, and invisible formatting (zero-width and
/// bidirectional controls, soft hyphens), which would let two names look alike. Letters,
/// digits, marks, symbols and emoji of every script are welcome. One table, read by the rules
/// here and by the OpenAPI document's patterns, so that both always say the same.
pub const REFUSED_IN_NAMES: &[(char, char)] = &[
    ('\0', '\x1f'),
    ('!', '*'),
    (',', ','),
    ('/', '/'),
    (':', '?'),
    ('[', '^'),
    ('`', '`'),
    ('{', '\u{9f}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{ad}', '\u{ad}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{2000}', '\u{200f}'),
    ('\u{2028}', '\u{202f}'),
    ('\u{205f}', '\u{206f}'),
    ('\u{3000}', '\u{3000}'),
    ('\u{feff}', '\u{feff}'),
];

/// What the name rules allow, for their error messages.
pub const NAME_CHARACTERS: &str = "letters, digits, symbols, spaces and -_.@+ (no other ASCII punctuation, no invisible characters)";

/// Whether `c` may appear in a list name.
pub fn is_list_name_char(c: char) -> bool {
    !REFUSED_IN_NAMES
        .iter()
        .any(|(first, last)| (*first..=*last).contains(&c))
}

impl fmt::Display for ListName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ListName {
    type Err = ValidationError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ListName::parse(name)
    }
}

/// The title of an entry: 1 to 1,000 characters, not all blank, with no control characters
/// and no line or paragraph separators (U+2028, U+2029), which would split the book's lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Title(String);

impl Title {
    /// Validates `title` as a new entry title.
    pub fn parse(title: &str) -> Result<Title, ValidationError> {
        if title.chars().all(char::is_whitespace) && !title.is_empty() {
            return Err(ValidationError::Title("must not be blank".into()));
        }
        if title.contains(['\u{2028}', '\u{2029}']) {
            return Err(ValidationError::Title(
                "line and paragraph separators are not allowed".into(),
            ));
        }
        Title::stored(title)
    }

    /// Accepts a title read back from storage under the rules it was first written with, so
    /// titles stored by an earlier version (before blank titles and separators were refused)
    /// stay readable.
    pub fn stored(title: &str) -> Result<Title, ValidationError> {
        let n_chars = title.chars().count();
        if n_chars == 0 || n_chars > MAX_TITLE_CHARS {
            return Err(ValidationError::Title(format!(
                "must be 1 to {MAX_TITLE_CHARS} characters, got {n_chars}"
            )));
        }
        if title.chars().any(char::is_control) {
            return Err(ValidationError::Title(
                "control characters are not allowed".into(),
            ));
        }
        Ok(Title(title.to_owned()))
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar date, written and parsed strictly as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(chrono::NaiveDate);

impl Date {
    /// Before every date: the open start of a range of dates.
    pub const EARLIEST: Date = Date(chrono::NaiveDate::MIN);
    /// After every date: the open end of a range of dates.
    pub const LATEST: Date = Date(chrono::NaiveDate::MAX);

    /// Parses `YYYY-MM-DD`, refusing dates that do not exist (`2018-02-30`) and loose forms (`2018-1-5`).
    pub fn parse(text: &str) -> Result<Date, ValidationError> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !well_formed {
            return Err(ValidationError::Date(text.to_owned()));
        }
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0, |n, digit| n * 10 + u32::from(digit - b'0'))
        };
        let year = number(0..4) as i32;
        chrono::NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
            .map(Date)
            .ok_or_else(|| ValidationError::Date(text.to_owned()))
    }

    /// Today's date in UTC.
    pub fn today() -> Date {
        Date(chrono::Utc::now().date_naive())
    }

    /// The date `n_days` after this one, if it exists.
    pub fn plus_days(self, n_days: u64) -> Option<Date> {
        self.0.checked_add_days(chrono::Days::new(n_days)).map(Date)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = (self.0.year(), self.0.month(), self.0.day());
        // Every answer with entries prints their dates: digits, rather than a format string
        // parsed each time. Years without four digits (only the range bounds) take chrono's.
        match year {
            0..=9999 => write!(f, "{year:04}-{month:02}-{day:02}"),
            _ => write!(f, "{}", self.0.format("%Y-%m-%d")),
        }
    }
}

impl FromStr for Date {
    type Err = ValidationError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Date::parse(text)
    }
}

/// The id of an entry within its list: assigned by the list, starting at 1, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u64);

impl EntryId {
    /// The first id a new list hands out.
    pub const FIRST: EntryId = EntryId(1);
    /// The largest id a list hands out, chosen so that the counter after it still fits in the
    /// signed 64-bit integers of SQLite and PostgreSQL.
    pub const MAX: EntryId = EntryId(i64::MAX as u64 - 1);

    /// Wraps a positive id; zero and ids beyond `EntryId::MAX` are refused.
    pub fn new(id: u64) -> Option<EntryId> {
        (1..=Self::MAX.0).contains(&id).then_some(EntryId(id))
    }

    /// Wraps a list's id counter: an id, or the one past `EntryId::MAX` that a list which has
    /// handed out every id holds (it must load, export and import like any other).
    pub fn counter(next: u64) -> Option<EntryId> {
        (1..=Self::MAX.0 + 1)
            .contains(&next)
            .then_some(EntryId(next))
    }

    /// Parses a positive decimal id, written the one way ids are written: digits only, no sign,
    /// no leading zero (so `01` is not another name for entry 1).
    pub fn parse(text: &str) -> Result<EntryId, ValidationError> {
        let canonical = text.bytes().all(|byte| byte.is_ascii_digit()) && !text.starts_with('0');
        canonical
            .then(|| text.parse::<u64>().ok())
            .flatten()
            .and_then(EntryId::new)
            .ok_or_else(|| ValidationError::EntryId(text.to_owned()))
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }

    fn next(self) -> EntryId {
        EntryId(self.0 + 1)
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One to-do entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Assigned by the list when the entry is added.
    pub id: EntryId,
    /// The day the entry is for.
    pub date: Date,
    /// What is to be done.
    pub title: Title,
    /// Whether it has been done.
    pub done: bool,
    /// A position chosen by clients that sort by hand (the Todo-Backend `order`).
    pub order: Option<i64>,
}

/// The fields of a new entry; the list assigns its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The day the entry is for.
    pub date: Date,
    /// What is to be done.
    pub title: Title,
    /// Whether it is already done.
    pub done: bool,
    /// An optional client-chosen position.
    pub order: Option<i64>,
}

impl NewEntry {
    /// A new, not yet done entry without an order, as the book's `add_entry` makes.
    pub fn new(date: Date, title: Title) -> NewEntry {
        NewEntry {
            date,
            title,
            done: false,
            order: None,
        }
    }
}

/// A partial update of an entry: fields left `None` keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// A new title.
    pub title: Option<Title>,
    /// A new date.
    pub date: Option<Date>,
    /// A new done flag.
    pub done: Option<bool>,
    /// A new order.
    pub order: Option<i64>,
}

/// Why a list operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// No entry has this id.
    #[error("entry {0} not found")]
    NotFound(EntryId),
    /// The list has handed out every id storage can hold.
    #[error("the list has run out of entry ids")]
    IdsExhausted,
}

/// A to-do list: entries by id, with an index by date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoList {
    next_id: EntryId,
    entries: BTreeMap<EntryId, Entry>,
    by_date: BTreeSet<(Date, EntryId)>,
}

impl Default for TodoList {
    fn default() -> TodoList {
        TodoList {
            next_id: EntryId::FIRST,
            entries: BTreeMap::new(),
            by_date: BTreeSet::new(),
        }
    }
}

impl TodoList {
    /// Rebuilds a list from stored entries and the next id it will hand out.
    ///
    /// `next_id` is raised past the largest stored id, so a damaged counter can never cause an id
    /// to be handed out twice.
    pub fn from_entries(next_id: EntryId, entries: impl IntoIterator<Item = Entry>) -> TodoList {
        let mut list = TodoList {
            next_id,
            ..TodoList::default()
        };
        for entry in entries {
            list.next_id = list.next_id.max(entry.id.next());
            list.insert(entry);
        }
        list
    }

    /// Adds an entry, giving it the next id, and returns the stored entry.
    pub fn add_entry(&mut self, new_entry: NewEntry) -> Result<&Entry, ListError> {
        let id = self.next_id;
        if id > EntryId::MAX {
            return Err(ListError::IdsExhausted);
        }
        self.next_id = id.next();
        self.insert(Entry {
            id,
            date: new_entry.date,
            title: new_entry.title,
            done: new_entry.done,
            order: new_entry.order,
        });
        Ok(&self.entries[&id])
    }

    /// Puts entries back under the ids they had elsewhere (an import), and raises the next id
    /// to at least `next_id` and past every one of them. The caller makes sure none of the ids
    /// is in the list or was handed out by it before.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = Entry>, next_id: EntryId) {
        self.next_id = self.next_id.max(next_id);
        for entry in entries {
            self.next_id = self.next_id.max(entry.id.next());
            self.insert(entry);
        }
    }

    /// The entries on `date`, in id order.
    pub fn entries(&self, date: Date) -> impl Iterator<Item = &Entry> {
        self.entries_between(date..=date)
    }

    /// The entries from the first to the last date of `dates`, by date and then by id.
    pub fn entries_between(&self, dates: RangeInclusive<Date>) -> impl Iterator<Item = &Entry> {
        let (from, to) = dates.into_inner();
        let keys = (from <= to).then_some((from, EntryId(0))..=(to, EntryId(u64::MAX)));
        keys.into_iter()
            .flat_map(|keys| self.by_date.range(keys))
            .map(|(_, id)| &self.entries[id])
    }

    /// Every entry, in id order.
    pub fn all_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entry with this id.
    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Applies `changes` to an entry and returns it as it now is.
    pub fn update_entry(&mut self, id: EntryId, changes: Changes) -> Result<&Entry, ListError> {
        let mut entry = self.remove(id).ok_or(ListError::NotFound(id))?;
        if let Some(title) = changes.title {
            entry.title = title;
        }
        if let Some(date) = changes.date {
            entry.date = date;
        }
        if let Some(done) = changes.done {
            entry.done = done;
        }
        if let Some(order) = changes.order {
            entry.order = Some(order);
        }
        self.insert(entry);
        Ok(&self.entries[&id])
    }

    /// Deletes an entry and returns it.
    pub fn delete_entry(&mut self, id: EntryId) -> Result<Entry, ListError> {
        self.remove(id).ok_or(ListError::NotFound(id))
    }

    /// Deletes every entry and returns them, in id order; ids already handed out stay used.
    pub fn clear(&mut self) -> Vec<Entry> {
        self.by_date.clear();
        std::mem::take(&mut self.entries).into_values().collect()
    }

    /// The number of entries.
    pub fn size(&self) -> usize {
        self.entries.len()
    }

    /// The id the next added entry will get.
    pub fn next_id(&self) -> EntryId {
        self.next_id
    }

    fn insert(&mut self, entry: Entry) {
        self.by_date.insert((entry.date, entry.id));
        self.entries.insert(entry.id, entry);
    }

    fn remove(&mut self, id: EntryId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.by_date.remove(&(entry.date, id));
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> Date {
        Date::parse(text).expect("test dates are valid")
    }

    fn new_entry(day: &str, title: &str) -> NewEntry {
        NewEntry::new(
            date(day),
            Title::parse(title).expect("test titles are valid"),
        )
    }

    fn titles_on(list: &TodoList, day: &str) -> Vec<String> {
        list.entries(date(day))
            .map(|entry| entry.title.to_string())
            .collect()
    }

    fn book_list() -> TodoList {
        let mut list = TodoList::default();
        for (day, title) in [
            ("2018-12-19", "Dentist"),
            ("2018-12-20", "Shopping"),
            ("2018-12-19", "Movies"),
        ] {
            list.add_entry(new_entry(day, title)).expect("ids remain");
        }
        list
    }

    #[test]
    fn new_list_is_empty() {
        assert_eq!(TodoList::default().size(), 0);
    }

    #[test]
    fn entries_by_date_as_in_the_book() {
        let list = book_list();
        assert_eq!(list.size(), 3);
        assert_eq!(titles_on(&list, "2018-12-19"), ["Dentist", "Movies"]);
        assert_eq!(titles_on(&list, "2018-12-20"), ["Shopping"]);
        assert!(titles_on(&list, "2018-12-21").is_empty());
    }

    #[test]
    fn update_entry_as_in_the_book() {
        let mut list = book_list();
        let changes = Changes {
            title: Some(Title::parse("Updated shopping").unwrap()),
            ..Changes::default()
        };
        list.update_entry(EntryId(2), changes).unwrap();
        assert_eq!(list.size(), 3);
        assert_eq!(titles_on(&list, "2018-12-20"), ["Updated shopping"]);
    }

    #[test]
    fn delete_entry_as_in_the_book() {
        let mut list = book_list();
        list.delete_entry(EntryId(2)).unwrap();
        assert_eq!(list.size(), 2);
        assert!(titles_on(&list, "2018-12-20").is_empty());
    }

    #[test]
    fn missing_entries_are_reported() {
        let mut list = book_list();
        let missing = EntryId(9);
        assert_eq!(list.entry(missing), None);
        assert_eq!(
            list.update_entry(missing, Changes::default()),
            Err(ListError::NotFound(missing))
        );
        assert_eq!(
            list.delete_entry(missing),
            Err(ListError::NotFound(missing))
        );
    }

    #[test]
    fn ids_are_not_reused_after_delete_or_clear() {
        let mut list = book_list();
        list.delete_entry(EntryId(3)).unwrap();
        list.clear();
        let added = list.add_entry(new_entry("2018-12-19", "Again")).unwrap();
        assert_eq!(added.id, EntryId(4));
    }

    #[test]
    fn moving_an_entry_to_another_date_reindexes_it() {
        let mut list = book_list();
        let changes = Changes {
            date: Some(date("2018-12-21")),
            ..Changes::default()
        };
        list.update_entry(EntryId(1), changes).unwrap();
        assert_eq!(titles_on(&list, "2018-12-19"), ["Movies"]);
        assert_eq!(titles_on(&list, "2018-12-21"), ["Dentist"]);
    }

    #[test]
    fn date_range_is_inclusive_and_sorted() {
        let list = book_list();
        let titles: Vec<_> = list
            .entries_between(date("2018-12-19")..=date("2018-12-20"))
            .map(|entry| entry.title.as_str())
            .collect();
        assert_eq!(titles, ["Dentist", "Movies", "Shopping"]);
        let backwards = list.entries_between(date("2018-12-20")..=date("2018-12-19"));
        assert_eq!(backwards.count(), 0);
    }

    #[test]
    fn from_entries_never_hands_out_a_stored_id() {
        let stored = book_list().all_entries().cloned().collect::<Vec<_>>();
        let mut list = TodoList::from_entries(EntryId::FIRST, stored);
        assert_eq!(
            list.add_entry(new_entry("2018-12-19", "x")).unwrap().id,
            EntryId(4)
        );
    }

    fn check<T: fmt::Debug>(parse: fn(&str) -> Result<T, ValidationError>, input: &str, ok: bool) {
        assert_eq!(parse(input).is_ok(), ok, "{input:?} -> {:?}", parse(input));
    }

    #[test]
    fn dates_are_strict() {
        for (input, ok) in [
            ("2018-12-19", true),
            ("2020-02-29", true),
            ("2018-13-01", false),
            ("2018-02-30", false),
            ("2018-1-05", false),
            ("", false),
            ("yesterday", false),
            ("2018-12-19T00:00", false),
            ("+018-12-19", false),
            ("2019-02-29", false),
            ("2018-00-10", false),
            ("2018-12-00", false),
        ] {
            check(Date::parse, input, ok);
        }
    }

    #[test]
    fn dates_print_as_they_parse() {
        for text in [
            "2018-12-19",
            "0000-01-01",
            "0999-03-04",
            "9999-12-31",
            "2020-02-29",
        ] {
            assert_eq!(date(text).to_string(), text);
        }
        assert_eq!(Date::LATEST.to_string(), "+262142-12-31", "chrono's form");
    }

    #[test]
    fn list_names_are_safe_keys() {
        let long = "a".repeat(129);
        for (input, ok) in [
            ("bob", true),
            ("Bob's", false),
            ("work list-2_a.b@c+d", true),
            ("ação", true),
            ("..", false),
            (".", false),
            ("../x", false),
            ("/etc/x", false),
            ("a/b", false),
            ("a\\b", false),
            ("a\0b", false),
            ("%2e%2e", false),
            ("", false),
            (long.as_str(), false),
            (&long[..128], true),
        ] {
            check(ListName::parse, input, ok);
        }
    }

    #[test]
    fn a_name_typed_two_ways_is_one_name_and_look_alikes_are_refused() {
        let composed = ListName::parse("caf\u{e9}").unwrap();
        let decomposed = ListName::parse("cafe\u{301}").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(decomposed.as_str(), "caf\u{e9}");
        assert_eq!(
            ListName::parse("b\u{43e}b"),
            Err(ValidationError::MixedScripts("b\u{43e}b".into())),
            "a Cyrillic o among Latin letters"
        );
        for name in [
            "\u{43c}\u{43e}\u{439} 2",
            "東京のリスト",
            "ελληνικά-1",
            "bob 2026",
        ] {
            assert!(ListName::parse(name).is_ok(), "{name}");
        }
        assert!(
            ListName::stored("b\u{43e}b").is_ok(),
            "stored names stay readable"
        );
    }

    #[test]
    fn titles_are_bounded_and_printable() {
        let long = "x".repeat(1_001);
        for (input, ok) in [
            ("Dentist", true),
            ("", false),
            ("tab\there", false),
            ("line\nbreak", false),
            ("   ", false),
            ("\u{3000}", false),
            (" padded ", true),
            ("line\u{2028}separator", false),
            ("paragraph\u{2029}separator", false),
            (long.as_str(), false),
            (&long[..1_000], true),
        ] {
            check(Title::parse, input, ok);
        }
        check(Title::stored, "   ", true);
    }

    #[test]
    fn entry_ids_are_positive() {
        for (input, ok) in [
            ("1", true),
            ("0", false),
            ("-1", false),
            ("x", false),
            ("", false),
            ("01", false),
            ("+1", false),
            (" 1", false),
            ("10", true),
        ] {
            check(EntryId::parse, input, ok);
        }
        check(EntryId::parse, &u64::MAX.to_string(), false);
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, u8),
        Update(u8, Option<u8>, Option<bool>),
        Delete(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..5u8, any::<u8>()).prop_map(|(day, title)| Op::Add(day, title)),
            (
                0..12u8,
                proptest::option::of(0..5u8),
                proptest::option::of(any::<bool>())
            )
                .prop_map(|(id, day, done)| Op::Update(id, day, done)),
            (0..12u8).prop_map(Op::Delete),
        ]
    }

    fn day(n: u8) -> Date {
        date("2018-12-01").plus_days(n.into()).unwrap()
    }

    proptest! {
        /// `TodoList` behaves like a plain vector of entries searched linearly.
        #[test]
        fn behaves_like_a_vector(ops in proptest::collection::vec(op(), 0..60)) {
            let mut list = TodoList::default();
            let mut model: Vec<Entry> = Vec::new();
            let mut next_id = 1u64;
            for op in ops {
                match op {
                    Op::Add(d, t) => {
                        let added = list.add_entry(new_entry(&day(d).to_string(), &format!("t{t}"))).unwrap().clone();
                        prop_assert_eq!(added.id, EntryId(next_id));
                        model.push(added);
                        next_id += 1;
                    }
                    Op::Update(id, d, done) => {
                        let changes = Changes { date: d.map(day), done, ..Changes::default() };
                        let result = list.update_entry(EntryId(id.into()), changes).cloned();
                        match model.iter_mut().find(|e| e.id == EntryId(id.into())) {
                            Some(entry) => {
                                if let Some(d) = d { entry.date = day(d); }
                                if let Some(done) = done { entry.done = done; }
                                prop_assert_eq!(result, Ok(entry.clone()));
                            }
                            None => prop_assert!(result.is_err()),
                        }
                    }
                    Op::Delete(id) => {
                        let result = list.delete_entry(EntryId(id.into()));
                        let position = model.iter().position(|e| e.id == EntryId(id.into()));
                        prop_assert_eq!(result.is_ok(), position.is_some());
                        if let Some(position) = position { model.remove(position); }
                    }
                }
                prop_assert_eq!(list.size(), model.len());
                for d in 0..5 {
                    let expected: Vec<_> = model.iter().filter(|e| e.date == day(d)).collect();
                    let actual: Vec<_> = list.entries(day(d)).collect();
                    prop_assert_eq!(actual, expected);
                }
            }
        }
    }
}
