//! Faults that tests switch on, compiled only into test builds and the `fault-injection` feature.
//!
//! There is no endpoint for them: a production build cannot be made to panic on purpose.

use crate::server::Command;

/// Adding an entry with this title makes the list actor panic while handling it.
pub const PANIC_TITLE: &str = "__todo_fault_panic__";

/// Panics if `command` asks for the injected fault.
pub fn maybe_panic(command: &Command) {
    if let Command::AddEntry { entry, .. } = command
        && entry.title.as_str() == PANIC_TITLE
    {
        panic!("injected fault: list actor panics on request");
    }
}
