//! JSON pointers (RFC 6901) into generated documents.

use serde_json::Value;

/// The pointer of every member and item below the root, parents before children.
pub fn all(document: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(document, "", &mut out);
    out
}

fn collect(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Box<dyn Iterator<Item = (String, &Value)>> = match value {
        Value::Object(map) => Box::new(map.iter().map(|(key, child)| (escape(key), child))),
        Value::Array(items) => Box::new(
            items
                .iter()
                .enumerate()
                .map(|(index, child)| (index.to_string(), child)),
        ),
        _ => return,
    };
    for (token, child) in children {
        let child_at = format!("{at}/{token}");
        out.push(child_at.clone());
        collect(child, &child_at, out);
    }
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `/a/b~1c` → (`/a`, `b/c`): the parent's pointer and the last token, unescaped.
pub fn split(pointer: &str) -> (String, String) {
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    (
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_place_escaped_and_split_back() {
        let pointers = all(&json!({"a/b": [1, {"c~": 2}]}));
        assert_eq!(pointers, ["/a~1b", "/a~1b/0", "/a~1b/1", "/a~1b/1/c~0"]);
        assert_eq!(split("/a~1b/1/c~0"), ("/a~1b/1".into(), "c~".into()));
        assert_eq!(split("/a~1b"), ("".into(), "a/b".into()));
        // RFC 6901 §4: `~1` first, then `~0`, so `~01` is `~1`, not `/`.
        assert_eq!(all(&json!({"~1": 0})), ["/~01"]);
        assert_eq!(split("/~01"), ("".into(), "~1".into()));
    }
}
