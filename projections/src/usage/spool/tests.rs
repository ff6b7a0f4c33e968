//! The spool on a real directory: order, restarts after a crash, segments, its limit, its lock.

use super::*;
use chrono::DateTime;

fn record(path: &str) -> UsageRecord {
    UsageRecord {
        at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
        key: None,
        endpoint: None,
        method: "GET".into(),
        path: path.to_owned(),
        status: 200,
        code: "VALID",
        latency_us: 7,
        client_ip: None,
    }
}

fn paths(chunk: &Chunk) -> Vec<String> {
    chunk.records().map(|r| r.path.to_owned()).collect()
}

const START: Position = Position { segment: 0, offset: 0 };

#[test]
fn records_are_taken_in_order_and_again_until_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, mut reader) = Claimed::claim(dir.path()).unwrap().open(START, 1 << 30).unwrap();
    for path in ["/a", "/b", "/c"] {
        assert!(spool.append(&record(path)));
    }
    let chunk = reader.take(100, Vec::new()).unwrap();
    assert_eq!(paths(&chunk), ["/a", "/b", "/c"]);
    assert_eq!(
        paths(&reader.take(100, Vec::new()).unwrap()),
        ["/a", "/b", "/c"],
        "not stored yet"
    );
    let two = reader.take(2, Vec::new()).unwrap();
    assert_eq!(paths(&two), ["/a", "/b"]);
    reader.stored(two.end);
    assert!(spool.append(&record("/d")));
    assert_eq!(paths(&reader.take(100, Vec::new()).unwrap()), ["/c", "/d"]);
}

#[test]
fn a_restarted_node_reads_on_from_the_stored_position_past_a_torn_record_and_never_reuses_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let stored = {
        let (spool, mut reader) = Claimed::claim(dir.path()).unwrap().open(START, 1 << 30).unwrap();
        for path in ["/a", "/b", "/c", "/d"] {
            assert!(spool.append(&record(path)));
        }
        let two = reader.take(2, Vec::new()).unwrap();
        reader.stored(two.end);
        two.end
    };
    // Killed while writing a fifth record: half of it is in the file.
    let segment = segment_path(dir.path(), stored.segment);
    let mut torn = Vec::new();
    record::frame(&record("/torn"), &mut torn);
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = File::options().write(true).open(&segment).unwrap();
    file.write_all_at(&torn[..torn.len() / 2], len).unwrap();

    let (spool, mut reader) = Claimed::claim(dir.path()).unwrap().open(stored, 1 << 30).unwrap();
    assert!(spool.append(&record("/e")));
    let chunk = reader.take(100, Vec::new()).unwrap();
    assert_eq!(
        paths(&chunk),
        ["/c", "/d", "/e"],
        "each record once, the torn one left out"
    );
    assert!(
        chunk.end.segment > stored.segment,
        "the new node appends to a segment of its own"
    );
    reader.stored(chunk.end);
    assert!(!segment.exists(), "a stored segment is deleted");

    // The database had stored further than the files show (a power cut lost a segment): new
    // records still go after what it stored.
    drop((spool, reader));
    let ahead = Position { segment: 40, offset: 8 };
    let (spool, mut reader) = Claimed::claim(dir.path()).unwrap().open(ahead, 1 << 30).unwrap();
    assert!(spool.append(&record("/f")));
    let chunk = reader.take(100, Vec::new()).unwrap();
    assert_eq!(paths(&chunk), ["/f"]);
    assert!(chunk.end > ahead);
}

