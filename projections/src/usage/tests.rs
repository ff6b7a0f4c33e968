//! The writer's grouping and encoding of a chunk.

use super::*;

fn record(path: &str) -> Spooled<'_> {
    Spooled {
        at_ms: 1_700_000_000_123,
        subject: ["", "", "", ""],
        method: "GET",
        path,
        status: 401,
        code: "invalid_key",
        latency_us: 42,
        client_ip: Some("2001:db8::1".parse().unwrap()),
    }
}

#[test]
fn a_record_is_stored_as_an_array_in_the_views_column_order() {
    let json = serde_json::to_string(&[stored(&record("/files/\"1\""), 1_700_000_000_000, Some(7))]).unwrap();
    assert_eq!(
        json,
        r#"[[123,7,"GET","/files/\"1\"",401,"invalid_key",42,"2001:db8::1"]]"#
    );
}

#[test]
fn ipv4_addresses_are_written_as_their_usual_text() {
    for ip in ["0.0.0.0", "10.1.2.3", "203.0.113.255", "255.255.255.255"] {
        let mut r = record("/");
        r.client_ip = Some(ip.parse().unwrap());
        let json = serde_json::to_string(&stored(&r, 0, None)).unwrap();
        assert!(json.ends_with(&format!(",\"{ip}\"]")), "{json}");
    }
}

#[test]
fn records_are_grouped_by_what_they_are_about_and_known_subjects_are_not_looked_up_again() {
    let with = |endpoint| {
        let mut r = record("/files/1");
        r.subject = ["", "", endpoint, "files"];
        r
    };
    let records = [with("ep-a"), with("ep-a"), record("/x"), with("ep-b"), with("ep-a")];
    let mut subjects = Subjects::default();
    let plan = subjects.plan(&records).unwrap();
    assert_eq!(plan.pair_of, [0, 0, 1, 2, 0]);
    let unnumbered: Vec<Option<&str>> = plan.pairs.iter().map(Subject::new_text).collect();
    assert_eq!(
        unnumbered,
        [
            Some("\u{1f}\u{1f}ep-a\u{1f}files\u{1f}"),
            None,
            Some("\u{1f}\u{1f}ep-b\u{1f}files\u{1f}")
        ]
    );
    assert_eq!(plan.per_key, "[]", "records without a key count for no key");

    subjects.ids.insert("\u{1f}\u{1f}ep-a\u{1f}files\u{1f}".to_owned(), 4);
    let plan = subjects.plan(&records).unwrap();
    assert_eq!(plan.pairs[0].id(), Some(4));
    assert!(plan.pairs[0].new_text().is_none());
    assert!(plan.pairs[2].new_text().is_some());
}

#[test]
fn a_large_batch_is_split_into_rows_that_together_hold_every_record_once() {
    let paths: Vec<String> = (0..RECORDS_PER_ROW * 2 + 3).map(|i| format!("/r/{i}")).collect();
    let mut records: Vec<Spooled<'_>> = paths.iter().map(|p| record(p)).collect();
    records[RECORDS_PER_ROW + 1].at_ms = 1_700_000_000_050;
    let plan = Subjects::default().plan(&records).unwrap();
    // A used buffer is cleared, not appended to.
    let encoded = Encoded::of(&records, plan, b"left over".to_vec()).unwrap();
    let rows: Vec<(&RowSpan, &str)> = encoded.rows().collect();
    assert_eq!(
        rows.iter().map(|r| r.0.records).collect::<Vec<_>>(),
        [RECORDS_PER_ROW as i64, RECORDS_PER_ROW as i64, 3]
    );
    assert_eq!(
        rows.iter().map(|r| r.0.base_ms).collect::<Vec<_>>(),
        [1_700_000_000_123, 1_700_000_000_050, 1_700_000_000_123],
        "each row's base is its earliest record"
    );
    let mut stored_paths = Vec::new();
    let mut times = Vec::new();
    for (row, json) in rows {
        assert_eq!(row.written_at_ms, 1_700_000_000_123);
        let parsed: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.len() as i64, row.records);
        stored_paths.extend(parsed.iter().map(|r| r[3].as_str().unwrap().to_owned()));
        times.extend(parsed.iter().map(|r| row.base_ms + r[0].as_i64().unwrap()));
    }
    assert_eq!(stored_paths, paths);
    let expected: Vec<i64> = records.iter().map(|r| r.at_ms).collect();
    assert_eq!(times, expected);
}
