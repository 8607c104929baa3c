//! Reading the configuration: the TOML file, then `IDENTIFY_BRIDGE__…` variables on top, every
//! key checked against the schema generated from the settings types (so a typo is named, with
//! the nearest known key and, for a variable, the variable to set instead), then typed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use super::suggest::nearest;
use super::{ConfigError, Settings, ENV_PREFIX};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// The merged (file + environment) configuration before it is typed, with the variable each
/// environment value came from.
pub(super) struct Layers {
    pub value: Value,
    pub from_env: BTreeMap<Vec<Seg>, String>,
}

/// Sections whose entries are a list in TOML and are addressed by name in the environment.
const NAMED_LISTS: [&str; 2] = ["providers", "sinks"];

/// Read the file (if any) and lay the environment over it.
pub(super) fn layers(
    file: Option<&Path>,
    env: &[(String, String)],
    schema: &Value,
) -> Result<Layers, ConfigError> {
    let mut value = match file {
        None => Value::Object(Map::new()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::plain(format!("cannot read {}: {e}", path.display())))?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| {
                ConfigError::plain(format!("{}: {}", path.display(), e.to_string().trim_end()))
            })?;
            serde_json::to_value(table)
                .map_err(|e| ConfigError::plain(format!("{}: {e}", path.display())))?
        }
    };
    let walker = Walker::new(schema);
    let mut from_env = BTreeMap::new();
    let mut env: Vec<&(String, String)> = env.iter().collect();
    env.sort();
    for (var, raw) in env {
        let path = env_path(var, &value)?;
        add_named_entry(&mut value, var, &path);
        let typed = walker.env_value(&path, raw);
        set(&mut value, &path, typed)
            .map_err(|what| ConfigError::plain(format!("{var}: {what}")))?;
        from_env.insert(path, var.clone());
    }
    Ok(Layers { value, from_env })
}

/// `IDENTIFY_BRIDGE__SERVER__LISTEN` → `server.listen`; `…__PROVIDERS__MY_OKTA__DOMAIN` →
/// `providers[i].domain` for the provider named `my-okta` (appended when there is none).
fn env_path(var: &str, value: &Value) -> Result<Vec<Seg>, ConfigError> {
    let rest = &var[ENV_PREFIX.len()..];
    let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if parts.iter().any(String::is_empty) {
        return Err(ConfigError::plain(format!(
            "{var}: expected {ENV_PREFIX}SECTION__KEY (parts joined by a double underscore)"
        )));
    }
    let section = parts[0].as_str();
    if !NAMED_LISTS.contains(&section) {
        return Ok(parts.into_iter().map(Seg::Key).collect());
    }
    if parts.len() < 3 {
        return Err(ConfigError::plain(format!(
            "{var}: expected {ENV_PREFIX}{}__{{NAME}}__{{KEY}}",
            section.to_ascii_uppercase()
        )));
    }
    let wanted = parts[1].to_ascii_uppercase();
    let entries = value.get(section).and_then(Value::as_array);
    let index = entries
        .and_then(|list| {
            list.iter().position(|entry| {
                entry
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| env_name_part(name) == wanted)
            })
        })
        .unwrap_or(entries.map_or(0, Vec::len));
    let mut path = vec![Seg::Key(section.into()), Seg::Index(index)];
    path.extend(parts[2..].iter().cloned().map(Seg::Key));
    Ok(path)
}

/// A provider or sink name as it appears in a variable: upper case, `-` written as `_`.
fn env_name_part(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// Put `new` at `path`, creating tables (and a named entry) on the way.
fn set(root: &mut Value, path: &[Seg], new: Value) -> Result<(), String> {
    let mut node = root;
    for (depth, seg) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        match seg {
            Seg::Key(key) => {
                let Value::Object(map) = node else {
                    return Err(format!("`{}` is not a table", display(path, depth)));
                };
                if last {
                    map.insert(key.clone(), new);
                    return Ok(());
                }
                let next_is_index = matches!(path.get(depth + 1), Some(Seg::Index(_)));
                node = map.entry(key.clone()).or_insert_with(|| {
                    if next_is_index {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    }
                });
            }
            Seg::Index(index) => {
                let Value::Array(list) = node else {
                    return Err(format!("`{}` is not a list", display(path, depth)));
                };
                if *index == list.len() {
                    // A name the file does not have: a new entry (named by `name_new_entries`).
                    list.push(Value::Object(Map::new()));
                }
                node = &mut list[*index];
            }
        }
    }
    *node = new;
    Ok(())
}

