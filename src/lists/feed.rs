//! A list's change feed: every committed change of one list, in the list's order, to any
//! number of subscribers, with the last few kept for subscribers who come back.
//!
//! The list actor publishes a change when its commit lands, under the `SharedList`'s write
//! lock, so a subscriber that takes a snapshot under the read lock and then follows the feed
//! sees each change exactly once (it skips those at or below its snapshot's version). The feed
//! is a `broadcast` channel: sending never waits, so a slow subscriber never slows the actor
//! or the others; one that falls behind is told so and takes a fresh snapshot.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::database::Change;
use crate::list::{Entry, EntryId};

/// Changes a subscriber may fall behind by before it must take a snapshot again.
pub const FEED_CAPACITY: usize = 256;
/// Changes kept for subscribers who reconnect with the last version they saw.
pub const RECENT_CHANGES: usize = 256;

/// One committed change and the list's version after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The list's version once this change is applied.
    pub version: u64,
    /// What changed.
    pub change: FeedChange,
    /// The change as the subscribers' connections send it: made by the first one that sends
    /// it and shared by the others, so that a change followed by a thousand subscribers is
    /// rendered once, not a thousand times.
    pub wire: OnceLock<Bytes>,
}

impl Published {
    /// The change `change`, which brought the list to `version`.
    pub fn new(version: u64, change: FeedChange) -> Published {
        Published {
            version,
            change,
            wire: OnceLock::new(),
        }
    }
}

/// What one committed write did to the list.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedChange {
    /// An entry was added.
    Added(Entry),
    /// An entry was changed; this is how it is now.
    Updated(Entry),
    /// An entry was deleted.
    Deleted(EntryId),
    /// Every entry was deleted.
    Cleared,
    /// The list was loaded again from storage (another node wrote, or a commit failed): what
    /// a subscriber holds may be out of date, so it takes a fresh snapshot.
    Reloaded,
}

impl From<&Change> for FeedChange {
    fn from(change: &Change) -> FeedChange {
        match change {
            Change::Add { entry, .. } => FeedChange::Added(entry.clone()),
            Change::Update(entry) => FeedChange::Updated(entry.clone()),
            Change::Delete(id) => FeedChange::Deleted(*id),
            Change::Clear => FeedChange::Cleared,
            // Many entries at once: subscribers take a snapshot.
            Change::Import { .. } => FeedChange::Reloaded,
        }
    }
}

/// The feed of one list.
pub struct Feed {
    sender: broadcast::Sender<Arc<Published>>,
    recent: VecDeque<Arc<Published>>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            sender: broadcast::channel(FEED_CAPACITY).0,
            recent: VecDeque::new(),
        }
    }
}

impl Feed {
    /// Sends a change to every subscriber and keeps it for those who come back.
    pub(super) fn publish(&mut self, published: Published) {
        let published = Arc::new(published);
        if published.change == FeedChange::Reloaded {
            // Versions before a reload may not match storage's; nobody resumes across one.
            self.recent.clear();
        } else {
            if self.recent.len() == RECENT_CHANGES {
                self.recent.pop_front();
            }
            self.recent.push_back(published.clone());
        }
        // No subscriber is not an error: the change is still kept in `recent`.
        let _ = self.sender.send(published);
    }

    /// A new subscriber's receiver.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }

    /// How many subscribers follow the list.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The changes after version `after`, if every one of them up to `version` is still
    /// kept; `None` means a snapshot is needed.
    pub(super) fn since(&self, after: u64, version: u64) -> Option<Vec<Arc<Published>>> {
        if after > version {
            return None;
        }
        if after == version {
            return Some(Vec::new());
        }
        let first = self.recent.front()?.version;
        if first > after + 1 {
            return None;
        }
        let missed: Vec<_> = self
            .recent
            .iter()
            .filter(|published| published.version > after)
            .cloned()
            .collect();
        let complete = missed.len() as u64 == version - after;
        complete.then_some(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deleted(version: u64) -> Published {
        Published::new(version, FeedChange::Deleted(EntryId::new(version).unwrap()))
    }

    #[test]
    fn a_subscriber_resumes_from_kept_changes_or_needs_a_snapshot() {
        let mut feed = Feed::default();
        for version in 1..=RECENT_CHANGES as u64 + 10 {
            feed.publish(deleted(version));
        }
        let last = RECENT_CHANGES as u64 + 10;
        let missed = feed.since(last - 3, last).unwrap();
        let versions: Vec<u64> = missed.iter().map(|published| published.version).collect();
        assert_eq!(versions, [last - 2, last - 1, last]);
        assert_eq!(feed.since(last, last).unwrap(), []);
        assert!(feed.since(5, last).is_none(), "too old: dropped");
        assert!(feed.since(last + 1, last).is_none(), "from the future");
        feed.publish(Published::new(last, FeedChange::Reloaded));
        assert!(
            feed.since(last - 1, last).is_none(),
            "no resuming across a reload"
        );
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_change_and_a_slow_one_is_told_it_lagged() {
        let mut feed = Feed::default();
        let mut fast = feed.subscribe();
        let mut slow = feed.subscribe();
        assert_eq!(feed.subscribers(), 2);
        for version in 1..=3 {
            feed.publish(deleted(version));
            assert_eq!(fast.recv().await.unwrap().version, version);
        }
        for version in 4..=FEED_CAPACITY as u64 + 10 {
            feed.publish(deleted(version));
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }
}
