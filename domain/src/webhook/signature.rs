//! Signing per the Standard Webhooks specification: `webhook-signature: v1,<base64 HMAC-SHA256>`
//! over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes of a `whsec_` secret.
//! During a rotation both secrets sign, and the header holds both signatures.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "whsec_";
/// Bytes of a secret this service makes; the specification allows 24 to 64.
pub const SECRET_BYTES: usize = 32;

/// A signing secret. Shown once as `whsec_<base64>`, its `Debug` redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningSecretError {
    #[error("a signing secret is whsec_ and base64")]
    Malformed,
    #[error("a signing secret holds 24 to 64 bytes")]
    Length,
}

impl SigningSecret {
    /// From random bytes the caller drew (the domain draws none).
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> SigningSecret {
        SigningSecret(bytes.to_vec())
    }

    /// As receivers configure it: `whsec_` and the bytes in base64.
    pub fn shown(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.0))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl FromStr for SigningSecret {
    type Err = SigningSecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let encoded = s.strip_prefix(PREFIX).ok_or(SigningSecretError::Malformed)?;
        let bytes = BASE64.decode(encoded).map_err(|_| SigningSecretError::Malformed)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SigningSecretError::Length);
        }
        Ok(SigningSecret(bytes))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// The `webhook-signature` header: a signature by each secret that signs now, space-separated
/// (the newest first).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the Standard Webhooks specification (and of its reference libraries).
        let secret: SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_is_shown_as_whsec_base64_and_parses_back_its_debug_hidden() {
        let secret = SigningSecret::from_bytes([7; SECRET_BYTES]);
        let shown = secret.shown();
        assert!(shown.starts_with("whsec_"), "{shown}");
        assert_eq!(shown.parse::<SigningSecret>(), Ok(secret.clone()));
        assert_eq!(format!("{secret:?}"), "SigningSecret(***)");
        assert_eq!("whsec_!!".parse::<SigningSecret>(), Err(SigningSecretError::Malformed));
        assert_eq!("c2VjcmV0".parse::<SigningSecret>(), Err(SigningSecretError::Malformed));
        assert_eq!(
            "whsec_c2VjcmV0".parse::<SigningSecret>(),
            Err(SigningSecretError::Length)
        );
    }

    #[test]
    fn during_a_rotation_the_header_holds_a_signature_by_each_secret() {
        let (new, old) = (
            SigningSecret::from_bytes([1; SECRET_BYTES]),
            SigningSecret::from_bytes([2; SECRET_BYTES]),
        );
        let header = signature_header([&new, &old], "msg_1", 1_700_000_000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                new.sign("msg_1", 1_700_000_000, b"{}"),
                old.sign("msg_1", 1_700_000_000, b"{}")
            ]
        );
        assert_ne!(parts[0], parts[1]);
    }
}

#[cfg(test)]
mod independent {
    //! Our signatures checked by the specification's own Rust library.

    use super::*;

    fn headers(id: &str, timestamp: i64, signature: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn the_reference_library_verifies_our_signatures_with_either_secret_during_a_rotation() {
        let (new, old, stranger) = (
            SigningSecret::from_bytes([1; SECRET_BYTES]),
            SigningSecret::from_bytes([2; SECRET_BYTES]),
            SigningSecret::from_bytes([3; SECRET_BYTES]),
        );
        // The library checks the timestamp against its own clock (five minutes either way).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let body = br#"{"type":"key.revoked","data":{"key_id":"k1"}}"#;
        let header = signature_header([&new, &old], "msg_2b1", now, body);
        let signed = headers("msg_2b1", now, &header);
        for secret in [&new, &old] {
            let verifier = standardwebhooks::Webhook::new(&secret.shown()).unwrap();
            verifier
                .verify(body, &signed)
                .expect("verified by a secret that signed");
        }
        let verifier = standardwebhooks::Webhook::new(&stranger.shown()).unwrap();
        assert!(
            verifier.verify(body, &signed).is_err(),
            "another secret does not verify"
        );
        let verifier = standardwebhooks::Webhook::new(&new.shown()).unwrap();
        assert!(
            verifier.verify(br#"{"type":"key.created"}"#, &signed).is_err(),
            "a changed body does not verify"
        );
    }
}
