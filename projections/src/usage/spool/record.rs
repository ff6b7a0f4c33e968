//! A record as the spool holds it: a length, a CRC-32 of the body, and the body (the decision's
//! fields and the texts of what it was about). The checksum tells a complete record from one the
//! process was killed while writing, or from bytes a power cut left behind.

use super::super::subjects::subject_parts;
use super::super::UsageRecord;
use std::net::IpAddr;

/// Bytes before a record's body: its length and checksum.
pub(super) const FRAME: usize = 8;

/// One decision read back from the spool, borrowing its texts from the bytes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spooled<'a> {
    pub at_ms: i64,
    pub latency_us: i64,
    pub status: u16,
    pub client_ip: Option<IpAddr>,
    /// Tenant, key id, endpoint id and plugin, '' when absent (the columns of `usage_subjects`).
    pub subject: [&'a str; 4],
    pub method: &'a str,
    pub path: &'a str,
    pub code: &'a str,
}

/// Writes `r`'s frame into `out` (cleared first).
pub(super) fn frame(r: &UsageRecord, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; FRAME]);
    out.extend_from_slice(&r.at.timestamp_millis().to_le_bytes());
    out.extend_from_slice(&r.latency_us.to_le_bytes());
    out.extend_from_slice(&r.status.to_le_bytes());
    match r.client_ip {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    let [tenant, key_id, endpoint_id, plugin] = subject_parts(r.key.as_deref(), r.endpoint.as_deref());
    for text in [tenant, key_id, endpoint_id, plugin, &r.method, &r.path, r.code] {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    let body = (out.len() - FRAME) as u32;
    let crc = crc32fast::hash(&out[FRAME..]);
    out[..4].copy_from_slice(&body.to_le_bytes());
    out[4..FRAME].copy_from_slice(&crc.to_le_bytes());
}

/// What the bytes at the start of a slice hold.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read<'a> {
    /// A whole record and the bytes it took.
    Record(Spooled<'a>, usize),
    /// The slice ends inside a record (or before one starts).
    Incomplete,
    /// Not a record: a torn write, zeros, damage.
    Invalid,
}

/// Reads the record at the start of `bytes`.
pub(super) fn read(bytes: &[u8]) -> Read<'_> {
    let Some(head) = bytes.get(..FRAME) else {
        return Read::Incomplete;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 {
        return Read::Invalid;
    }
    let Some(body) = bytes.get(FRAME..FRAME + len) else {
        return Read::Incomplete;
    };
    if crc32fast::hash(body) != crc {
        return Read::Invalid;
    }
    match parse(body) {
        Some(record) => Read::Record(record, FRAME + len),
        None => Read::Invalid,
    }
}

/// Reads a record that [`read`] has already checked, as `Reader::take` does for every record of
/// a chunk: the writer goes over a chunk's records several times, and the checksum once is
/// enough.
pub(super) fn read_checked(bytes: &[u8]) -> Option<(Spooled<'_>, usize)> {
    let head = bytes.get(..FRAME)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let body = bytes.get(FRAME..FRAME + len)?;
    parse(body).map(|record| (record, FRAME + len))
}

/// The body's fields; `None` when they do not fit it (a checksum that matched by chance, or a
/// frame from another version).
fn parse(body: &[u8]) -> Option<Spooled<'_>> {
    let mut cursor = Cursor(body);
    let at_ms = i64::from_le_bytes(cursor.take()?);
    let latency_us = i64::from_le_bytes(cursor.take()?);
    let status = u16::from_le_bytes(cursor.take()?);
    let client_ip = match cursor.take::<1>()?[0] {
        0 => None,
        4 => Some(IpAddr::from(cursor.take::<4>()?)),
        6 => Some(IpAddr::from(cursor.take::<16>()?)),
        _ => return None,
    };
    let mut texts = [""; 7];
    for text in &mut texts {
        *text = cursor.text()?;
    }
    let [tenant, key_id, endpoint_id, plugin, method, path, code] = texts;
    cursor.0.is_empty().then_some(Spooled {
        at_ms,
        latency_us,
        status,
        client_ip,
        subject: [tenant, key_id, endpoint_id, plugin],
        method,
        path,
        code,
    })
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take()?) as usize;
        std::str::from_utf8(self.bytes(len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge_cache::EndpointEntry;
    use chrono::DateTime;
    use std::sync::Arc;

    fn record(path: &str, ip: Option<&str>) -> UsageRecord {
        UsageRecord {
            at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            key: None,
            endpoint: Some(Arc::new(EndpointEntry {
                endpoint_id: "ep-1".to_owned(),
                path: "/files/{id}".to_owned(),
                methods: Default::default(),
                plugin: "files".to_owned(),
                required_scopes: Default::default(),
                upstream_url: "http://127.0.0.1:1".to_owned(),
                deprecated_at: None,
                sunset_at: None,
                active: true,
                disabled_tenants: Default::default(),
            })),
            method: "DELETE".into(),
            path: path.to_owned(),
            status: 403,
            code: "insufficient_scope",
            latency_us: 1234,
            client_ip: ip.map(|ip| ip.parse().unwrap()),
        }
    }

    #[test]
    fn a_framed_record_reads_back_as_it_was_with_every_address_kind() {
        for ip in [None, Some("203.0.113.9"), Some("2001:db8::7")] {
            let mut bytes = Vec::new();
            frame(&record("/files/é", ip), &mut bytes);
            let Read::Record(r, used) = read(&bytes) else {
                panic!("not read back: {:?}", read(&bytes));
            };
            assert_eq!(used, bytes.len());
            assert_eq!(
                r,
                Spooled {
                    at_ms: 1_700_000_000_123,
                    latency_us: 1234,
                    status: 403,
                    client_ip: ip.map(|ip| ip.parse().unwrap()),
                    subject: ["", "", "ep-1", "files"],
                    method: "DELETE",
                    path: "/files/é",
                    code: "insufficient_scope",
                }
            );
        }
    }

    #[test]
    fn a_record_cut_short_is_incomplete_and_a_changed_byte_or_zeros_are_invalid() {
        let mut bytes = Vec::new();
        frame(&record("/files/1", Some("10.0.0.1")), &mut bytes);
        for cut in [0, 3, FRAME, bytes.len() - 1] {
            assert_eq!(read(&bytes[..cut]), Read::Incomplete, "cut at {cut}");
        }
        for at in [0, 5, FRAME + 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(
                matches!(read(&damaged), Read::Invalid | Read::Incomplete),
                "a change at {at} is noticed"
            );
            assert!(!matches!(read(&damaged), Read::Record(..)), "at {at}");
        }
        assert_eq!(read(&[0; 64]), Read::Invalid);
    }
}
