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
    TokenFingerprint::from_hex(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
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
