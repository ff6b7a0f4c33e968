//! The edge cache keeps only a few keys' folded states: an event for a key whose state it has
//! forgotten must still be folded exactly, from the key's stream.

use super::*;
use keyledger_commands::bus::{ChangeKeyRequest, IssueKeyRequest, IssueOutcome};
use keyledger_commands::clock::SystemClock;
use keyledger_commands::secrets::SecretHasher;
use keyledger_commands::{CommandBus, CommandContext};
use keyledger_domain::key_format::{Environment, PlaintextKey};
use keyledger_domain::KeyStatus;

struct Node {
    _dir: tempfile::TempDir,
    db: Database,
    bus: CommandBus,
    ctx: CommandContext,
}

async fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&format!("sqlite://{}", dir.path().join("edge.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let bus = CommandBus::new(
        db.clone(),
        SecretHasher::new(1),
        Arc::new(SystemClock),
        LogWatch::default(),
    );
    Node {
        _dir: dir,
        db,
        bus,
        ctx: CommandContext::system(),
    }
}

impl Node {
    async fn issue(&self, name: &str) -> (Uuid, PlaintextKey) {
        let req = IssueKeyRequest {
            idempotency_key: None,
            tenant: None,
            name: name.parse().unwrap(),
            environment: Environment::Live,
            scopes: ["FILES_READ".parse().unwrap()].into(),
            rate_limits: Default::default(),
            ip_rules: Default::default(),
            expires_at: None,
        };
        match self.bus.issue_key(&self.ctx, req).await.unwrap().value {
            IssueOutcome::Created { key, secret } => (key.id, secret),
            IssueOutcome::Replayed(_) => unreachable!("no idempotency key"),
        }
    }

    /// Rotates the key, its old secret accepted for an hour more; the new secret.
    async fn rotate(&self, id: Uuid) -> PlaintextKey {
        let rotated = self
            .bus
            .rotate_key(&self.ctx, id, chrono::Duration::hours(1))
            .await
            .unwrap();
        rotated.value.1
    }
}

fn lookup(key: &PlaintextKey) -> &str {
    key.lookup_id().as_str()
}

/// Keeping one state, every second key's state is forgotten before its next event.
async fn cache_keeping_one(node: &Node) -> Arc<EdgeCache> {
    EdgeCache::load_keeping(node.db.clone(), "pepper", 1).await.unwrap()
}

async fn applied(cache: &EdgeCache) {
    cache.catch_up(Snapshot::default(), None).await.unwrap();
}

fn is_kept(cache: &EdgeCache, id: Uuid) -> bool {
    let mut states = cache.states.lock().unwrap();
    let kept = states.take(&id);
    let found = kept.is_some();
    if let Some((state, sequence)) = kept {
        states.keep(id, state, sequence);
    }
    found
}

#[tokio::test]
async fn a_revocation_of_a_key_whose_state_was_forgotten_reaches_the_edge() {
    let node = node().await;
    let cache = cache_keeping_one(&node).await;
    let (a, a_key) = node.issue("a").await;
    let (b, _) = node.issue("b").await;
    applied(&cache).await;
    assert!(
        !is_kept(&cache, a) && is_kept(&cache, b),
        "only the last key's state is kept"
    );
    cache.set_verifier(&LookupKey::new(lookup(&a_key)).unwrap(), Verifier::NotStored);

    node.bus.revoke_key(&node.ctx, a, None).await.unwrap();
    applied(&cache).await;

    let entry = cache.key(lookup(&a_key)).unwrap();
    assert_eq!(entry.status, KeyStatus::Revoked);
    assert_eq!(
        entry.verifier,
        Verifier::NotStored,
        "what was learnt of the verifier stays"
    );
    assert_eq!(
        cache.key_by_id(&b.to_string()).await.unwrap().unwrap().status,
        KeyStatus::Active
    );
}

