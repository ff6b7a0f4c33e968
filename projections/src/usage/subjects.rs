//! Numbering what records are about: each (tenant, key, endpoint, plugin) is a row of
//! `usage_subjects`, numbered once and then referred to by its number.

use super::*;

/// Records per `usage_batches` row; a flush with more writes several rows.
pub(super) const RECORDS_PER_ROW: usize = 10_000;

/// The subjects this writer has numbered, by [`subject_text`]. Beyond this many it forgets them
/// all and numbers them again from the table as they come.
pub(super) const SUBJECTS_KEPT: usize = 1_000_000;

/// What a decision was about: tenant, key id, endpoint id and plugin ('' when absent), the
/// columns of `usage_subjects`.
pub(super) fn subject_parts<'a>(key: Option<&'a KeyEntry>, endpoint: Option<&'a EndpointEntry>) -> [&'a str; 4] {
    [
        key.map_or("", |k| k.tenant.as_str()),
        key.map_or("", |k| k.key_id.as_str()),
        endpoint.map_or("", |e| e.endpoint_id.as_str()),
        endpoint.map_or("", |e| e.plugin.as_str()),
    ]
}

/// A subject as one text, the key of [`Subjects::ids`]: its parts, each ended by a unit
/// separator, which none of them can hold.
pub(super) fn subject_text(out: &mut String, parts: [&str; 4]) {
    out.clear();
    for part in parts {
        out.push_str(part);
        out.push('\u{1f}');
    }
}

/// The `usage_subjects` numbers this writer knows.
#[derive(Default)]
pub(super) struct Subjects {
    pub(super) ids: HashMap<String, i64>,
    /// Reused for lookups, so that a known subject costs no allocation.
    pub(super) text: String,
}

/// What the records of one group are about.
pub(super) enum Subject {
    /// Neither a key nor an endpoint: the records hold no subject.
    None,
    Numbered(i64),
    /// Not numbered yet: its text, until [`Subjects::number`] learns its number.
    New(String),
}

impl Subject {
    pub(super) fn id(&self) -> Option<i64> {
        match self {
            Subject::Numbered(id) => Some(*id),
            Subject::None | Subject::New(_) => None,
        }
    }

    pub(super) fn new_text(&self) -> Option<&str> {
        match self {
            Subject::New(text) => Some(text),
            Subject::None | Subject::Numbered(_) => None,
        }
    }
}

/// How a batch's records map to subjects, and each key's use in it.
pub(super) struct Plan {
    /// Per record, its pair in `pairs`.
    pub(super) pair_of: Vec<u32>,
    pub(super) pairs: Vec<Subject>,
    /// Each key's last use and number of requests, as `[[key_id, last_ms, count], …]`.
    pub(super) per_key: String,
}

impl Subjects {
    /// Groups the chunk's records by what they are about, and looks each group's subject up
    /// once.
    pub(super) fn plan(&mut self, records: &[Spooled<'_>]) -> Result<Plan, serde_json::Error> {
        let mut index: HashMap<[&str; 4], u32> = HashMap::new();
        // Each subject's parts, requests and last use.
        let mut seen: Vec<([&str; 4], i64, i64)> = Vec::new();
        let mut pair_of = Vec::with_capacity(records.len());
        let mut previous: Option<([&str; 4], u32)> = None;
        for r in records {
            let pair = match previous {
                // Records come in runs of one key: no hashing for those.
                Some((last, pair)) if last == r.subject => pair,
                _ => *index.entry(r.subject).or_insert_with(|| {
                    seen.push((r.subject, 0, i64::MIN));
                    (seen.len() - 1) as u32
                }),
            };
            previous = Some((r.subject, pair));
            let use_ = &mut seen[pair as usize];
            use_.1 += 1;
            use_.2 = use_.2.max(r.at_ms);
            pair_of.push(pair);
        }
        if self.ids.len() > SUBJECTS_KEPT {
            self.ids.clear();
        }
        let mut per_key: HashMap<&str, (i64, i64)> = HashMap::new();
        let mut pairs = Vec::with_capacity(seen.len());
        for &(parts, requests, last) in &seen {
            let key_id = parts[1];
            if !key_id.is_empty() {
                let entry = per_key.entry(key_id).or_insert((0, 0));
                entry.0 = entry.0.max(last);
                entry.1 += requests;
            }
            if parts.iter().all(|part| part.is_empty()) {
                pairs.push(Subject::None);
                continue;
            }
            subject_text(&mut self.text, parts);
            pairs.push(match self.ids.get(self.text.as_str()) {
                Some(&id) => Subject::Numbered(id),
                None => Subject::New(self.text.clone()),
            });
        }
        let per_key: Vec<(&str, i64, i64)> = per_key.into_iter().map(|(k, (last, n))| (k, last, n)).collect();
        Ok(Plan {
            pair_of,
            pairs,
            per_key: serde_json::to_string(&per_key)?,
        })
    }

    /// Numbers the plan's new subjects: inserts those the table lacks (another node may have
    /// inserted some already), then reads back every one's number.
    pub(super) async fn number(&mut self, db: &Database, plan: &mut Plan) -> Result<(), ProjectionError> {
        let new: Vec<Vec<&str>> = plan
            .pairs
            .iter()
            .filter_map(Subject::new_text)
            .map(|text| text.split('\u{1f}').take(4).collect())
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let new = serde_json::to_string(&new).map_err(|e| ProjectionError::Usage(e.to_string()))?;
        let (insert, select) = match db.backend() {
            // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
            Backend::Sqlite => (
                "INSERT INTO usage_subjects (tenant, key_id, endpoint_id, plugin) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) WHERE true \
                 ON CONFLICT DO NOTHING",
                "SELECT s.id, s.tenant, s.key_id, s.endpoint_id, s.plugin FROM json_each($1) j \
                 JOIN usage_subjects s ON s.tenant = j.value ->> 0 AND s.key_id = j.value ->> 1 \
                 AND s.endpoint_id = j.value ->> 2 AND s.plugin = j.value ->> 3",
            ),
            Backend::Postgres => (
                "INSERT INTO usage_subjects (tenant, key_id, endpoint_id, plugin) \
                 SELECT j ->> 0, j ->> 1, j ->> 2, j ->> 3 FROM jsonb_array_elements($1::jsonb) AS j \
                 ON CONFLICT DO NOTHING",
                "SELECT s.id, s.tenant, s.key_id, s.endpoint_id, s.plugin FROM jsonb_array_elements($1::jsonb) AS j \
                 JOIN usage_subjects s ON s.tenant = j ->> 0 AND s.key_id = j ->> 1 \
                 AND s.endpoint_id = j ->> 2 AND s.plugin = j ->> 3",
            ),
        };
        {
            let _turn = db.write_turn().await;
            sqlx::query(insert).bind(new.as_str()).execute(db.pool()).await?;
        }
        let numbered: Vec<(i64, String, String, String, String)> =
            sqlx::query_as(select).bind(new.as_str()).fetch_all(db.pool()).await?;
        for (id, tenant, key_id, endpoint_id, plugin) in numbered {
            subject_text(&mut self.text, [&tenant, &key_id, &endpoint_id, &plugin]);
            self.ids.insert(self.text.clone(), id);
        }
        for pair in &mut plan.pairs {
            if let Subject::New(text) = pair {
                let id = self
                    .ids
                    .get(text.as_str())
                    .copied()
                    .ok_or_else(|| ProjectionError::Usage(format!("usage subject {text:?} was not numbered")))?;
                *pair = Subject::Numbered(id);
            }
        }
        Ok(())
    }
}
