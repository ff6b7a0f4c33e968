//! Group commit: the edge's decisions reach the spool file in one `pwrite` per turn of the
//! scheduler rather than one each. A `pwrite` through ext4 cost 1.2 µs of the server's core per
//! decision at the edge's peak (`perf record`), a twelfth of what `/auth` costs in all; most of
//! it is the file system's fixed work per call, which a batch pays once.
//!
//! Each answer still waits until its record is in the kernel's page cache (or dropped, and
//! counted): the first request to find no write under way leads, lets the requests that are
//! ready in the same turn add theirs, writes them all, and wakes them.

use super::{Spool, UsageRecord};
use crate::usage::DECISIONS;
use std::sync::MutexGuard;
use tokio::sync::Notify;

/// Records staged for the next write and where the writes stand.
#[derive(Default)]
pub(super) struct Staged {
    bytes: Vec<u8>,
    /// Each staged frame's decision code (counted if the frame is dropped) and length.
    frames: Vec<(&'static str, u32)>,
    /// Buffers of the write before, kept to be filled again.
    spare: (Vec<u8>, Vec<(&'static str, u32)>),
    /// Records staged so far, and how many of those are written (or dropped).
    issued: u64,
    settled: u64,
    /// Whether a request has taken the next write on itself.
    leading: bool,
}

#[derive(Default)]
pub(super) struct Group {
    staged: std::sync::Mutex<Staged>,
    settled: Notify,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes what is staged when dropped: a leader whose request is abandoned (its client went away
/// while it waited for its turn) still writes, or the requests behind it would wait for ever.
struct Leader<'a>(&'a Spool);

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.0.write_staged();
    }
}

impl Spool {
    /// Appends `record` with the other records of this turn; returns once it is written, or
    /// dropped because the spool is full or its disk failing (then counted as dropped).
    pub async fn append_grouped(&self, record: &UsageRecord) {
        let ticket = self.stage(record);
        let group = &self.0.group;
        loop {
            let notified = group.settled.notified();
            tokio::pin!(notified);
            let lead = {
                let mut staged = group.lock();
                if staged.settled >= ticket {
                    return;
                }
                // Registered before the lock is let go, so that no wake-up falls between.
                notified.as_mut().enable();
                !std::mem::replace(&mut staged.leading, true)
            };
            if lead {
                let leader = Leader(self);
                tokio::task::yield_now().await;
                drop(leader);
            } else {
                notified.await;
            }
        }
    }

    fn stage(&self, record: &UsageRecord) -> u64 {
        super::FRAME.with_borrow_mut(|frame| {
            super::record::frame(record, frame);
            let mut staged = self.0.group.lock();
            staged.bytes.extend_from_slice(frame);
            staged.frames.push((record.code, frame.len() as u32));
            staged.issued += 1;
            staged.issued
        })
    }

    /// Writes every staged record, counts those it could not, and wakes their requests.
    fn write_staged(&self) {
        let group = &self.0.group;
        let (bytes, frames, upto) = {
            let mut staged = group.lock();
            let (bytes, frames) = std::mem::take(&mut staged.spare);
            let bytes = std::mem::replace(&mut staged.bytes, bytes);
            let frames = std::mem::replace(&mut staged.frames, frames);
            (bytes, frames, staged.issued)
        };
        let written = self.write_frames(&bytes, frames.iter().map(|(_, len)| *len));
        for (code, _) in &frames[written..] {
            metrics::counter!("keyledger_usage_records_dropped_total").increment(1);
            metrics::counter!(DECISIONS, "code" => *code).increment(1);
        }
        {
            let mut staged = group.lock();
            staged.settled = upto;
            staged.leading = false;
            let (mut bytes, mut frames) = (bytes, frames);
            bytes.clear();
            frames.clear();
            staged.spare = (bytes, frames);
        }
        group.settled.notify_waiters();
    }
}