fn display(path: &[Seg], upto: usize) -> String {
    let mut out = String::new();
    for seg in &path[..upto.min(path.len())] {
        push_seg(&mut out, seg);
    }
    out
}

/// Append one segment: `.key` (no dot first) or `[i]`.
fn push_seg(out: &mut String, seg: &Seg) {
    match seg {
        Seg::Key(k) => {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(k);
        }
        Seg::Index(i) => {
            let _ = write!(out, "[{i}]");
        }
    }
}

/// A provider or sink that only the environment names: a new entry, named from the variable
/// (`…__PROVIDERS__MY_OKTA__…` → `name = "my-okta"`).
fn add_named_entry(root: &mut Value, var: &str, path: &[Seg]) {
    let (Some(Seg::Key(section)), Some(Seg::Index(index))) = (path.first(), path.get(1)) else {
        return;
    };
    let Value::Object(map) = root else { return };
    let list = map
        .entry(section.clone())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = list else { return };
    if *index == list.len() {
        let rest = &var[ENV_PREFIX.len() + section.len() + 2..];
        let name = rest.split("__").next().unwrap_or_default();
        list.push(serde_json::json!({ "name": name.to_ascii_lowercase().replace('_', "-") }));
    }
}

/// The display form of a key path: `providers[0] (google).client_secret`.
pub(super) fn key_text(root: &Value, path: &[Seg]) -> String {
    let mut out = String::new();
    for (depth, seg) in path.iter().enumerate() {
        push_seg(&mut out, seg);
        // A list entry of a top-level section is named by its `name`: `providers[0] (google)`.
        if let (1, Seg::Index(i)) = (depth, seg) {
            let name = root
                .get(display(path, 1))
                .and_then(|list| list.get(*i))
                .and_then(|entry| entry.get("name"))
                .and_then(Value::as_str);
            if let Some(name) = name {
                let _ = write!(out, " ({name})");
            }
        }
    }
    out
}

/// The variable that sets the key at `path`.
pub(super) fn env_var_for(root: &Value, path: &[Seg]) -> String {
    let mut out = ENV_PREFIX.to_string();
    let mut parts = Vec::new();
    for (depth, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(k) => parts.push(k.to_ascii_uppercase()),
            Seg::Index(i) => {
                let name = root
                    .get(display(path, depth))
                    .and_then(|list| list.get(*i))
                    .and_then(|entry| entry.get("name"))
                    .and_then(Value::as_str)
                    .map(env_name_part)
                    .unwrap_or_else(|| "{NAME}".into());
                parts.push(name);
            }
        }
    }
    out.push_str(&parts.join("__"));
    out
}

/// A key the schema does not know, or a kind that does not exist.
pub(super) struct KeyProblem {
    pub path: Vec<Seg>,
    pub what: String,
    /// The nearest known key, as a path.
    pub nearest: Option<Vec<Seg>>,
}

/// Walks a value alongside the JSON Schema of the settings.
pub(super) struct Walker<'a> {
    root: &'a Value,
}

/// What an object schema allows, with `$ref`, `allOf`, `anyOf` and `oneOf` resolved.
#[derive(Default)]
struct ObjectShape<'a> {
    /// Keys every value of this schema may have.
    common: BTreeMap<&'a str, &'a Value>,
    /// Tagged variants: the `kind` value and the keys only that variant has.
    variants: Vec<(&'a str, BTreeMap<&'a str, &'a Value>)>,
    /// A map's value schema (`additionalProperties`).
    values: Option<&'a Value>,
    /// Some alternative is an object with a fixed set of keys.
    closed: bool,
}

impl<'a> Walker<'a> {
    pub fn new(root: &'a Value) -> Self {
        Walker { root }
    }

