//! The usage spool: the edge appends each decision to a file in the node's spool directory before
//! it answers, and the usage writer stores the spool's records in the database. A record the
//! client was answered for is on disk, in the kernel's page cache, before the answer leaves: a
//! SIGKILL, an out-of-memory kill or a crash of the process loses none. The writer records how far
//! it has stored in the batch's own transaction (`usage_spool_checkpoints`), so a restarted node
//! stores the rest exactly once.
//!
//! The edge's decisions are written in groups, one `pwrite` per turn of the scheduler
//! (`group.rs`), under a lock that only orders appends: a memory map would save the system call
//! but needs `unsafe`, which this workspace forbids.
//! The spool survives the process, not the machine: nothing is synced, so a power cut can lose
//! the records of the last flushes that the kernel had not written back.
//!
//! The spool is a series of segment files (`00000000000000000042.spool`, 64 MiB at most); a
//! position is a segment's number and an offset in it. Segments the writer has stored are
//! deleted; at the size limit the edge drops records (counted) rather than fill the disk.

mod group;
mod reader;
mod record;
#[cfg(test)]
mod tests;

pub(super) use reader::{Chunk, Reader};
pub use record::Spooled;

use super::UsageRecord;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A segment's size limit: a record goes to the next segment rather than cross it.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Each segment starts with this: the format's name and version.
const MAGIC: &[u8; 8] = b"KLSPOOL1";

/// Where the writer is: a segment's number and an offset in it, stored as one number
/// (`segment << 32 | offset`) in `usage_spool_checkpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

impl Position {
    pub fn stored(self) -> i64 {
        ((self.segment << 32) | self.offset) as i64
    }

    pub fn from_stored(n: i64) -> Position {
        let n = n as u64;
        Position {
            segment: n >> 32,
            offset: n & 0xffff_ffff,
        }
    }

    fn start_of(segment: u64) -> Position {
        Position {
            segment,
            offset: MAGIC.len() as u64,
        }
    }
}

/// One segment file. `frontier` is where its complete records end: exact for segments this
/// process writes, the file's length for those an earlier process left (their last record may be
/// torn, which its checksum shows). Once `sealed`, nothing more is appended to it.
struct Segment {
    number: u64,
    path: PathBuf,
    file: File,
    frontier: AtomicU64,
    sealed: AtomicBool,
}

struct Appender {
    segment: Arc<Segment>,
    /// Set when a segment could not be made: records are dropped until the writer frees one.
    failing: bool,
}

struct Shared {
    dir: PathBuf,
    id: String,
    segment_bytes: u64,
    max_segments: u64,
    appender: Mutex<Appender>,
    /// The segments not yet deleted, oldest first; the last is the appender's.
    segments: Mutex<Vec<Arc<Segment>>>,
    group: group::Group,
}

thread_local! {
    // A record's frame, built before a lock is taken.
    static FRAME: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(256));
}

/// A node's spool directory, opened for appending. Clones share it.
#[derive(Clone)]
pub struct Spool(Arc<Shared>);

/// Why a spool directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("usage spool {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
    #[error("usage spool {0} is in use by another Keyledger process: each node needs its own (--usage-spool-dir)")]
    InUse(PathBuf),
}

/// The directory locked for this process and its spool's name, before the database is asked
/// how far it has stored the spool.
pub struct Claimed {
    dir: PathBuf,
    id: String,
    lock: File,
}

impl Claimed {
    /// Locks `dir` (made if missing) for this process and reads (or gives) the spool its name.
    pub fn claim(dir: &Path) -> Result<Claimed, SpoolError> {
        let io = |source| SpoolError::Io {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(SpoolError::InUse(dir.to_owned())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let id_file = dir.join("id");
        let id = match std::fs::read_to_string(&id_file) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_owned(),
            Ok(_) => write_id(dir, &id_file).map_err(io)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => write_id(dir, &id_file).map_err(io)?,
            Err(e) => return Err(io(e)),
        };
        Ok(Claimed {
            dir: dir.to_owned(),
            id,
            lock,
        })
    }

    /// The spool's name in `usage_spool_checkpoints`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Opens the segments left by earlier processes, to be read from `stored` on (the segments
    /// wholly before it are deleted), and starts a new segment for this process's records: after
    /// every segment there, and after `stored`'s, so that no position is used twice even if a
    /// power cut lost segment files the database had already stored.
    pub fn open(self, stored: Position, max_bytes: u64) -> Result<(Spool, Reader), SpoolError> {
        self.open_sized(stored, max_bytes, SEGMENT_BYTES)
    }

    fn open_sized(self, stored: Position, max_bytes: u64, segment_bytes: u64) -> Result<(Spool, Reader), SpoolError> {
        let io = |source| SpoolError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_suffix(".spool"))
                .and_then(|n| n.parse::<u64>().ok());
            numbers.extend(number);
        }
        numbers.sort_unstable();
        let mut segments = Vec::new();
        for number in numbers {
            let path = segment_path(&self.dir, number);
            if number < stored.segment {
                std::fs::remove_file(&path).map_err(io)?;
                continue;
            }
            let file = File::open(&path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            segments.push(Arc::new(Segment {
                number,
                path,
                file,
                frontier: AtomicU64::new(len),
                sealed: AtomicBool::new(true),
            }));
        }
        let next = segments.last().map_or(0, |s| s.number + 1).max(stored.segment + 1);
        let current = create_segment(&self.dir, next).map_err(io)?;
        segments.push(current.clone());
        let first = segments.first().map_or(next, |s| s.number);
        let spool = Spool(Arc::new(Shared {
            dir: self.dir,
            id: self.id,
            segment_bytes,
            max_segments: (max_bytes / segment_bytes).max(2),
            appender: Mutex::new(Appender {
                segment: current,
                failing: false,
            }),
            segments: Mutex::new(segments),
            group: Default::default(),
        }));
        let from = stored.max(Position::start_of(first));
        Ok((spool.clone(), Reader::new(spool, from, self.lock)))
    }
}

