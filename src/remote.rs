//! Live updates across nodes. Each node's actors publish only the changes they commit
//! themselves; on PostgreSQL every commit also notifies (`todo_changes`, with each list's key
//! and new version, delivered at COMMIT and never for a commit that failed), and this task on
//! every node LISTENs on a connection of its own. A notification for a list someone here
//! follows makes the list catch up through its actor, whose reload gives its subscribers a
//! fresh snapshot: a write through node A reaches a subscriber of node B within a round trip.
//!
//! Notifications sent while the connection is down are lost, so after each (re)connect every
//! followed list catches up once, whatever happened meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::database::postgres::{CHANGES_CHANNEL, parse_notification};
use crate::list::ListName;

/// The longest wait between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Notifications waiting to be handled; more make the connection wait (PostgreSQL queues them).
const QUEUE: usize = 1_024;

/// Follows other nodes' commits on the database at `url` until `stopping` is cancelled.
pub async fn follow(url: String, cache: Cache, stopping: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            ended = listen(&url, &cache) => match ended {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => tracing::warn!(%error, "cannot listen for other nodes' changes; retrying"),
            },
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
        }
    }
}

/// One connection's life: LISTEN, catch up every followed list, then handle notifications
/// until the connection ends.
async fn listen(url: &str, cache: &Cache) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (sender, mut notifications) = mpsc::channel(QUEUE);
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message? {
                AsyncMessage::Notification(notification) => {
                    if sender
                        .send(notification.payload().to_owned())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                _ => continue,
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
        .await?;
    for list in cache.followed() {
        cache.catch_up(&list, u64::MAX).await;
    }
    while let Some(payload) = notifications.recv().await {
        // A burst of commits to one list becomes one catch-up.
        let mut latest = HashMap::new();
        note(&mut latest, &payload);
        while let Ok(payload) = notifications.try_recv() {
            note(&mut latest, &payload);
        }
        let mut catch_ups = JoinSet::new();
        for (list, version) in latest {
            let cache = cache.clone();
            catch_ups.spawn(async move { cache.catch_up(&list, version).await });
        }
        catch_ups.join_all().await;
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}

/// Keeps the highest version named for each list.
fn note(latest: &mut HashMap<ListName, u64>, payload: &str) {
    match parse_notification(payload) {
        Some((list, version)) => {
            let held = latest.entry(list).or_insert(version);
            *held = (*held).max(version);
        }
        None => tracing::warn!(payload, "a notification that names no list"),
    }
}
