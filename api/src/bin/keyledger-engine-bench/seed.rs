//! Valid domain events, written straight into the log.

use super::*;

/// One row of the `events` table as cqrs-es writes it (aggregate type "ApiKey", version "1.0").
pub(crate) struct EventRow {
    pub(crate) aggregate_id: String,
    pub(crate) sequence: i64,
    pub(crate) event_type: String,
    pub(crate) payload: String,
    pub(crate) metadata: String,
}

/// xorshift64*: a fixed seed gives every run the same mix of events.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A key being seeded: what its next event needs to know.
pub(crate) struct SeedKey {
    pub(crate) number: u64,
    pub(crate) id: uuid::Uuid,
    pub(crate) tenant: TenantId,
    pub(crate) environment: Environment,
    pub(crate) lookup: LookupId,
    /// cqrs-es numbers an aggregate's events from 1.
    pub(crate) next_sequence: i64,
    /// Events still to write, this one included.
    pub(crate) left: u32,
    /// Whether its last event revokes it (nothing follows a revocation).
    pub(crate) revoked_at_end: bool,
}

/// An endless log of valid ApiKey events: keys are issued, then changed (limits, scopes, IP
/// rules, names), rotated and some revoked, about 10 events per key, round-robin over a window of
/// keys so that consecutive events belong to different keys.
pub(crate) struct EventMix {
    pub(crate) rng: Rng,
    pub(crate) hash: SecretHash,
    pub(crate) window: Vec<SeedKey>,
    pub(crate) cursor: usize,
    pub(crate) keys: u64,
    pub(crate) at: DateTime<Utc>,
    pub(crate) counts: BTreeMap<String, u64>,
}

