//! The typed settings tree: defaults, then the TOML file, then `IDENTIFY_BRIDGE__…` variables.

use serde::{Deserialize, Serialize};

/// Which family a configured provider belongs to; decides discovery quirks and default trait mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Google,
    Microsoft,
    Okta,
    Oidc,
}
