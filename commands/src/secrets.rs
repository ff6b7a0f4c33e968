//! Generating, hashing and checking secrets (API keys and admin tokens).

use keyledger_domain::admin_token::TokenFingerprint;
use keyledger_domain::key_format::{Environment, LookupId, PlaintextKey, SecretHash, LOOKUP_ID_LEN, SECRET_LEN};
use pbkdf2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pbkdf2::{Algorithm, Params, Pbkdf2};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
pub const ADMIN_TOKEN_PREFIX: &str = "kla_";
/// 43 base62 characters: 256 bits.
const ADMIN_TOKEN_SECRET_LEN: usize = 43;

/// PBKDF2-HMAC-SHA256 with a fresh random salt per secret. The iteration count is written into
/// each PHC hash string, so raising it later leaves existing hashes verifiable.
#[derive(Debug, Clone, Copy)]
pub struct SecretHasher {
    iterations: u32,
}

impl SecretHasher {
    pub fn new(iterations: u32) -> Self {
        SecretHasher {
            iterations: iterations.max(1),
        }
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// CPU-heavy (tens of milliseconds at the default): call from a blocking thread.
    pub fn hash(&self, secret: &str) -> SecretHash {
        let salt = SaltString::generate(&mut OsRng);
        let params = Params {
            rounds: self.iterations,
            output_length: 32,
        };
        let hash = Pbkdf2
            .hash_password_customized(
                secret.as_bytes(),
                Some(Algorithm::Pbkdf2Sha256.ident()),
                None,
                params,
                &salt,
            )
            .map(|h| h.to_string())
            // Only reachable with invalid params, which `new` rules out.
            .unwrap_or_default();
        SecretHash::from_phc(hash)
    }

    /// Constant-time comparison (inside `password-hash`). CPU-heavy like [`SecretHasher::hash`].
    pub fn verify(hash: &SecretHash, secret: &str) -> bool {
        match PasswordHash::new(hash.as_phc()) {
            Ok(parsed) => Pbkdf2.verify_password(secret.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// [`SecretHasher::verify`] on the blocking pool, where CPU-heavy work belongs: an async
    /// worker busy with PBKDF2 for tens of milliseconds would stall every request it holds.
    /// `false` also if the task could not run (the runtime shutting down).
    pub async fn verify_off_runtime(hash: &SecretHash, secret: &str) -> bool {
        let (hash, secret) = (hash.clone(), secret.to_owned());
        tokio::task::spawn_blocking(move || SecretHasher::verify(&hash, &secret))
            .await
            .unwrap_or(false)
    }
}

/// A fresh key: random lookup id and secret from the OS's CSPRNG.
pub fn generate_key(environment: Environment) -> PlaintextKey {
    let lookup = Alphanumeric.sample_string(&mut OsRng, LOOKUP_ID_LEN);
    let secret = Alphanumeric.sample_string(&mut OsRng, SECRET_LEN);
    let lookup = LookupId::try_from(lookup).expect("alphanumeric of the right length is a lookup id");
    PlaintextKey::compose(environment, lookup, &secret).expect("alphanumeric of the right length is a secret")
}

/// A fresh admin token, `kla_` + 256 random bits.
pub fn generate_admin_token() -> String {
    format!(
        "{ADMIN_TOKEN_PREFIX}{}",
        Alphanumeric.sample_string(&mut OsRng, ADMIN_TOKEN_SECRET_LEN)
    )
}

/// A public index into the token table: the first 128 bits of SHA-256 of the token. Tokens carry
/// at least 128 random bits, so this reveals nothing usable; the salted hash proves possession.
pub fn fingerprint(token: &str) -> TokenFingerprint {
    let digest = Sha256::digest(token.as_bytes());
    TokenFingerprint::from_hex(hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_secret_only_and_salts_differ() {
        let hasher = SecretHasher::new(1_000);
        let a = hasher.hash("correct horse");
        let b = hasher.hash("correct horse");
        assert_ne!(a, b, "per-secret salt");
        assert!(a.as_phc().contains("i=1000"));
        assert!(SecretHasher::verify(&a, "correct horse"));
        assert!(!SecretHasher::verify(&a, "correct horsf"));
        assert!(!SecretHasher::verify(&SecretHash::from_phc("garbage".into()), "x"));
    }

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate_key(Environment::Test);
        let b = generate_key(Environment::Test);
        assert_ne!(a, b);
        assert_eq!(PlaintextKey::parse(a.expose()).unwrap(), a);
        assert!(a.expose().starts_with("ak_test_"));
    }

    #[test]
    fn tokens_have_a_prefix_and_stable_fingerprints() {
        let t = generate_admin_token();
        assert!(t.starts_with("kla_") && t.len() == 47);
        assert_eq!(fingerprint(&t), fingerprint(&t));
        assert_eq!(fingerprint(&t).as_str().len(), 32);
    }
}

/// The edge's pepper: HMAC-SHA256(pepper, key) is a fast verifier for keys of at least 128
/// random bits (NIST SP 800-63B allows a keyed hash for such secrets). The pepper lives in
/// configuration or the data directory, never in the database, so a database leak alone does
/// not let anyone test guesses against verifiers.
pub struct Pepper {
    /// HMAC keyed with the pepper, cloned per check: the key schedule is done once.
    mac: HmacSha256,
    id: String,
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pepper({})", self.id)
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the edge pepper must be at least 32 characters")]
pub struct PepperTooShort;

impl Pepper {
    /// A pepper from configured text (at least 32 characters).
    pub fn from_secret(secret: &str) -> Result<Self, PepperTooShort> {
        if secret.len() < 32 {
            return Err(PepperTooShort);
        }
        Ok(Self::from_bytes(Sha256::digest(secret.as_bytes()).into()))
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        use hmac::Mac;
        let mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        let mut named = mac.clone();
        named.update(b"keyledger pepper id");
        let id = hex::encode(&named.finalize().into_bytes()[..8]);
        Pepper { mac, id }
    }

    /// A key for `purpose`, derived from the pepper: nodes that share the pepper share it.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Reads the pepper file, or creates it with 256 random bits (mode 0600) on first start.
    pub fn load_or_create(path: &std::path::Path) -> std::io::Result<Self> {
        use rand::RngCore;
        if let Ok(text) = std::fs::read_to_string(path) {
            return Self::from_secret(text.trim()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => std::io::Write::write_all(&mut file, secret.as_bytes())?,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Self::load_or_create(path),
            Err(e) => return Err(e),
        }
        Self::from_secret(&secret).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Names this pepper without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256(pepper, key).
    pub fn digest(&self, key: &str) -> VerifierDigest {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        mac.update(key.as_bytes());
        VerifierDigest(mac.finalize().into_bytes().into())
    }

    /// HMAC-SHA256(pepper, key), hex: what `key_verifiers` stores.
    pub fn verifier(&self, key: &str) -> String {
        self.digest(key).to_hex()
    }

    /// Constant-time check of a presented key against a verifier; runs on every edge request, so
    /// it allocates nothing and compares the 32 bytes at once rather than one by one.
    pub fn matches(&self, key: &str, verifier: &VerifierDigest) -> bool {
        constant_time_eq::constant_time_eq_32(&self.digest(key).0, &verifier.0)
    }
}

/// A peppered verifier, decoded once from the hex `key_verifiers` stores.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierDigest([u8; 32]);

impl VerifierDigest {
    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(VerifierDigest(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Not the verifier itself: it is as good as a password hash to whoever has the pepper.
impl std::fmt::Debug for VerifierDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifierDigest(..)")
    }
}

#[cfg(test)]
mod pepper_tests {
    use super::*;

    #[test]
    fn verifiers_depend_on_the_pepper_and_the_key() {
        let a = Pepper::from_secret(&"a".repeat(32)).unwrap();
        let b = Pepper::from_secret(&"b".repeat(32)).unwrap();
        let v = a.digest("ak_live_x");
        assert!(a.matches("ak_live_x", &v));
        assert!(!a.matches("ak_live_y", &v));
        assert!(!b.matches("ak_live_x", &v));
        assert_ne!(a.id(), b.id());
        assert!(Pepper::from_secret("short").is_err());
    }

    #[test]
    fn verifiers_and_pepper_ids_are_plain_hmac_sha256_so_stored_ones_stay_valid() {
        // Computed with Python's hmac module: verifiers in key_verifiers must survive upgrades.
        let a = Pepper::from_secret(&"a".repeat(32)).unwrap();
        let expected = "79bdb5cc07fbdf6744e07dcf4085c71c98853d569510af1ace55389ed53159e4";
        assert_eq!(a.verifier("ak_live_example"), expected);
        let parsed = VerifierDigest::from_hex(expected).unwrap();
        assert!(a.matches("ak_live_example", &parsed));
        assert_eq!(parsed.to_hex(), expected);
        assert!(VerifierDigest::from_hex(&expected[..63]).is_none());
        assert!(VerifierDigest::from_hex(&format!("{}g", &expected[..63])).is_none());
        assert!(VerifierDigest::from_hex(&expected.to_uppercase()).is_some_and(|d| d == parsed));
        assert_eq!(a.id(), "9523cd88da9b28d5");
    }

    #[test]
    fn the_pepper_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("kl-pepper-{}", uuid::Uuid::new_v4()));
        let path = dir.join("edge-pepper");
        let first = Pepper::load_or_create(&path).unwrap();
        let second = Pepper::load_or_create(&path).unwrap();
        assert_eq!(first.id(), second.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