fn write_id(dir: &Path, id_file: &Path) -> io::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let staged = dir.join("id.new");
    std::fs::write(&staged, &id)?;
    std::fs::rename(staged, id_file)?;
    Ok(id)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.spool"))
}

fn create_segment(dir: &Path, number: u64) -> io::Result<Arc<Segment>> {
    let path = segment_path(dir, number);
    let open = || File::options().create_new(true).read(true).write(true).open(&path);
    let file = match open() {
        // A segment whose header never made it (a full disk, a crash while it was created)
        // holds no record: made again, or every later rotation would fail on it.
        Err(e)
            if e.kind() == io::ErrorKind::AlreadyExists
                && std::fs::metadata(&path).is_ok_and(|m| m.len() < MAGIC.len() as u64) =>
        {
            std::fs::remove_file(&path)?;
            open()?
        }
        opened => opened?,
    };
    if let Err(e) = file.write_all_at(MAGIC, 0) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(Arc::new(Segment {
        number,
        path,
        file,
        frontier: AtomicU64::new(MAGIC.len() as u64),
        sealed: AtomicBool::new(false),
    }))
}

impl Spool {
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Appends `record` on its own; `false` when it could not be (the spool is full or its disk
    /// failing), which the caller counts as dropped.
    pub fn append(&self, record: &UsageRecord) -> bool {
        FRAME.with_borrow_mut(|frame| {
            record::frame(record, frame);
            self.write_frames(frame, std::iter::once(frame.len() as u32)) == 1
        })
    }

    /// Writes whole frames (their lengths in order) from `bytes`, starting a segment where the
    /// next frame would cross the current one's limit. Returns how many were written: after a
    /// failure (the spool full, its disk failing) the rest are not.
    fn write_frames(&self, bytes: &[u8], lengths: impl Iterator<Item = u32>) -> usize {
        let mut guard = self.0.appender.lock().unwrap_or_else(|e| e.into_inner());
        let appender = &mut *guard;
        let (mut written, mut start, mut run, mut frames) = (0, 0, 0u64, 0);
        for len in lengths.map(u64::from) {
            let room = self
                .0
                .segment_bytes
                .saturating_sub(appender.segment.frontier.load(Ordering::Relaxed));
            if run > 0 && run + len > room {
                if !self.write_run(appender, &bytes[start..start + run as usize]) {
                    return written;
                }
                (written, start, run, frames) = (written + frames, start + run as usize, 0, 0);
            }
            run += len;
            frames += 1;
        }
        if run > 0 && self.write_run(appender, &bytes[start..start + run as usize]) {
            written += frames;
        }
        written
    }

    /// Writes frames that fit one segment, after a rotation if they do not fit the current one.
    fn write_run(&self, appender: &mut Appender, run: &[u8]) -> bool {
        let len = run.len() as u64;
        let at = appender.segment.frontier.load(Ordering::Relaxed);
        let must_rotate = at + len > self.0.segment_bytes || appender.failing;
        if must_rotate && (len + MAGIC.len() as u64 > self.0.segment_bytes || !self.rotate(appender)) {
            return false;
        }
        let segment = &appender.segment;
        let at = segment.frontier.load(Ordering::Relaxed);
        match segment.file.write_all_at(run, at) {
            Ok(()) => {
                // Release: the writer reads up to the frontier, and must see these bytes.
                segment.frontier.store(at + len, Ordering::Release);
                true
            }
            Err(e) => {
                // Whatever part was written is past the frontier, never read; later records go
                // to a new segment.
                tracing::error!(error = %e, segment = %segment.path.display(), "usage spool not written");
                appender.failing = true;
                false
            }
        }
    }

    /// Seals the appender's segment and starts the next; `false` when the spool is full or the
    /// segment cannot be made.
    fn rotate(&self, appender: &mut Appender) -> bool {
        let next = appender.segment.number + 1;
        let mut segments = self.0.segments.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = segments.first().map_or(next, |s| s.number);
        if next - oldest >= self.0.max_segments {
            return false;
        }
        match create_segment(&self.0.dir, next) {
            Ok(segment) => {
                appender.segment.sealed.store(true, Ordering::Release);
                segments.push(segment.clone());
                appender.segment = segment;
                appender.failing = false;
                true
            }
            Err(e) => {
                if !appender.failing {
                    tracing::error!(error = %e, "usage spool segment not made");
                }
                appender.failing = true;
                false
            }
        }
    }
}
