//! `SharedList`: the one copy of a list's entries, changed by its actor and read by anyone.
//!
//! The actor applies each write here when it hands it to the database, and records how to undo
//! it until the database reports it committed. Readers see the committed part only: the list
//! with the uncommitted writes undone. The actor marks a write committed before it answers the
//! writer, so a reader sees every acknowledged write and never an undurable one, without a
//! message to the actor. The lock is held only to apply one change or to copy a read's
//! entries out, never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::broadcast;

use crate::list::{Entry, EntryId, TodoList};

use super::EntriesQuery;
use super::feed::{Feed, FeedChange, Published};

/// A list's entries, shared by its actor, its handle, the cache and readers.
#[derive(Default)]
pub struct SharedList {
    /// `None` until the actor has loaded the list.
    state: RwLock<Option<State>>,
    /// The committed changes, to subscribers; changed only under `state`'s write lock, so a
    /// snapshot taken under its read lock matches a version of the feed. It outlives reloads
    /// and hibernation, so subscriptions do too. Made by the first subscriber: a feed holds a
    /// channel of `FEED_CAPACITY` slots, far more than an idle list may cost.
    feed: Mutex<Option<Feed>>,
}

/// How a new subscriber starts: the list as it is, or the changes it missed.
#[derive(Debug)]
pub enum Start {
    /// Every committed entry, in id order.
    Snapshot(Vec<Entry>),
    /// The changes after the version the subscriber last saw, in order.
    Resume(Vec<Arc<Published>>),
}

/// A new subscription to a list's changes.
#[derive(Debug)]
pub struct Subscription {
    /// What to send first.
    pub start: Start,
    /// The list's committed version at the start: later changes on `changes` at or below it
    /// are already in `start`.
    pub version: u64,
    /// The changes from here on.
    pub changes: broadcast::Receiver<Arc<Published>>,
}

struct State {
    /// Every write the actor has handed to the database applied.
    list: TodoList,
    /// How to undo each write not yet committed, oldest first.
    uncommitted: VecDeque<Undo>,
    /// The generation of the list's database worker before the load: when the worker has
    /// reopened its connection since, storage may hold more, and readers ask the actor.
    generation: u64,
    /// A write failed, so the list may differ from storage until the actor reloads it.
    stale: bool,
    /// The list's version in storage once the committed writes are applied.
    version: u64,
}

/// How to take one uncommitted write back out of the list.
pub enum Undo {
    /// The write added this entry.
    Added(EntryId),
    /// The write changed or deleted this entry, which was like this before.
    Replaced(Entry),
    /// The write deleted these entries.
    Cleared(Vec<Entry>),
    /// The write imported entries with these ids.
    Imported(Vec<EntryId>),
}

