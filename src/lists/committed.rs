//! `CommittedList`: a list as storage holds it, published by its actor for readers.
//!
//! The actor applies a write here only after the database reports it committed, and before it
//! answers the writer, so a reader that looks here sees every acknowledged write and never an
//! undurable one, without a message to the actor. The lock is held only to apply one change
//! or to copy a read's entries out, never across an `.await`.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::database::Change;
use crate::list::TodoList;

/// The committed state of one list, shared by its actor, its handle and the cache.
#[derive(Default)]
pub struct CommittedList {
    /// `None` until the actor has loaded the list.
    state: RwLock<Option<Committed>>,
}

struct Committed {
    list: TodoList,
    /// The generation of the list's database worker before the load: when the worker has
    /// reopened its connection since, storage may hold more, and readers ask the actor.
    generation: u64,
}

impl CommittedList {
    /// Runs `read` on the committed list, if it is loaded and still matches storage of
    /// `generation`; `None` sends the reader to the actor.
    pub fn read<T>(&self, generation: u64, read: impl FnOnce(&TodoList) -> T) -> Option<T> {
        match &*self.read_lock() {
            Some(committed) if committed.generation == generation => Some(read(&committed.list)),
            _ => None,
        }
    }

    /// Runs `read` on the committed list, loaded or not (then empty).
    pub(super) fn read_any<T>(&self, read: impl FnOnce(&TodoList) -> T) -> T {
        match &*self.read_lock() {
            Some(committed) => read(&committed.list),
            None => read(&TodoList::default()),
        }
    }

    /// Replaces the state with a list just loaded from storage.
    pub(super) fn publish(&self, list: TodoList, generation: u64) {
        *self.write_lock() = Some(Committed { list, generation });
    }

    /// A copy of the committed list, for an actor that wakes from hibernation.
    pub(super) fn copy(&self) -> Option<TodoList> {
        self.read_lock()
            .as_ref()
            .map(|committed| committed.list.clone())
    }

    /// Applies a change that storage has committed.
    pub(super) fn apply(&self, change: &Change) {
        let mut state = self.write_lock();
        let Some(committed) = state.as_mut() else {
            return;
        };
        let list = &mut committed.list;
        match change {
            Change::Add { entry, .. } | Change::Update(entry) => list.put(entry.clone()),
            Change::Delete(id) => {
                let _ = list.delete_entry(*id);
            }
            Change::Clear => list.clear(),
        }
    }

    // A panic never happens while the lock is held (no user code runs under it), so a
    // poisoned lock still guards a consistent list.
    fn read_lock(&self) -> RwLockReadGuard<'_, Option<Committed>> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Option<Committed>> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
