//! The writer's side of the spool: it takes the records appended since its position, in chunks,
//! and moves on (deleting the segments it has passed) once a chunk is stored.

use super::record::{self, Read, Spooled};
use super::{Position, Spool};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

/// Bytes read from a segment at a time: a chunk holds at most about this much.
const READ_BYTES: u64 = 8 << 20;

/// Records read from the spool and not yet stored, with the position after the last of them.
pub(in crate::usage) struct Chunk {
    bytes: Vec<u8>,
    pub(in crate::usage) records: usize,
    pub(in crate::usage) end: Position,
}

impl Chunk {
    /// Its records, in the order they were appended.
    pub(in crate::usage) fn records(&self) -> impl Iterator<Item = Spooled<'_>> {
        let mut rest = self.bytes.as_slice();
        // `take` kept only whole records, each checked.
        std::iter::from_fn(move || {
            let (record, used) = record::read_checked(rest)?;
            rest = &rest[used..];
            Some(record)
        })
    }

    pub(in crate::usage) fn into_buffer(self) -> Vec<u8> {
        self.bytes
    }
}

/// Holds the spool directory's lock for as long as the writer runs.
pub(in crate::usage) struct Reader {
    spool: Spool,
    at: Position,
    _lock: File,
}

impl Reader {
    pub(super) fn new(spool: Spool, at: Position, lock: File) -> Reader {
        Reader { spool, at, _lock: lock }
    }

    pub(in crate::usage) fn spool_id(&self) -> &str {
        self.spool.id()
    }

    /// The records after the reader's position, up to `max` (fewer at a segment's end), read
    /// into `buffer`'s allocation. It does not move the reader: [`Reader::stored`] does.
    pub(in crate::usage) fn take(&mut self, max: usize, mut buffer: Vec<u8>) -> io::Result<Chunk> {
        buffer.clear();
        let mut at = self.at;
        let mut records = 0;
        loop {
            let Some(segment) = self.segment(at.segment) else {
                break;
            };
            // Sealed first: a sealed segment's frontier, read after, is final.
            let sealed = segment.sealed.load(Ordering::Acquire);
            let frontier = segment.frontier.load(Ordering::Acquire);
            let mut ended = at.offset >= frontier;
            if !ended {
                let start = buffer.len();
                let want = (frontier - at.offset).min(READ_BYTES);
                buffer.resize(start + want as usize, 0);
                let read = read_at(&segment.file, &mut buffer[start..], at.offset)?;
                buffer.truncate(start + read);
                let to_frontier = at.offset + read as u64 >= frontier;
                let mut used = 0;
                // Whether the bytes after the last record read are torn: not a record, or a
                // record cut off at the segment's end (the process was killed while writing it,
                // or the bytes are damaged). Nothing after them in the segment can be found, and
                // this process never appends to a segment once a write to it failed.
                let torn = loop {
                    if records == max {
                        break false;
                    }
                    match record::read(&buffer[start + used..]) {
                        Read::Record(_, len) => {
                            used += len;
                            records += 1;
                        }
                        Read::Invalid => break true,
                        Read::Incomplete => break to_frontier && sealed,
                    }
                };
                buffer.truncate(start + used);
                at.offset += used as u64;
                if torn && at.offset < frontier {
                    let lost = frontier - at.offset;
                    tracing::warn!(segment = %segment.path.display(), offset = at.offset, bytes = lost,
                        "usage spool: the rest of a segment is not a record (torn by a crash?); skipped");
                    metrics::counter!("keyledger_usage_spool_bytes_skipped_total").increment(lost);
                    at.offset = frontier;
                }
                ended = at.offset >= frontier || read == 0;
            }
            if !(ended && sealed) || records == max {
                break;
            }
            at = Position::start_of(at.segment + 1);
        }
        Ok(Chunk {
            bytes: buffer,
            records,
            end: at,
        })
    }

    /// The chunk ending at `end` is stored: the reader moves there and the segments before it
    /// are deleted.
    pub(in crate::usage) fn stored(&mut self, end: Position) {
        self.at = end;
        let passed: Vec<_> = {
            let mut segments = self.spool.0.segments.lock().unwrap_or_else(|e| e.into_inner());
            let keep = segments
                .iter()
                .position(|s| s.number >= end.segment)
                .unwrap_or(segments.len());
            segments.drain(..keep).collect()
        };
        for segment in passed {
            if let Err(e) = std::fs::remove_file(&segment.path) {
                tracing::warn!(error = %e, segment = %segment.path.display(), "usage spool segment not deleted");
            }
        }
    }

    fn segment(&self, number: u64) -> Option<std::sync::Arc<super::Segment>> {
        let segments = self.spool.0.segments.lock().unwrap_or_else(|e| e.into_inner());
        segments.iter().find(|s| s.number == number).cloned()
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; the bytes read.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], offset + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}
