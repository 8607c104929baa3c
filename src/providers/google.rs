//! Google: one fixed issuer; the `hd` claim (Workspace) is read by the trait mapping.

/// Google's issuer, as its discovery document and ID tokens state it.
pub const ISSUER: &str = "https://accounts.google.com";
