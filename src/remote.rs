//! Live updates across nodes. Each node's actors publish only the changes they commit
//! themselves; on PostgreSQL every commit also notifies (`todo_changes`, with each list's key
//! and new version, delivered at COMMIT and never for a commit that failed), and this task on
//! every node LISTENs on a connection of its own. A notification for a list someone here
//! follows makes the list catch up through its actor, whose reload gives its subscribers a
//! fresh snapshot: a write through node A reaches a subscriber of node B within a round trip.
//!
//! Notifications sent while the connection is down are lost, so after each (re)connect every
//! followed list catches up once, whatever happened meanwhile; a catch-up that fails (the
//! node's own storage connection is down too) is tried again every second, and the listening
//! connection proves it is alive every 30 s.

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
/// How often the listening connection proves it is alive, and how long connecting or proving
/// may take: a connection that died without a word (a failover, a dropped NAT entry) would
/// otherwise stay silent for as long as TCP keepalive takes, two hours by default.
const PROBE_EVERY: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often catch-ups that failed (storage was down) are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Follows other nodes' commits on the database at `url` until `stopping` is cancelled.
pub async fn follow(url: String, cache: Cache, stopping: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listening = false;
        tokio::select! {
            () = stopping.cancelled() => return,
            ended = listen(&url, &cache, &mut listening) => if let Err(error) = ended {
                tracing::warn!(%error, "cannot listen for other nodes' changes; retrying");
            },
        }
        // A connection that listened for a while starts over quickly; one that cannot even
        // connect waits longer each time.
        backoff = match listening {
            true => Duration::from_millis(100),
            false => (backoff * 2).min(MAX_BACKOFF),
        };
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// One connection's life: LISTEN, catch up every followed list, then handle notifications
/// until the connection ends or stops answering. Sets `listening` once LISTEN is in place.
async fn listen(url: &str, cache: &Cache, listening: &mut bool) -> Result<(), anyhow::Error> {
    let connecting = tokio::time::timeout(PROBE_TIMEOUT, tokio_postgres::connect(url, NoTls));
    let (client, mut connection) = connecting.await??;
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
    *listening = true;
    // Whatever was committed while this node was not listening.
    let mut behind: HashMap<ListName, u64> = cache
        .followed()
        .into_iter()
        .map(|list| (list, u64::MAX))
        .collect();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    let mut retry = tokio::time::interval(RETRY_EVERY);
    loop {
        tokio::select! {
            payload = notifications.recv() => {
                let Some(payload) = payload else { break };
                // A burst of commits to one list becomes one catch-up.
                note(&mut behind, &payload);
                while let Ok(payload) = notifications.try_recv() {
                    note(&mut behind, &payload);
                }
            }
            _ = retry.tick() => {}
            _ = probe.tick() => {
                tokio::time::timeout(PROBE_TIMEOUT, client.simple_query("SELECT 1")).await??;
                continue;
            }
        }
        behind = catch_up(cache, behind).await;
    }
    drop(client);
    Ok(driver.await.unwrap_or(Ok(()))?)
}

/// Makes each list catch up, at once; returns those whose catch-up failed, to try again.
async fn catch_up(cache: &Cache, lists: HashMap<ListName, u64>) -> HashMap<ListName, u64> {
    let mut catch_ups = JoinSet::new();
    for (list, version) in lists {
        let cache = cache.clone();
        catch_ups.spawn(async move {
            let done = cache.catch_up(&list, version).await;
            (!done).then_some((list, version))
        });
    }
    catch_ups.join_all().await.into_iter().flatten().collect()
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