    fn deref(&self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or_default();
                match self.root.get("$defs").and_then(|d| d.get(name)) {
                    Some(target) => self.deref(target),
                    None => node,
                }
            }
            None => node,
        }
    }

    /// Every schema `node` stands for (itself and what it combines).
    fn alternatives(&self, node: &'a Value) -> Vec<&'a Value> {
        let mut out = vec![node];
        let target = self.deref(node);
        if !std::ptr::eq(target, node) {
            out.extend(self.alternatives(target));
        }
        for combinator in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = node.get(combinator).and_then(Value::as_array) {
                for sub in list {
                    out.extend(self.alternatives(sub));
                }
            }
        }
        out
    }

    fn shape(&self, node: &'a Value) -> ObjectShape<'a> {
        let mut shape = ObjectShape::default();
        for alt in self.alternatives(node) {
            if let Some(props) = alt.get("properties").and_then(Value::as_object) {
                shape.closed = true;
                let tag = props.get("kind").and_then(|k| {
                    k.get("const")
                        .and_then(Value::as_str)
                        .or_else(|| k.get("enum")?.as_array()?.first()?.as_str())
                        .filter(|_| {
                            k.get("enum")
                                .and_then(Value::as_array)
                                .is_none_or(|e| e.len() == 1)
                        })
                });
                let keys = props.iter().map(|(k, v)| (k.as_str(), v));
                match tag {
                    Some(tag) => shape.variants.push((tag, keys.collect())),
                    None => shape.common.extend(keys),
                }
            }
            if let Some(values) = alt.get("additionalProperties").filter(|v| v.is_object()) {
                shape.values = Some(values);
            }
        }
        shape
    }

    fn items(&self, node: &'a Value) -> Option<&'a Value> {
        self.alternatives(node)
            .into_iter()
            .find_map(|alt| alt.get("items").filter(|i| i.is_object()))
    }

    /// The schema of the key at `path` (indexes step into lists), if the schema has it.
    fn at(&self, path: &[Seg], kind: Option<&str>) -> Option<&'a Value> {
        let mut node = self.root;
        for seg in path {
            node = match seg {
                Seg::Index(_) => self.items(node)?,
                Seg::Key(key) => {
                    let shape = self.shape(node);
                    shape
                        .common
                        .get(key.as_str())
                        .copied()
                        .or_else(|| {
                            shape
                                .variants
                                .iter()
                                .filter(|(tag, _)| kind.is_none_or(|k| k == *tag))
                                .find_map(|(_, keys)| keys.get(key.as_str()).copied())
                        })
                        .or(shape.values)?
                }
            };
        }
        Some(node)
    }

    /// An environment value typed as its key expects: text for a string key, else read as a
    /// TOML value (`true`, `5`, `["a", "b"]`), falling back to text.
    fn env_value(&self, path: &[Seg], raw: &str) -> Value {
        let types = self
            .at(path, None)
            .map(|node| self.types(node))
            .unwrap_or_default();
        let only_text = !types.is_empty() && types.iter().all(|t| *t == "string" || *t == "null");
        if only_text {
            return Value::String(raw.to_string());
        }
        toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| Value::String(raw.to_string()))
    }

    fn types(&self, node: &'a Value) -> Vec<&'a str> {
        let mut out = Vec::new();
        for alt in self.alternatives(node) {
            match alt.get("type") {
                Some(Value::String(t)) => out.push(t.as_str()),
                Some(Value::Array(list)) => out.extend(list.iter().filter_map(Value::as_str)),
                _ => {}
            }
            if alt.get("enum").is_some() || alt.get("const").is_some() {
                out.push("string");
            }
        }
        out
    }

    /// The first key the schema does not know.
    pub fn check(&self, value: &Value) -> Result<(), KeyProblem> {
        self.check_at(value, self.root, &mut Vec::new())
    }

    fn check_at(
        &self,
        value: &Value,
        node: &'a Value,
        path: &mut Vec<Seg>,
    ) -> Result<(), KeyProblem> {
        match value {
            Value::Array(items) => {
                if let Some(item_schema) = self.items(node) {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        self.check_at(item, item_schema, path)?;
                        path.pop();
                    }
                }
                Ok(())
            }
            Value::Object(map) => {
                let shape = self.shape(node);
                if !shape.closed {
                    if let Some(values) = shape.values {
                        for (key, item) in map {
                            path.push(Seg::Key(key.clone()));
                            self.check_at(item, values, path)?;
                            path.pop();
                        }
                    }
                    return Ok(());
                }
                let mut known = shape.common.clone();
                let mut kind = None;
                if !shape.variants.is_empty() {
                    let tags: Vec<&str> = shape.variants.iter().map(|(t, _)| *t).collect();
                    let given = map.get("kind");
                    let Some(tag) = given.and_then(Value::as_str).filter(|t| tags.contains(t))
                    else {
                        path.push(Seg::Key("kind".into()));
                        let what = match given {
                            None => format!("missing: one of {}", quoted_list(&tags)),
                            Some(other) => {
                                let text = other
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or(other.to_string());
                                let hint = nearest(&text, tags.iter().copied())
                                    .map(|t| format!("did you mean \"{t}\"? "))
                                    .unwrap_or_default();
                                format!(
                                    "{text:?} is not a kind; {hint}known kinds: {}",
                                    quoted_list(&tags)
                                )
                            }
                        };
                        return Err(KeyProblem {
                            path: path.clone(),
                            what,
                            nearest: None,
                        });
                    };
                    kind = Some(tag);
                    if let Some((_, keys)) = shape.variants.iter().find(|(t, _)| *t == tag) {
                        known.extend(keys.iter().map(|(k, v)| (*k, *v)));
                    }
                }
                for (key, item) in map {
                    path.push(Seg::Key(key.clone()));
                    match known.get(key.as_str()) {
                        Some(child) => self.check_at(item, child, path)?,
                        None => {
                            let owners: Vec<&str> = shape
                                .variants
                                .iter()
                                .filter(|(_, keys)| keys.contains_key(key.as_str()))
                                .map(|(t, _)| *t)
                                .collect();
                            if let (false, Some(kind)) = (owners.is_empty(), kind) {
                                let owners = owners
                                    .iter()
                                    .map(|o| format!("kind = \"{o}\""))
                                    .collect::<Vec<_>>()
                                    .join(" or ");
                                return Err(KeyProblem {
                                    path: path.clone(),
                                    what: format!(
                                        "a key of {owners}, and this provider has kind = \"{kind}\"; keys of kind = \"{kind}\": {}",
                                        plain_list(known.keys().copied())
                                    ),
                                    nearest: None,
                                });
                            }
                            let near = nearest(key, known.keys().copied()).map(|k| {
                                let mut p = path.clone();
                                p.pop();
                                p.push(Seg::Key(k.to_string()));
                                p
                            });
                            return Err(KeyProblem {
                                path: path.clone(),
                                what: format!(
                                    "unknown key; known keys here: {}",
                                    plain_list(known.keys().copied())
                                ),
                                nearest: near,
                            });
                        }
                    }
                    path.pop();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The keys only `kind`'s variant has, for pulling a provider's kind keys out on their own.
    pub fn kind_keys(&self, list: &str, kind: &str) -> Vec<String> {
        let Some(items) = self
            .shape(self.root)
            .common
            .get(list)
            .and_then(|node| self.items(node))
        else {
            return Vec::new();
        };
        self.shape(items)
            .variants
            .into_iter()
            .filter(|(tag, _)| *tag == kind)
            .flat_map(|(_, keys)| keys.into_keys().map(str::to_string))
            .filter(|k| k != "kind")
            .collect()
    }

    /// Every key the schema has, as `section.key` (list entries: `providers.tenant`), for the
    /// README check.
    pub fn all_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_keys(self.root, "", &mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_keys(&self, node: &'a Value, prefix: &str, out: &mut Vec<String>) {
        let node = self.items(node).unwrap_or(node);
        let shape = self.shape(node);
        let keys = shape
            .common
            .into_iter()
            .chain(shape.variants.into_iter().flat_map(|(_, keys)| keys));
        for (key, child) in keys {
            let full = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            let inner = self.items(child).unwrap_or(child);
            if self.shape(inner).closed {
                self.collect_keys(inner, &full, out);
            } else {
                out.push(full);
            }
        }
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plain_list<'b>(items: impl Iterator<Item = &'b str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Type the whole configuration but the providers' kind keys (the second step); an error
/// comes with its key path (`missing field` names the missing key).
pub(super) fn deserialize(value: &Value) -> Result<Settings, (Vec<Seg>, String)> {
    read_typed::<Settings>(value).map_err(|(mut path, mut message)| {
        if let Some(field) = split_missing(&message) {
            path.push(Seg::Key(field.to_string()));
            message = "missing: required".into();
        }
        (path, message)
    })
}

/// Type `value` as `T`; an error comes with its key path.
fn read_typed<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, (Vec<Seg>, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(path_and_message)
}

/// A typing error as its key path and message.
pub(super) fn path_and_message(
    e: serde_path_to_error::Error<serde_json::Error>,
) -> (Vec<Seg>, String) {
    let path = e
        .path()
        .iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            _ => None,
        })
        .collect();
    (path, e.into_inner().to_string())
}

/// `missing field `tenant`` → (`tenant`, "missing"); other messages as they are.
pub(super) fn split_missing(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

/// A provider entry's own keys of `kind` (the keys only that kind's schema has), on their own.
pub(super) fn kind_keys_of(walker: &Walker, entry: &Value, kind: &str) -> Value {
    let keys = walker.kind_keys("providers", kind);
    let own: Map<String, Value> = entry
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(own)
}
