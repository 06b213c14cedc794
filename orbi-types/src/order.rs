//! Remembering the key order of a parsed document.
//!
//! Typed structs serialize their fields in declaration order (the schema's property order).
//! A document received from a peer may order its keys differently; [`KeyOrder`] records the
//! order seen at parse time so that [`crate::Artifact::to_value`] reproduces it exactly.
//! Key order is not part of a JSON value's meaning, so two `KeyOrder`s always compare equal.

use serde_json::{Map, Value};

/// The key order of every object in a parsed JSON document, recursively.
///
/// `KeyOrder::default()` records nothing, which means "declaration order".
#[derive(Clone, Debug, Default)]
pub struct KeyOrder(Option<Box<Shape>>);

#[derive(Clone, Debug)]
enum Shape {
    Object(Vec<(String, Shape)>),
    Array(Vec<Shape>),
    Leaf,
}

impl KeyOrder {
    /// Records the key order of `value` and of everything nested in it.
    pub fn capture(value: &Value) -> Self {
        KeyOrder(Some(Box::new(Shape::of(value))))
    }

    /// Whether anything was recorded.
    pub fn is_recorded(&self) -> bool {
        self.0.is_some()
    }

    /// Reorders the objects in `value` to the recorded order. Keys that were not recorded
    /// (fields added after parsing) keep their relative order and follow the recorded ones.
    pub fn apply(&self, value: &mut Value) {
        if let Some(shape) = &self.0 {
            shape.apply(value);
        }
    }
}

impl PartialEq for KeyOrder {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for KeyOrder {}

impl Shape {
    fn of(value: &Value) -> Shape {
        match value {
            Value::Object(map) => Shape::Object(
                map.iter()
                    .map(|(key, child)| (key.clone(), Shape::of(child)))
                    .collect(),
            ),
            Value::Array(items) => Shape::Array(items.iter().map(Shape::of).collect()),
            _ => Shape::Leaf,
        }
    }

    fn apply(&self, value: &mut Value) {
        match (self, value) {
            (Shape::Object(keys), Value::Object(map)) => {
                let mut rest = std::mem::take(map);
                let mut ordered = Map::with_capacity(rest.len());
                for (key, child_shape) in keys {
                    if let Some(mut child) = rest.shift_remove(key) {
                        child_shape.apply(&mut child);
                        ordered.insert(key.clone(), child);
                    }
                }
                ordered.extend(rest);
                *map = ordered;
            }
            (Shape::Array(shapes), Value::Array(items)) => {
                for (shape, item) in shapes.iter().zip(items.iter_mut()) {
                    shape.apply(item);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_restores_recorded_order_and_appends_new_keys() {
        let original: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"q":1,"p":2}],"x":2}}"#).unwrap();
        let order = KeyOrder::capture(&original);
        let mut reshuffled = json!({"a": {"x": 2, "y": [{"p": 2, "q": 1}]}, "c": 3, "b": 1});
        order.apply(&mut reshuffled);
        assert_eq!(
            serde_json::to_string(&reshuffled).unwrap(),
            r#"{"b":1,"a":{"y":[{"q":1,"p":2}],"x":2},"c":3}"#
        );
    }

    #[test]
    fn empty_order_changes_nothing() {
        let mut value = json!({"z": 1, "a": 2});
        KeyOrder::default().apply(&mut value);
        assert_eq!(serde_json::to_string(&value).unwrap(), r#"{"z":1,"a":2}"#);
    }
}
