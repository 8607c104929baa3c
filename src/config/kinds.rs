//! The kinds of provider as configuration knows them, without naming one: each kind's file
//! under `providers/` holds its settings struct ([`KindSettings`]) and a [`KindSpec`] for it,
//! and the caller hands the list ([`Kinds`], `providers::KINDS`) to [`Settings::load`]
//! (configuration never imports the features it configures). A `[[providers]]` entry's `kind`
//! picks the spec; its own keys are typed by it in a second step of loading, after the keys
//! every provider has.
//!
//! [`Settings::load`]: super::Settings::load

use std::any::Any;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use url::Url;

use super::pointers::PointerSource;
use super::ConfigError;

/// A typing error in a kind's own keys, with the path inside them.
pub type KindError = serde_path_to_error::Error<serde_json::Error>;

/// One kind's own keys, typed: what the settings struct in a kind's file implements.
pub trait KindSettings: Debug + Send + Sync + 'static {
    /// The kind's rules the types cannot express; `key` names the provider
    /// (`providers[0] (okta)`), and each error names its key under it.
    fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Whether this provider reads the API that `[providers.traits]` pointers of `source`
    /// read (Graph, the Okta Users API; the claims are always read). Default: none.
    fn reads(&self, _source: PointerSource) -> bool {
        false
    }
}

/// What [`KindConfig`] needs of a kind's settings beyond [`KindSettings`]: printing them
/// (`check-config`) and handing them back to their kind as their own type.
trait Erased: Debug + Send + Sync {
    fn settings(&self) -> &dyn KindSettings;
    fn to_json(&self) -> Result<Value, serde_json::Error>;
    fn as_any(&self) -> &dyn Any;
}

impl<S: KindSettings + Serialize> Erased for S {
    fn settings(&self) -> &dyn KindSettings {
        self
    }
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A provider's kind and its own keys, typed by the kind. Printed flat, as written:
/// `kind = "okta"` beside `domain = …`.
#[derive(Debug, Clone)]
pub struct KindConfig {
    name: &'static str,
    settings: Arc<dyn Erased>,
}

impl KindConfig {
    /// `settings` of the kind named `name` (as its [`KindSpec`] names it).
    pub fn new<S: KindSettings + Serialize>(name: &'static str, settings: S) -> Self {
        KindConfig {
            name,
            settings: Arc::new(settings),
        }
    }

    /// The `kind` value: `google`, `okta`, …
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn settings(&self) -> &dyn KindSettings {
        self.settings.settings()
    }

    /// The settings as the kind's own type, for the kind's file; `None` for another kind.
    pub fn get<S: KindSettings>(&self) -> Option<&S> {
        self.settings.as_any().downcast_ref()
    }
}

/// No kind yet: the second step of loading types every entry's kind keys; until then serde
/// reads the keys every provider has and leaves the rest.
impl Default for KindConfig {
    fn default() -> Self {
        KindConfig::new("", Untyped {})
    }
}

#[derive(Debug, Serialize)]
struct Untyped {}

impl KindSettings for Untyped {}

impl Serialize for KindConfig {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let keys = match self.settings.to_json().map_err(Z::Error::custom)? {
            Value::Object(keys) => keys,
            _ => return Err(Z::Error::custom("a kind's settings are a table")),
        };
        let mut map = serializer.serialize_map(Some(keys.len() + 1))?;
        map.serialize_entry("kind", self.name)?;
        for (key, value) in &keys {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// One kind of provider: its `kind` name, the schema of its own keys, and their typing.
pub trait KindSpec: Sync {
    fn name(&self) -> &'static str;
    /// The JSON Schema of the kind's own keys (an object; `kind` is added by the caller).
    fn json_schema(&self, generator: &mut SchemaGenerator) -> Schema;
    /// Type the kind's own keys (an object of them alone).
    fn parse(&self, keys: &Value) -> Result<KindConfig, KindError>;
}

/// The usual [`KindSpec`]: the kind `name` whose keys are the struct `S`.
pub struct SettingsKind<S> {
    name: &'static str,
    settings: PhantomData<fn() -> S>,
}

impl<S> SettingsKind<S> {
    pub const fn new(name: &'static str) -> Self {
        SettingsKind {
            name,
            settings: PhantomData,
        }
    }
}

impl<S: KindSettings + Serialize + DeserializeOwned + JsonSchema> KindSpec for SettingsKind<S> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn json_schema(&self, generator: &mut SchemaGenerator) -> Schema {
        S::json_schema(generator)
    }
    fn parse(&self, keys: &Value) -> Result<KindConfig, KindError> {
        let settings: S = serde_path_to_error::deserialize(keys)?;
        Ok(KindConfig::new(self.name, settings))
    }
}

/// The kinds there are, handed to loading (`providers::KINDS`).
pub trait Kinds: Sync {
    fn specs(&self) -> Vec<&dyn KindSpec>;

    fn find(&self, name: &str) -> Option<&dyn KindSpec> {
        self.specs().into_iter().find(|spec| spec.name() == name)
    }
}

/// A fixed list of specs (tests; the service's list is `providers::KINDS`).
impl<const N: usize> Kinds for [&dyn KindSpec; N] {
    fn specs(&self) -> Vec<&dyn KindSpec> {
        self.to_vec()
    }
}

/// A kind's schema as one alternative of a `[[providers]]` entry: its keys with
/// `kind = "{name}"` (the tag the key check and the README check read).
pub(super) fn variant_schema(spec: &dyn KindSpec, generator: &mut SchemaGenerator) -> Value {
    let mut schema = spec.json_schema(generator).to_value();
    if let Some(object) = schema.as_object_mut() {
        // The entry's common keys sit beside these: the key check closes the set, not this part.
        object.remove("additionalProperties");
        let properties = object.entry("properties").or_insert_with(|| json!({}));
        if let Some(properties) = properties.as_object_mut() {
            properties.insert(
                "kind".into(),
                json!({ "type": "string", "const": spec.name() }),
            );
        }
        let required = object.entry("required").or_insert_with(|| json!([]));
        if let Some(required) = required.as_array_mut() {
            required.insert(0, json!("kind"));
        }
    }
    schema
}

/// `{key}.{field}` must be an http(s) URL.
pub fn http_url(key: &str, field: &str, url: &Url) -> Result<(), ConfigError> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(ConfigError::at(
            format!("{key}.{field}"),
            "must be an http(s) URL",
        ))
    }
}

/// `{key}.{field}[j]` must be plain domain names (`example.com`).
pub fn domain_names(key: &str, field: &str, domains: &[String]) -> Result<(), ConfigError> {
    for (j, domain) in domains.iter().enumerate() {
        let plain = !domain.is_empty()
            && !domain.starts_with('.')
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !plain {
            return Err(ConfigError::at(
                format!("{key}.{field}[{j}]"),
                format!(
                    "{domain:?} is not a domain name: write it as `example.com` (no `@`, no \
                     scheme, no wildcard; subdomains are listed one by one)"
                ),
            ));
        }
    }
    Ok(())
}
