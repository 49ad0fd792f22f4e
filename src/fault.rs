//! Faults that unit tests switch on; compiled only into test builds.
//!
//! There is no endpoint or flag for them: a production build cannot be made to fail on purpose.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::database::StorageError;
use crate::lists::Request;

/// Adding an entry with this title makes the list actor panic while handling it.
pub const PANIC_TITLE: &str = "__todo_fault_panic__";

/// Data directories whose commits fail, as if the disk were full. Keyed by directory so that
/// tests running in parallel do not disturb each other.
static FAILING_COMMITS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
/// Data directories whose commits fail after `COMMIT`, as a failed fsync does: the outcome
/// is unknown to the server, though here the data is in fact stored.
static UNKNOWN_COMMITS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
/// Data directories whose commits panic inside storage.
static PANICKING_COMMITS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Panics if `request` asks for the injected panic.
pub fn maybe_panic(request: &Request) {
    if let Request::AddEntry { entry, .. } = request
        && entry.title.as_str() == PANIC_TITLE
    {
        panic!("injected fault: list actor panics on request");
    }
}

/// Makes every commit to the database in `data_dir` fail (`true`) or work again (`false`).
pub fn fail_commits(data_dir: &Path, fail: bool) {
    set(&FAILING_COMMITS, data_dir, fail);
}

/// Makes every commit to the database in `data_dir` panic (`true`) or work again (`false`).
pub fn panic_in_commits(data_dir: &Path, panic: bool) {
    set(&PANICKING_COMMITS, data_dir, panic);
}

/// Makes every commit in `data_dir` report an unknown outcome after committing (`true`).
pub fn unknown_commits(data_dir: &Path, unknown: bool) {
    set(&UNKNOWN_COMMITS, data_dir, unknown);
}

/// Reports an unknown outcome if a test asked commits in `data_dir` to.
pub fn check_after_commit(data_dir: &Path) -> Result<(), StorageError> {
    match contains(&UNKNOWN_COMMITS, data_dir) {
        true => Err(StorageError::OutcomeUnknown(
            "injected fault: fsync fails".into(),
        )),
        false => Ok(()),
    }
}

/// Fails or panics if a test asked commits in `data_dir` to.
pub fn check_commit(data_dir: &Path) -> Result<(), StorageError> {
    if contains(&PANICKING_COMMITS, data_dir) {
        panic!("injected fault: storage panics while committing");
    }
    match contains(&FAILING_COMMITS, data_dir) {
        true => Err(StorageError::Backend("injected fault: commit fails".into())),
        false => Ok(()),
    }
}

fn set(registry: &Mutex<Option<HashSet<PathBuf>>>, data_dir: &Path, on: bool) {
    let mut registry = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let registry = registry.get_or_insert_with(HashSet::new);
    match on {
        true => registry.insert(data_dir.to_owned()),
        false => registry.remove(data_dir),
    };
}

fn contains(registry: &Mutex<Option<HashSet<PathBuf>>>, data_dir: &Path) -> bool {
    let registry = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry
        .as_ref()
        .is_some_and(|registry| registry.contains(data_dir))
}
