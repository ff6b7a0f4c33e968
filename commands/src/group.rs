//! Serving requests in groups: a task takes every request waiting when it is free, with no
//! timer, so a group costs no latency and grows only under load (the appender's group commit,
//! the key usage reader).

use tokio::sync::mpsc;

/// The next group: waits for one request, then takes up to `max` in all of those waiting.
/// `None` once every sender is gone.
pub async fn next<T>(queue: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = queue.recv().await?;
    let mut group = vec![first];
    while group.len() < max {
        match queue.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
    Some(group)
}
