//! JSON kept as the text a plugin wrote: a patch is checked when it is
//! enqueued and sent to the API server as it is, never built into a tree.
//!
//! Building a `serde_json::Value` of every patch cost a dozen allocations
//! per enqueued action, the largest part of an enqueue on the host; the
//! patch is only ever read again as text (the request body) or, for a JSON
//! patch, by the executor once.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, value::RawValue};

/// One JSON value, as text that is known to be valid JSON.
#[derive(Clone)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// Check that `text` is one JSON value, without building it; the text
    /// is kept as it is (surrounding whitespace aside).
    ///
    /// # Errors
    /// serde_json's error, with where the text stops being JSON.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self)
    }

    /// The text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.first() == Some(b'{')
    }

    /// Whether the value is a JSON array.
    pub fn is_array(&self) -> bool {
        self.first() == Some(b'[')
    }

    fn first(&self) -> Option<u8> {
        self.get().trim_start().bytes().next()
    }

    /// The value, built.
    ///
    /// # Errors
    /// Never for text made by [`Self::parse`] or from a value; the
    /// signature is serde_json's.
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.get())
    }

    /// Deserialize the text into `T`.
    ///
    /// # Errors
    /// When the JSON does not have `T`'s shape.
    pub fn parse_into<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        // A Value always serializes to valid JSON.
        Self(RawValue::from_string(value.to_string()).unwrap_or_else(|_| null()))
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

/// Equal when they are the same JSON value: the same text, or texts that
/// differ only in spacing or the order of members (a patch written again
/// by a plugin, or by hand in a test's expected actions).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
            || matches!((self.value(), other.value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl PartialEq<Value> for JsonText {
    fn eq(&self, other: &Value) -> bool {
        self.value().is_ok_and(|v| v == *other)
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// From any format (an action is read back from a replay line inside an
/// internally tagged enum, where serde_json's raw values cannot be read
/// directly): through a value.
impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_valid_json_is_kept_and_its_text_is_unchanged() {
        let text = JsonText::parse(r#"{"metadata":{"labels":{"b":"2","a":"1"}}}"#.into()).unwrap();
        assert_eq!(text.get(), r#"{"metadata":{"labels":{"b":"2","a":"1"}}}"#);
        assert!(text.is_object() && !text.is_array());
        assert!(JsonText::parse(" [1, 2] ".into()).unwrap().is_array());
        for broken in ["{not json", "", "{} {}", r#"{"a":}"#, "[1,]"] {
            assert!(JsonText::parse(broken.into()).is_err(), "{broken:?}");
        }
    }

    #[test]
    fn equal_means_the_same_value_whatever_the_spacing_or_order() {
        let written = JsonText::parse(r#"{"b": 2, "a": {"c": [1, 2]}}"#.into()).unwrap();
        assert_eq!(written, JsonText::from(json!({"a": {"c": [1, 2]}, "b": 2})));
        assert_eq!(written, json!({"a": {"c": [1, 2]}, "b": 2}));
        assert_ne!(written, JsonText::from(json!({"a": {"c": [2, 1]}, "b": 2})));
    }

    #[test]
    fn it_is_written_as_the_json_it_holds_and_read_from_any_format() {
        let text = JsonText::parse(r#"{"a": [1, "x"]}"#.into()).unwrap();
        let line = serde_json::to_string(&json!({"patch": text.clone()})).unwrap();
        assert_eq!(line, r#"{"patch":{"a":[1,"x"]}}"#);
        assert_eq!(serde_json::to_value(&text).unwrap(), json!({"a": [1, "x"]}));
        let yaml: JsonText = serde_norway::from_str("a: [1, x]").unwrap();
        assert_eq!(yaml, text);
        let back: JsonText = serde_json::from_str(&line[9..line.len() - 1]).unwrap();
        assert_eq!(back.get(), r#"{"a":[1,"x"]}"#);
    }
}
