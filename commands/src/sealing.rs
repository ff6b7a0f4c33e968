//! Webhook signing secrets at rest. A subscription must sign with its secret, so the secret is
//! kept, not hashed: sealed with XChaCha20-Poly1305 under a key derived from the edge pepper
//! (nodes that share the pepper open each other's), with a random nonce per seal. The event
//! store and its backups hold only sealed secrets.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use keyledger_domain::webhook::signature::SigningSecret;
use keyledger_domain::webhook::subscription::SealedSecret;

const VERSION: &str = "v1:";
const NONCE: usize = 24;

/// A new signing secret: 256 random bits.
pub fn new_signing_secret() -> SigningSecret {
    use rand::RngCore;
    let mut bytes = [0u8; keyledger_domain::webhook::signature::SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SigningSecret::from_bytes(bytes)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed webhook secret does not open with this node's key (is the edge pepper the same on every node?)")]
pub struct Unopenable;

#[derive(Clone)]
pub struct SecretBox(XChaCha20Poly1305);

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> SecretBox {
        SecretBox(XChaCha20Poly1305::new(&key.into()))
    }

    pub fn seal(&self, secret: &SigningSecret) -> SealedSecret {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encrypting a few dozen bytes in memory cannot fail.
        let sealed = self
            .0
            .encrypt(&nonce, secret.shown().as_bytes())
            .unwrap_or_else(|_| unreachable!("in-memory encryption"));
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        SealedSecret::new(format!("{VERSION}{}", BASE64.encode(bytes)))
    }

    pub fn open(&self, sealed: &SealedSecret) -> Result<SigningSecret, Unopenable> {
        let encoded = sealed.as_str().strip_prefix(VERSION).ok_or(Unopenable)?;
        let bytes = BASE64.decode(encoded).map_err(|_| Unopenable)?;
        if bytes.len() <= NONCE {
            return Err(Unopenable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = self
            .0
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| Unopenable)?;
        std::str::from_utf8(&plain)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_only_and_never_shows_the_plaintext() {
        let secret = SigningSecret::from_bytes([9; 32]);
        let sealer = SecretBox::new([1; 32]);
        let sealed = sealer.seal(&secret);
        assert!(
            !sealed.as_str().contains(&secret.shown()[6..]),
            "the plaintext is not in it"
        );
        assert_ne!(sealed, sealer.seal(&secret), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed), Ok(secret));
        assert_eq!(SecretBox::new([2; 32]).open(&sealed), Err(Unopenable));
        let mut bytes = BASE64.decode(&sealed.as_str()[VERSION.len()..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{VERSION}{}", BASE64.encode(bytes));
        assert_eq!(sealer.open(&SealedSecret::new(tampered)), Err(Unopenable));
        assert_eq!(sealer.open(&SealedSecret::new("v1:AAAA".into())), Err(Unopenable));
    }
}
