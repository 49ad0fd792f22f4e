//! Faults that unit tests switch on; compiled only into test builds.
//!
//! There is no endpoint or flag for them: a production build cannot be made to fail on purpose.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::server::Command;

/// Adding an entry with this title makes the list actor panic while handling it.
pub const PANIC_TITLE: &str = "__todo_fault_panic__";

/// Data directories whose commits fail, as if the disk were full. Keyed by directory so that
/// tests running in parallel do not disturb each other.
static FAILING_COMMITS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Panics if `command` asks for the injected panic.
pub fn maybe_panic(command: &Command) {
    if let Command::AddEntry { entry, .. } = command
        && entry.title.as_str() == PANIC_TITLE
    {
        panic!("injected fault: list actor panics on request");
    }
}

/// Makes every commit to the database in `data_dir` fail (`true`) or work again (`false`).
pub fn fail_commits(data_dir: &Path, fail: bool) {
    let mut failing = FAILING_COMMITS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let failing = failing.get_or_insert_with(HashSet::new);
    match fail {
        true => failing.insert(data_dir.to_owned()),
        false => failing.remove(data_dir),
    };
}

/// Whether commits in `data_dir` are set to fail.
pub fn commits_fail(data_dir: &Path) -> bool {
    let failing = FAILING_COMMITS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    failing
        .as_ref()
        .is_some_and(|failing| failing.contains(data_dir))
}
