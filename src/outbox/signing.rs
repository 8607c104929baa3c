//! Standard Webhooks signatures for a sink's requests (`[[sinks]] signing_secrets`):
//! `webhook-id` (the message id), `webhook-timestamp` (Unix seconds at sending) and
//! `webhook-signature`, a space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
//! for each secret, so a receiver that knows any one of them verifies (key rotation). The body
//! signed is the exact bytes sent.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;

use crate::config::SinkSettings;

pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// A sink's signing keys. Its `Debug` shows only how many there are.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// The signer of a sink with `signing_secrets`; `None` without. The secrets were checked
    /// at start-up, so one that does not decode here is a bug.
    pub fn for_sink(sink: &SinkSettings) -> Option<Signer> {
        let keys = sink
            .signing_keys()
            .expect("signing secrets are checked when the configuration loads");
        (!keys.is_empty()).then(|| Signer::new(&keys))
    }

    pub fn new(keys: &[Vec<u8>]) -> Signer {
        Signer {
            keys: keys
                .iter()
                .map(|k| hmac::Key::new(hmac::HMAC_SHA256, k))
                .collect(),
        }
    }

    /// The `webhook-signature` value: `v1,<signature>` for each key, space-separated.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signed = [
            id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ]
        .concat();
        self.keys
            .iter()
            .map(|key| format!("v1,{}", STANDARD.encode(hmac::sign(key, &signed).as_ref())))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The three headers for `body` sent now as message `id`.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (WEBHOOK_ID, id.to_string()),
            (WEBHOOK_TIMESTAMP, timestamp.to_string()),
            (WEBHOOK_SIGNATURE, self.signature(id, timestamp, body)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::signing_key;

    #[test]
    fn the_standard_webhooks_test_vector_signs_as_published() {
        // The example of the Standard Webhooks specification (and of its libraries' tests).
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signer = Signer::new(&[key]);
        assert_eq!(
            signer.signature(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_secret_signs_for_rotation() {
        let one = vec![1u8; 32];
        let two = vec![2u8; 32];
        let both = Signer::new(&[one.clone(), two.clone()]).signature("m", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], Signer::new(&[one]).signature("m", 1, b"{}"));
        assert_eq!(parts[1], Signer::new(&[two]).signature("m", 1, b"{}"));
        assert!(!format!("{:?}", Signer::new(&[vec![7u8; 32]])).contains('7'));
    }

    #[test]
    fn secrets_must_be_whsec_base64_of_a_sensible_size() {
        assert!(signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(signing_key("whsec_not base64!").is_err());
        let short = signing_key("whsec_c2hvcnQ=").unwrap_err();
        assert!(short.contains("24 to 64 bytes"), "{short}");
        assert!(
            !short.contains("c2hvcnQ"),
            "the message never repeats the secret"
        );
    }
}