pub(crate) const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl EventMix {
    pub(crate) fn new() -> anyhow::Result<Self> {
        // One real PBKDF2 hash (PHC string) for every key: the projections store it, never check it.
        let hash = SecretHasher::new(1_000).hash(generate_key(Environment::Live).expose());
        let mut mix = EventMix {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            hash,
            window: Vec::with_capacity(SEED_WINDOW),
            cursor: 0,
            keys: 0,
            // A month of history, 50 ms apart; well before any expiry, so the server's expiry
            // scheduler finds nothing to do.
            at: Utc::now() - chrono::Duration::days(30),
            counts: BTreeMap::new(),
        };
        for _ in 0..SEED_WINDOW {
            let key = mix.new_key()?;
            mix.window.push(key);
        }
        Ok(mix)
    }

    pub(crate) fn new_key(&mut self) -> anyhow::Result<SeedKey> {
        self.keys += 1;
        let tenant = match self.rng.below(10) {
            0..=6 => "default",
            7 | 8 => "acme",
            _ => "globex",
        };
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next().to_le_bytes());
        Ok(SeedKey {
            number: self.keys,
            id: uuid::Builder::from_random_bytes(bytes).into_uuid(),
            tenant: TenantId::try_from(tenant.to_owned())?,
            environment: if self.rng.chance(80) {
                Environment::Live
            } else {
                Environment::Test
            },
            lookup: self.lookup_id()?,
            next_sequence: 1,
            left: 4 + self.rng.below(13) as u32,
            revoked_at_end: self.rng.chance(30),
        })
    }

    /// Random, as real lookup ids are (the lookup table's primary key sees the same inserts).
    pub(crate) fn lookup_id(&mut self) -> anyhow::Result<LookupId> {
        let id: String = (0..12).map(|_| BASE62[self.rng.below(62) as usize] as char).collect();
        LookupId::try_from(id).context("a generated lookup id")
    }

    pub(crate) fn scopes(&mut self) -> anyhow::Result<BTreeSet<Scope>> {
        (0..1 + self.rng.below(4))
            .map(|_| {
                let name = CATALOGUE[self.rng.below(CATALOGUE.len() as u64) as usize];
                Scope::try_from(name.to_owned()).context("a catalogue scope")
            })
            .collect()
    }

    pub(crate) fn rate_limits(&mut self) -> anyhow::Result<RateLimits> {
        let input = RateLimitsInput {
            per_second: self.rng.chance(30).then(|| 1 + self.rng.below(50)),
            per_minute: Some(10 + self.rng.below(990)),
            per_hour: Some(1_000 + self.rng.below(50_000)),
            per_day: self.rng.chance(20).then(|| 100_000 + self.rng.below(900_000)),
            burst: self.rng.chance(20).then(|| 5 + self.rng.below(45)),
        };
        RateLimits::try_from(input).context("generated rate limits")
    }

    pub(crate) fn ip_rules(&mut self) -> anyhow::Result<IpRules> {
        let allow = (0..self.rng.below(3))
            .map(|_| format!("10.{}.{}.0/24", self.rng.below(256), self.rng.below(256)))
            .map(CidrRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let block = (0..self.rng.below(2))
            .map(|_| format!("192.0.2.{}", self.rng.below(256)))
            .map(CidrRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpRules::new(allow, block)?)
    }

    /// The next event of the log.
    pub(crate) fn next_row(&mut self) -> anyhow::Result<EventRow> {
        self.at += chrono::Duration::milliseconds(50);
        let at = self.at;
        let slot = self.cursor;
        self.cursor = (self.cursor + 1) % SEED_WINDOW;
        let event = self.event_for(slot, at)?;
        let key = &mut self.window[slot];
        let row = EventRow {
            aggregate_id: key.id.to_string(),
            sequence: key.next_sequence,
            event_type: event.event_type(),
            // Through a Value, as cqrs-es stores it: the same bytes, keys in sorted order.
            payload: serde_json::to_value(&event).context("an event as JSON")?.to_string(),
            metadata: serde_json::json!({
                "actor": "system",
                "tenant": key.tenant.as_str(),
                "time": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
            .to_string(),
        };
        key.next_sequence += 1;
        key.left -= 1;
        if key.left == 0 {
            self.window[slot] = self.new_key()?;
        }
        *self.counts.entry(row.event_type.clone()).or_default() += 1;
        Ok(row)
    }

    /// What happens next to the key in `slot`: issued first, revoked last (for some), and in
    /// between the changes admins make most.
    pub(crate) fn event_for(&mut self, slot: usize, at: DateTime<Utc>) -> anyhow::Result<ApiKeyEvent> {
        let (first, last, revoke) = {
            let key = &self.window[slot];
            (key.next_sequence == 1, key.left == 1, key.revoked_at_end)
        };
        if first {
            let scopes = self.scopes()?;
            let rate_limits = self.rate_limits()?;
            let ip_rules = self.ip_rules()?;
            let expires_at = self.rng.chance(20).then(|| Utc::now() + chrono::Duration::days(365));
            let key = &self.window[slot];
            return Ok(ApiKeyEvent::KeyIssued {
                key_id: key.id,
                tenant: key.tenant.clone(),
                name: Name::try_from(format!("seeded key {}", key.number))?,
                environment: key.environment,
                lookup_id: key.lookup.clone(),
                secret_hash: self.hash.clone(),
                scopes,
                rate_limits,
                ip_rules,
                expires_at,
                at,
            });
        }
        if last && revoke {
            let reason = self.rng.chance(50).then(|| "no longer used".to_owned());
            return Ok(ApiKeyEvent::KeyRevoked { reason, at });
        }
        Ok(match self.rng.below(100) {
            0..=29 => ApiKeyEvent::KeyRateLimitsChanged {
                rate_limits: self.rate_limits()?,
                at,
            },
            30..=54 => ApiKeyEvent::KeyScopesChanged {
                scopes: self.scopes()?,
                at,
            },
            55..=69 => ApiKeyEvent::KeyIpRulesChanged {
                ip_rules: self.ip_rules()?,
                at,
            },
            70..=84 => {
                let key = &self.window[slot];
                ApiKeyEvent::KeyRenamed {
                    name: Name::try_from(format!("seeded key {} v{}", key.number, key.next_sequence))?,
                    at,
                }
            }
            _ => {
                let lookup_id = self.lookup_id()?;
                let key = &mut self.window[slot];
                let previous_lookup_id = std::mem::replace(&mut key.lookup, lookup_id.clone());
                ApiKeyEvent::KeyRotated {
                    lookup_id,
                    secret_hash: self.hash.clone(),
                    previous_lookup_id,
                    previous_valid_until: at + chrono::Duration::days(1),
                    at,
                }
            }
        })
    }
}

/// Writes `events` events of the mix straight into the store's `events` table.
pub(crate) async fn seed(pool: &Pool, events: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut mix = EventMix::new()?;
    let (mut done, mut report_at) = (0u64, 100_000u64);
    let mut rows = Vec::with_capacity(ROWS_PER_TRANSACTION);
    while done < events {
        rows.clear();
        let n = (events - done).min(ROWS_PER_TRANSACTION as u64);
        for _ in 0..n {
            rows.push(mix.next_row()?);
        }
        pool.insert_events(&rows).await?;
        done += n;
        while done >= report_at {
            println!(
                "  seeded {report_at} of {events} events ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            report_at += 100_000;
        }
    }
    let counts: Vec<String> = mix.counts.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    println!(
        "  seeded {done} events of {} keys in {:.1} s: {}",
        mix.counts.get("KeyIssued").copied().unwrap_or(0),
        started.elapsed().as_secs_f64(),
        counts.join(", ")
    );
    Ok(())
}
