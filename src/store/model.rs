//! The values the store takes and gives back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A verified sign-in, as the callback hands it to the store.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Configured provider name (`[[providers]] name`).
    pub provider: String,
    /// Identity key part one; for Microsoft the tenant-specific issuer.
    pub issuer: String,
    /// Identity key part two; for Microsoft the `oid`.
    pub subject: String,
    pub email: Option<String>,
    /// True only when the provider is authoritative for this email (providers.md §6: Google
    /// `email_verified` plus gmail/`hd`, Microsoft `xms_edov`, Okta approved domains). The store
    /// links accounts by email only between identities where this was true.
    pub email_verified: bool,
    pub traits: serde_json::Value,
    pub provenance: serde_json::Value,
    /// The provider's own account-creation time (Graph `createdDateTime`, Okta `created`).
    pub provider_created_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// Link a new identity to an existing profile with the same verified email.
    pub link_by_email: bool,
    /// A profile photo to keep (and serve at `/avatars/{avatar_id}`); the user's other avatars
    /// are removed. `None` leaves the stored ones alone.
    pub avatar: Option<Avatar>,
}

/// A callback's `state`, spent by the sign-in transaction (`Store::record_sign_in_once`).
#[derive(Debug, Clone)]
pub struct SpentState {
    /// A hash of the state (the state itself is a secret until used).
    pub state_hash: String,
    /// When the pending login would have expired; the record can go after that.
    pub expires_at: DateTime<Utc>,
}

/// The signed-in session a sign-in transaction writes: its link to the user (so erasure,
/// "sign out everywhere" and back-channel logout can find it) and, when sessions live in this
/// database, the session record itself.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: String,
    pub record: Option<SessionRow>,
    pub provider: String,
    /// The ID token's `sub` and `sid` (back-channel logout names either).
    pub subject: String,
    pub sid: Option<String>,
}

/// A session record in tower-sessions' table (its MessagePack encoding).
#[derive(Clone)]
pub struct SessionRow {
    pub data: Vec<u8>,
    pub expiry_date: time::OffsetDateTime,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("expiry_date", &self.expiry_date)
            .finish_non_exhaustive()
    }
}

/// Which sessions to end (`Store::end_sessions`).
#[derive(Debug, Clone, Copy)]
pub enum SessionsOf<'a> {
    User(&'a str),
    Sid { provider: &'a str, sid: &'a str },
    Subject { provider: &'a str, subject: &'a str },
}

/// A re-hosted profile photo.
#[derive(Clone, PartialEq, Eq)]
pub struct Avatar {
    /// Unguessable and content-derived (see `Avatar::id_for`).
    pub avatar_id: String,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`, read from the bytes.
    pub content_type: String,
    pub image: Vec<u8>,
}

impl Avatar {
    /// The id of a photo of one identity: SHA-256 over the issuer, the subject and the bytes
    /// (hex, 32 characters), so nobody can guess it and a new photo gets a new URL (which lets
    /// it be cached forever).
    pub fn id_for(issuer: &str, subject: &str, image: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [issuer.as_bytes(), b"\0", subject.as_bytes(), b"\0", image] {
            h.update(part);
        }
        hex::encode(&h.finalize()[..16])
    }
}

impl std::fmt::Debug for Avatar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Avatar")
            .field("avatar_id", &self.avatar_id)
            .field("content_type", &self.content_type)
            .field("bytes", &self.image.len())
            .finish()
    }
}

/// What a sign-in did to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignInOutcome {
    pub user_id: String,
    /// The profile's `created_at` after this sign-in.
    pub created_at: DateTime<Utc>,
    /// A new profile was created.
    pub first_sign_in: bool,
    /// A new identity was attached to an existing profile by verified email.
    pub linked_by_email: bool,
}

/// An identify message to put into the outbox.
#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    pub message_id: Uuid,
    pub sink: String,
    pub user_id: String,
    pub payload: serde_json::Value,
    /// Also the first `next_attempt_at`.
    pub created_at: DateTime<Utc>,
}

/// An outbox message as the delivery worker sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    pub message_id: Uuid,
    pub sink: String,
    pub user_id: String,
    pub payload: serde_json::Value,
    /// Delivery attempts started, counted when a message is claimed (so a claim that dies
    /// with its replica still counts), reset by `retry_dead`.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub status: OutboxStatus,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Dead,
}

impl OutboxStatus {
    pub(crate) fn parse(s: &str) -> OutboxStatus {
        match s {
            "delivered" => OutboxStatus::Delivered,
            "dead" => OutboxStatus::Dead,
            _ => OutboxStatus::Pending,
        }
    }
}

/// Outbox counts for one sink.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkStats {
    pub sink: String,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    pub oldest_pending_created_at: Option<DateTime<Utc>>,
    /// `now - oldest_pending_created_at`, zero if that is in the future.
    pub oldest_pending_age: Option<std::time::Duration>,
}

/// A profile with its identities (admin API, erasure checks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRecord {
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    /// `provider`, `first_seen` or `api`.
    pub created_at_source: String,
    pub updated_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub traits: serde_json::Value,
    pub provenance: serde_json::Value,
    pub identities: Vec<IdentityRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityRecord {
    pub identity_id: Uuid,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What replaying a profile's identify call needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSummary {
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub traits: serde_json::Value,
    pub email: Option<String>,
}