#[tokio::test]
async fn a_rotation_and_a_change_of_a_forgotten_key_keep_both_secrets_and_share_profiles() {
    let node = node().await;
    let cache = cache_keeping_one(&node).await;
    let (a, old_key) = node.issue("a").await;
    let (b, _) = node.issue("b").await;
    applied(&cache).await;
    assert_eq!(
        cache.profile_count(),
        1,
        "two keys on the same settings share a profile"
    );

    let new_key = node.rotate(a).await;
    // b's next event forgets a's state again.
    let change = ChangeKeyRequest {
        scopes: Some(["FILES_READ".parse().unwrap(), "FILES_WRITE".parse().unwrap()].into()),
        ..Default::default()
    };
    node.bus.change_key(&node.ctx, b, change).await.unwrap();
    applied(&cache).await;
    assert!(!is_kept(&cache, a));
    node.bus
        .change_key(
            &node.ctx,
            a,
            ChangeKeyRequest {
                name: Some("renamed".parse().unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    applied(&cache).await;

    let old = cache.key(lookup(&old_key)).unwrap();
    let new = cache.key(lookup(&new_key)).unwrap();
    assert!(old.valid_until.is_some() && new.valid_until.is_none());
    assert_eq!(old.key_id.uuid(), a);
    assert_eq!(
        cache
            .key_by_id(&a.to_string())
            .await
            .unwrap()
            .unwrap()
            .lookup_id
            .as_str(),
        lookup(&new_key)
    );
    assert!(Arc::ptr_eq(&old.profile, &new.profile));
    let b_entry = cache.key_by_id(&b.to_string()).await.unwrap().unwrap();
    assert!(b_entry.profile.scopes.contains("FILES_WRITE") && !new.profile.scopes.contains("FILES_WRITE"));
    assert_eq!(b_entry.profile.headers.scopes, "FILES_READ,FILES_WRITE");
    assert_eq!(cache.key_count(), 3);

    // The hash the PBKDF2 path needs comes from the stream, for either secret.
    for (entry, key) in [(&old, &old_key), (&new, &new_key)] {
        let hash = cache.secret_hash(entry).await.unwrap().unwrap();
        assert!(SecretHasher::verify(&hash, key.expose()));
    }
}

#[tokio::test]
async fn a_restarted_cache_loads_every_key_with_what_is_stored_of_its_verifier() {
    let node = node().await;
    let (a, a_key) = node.issue("a").await;
    let (b, _) = node.issue("b").await;
    node.bus.revoke_key(&node.ctx, b, None).await.unwrap();
    // The key lookup's rows as the projection writes them, so the snapshot holds both keys.
    crate::rebuild(&node.db, &crate::ReadModel::ALL, |_, _| {})
        .await
        .unwrap();
    let digest = keyledger_commands::secrets::Pepper::from_secret(&"p".repeat(32))
        .unwrap()
        .digest(a_key.expose());
    keyledger_commands::verifiers::store(&node.db, lookup(&a_key), "pepper", &digest)
        .await
        .unwrap();

    let cache = cache_keeping_one(&node).await;

    assert_eq!(cache.key(lookup(&a_key)).unwrap().verifier, Verifier::Known(digest));
    let revoked = cache.key_by_id(&b.to_string()).await.unwrap().unwrap();
    assert_eq!(revoked.status, KeyStatus::Revoked);
    assert_eq!(revoked.verifier, Verifier::NotStored);
    assert_eq!(
        cache.key_by_id(&a.to_string()).await.unwrap().unwrap().tenant.as_str(),
        "default"
    );
}

#[tokio::test]
async fn a_key_by_id_is_the_secret_this_cache_holds_as_current() {
    let node = node().await;
    let cache = cache_keeping_one(&node).await;
    let (a, old_key) = node.issue("a").await;
    applied(&cache).await;
    let by_id = |id: String| {
        let cache = cache.clone();
        async move {
            cache
                .key_by_id(&id)
                .await
                .unwrap()
                .map(|e| e.lookup_id.as_str().to_owned())
        }
    };
    assert_eq!(by_id(a.to_string()).await.as_deref(), Some(lookup(&old_key)));

    let new_key = node.rotate(a).await;
    assert_eq!(
        by_id(a.to_string()).await.as_deref(),
        Some(lookup(&old_key)),
        "the stream is ahead: the secret the edge still accepts as current answers"
    );
    applied(&cache).await;
    assert_eq!(by_id(a.to_string()).await.as_deref(), Some(lookup(&new_key)));

    assert_eq!(by_id(Uuid::new_v4().to_string()).await, None, "a key never issued");
    assert_eq!(by_id("not a key id".to_owned()).await, None);
}
