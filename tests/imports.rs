//! No import circles in `src/`: between files, and between top-level modules (folders).
//!
//! Edges come from `crate::…` and `super::…` paths, in `use` lines and in code. A module using
//! its own sub-modules (a folder's `mod.rs` re-exporting or calling its parts) is not an edge:
//! the parts belong to it. Everything else is: a part using its parent or a sibling, and any
//! use across folders. A circle in either graph fails with the files on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

#[test]
fn there_are_no_import_circles_between_files_or_folders() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let modules: BTreeMap<Module, String> = files
        .iter()
        .filter(|(rel, _)| rel != "main.rs")
        .map(|(rel, _)| (module_of(rel), rel.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        let me = module_of(rel);
        let targets = edges.entry(rel.clone()).or_default();
        for path in paths(&strip_comments(text)) {
            let Some(absolute) = absolute(&me, &path) else {
                continue;
            };
            let Some((target_module, target)) = resolve(&modules, &absolute) else {
                continue;
            };
            let own_part = target_module.len() > me.len() && target_module.starts_with(&me);
            if target != *rel && !own_part {
                targets.insert(target);
            }
        }
    }
    let file_circles = circles(&edges);
    assert!(
        file_circles.is_empty(),
        "files in an import circle: {file_circles:#?}"
    );

    let folder = |rel: &str| {
        module_of(rel)
            .first()
            .cloned()
            .unwrap_or_else(|| "lib".into())
    };
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in &edges {
        let entry = folders.entry(folder(from)).or_default();
        for to in targets {
            if folder(to) != folder(from) {
                entry.insert(folder(to));
            }
        }
    }
    let folder_circles = circles(&folders);
    assert!(
        folder_circles.is_empty(),
        "modules in an import circle: {folder_circles:#?}"
    );
}

/// The check itself can fail: a two-file circle is found.
#[test]
fn a_circle_is_found() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges
        .entry("a.rs".into())
        .or_default()
        .insert("b.rs".into());
    edges
        .entry("b.rs".into())
        .or_default()
        .insert("a.rs".into());
    edges
        .entry("c.rs".into())
        .or_default()
        .insert("a.rs".into());
    assert_eq!(
        circles(&edges),
        vec![vec!["a.rs".to_string(), "b.rs".to_string()]]
    );
    let text = "use super::{token::OAuthError, Client};\nlet x = crate::config::Settings::load();";
    let found = paths(text);
    assert!(found.contains(&vec!["super".into(), "token".into(), "OAuthError".into()]));
    assert!(found.contains(&vec![
        "crate".into(),
        "config".into(),
        "Settings".into(),
        "load".into()
    ]));
}

fn rust_files(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path: PathBuf = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

/// `providers/oidc.rs` → `[providers, oidc]`; `providers/mod.rs` → `[providers]`; `lib.rs` → `[]`.
fn module_of(rel: &str) -> Module {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::…`/`super::…` path: `use` trees expanded, code paths as written.
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("use ") {
        let boundary = i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        rest = &rest[i + 4..];
        if boundary {
            if let Some(end) = rest.find(';') {
                expand(&rest[..end], &mut Vec::new(), &mut out);
            }
        }
    }
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at_start = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let tail: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        if at_start && (tail.starts_with("crate::") || tail.starts_with("super::")) {
            let mut segments = Vec::new();
            let mut current = String::new();
            let mut j = i;
            while j < bytes.len() {
                let c = bytes[j];
                if c.is_alphanumeric() || c == '_' {
                    current.push(c);
                    j += 1;
                } else if c == ':' && bytes.get(j + 1) == Some(&':') && !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                    j += 2;
                } else {
                    break;
                }
            }
            if !current.is_empty() {
                segments.push(current);
            }
            out.push(segments);
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// `a::{b, c::{d as e}}` → `a::b`, `a::c::d`.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        let mut parts = Vec::new();
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&inner[start..k]);
                    start = k + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        let len = prefix.len();
        prefix.extend(head);
        for part in parts {
            if !part.trim().is_empty() {
                expand(part, prefix, out);
            }
        }
        prefix.truncate(len);
    } else {
        let tree = tree.split(" as ").next().unwrap_or(tree);
        let mut path = prefix.clone();
        path.extend(
            tree.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.push(path);
    }
}

fn absolute(me: &Module, path: &[String]) -> Option<Module> {
    match path.first().map(String::as_str) {
        Some("crate") => Some(path[1..].to_vec()),
        Some("super") => {
            let mut base = me.clone();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        _ => None,
    }
}

/// The file of the longest module prefix of `path`.
fn resolve(modules: &BTreeMap<Module, String>, path: &[String]) -> Option<(Module, String)> {
    (1..=path.len()).rev().find_map(|n| {
        modules
            .get(&path[..n])
            .map(|f| (path[..n].to_vec(), f.clone()))
    })
}

/// Strongly connected components with more than one node (Tarjan), each sorted.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.edges.get(v) {
            for w in targets {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: Vec<&str> = edges.keys().map(String::as_str).collect();
    for v in nodes {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out.sort();
    state.out
}
