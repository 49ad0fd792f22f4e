//! `ListHandle`: the way into one list actor's bounded mailbox.
//!
//! Sending waits for a mailbox slot (backpressure); a cast fails at once when the mailbox is
//! full. A request sent to an actor that has stopped comes back, so the cache can start a new
//! actor and send it there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::list::ListName;

use super::actor::{ListActor, ParkedList};
use super::{ActorContext, Request, RequestError, SharedList};

/// What a mailbox holds.
pub(super) enum ListMessage {
    /// A request. Boxed, because a mailbox allocates its slots up front and an idle list's
    /// mailbox should stay small.
    Request(Box<Request>),
    /// The cache holds too many actors and asks this one to stop, if nobody is using it.
    Retire,
}

/// A handle to one list's actor. Cloning is cheap; the actor stops after the last clone is dropped.
#[derive(Clone)]
pub struct ListHandle {
    sender: mpsc::Sender<ListMessage>,
    actor_id: u64,
    shared: Arc<SharedList>,
}

impl ListHandle {
    /// Starts the actor for `name` and returns at once; the actor loads the list itself, or
    /// wakes with `parked` state when the list was hibernating.
    pub fn spawn(
        name: ListName,
        context: Arc<ActorContext>,
        parked: Option<ParkedList>,
    ) -> ListHandle {
        static NEXT_ACTOR_ID: AtomicU64 = AtomicU64::new(1);
        let actor_id = NEXT_ACTOR_ID.fetch_add(1, Ordering::Relaxed);
        let (sender, inbox) = mpsc::channel(context.mailbox_capacity.max(1));
        let shared = match &parked {
            Some(parked) => parked.shared().clone(),
            None => Arc::default(),
        };
        let actor = ListActor::new(name, actor_id, context.clone(), shared.clone(), parked);
        context.tracker.spawn(actor.run(inbox));
        ListHandle {
            sender,
            actor_id,
            shared,
        }
    }

    /// The list's entries, whose committed part readers may read without asking the actor.
    pub fn shared(&self) -> &Arc<SharedList> {
        &self.shared
    }

    /// Queues a request, waiting for a mailbox slot; gives it back if the actor has stopped.
    pub async fn send(&self, request: Request) -> Result<(), Request> {
        let message = ListMessage::Request(Box::new(request));
        self.sender
            .send(message)
            .await
            .map_err(|closed| into_request(closed.0))
    }

    /// Queues a request without waiting: `Err(Ok(request))` gives it back if the actor has
    /// stopped, `Err(Err(Overloaded))` means the mailbox is full.
    pub fn try_send(&self, request: Request) -> Result<(), Result<Request, RequestError>> {
        match self
            .sender
            .try_send(ListMessage::Request(Box::new(request)))
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Err(RequestError::Overloaded)),
            Err(mpsc::error::TrySendError::Closed(message)) => Err(Ok(into_request(message))),
        }
    }

    /// Asks the actor to stop if nobody is using it; a full mailbox means it is in use.
    pub fn ask_to_retire(&self) {
        let _ = self.sender.try_send(ListMessage::Retire);
    }

    /// Whether this handle is the only one, so no caller is about to send to the actor.
    pub fn is_only_handle(&self) -> bool {
        self.sender.strong_count() == 1
    }

    /// Whether the actor has stopped (after a panic), so the handle is of no more use.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// A number that tells this actor apart from every other actor of this process.
    pub fn actor_id(&self) -> u64 {
        self.actor_id
    }

    /// Messages waiting in the mailbox.
    pub fn mailbox_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// The request of a message that could not be delivered.
fn into_request(message: ListMessage) -> Request {
    match message {
        ListMessage::Request(request) => *request,
        ListMessage::Retire => unreachable!("only requests are sent with a request to give back"),
    }
}