impl SharedList {
    /// Runs `read` on the committed list, if it is loaded and sure to match storage of
    /// `generation`; `None` sends the reader to the actor.
    pub fn read<T>(&self, generation: u64, read: impl FnOnce(&Committed<'_>) -> T) -> Option<T> {
        match &*self.read_lock() {
            Some(state) if state.generation == generation && !state.stale => {
                Some(read(&Committed::new(state)))
            }
            _ => None,
        }
    }

    /// Runs `read` on the committed list as the actor has it (empty before the load).
    pub(super) fn read_any<T>(&self, read: impl FnOnce(&Committed<'_>) -> T) -> T {
        match &*self.read_lock() {
            Some(state) => read(&Committed::new(state)),
            None => read(&Committed::empty()),
        }
    }

    /// Whether entry `id` is committed but gone from the list: an uncommitted write removed it.
    pub(super) fn removed_uncommitted(&self, id: EntryId) -> bool {
        self.read_lock().as_ref().is_some_and(|state| {
            state.list.entry(id).is_none() && Committed::new(state).entry(id).is_some()
        })
    }

    /// The generation the list was loaded under, if it is loaded.
    pub(super) fn loaded_at(&self) -> Option<u64> {
        self.read_lock().as_ref().map(|state| state.generation)
    }

    /// Replaces the state with a list just loaded from storage at `version`, with nothing
    /// uncommitted; subscribers of a list loaded before are told to take a snapshot.
    pub(super) fn publish(&self, list: TodoList, generation: u64, version: u64) {
        let mut state = self.write_lock();
        if state.is_some()
            && let Some(feed) = self.feed().as_mut()
        {
            let change = FeedChange::Reloaded;
            feed.publish(Published::new(version, change));
        }
        *state = Some(State {
            list,
            uncommitted: VecDeque::new(),
            generation,
            stale: false,
            version,
        });
    }

    /// Subscribes to the list's committed changes, starting after version `after` when the
    /// feed still holds every change since, else with a snapshot. `None` while the list is not
    /// loaded or may differ from storage: the caller has the actor load it first.
    pub fn subscribe(&self, after: Option<u64>) -> Option<Subscription> {
        let state = self.read_lock();
        let state = state.as_ref().filter(|state| !state.stale)?;
        let mut feed = self.feed();
        let feed = feed.get_or_insert_with(Feed::default);
        let resumed = after.and_then(|after| feed.since(after, state.version));
        let start = match resumed {
            Some(missed) => Start::Resume(missed),
            None => Start::Snapshot(Committed::new(state).entries(EntriesQuery::All)),
        };
        Some(Subscription {
            start,
            version: state.version,
            changes: feed.subscribe(),
        })
    }

    /// The id the list hands out next, counting writes in flight, if it is loaded.
    pub(super) fn next_id(&self) -> Option<EntryId> {
        self.read_lock().as_ref().map(|state| state.list.next_id())
    }

    /// The list's committed version, if it is loaded.
    pub fn version(&self) -> Option<u64> {
        self.read_lock().as_ref().map(|state| state.version)
    }

    /// How many subscribers follow the list.
    pub fn subscribers(&self) -> usize {
        self.feed().as_ref().map_or(0, Feed::subscribers)
    }

    /// Applies a write to the list; `write` returns its answer and, if it changed the list, how
    /// to undo it until it is committed.
    pub(super) fn write<T>(&self, write: impl FnOnce(&mut TodoList) -> (T, Option<Undo>)) -> T {
        let mut state = self.write_lock();
        let state = state
            .as_mut()
            .expect("the actor loads the list before it writes");
        let (answer, undo) = write(&mut state.list);
        state.uncommitted.extend(undo);
        answer
    }

    /// Marks the oldest uncommitted write committed, so readers see it, and sends what it
    /// did to the subscribers.
    pub(super) fn commit_oldest(&self, change: FeedChange) {
        if let Some(state) = self.write_lock().as_mut() {
            state.uncommitted.pop_front();
            state.version += 1;
            if let Some(feed) = self.feed().as_mut() {
                let version = state.version;
                feed.publish(Published::new(version, change));
            }
        }
    }

    /// Sends readers to the actor until it reloads the list, after a write failed.
    pub(super) fn mark_stale(&self) {
        if let Some(state) = self.write_lock().as_mut() {
            state.stale = true;
        }
    }

    // Only the list's own operations and copies run under the lock, and they do not panic on
    // any input, so a poisoned lock still guards a consistent list.
    fn read_lock(&self) -> RwLockReadGuard<'_, Option<State>> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Option<State>> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn feed(&self) -> MutexGuard<'_, Option<Feed>> {
        self.feed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The committed state of a list: the list, with the entries that uncommitted writes touched
/// shown as they were before the first of those writes.
pub struct Committed<'a> {
    list: Option<&'a TodoList>,
    /// Entries touched by uncommitted writes, as storage holds them (`None`: not there).
    before: HashMap<EntryId, Option<&'a Entry>>,
}

impl<'a> Committed<'a> {
    fn new(state: &'a State) -> Committed<'a> {
        let mut before = HashMap::new();
        for undo in &state.uncommitted {
            match undo {
                Undo::Added(id) => {
                    before.entry(*id).or_insert(None);
                }
                Undo::Replaced(entry) => {
                    before.entry(entry.id).or_insert(Some(entry));
                }
                Undo::Cleared(entries) => {
                    for entry in entries {
                        before.entry(entry.id).or_insert(Some(entry));
                    }
                }
                Undo::Imported(ids) => {
                    for id in ids {
                        before.entry(*id).or_insert(None);
                    }
                }
            }
        }
        Committed {
            list: Some(&state.list),
            before,
        }
    }

    fn empty() -> Committed<'a> {
        Committed {
            list: None,
            before: HashMap::new(),
        }
    }

    /// One committed entry.
    pub fn entry(&self, id: EntryId) -> Option<Entry> {
        match self.before.get(&id) {
            Some(before) => before.cloned(),
            None => self.list.and_then(|list| list.entry(id)).cloned(),
        }
    }

    /// The committed entries a query asks for, in its order.
    pub fn entries(&self, query: EntriesQuery) -> Vec<Entry> {
        self.select(query).into_iter().cloned().collect()
    }

    /// The committed entries a query asks for, in its order, borrowed: a reader that only
    /// renders them copies nothing.
    pub fn select(&self, query: EntriesQuery) -> Vec<&'a Entry> {
        let Some(list) = self.list else {
            return Vec::new();
        };
        if self.before.is_empty() {
            return query.run(list);
        }
        let mut entries: Vec<&Entry> = query
            .run(list)
            .into_iter()
            .filter(|entry| !self.before.contains_key(&entry.id))
            .chain(
                self.before
                    .values()
                    .flatten()
                    .copied()
                    .filter(|entry| query.wants(entry)),
            )
            .collect();
        query.sort(&mut entries);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::{SharedList, Start, Undo};
    use crate::list::{Changes, Date, EntryId, NewEntry, Title, TodoList};
    use crate::lists::EntriesQuery;
    use crate::lists::feed::FeedChange;

    fn day(n: u32) -> Date {
        Date::parse(&format!("2018-12-{n:02}")).unwrap()
    }

    fn titles(shared: &SharedList, query: EntriesQuery) -> Vec<String> {
        let entries = shared
            .read(0, |committed| committed.entries(query))
            .unwrap();
        entries
            .iter()
            .map(|entry| entry.title.to_string())
            .collect()
    }

    fn add(shared: &SharedList, date: Date, title: &str) -> EntryId {
        let entry = NewEntry::new(date, Title::parse(title).unwrap());
        shared.write(|list| {
            let id = list.add_entry(entry).unwrap().id;
            (id, Some(Undo::Added(id)))
        })
    }

    #[test]
    fn readers_see_only_committed_writes_in_query_order() {
        let shared = SharedList::default();
        shared.publish(TodoList::default(), 0, 0);
        let first = add(&shared, day(19), "a");
        let second = add(&shared, day(18), "b");
        commit(&shared);
        commit(&shared);
        let retitle = Changes {
            title: Some(Title::parse("b renamed").unwrap()),
            date: Some(day(20)),
            ..Changes::default()
        };
        shared.write(|list| {
            let before = list.entry(second).unwrap().clone();
            list.update_entry(second, retitle).unwrap();
            ((), Some(Undo::Replaced(before)))
        });
        shared.write(|list| {
            let before = list.delete_entry(first).unwrap();
            ((), Some(Undo::Replaced(before)))
        });
        add(&shared, day(19), "c");
        let (all, range) = (EntriesQuery::All, EntriesQuery::Between(day(1), day(31)));
        assert_eq!(titles(&shared, all), ["a", "b"], "by id, as committed");
        assert_eq!(titles(&shared, range), ["b", "a"], "by date, as committed");
        assert_eq!(
            titles(&shared, EntriesQuery::On(day(20))),
            Vec::<String>::new()
        );

        commit(&shared);
        assert_eq!(titles(&shared, range), ["a", "b renamed"]);
        commit(&shared);
        commit(&shared);
        assert_eq!(titles(&shared, range), ["c", "b renamed"]);

        shared.write(|list| ((), Some(Undo::Cleared(list.clear()))));
        assert_eq!(
            titles(&shared, all),
            ["b renamed", "c"],
            "the clear is not committed"
        );
        commit(&shared);
        assert!(titles(&shared, all).is_empty());
    }

    #[test]
    fn a_stale_or_outdated_list_sends_readers_to_the_actor() {
        let shared = SharedList::default();
        assert!(shared.read(0, |_| ()).is_none(), "not loaded yet");
        shared.publish(TodoList::default(), 1, 0);
        assert!(
            shared.read(0, |_| ()).is_none(),
            "the worker's generation moved on"
        );
        assert!(shared.read(1, |_| ()).is_some());
        shared.mark_stale();
        assert!(shared.read(1, |_| ()).is_none(), "a write failed");
    }

    /// Marks the oldest write committed; what the feed is told does not matter to readers.
    fn commit(shared: &SharedList) {
        shared.commit_oldest(FeedChange::Cleared);
    }

    #[tokio::test]
    async fn a_subscriber_starts_from_a_snapshot_or_the_changes_it_missed() {
        let shared = SharedList::default();
        assert!(shared.subscribe(None).is_none(), "not loaded yet");
        shared.publish(TodoList::default(), 0, 7);
        let first = add(&shared, day(1), "first");
        let mut subscription = shared.subscribe(None).unwrap();
        assert_eq!(subscription.version, 7);
        assert!(matches!(&subscription.start, Start::Snapshot(entries) if entries.is_empty()));
        shared.commit_oldest(FeedChange::Deleted(first));
        let published = subscription.changes.recv().await.unwrap();
        assert_eq!(published.version, 8);
        assert_eq!(published.change, FeedChange::Deleted(first));

        let resumed = shared.subscribe(Some(7)).unwrap();
        let Start::Resume(missed) = resumed.start else {
            panic!("version 8 is kept: no snapshot needed");
        };
        assert_eq!(missed.len(), 1);
        assert_eq!(shared.subscribers(), 2);
        shared.publish(TodoList::default(), 0, 20);
        let reloaded = subscription.changes.recv().await.unwrap();
        assert_eq!(reloaded.change, FeedChange::Reloaded);
        assert!(matches!(
            shared.subscribe(Some(8)).unwrap().start,
            Start::Snapshot(_)
        ));
    }
}
