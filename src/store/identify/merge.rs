//! The pure part of an identify batch: a profile as the batch leaves it, and what one call
//! does to it. No database here; every executor's batch merges through this.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::IdentifyCall;
use crate::store::ms;

/// A profile as the batch leaves it.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::store) struct Profile {
    pub(in crate::store) traits: Map<String, Value>,
    pub(in crate::store) provenance: Map<String, Value>,
    pub(in crate::store) created_at: DateTime<Utc>,
    pub(in crate::store) created_at_source: String,
    pub(in crate::store) updated_at: DateTime<Utc>,
    /// Not in the database before this batch.
    pub(in crate::store) is_new: bool,
}

/// Where a trait set through the Identify API came from.
fn api_source() -> Value {
    json!({"source": "api:identify", "verified": false})
}

impl Profile {
    /// A stored profile, as a batch starts from it.
    pub(in crate::store) fn stored(
        traits: Map<String, Value>,
        provenance: Map<String, Value>,
        created_at: DateTime<Utc>,
        created_at_source: String,
    ) -> Profile {
        Profile {
            traits,
            provenance,
            created_at,
            created_at_source,
            // Replaced by the first call merged.
            updated_at: created_at,
            is_new: false,
        }
    }

    /// The profile a call creates: `created_at` from the call, else its receipt time.
    pub(in crate::store) fn new_for(call: &IdentifyCall) -> Profile {
        Profile {
            traits: Map::new(),
            provenance: Map::new(),
            created_at: call
                .account_created_at
                .map(ms)
                .unwrap_or(ms(call.received_at)),
            created_at_source: "api".into(),
            updated_at: ms(call.received_at),
            is_new: true,
        }
    }

    /// Apply one call: `null` removes a trait, an earlier creation time moves `created_at`.
    /// A value the profile already holds keeps its provenance (the bridge's own identify call
    /// repeats the sign-in's traits, which must still show `claims:/…`): provenance changes
    /// only with the value.
    pub(in crate::store) fn merge(&mut self, call: &IdentifyCall) {
        for (name, value) in &call.traits {
            if value.is_null() {
                self.traits.remove(name);
                self.provenance.remove(name);
            } else if self.traits.get(name) != Some(value) || !self.provenance.contains_key(name) {
                self.traits.insert(name.clone(), value.clone());
                self.provenance.insert(name.clone(), api_source());
            }
        }
        if let Some(earlier) = call
            .account_created_at
            .map(ms)
            .filter(|t| *t < self.created_at)
        {
            self.created_at = earlier;
            self.created_at_source = "api".into();
        }
        self.updated_at = ms(call.received_at);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_767_225_600 + secs, 123_456_789)
            .unwrap()
    }

    fn call(traits: Value, account_created_at: Option<DateTime<Utc>>) -> IdentifyCall {
        IdentifyCall {
            caller: "key:abc".into(),
            idempotency_key: None,
            user_id: "u".into(),
            traits: traits.as_object().unwrap().clone(),
            traits_json: traits.to_string(),
            context_json: None,
            account_created_at,
            response: "{}".into(),
            request_digest: String::new(),
            received_at: at(100),
        }
    }

    fn signed_in() -> Profile {
        Profile::stored(
            json!({"title": "Engineer", "city": "Oslo"})
                .as_object()
                .unwrap()
                .clone(),
            json!({"title": {"source": "claims:/title"}, "city": {"source": "claims:/city"}})
                .as_object()
                .unwrap()
                .clone(),
            ms(at(0)),
            "provider".into(),
        )
    }

    #[test]
    fn a_new_profile_starts_at_the_calls_creation_time_else_its_receipt() {
        let created = Profile::new_for(&call(json!({}), Some(at(-50))));
        assert_eq!(created.created_at, ms(at(-50)));
        let received = Profile::new_for(&call(json!({}), None));
        assert_eq!(received.created_at, ms(at(100)));
        for p in [created, received] {
            assert_eq!(p.created_at_source, "api");
            assert!(p.is_new);
            assert!(p.traits.is_empty());
        }
    }

    #[test]
    fn null_removes_a_trait_and_its_provenance_and_a_new_value_is_the_apis() {
        let mut p = signed_in();
        p.merge(&call(json!({"city": null, "plan": "pro"}), None));
        assert_eq!(
            Value::Object(p.traits.clone()),
            json!({"title": "Engineer", "plan": "pro"})
        );
        assert!(!p.provenance.contains_key("city"));
        assert_eq!(p.provenance["plan"], api_source());
        assert_eq!(p.updated_at, ms(at(100)));
    }

    #[test]
    fn an_unchanged_value_keeps_its_provenance_a_changed_one_does_not() {
        let mut p = signed_in();
        p.merge(&call(json!({"title": "Engineer", "city": "Bergen"}), None));
        assert_eq!(p.provenance["title"], json!({"source": "claims:/title"}));
        assert_eq!(p.provenance["city"], api_source());
    }

    #[test]
    fn account_created_at_moves_created_at_earlier_never_later() {
        let mut p = signed_in();
        p.merge(&call(json!({}), Some(at(10))));
        assert_eq!(
            (p.created_at, p.created_at_source.as_str()),
            (ms(at(0)), "provider")
        );
        p.merge(&call(json!({}), Some(at(-10) + TimeDelta::microseconds(1))));
        assert_eq!(
            (p.created_at, p.created_at_source.as_str()),
            (ms(at(-10)), "api")
        );
    }
}
