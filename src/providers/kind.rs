//! [`Kind`]: a kind of provider as a whole, how configuration reads its keys (a
//! [`KindSpec`]) and the [`Quirks`] its settings make. Each kind's file has a `KIND` static,
//! usually a [`KindOf`] its settings struct; `KINDS` in `mod.rs` lists them.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Quirks;
use crate::config::{KindConfig, KindSettings, KindSpec, Kinds, SettingsKind};

/// A kind of provider: how configuration reads it, and the quirks its settings make.
pub trait Kind: Sync {
    fn spec(&self) -> &dyn KindSpec;
    /// The quirks of a provider with these settings; `None` when they are another kind's.
    fn quirks(&self, settings: &KindConfig) -> Option<Box<dyn Quirks>>;
}

/// The usual [`Kind`]: settings `S`, named by `kind = "{name}"`, and the quirks they make.
pub struct KindOf<S> {
    spec: SettingsKind<S>,
    quirks: fn(&S) -> Box<dyn Quirks>,
}

impl<S> KindOf<S> {
    pub const fn new(name: &'static str, quirks: fn(&S) -> Box<dyn Quirks>) -> Self {
        KindOf {
            spec: SettingsKind::new(name),
            quirks,
        }
    }
}

impl<S: KindSettings + Serialize + DeserializeOwned + JsonSchema> Kind for KindOf<S> {
    fn spec(&self) -> &dyn KindSpec {
        &self.spec
    }
    fn quirks(&self, settings: &KindConfig) -> Option<Box<dyn Quirks>> {
        settings.get::<S>().map(self.quirks)
    }
}

/// The list of kinds, as configuration reads it (`Settings::load(file, &KINDS)`).
pub struct KindList(&'static [&'static dyn Kind]);

impl KindList {
    pub const fn new(kinds: &'static [&'static dyn Kind]) -> Self {
        KindList(kinds)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static dyn Kind> {
        self.0.iter().copied()
    }
}

impl Kinds for KindList {
    fn specs(&self) -> Vec<&dyn KindSpec> {
        self.0.iter().map(|kind| kind.spec()).collect()
    }
}
