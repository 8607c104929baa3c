//! `Secret`: a configured value that is never printed, and the `…_file` form that reads it from
//! a file at load time.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// A secret value: never printed by `Debug`, serialized as `"[redacted]"`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// Empty (or only whitespace): as good as unset.
    pub fn is_blank(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "writeOnly": true })
    }
}

/// Fill `value` from `file` when only the file is given. `key` names the value in messages
/// (`providers[0] (google).client_secret`); both set is an error naming `{key}_file`.
pub(super) fn resolve_secret(
    value: &mut Option<Secret>,
    file: Option<&Path>,
    key: &str,
) -> Result<(), super::ConfigError> {
    match (value.as_ref(), file) {
        (Some(_), Some(_)) => Err(super::ConfigError::at(
            format!("{key}_file"),
            format!("set either {key} or {key}_file, not both"),
        )),
        (None, Some(path)) => {
            let text = read_file(path, key)?;
            *value = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Fill a list of secrets from `file` (separated by whitespace) when only the file is given;
/// both set is an error naming `{key}_file`.
pub(super) fn resolve_secret_list(
    values: &mut Vec<Secret>,
    file: Option<&Path>,
    key: &str,
) -> Result<(), super::ConfigError> {
    let Some(path) = file else {
        return Ok(());
    };
    if !values.is_empty() {
        return Err(super::ConfigError::at(
            format!("{key}_file"),
            format!("set either {key} or {key}_file, not both"),
        ));
    }
    *values = read_file(path, key)?
        .split_whitespace()
        .map(Secret::new)
        .collect();
    Ok(())
}

/// The text of `{key}_file`; an error naming that key when it cannot be read.
fn read_file(path: &Path, key: &str) -> Result<String, super::ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        super::ConfigError::at(
            format!("{key}_file"),
            format!("cannot read {}: {e}", path.display()),
        )
    })
}