#[test]
fn records_go_on_in_new_segments_until_the_limit_and_stored_segments_make_room() {
    let dir = tempfile::tempdir().unwrap();
    // Four segments of 512 bytes: a handful of records each.
    let (spool, mut reader) = Claimed::claim(dir.path())
        .unwrap()
        .open_sized(START, 2048, 512)
        .unwrap();
    let mut appended = 0;
    while spool.append(&record(&format!("/r/{appended}"))) {
        appended += 1;
        assert!(appended < 100, "the spool never filled");
    }
    assert!(appended > 8, "records filled several segments: {appended}");
    let chunk = reader.take(1000, Vec::new()).unwrap();
    let expected: Vec<String> = (0..appended).map(|i| format!("/r/{i}")).collect();
    assert_eq!(paths(&chunk), expected, "in order across segments");
    reader.stored(chunk.end);
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".spool"))
        .count();
    assert_eq!(files, 1, "only the segment being written is left");
    assert!(spool.append(&record("/after")), "room again");
    assert_eq!(paths(&reader.take(1000, Vec::new()).unwrap()), ["/after"]);
}

#[test]
fn a_segment_left_without_its_header_is_made_again_on_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, mut reader) = Claimed::claim(dir.path())
        .unwrap()
        .open_sized(START, 2048, 512)
        .unwrap();
    // A full disk (or a crash) while the next segment was made left it empty.
    let current = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".spool")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap();
    std::fs::write(segment_path(dir.path(), current + 1), b"").unwrap();
    for i in 0..8 {
        assert!(
            spool.append(&record(&format!("/r/{i}"))),
            "record {i} spooled past the empty segment"
        );
    }
    let expected: Vec<String> = (0..8).map(|i| format!("/r/{i}")).collect();
    assert_eq!(paths(&reader.take(1000, Vec::new()).unwrap()), expected);
}

#[test]
fn a_second_process_cannot_take_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let first = Claimed::claim(dir.path()).unwrap();
    let id = first.id().to_owned();
    let (_spool, reader) = first.open(START, 1 << 30).unwrap();
    assert!(matches!(Claimed::claim(dir.path()), Err(SpoolError::InUse(_))));
    drop(reader);
    let again = Claimed::claim(dir.path()).unwrap();
    assert_eq!(again.id(), id, "the spool keeps its name");
}

/// What the spool's segment files hold, whole records or not, in segment order.
fn spooled_bytes(dir: &Path) -> Vec<u8> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "spool"))
        .collect();
    files.sort();
    files.iter().flat_map(|p| std::fs::read(p).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_records_are_in_the_file_before_their_requests_go_on_and_keep_their_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of 2 KiB: a group of many records crosses several.
    let (spool, mut reader) = Claimed::claim(dir.path())
        .unwrap()
        .open_sized(START, 1 << 20, 2048)
        .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (spool, dir) = (spool.clone(), dir.path().to_owned());
            tokio::spawn(async move {
                let path = format!("/r/{i:03}/");
                spool.append_grouped(&record(&path)).await;
                // The answer would go out now: its record must already be in the file.
                let bytes = spooled_bytes(&dir);
                assert!(
                    bytes.windows(path.len()).any(|w| w == path.as_bytes()),
                    "{path} is in the spool when its request goes on"
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let chunk = reader.take(1000, Vec::new()).unwrap();
    let mut taken = paths(&chunk);
    assert_eq!(taken.len(), 200, "every record once");
    taken.sort();
    let expected: Vec<String> = (0..200).map(|i| format!("/r/{i:03}/")).collect();
    assert_eq!(taken, expected);
    assert!(chunk.end.segment > 1, "the records crossed segments: {:?}", chunk.end);
}

#[tokio::test]
async fn a_request_abandoned_while_it_leads_a_group_still_writes_it_and_the_next_is_not_held_up() {
    use futures::FutureExt;
    let dir = tempfile::tempdir().unwrap();
    let (spool, mut reader) = Claimed::claim(dir.path()).unwrap().open(START, 1 << 30).unwrap();
    let first = record("/abandoned");
    let mut leading = Box::pin(spool.append_grouped(&first));
    assert!(
        (&mut leading).now_or_never().is_none(),
        "the leader lets the turn's other requests stage first"
    );
    // The client went away: the server drops the request's future.
    drop(leading);
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        spool.append_grouped(&record("/next")),
    )
    .await
    .expect("the next record is written, not left waiting for the abandoned leader");
    assert_eq!(paths(&reader.take(100, Vec::new()).unwrap()), ["/abandoned", "/next"]);
}
