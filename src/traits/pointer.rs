//! JSON Pointers (RFC 6901) into a claims object, resolved without cloning.

use serde_json::{Map, Value};

/// Resolves a JSON Pointer against a claims object without cloning it. The empty pointer (the
/// whole object) and malformed pointers resolve to nothing.
pub(super) fn lookup<'a>(map: &'a Map<String, Value>, ptr: &str) -> Option<&'a Value> {
    let rest = ptr.strip_prefix('/')?;
    let (head, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let key = head.replace("~1", "/").replace("~0", "~");
    let v = map.get(&key)?;
    if tail.is_empty() {
        Some(v)
    } else {
        v.pointer(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_follows_rfc6901_escapes() {
        let claims = json!({"a/b": {"c~d": "x"}, "list": ["p", "q"]});
        let map = claims.as_object().unwrap();
        assert_eq!(lookup(map, "/a~1b/c~0d"), Some(&json!("x")));
        assert_eq!(lookup(map, "/list/1"), Some(&json!("q")));
        assert_eq!(lookup(map, ""), None);
        assert_eq!(lookup(map, "/missing"), None);
    }
}
