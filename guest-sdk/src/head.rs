//! The fields every object has, read from its JSON text without copying.
//!
//! A handler that looks at a name and a few labels is the common case, and
//! its cost is mostly this parse. Each string here is where it sits in the
//! object's text (start and length), so the parse makes no allocation for
//! names, namespaces, uids, versions or label and annotation strings; only a
//! string with escapes (`\"`, `\u00e9`) is decoded into a copy of its own.

use std::borrow::Cow;

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

/// One string of the head: a span of the object's text, or its decoded copy.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    /// `raw[start..start + len]`.
    At { start: u32, len: u32 },
    /// The string had escapes: the decoded text.
    Decoded(Box<str>),
}

impl Text {
    const EMPTY: Self = Self::At { start: 0, len: 0 };

    /// The text of `s`, a string parsed from `raw`.
    fn of(raw: &str, s: Cow<'_, str>) -> Self {
        match s {
            Cow::Borrowed(b) => {
                // A borrowed string points into `raw`: record where.
                let start = (b.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
                let inside = start
                    .checked_add(b.len())
                    .is_some_and(|end| end <= raw.len());
                match (u32::try_from(start), u32::try_from(b.len())) {
                    (Ok(start), Ok(len)) if inside => Self::At { start, len },
                    _ => Self::Decoded(b.into()),
                }
            }
            Cow::Owned(o) => Self::Decoded(o.into_boxed_str()),
        }
    }

    /// The string, given the text it was parsed from.
    pub(crate) fn get<'a>(&'a self, raw: &'a str) -> &'a str {
        match self {
            Self::At { start, len } => raw
                .get(*start as usize..(*start as usize).saturating_add(*len as usize))
                .unwrap_or_default(),
            Self::Decoded(s) => s,
        }
    }
}

/// The head of one object. Every field is empty when the text is not an
/// object or its metadata is malformed.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) api_version: Text,
    pub(crate) kind: Text,
    pub(crate) name: Text,
    pub(crate) namespace: Option<Text>,
    pub(crate) uid: Text,
    pub(crate) resource_version: Text,
    pub(crate) labels: Vec<(Text, Text)>,
    pub(crate) annotations: Vec<(Text, Text)>,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            api_version: Text::EMPTY,
            kind: Text::EMPTY,
            name: Text::EMPTY,
            namespace: None,
            uid: Text::EMPTY,
            resource_version: Text::EMPTY,
            labels: Vec::new(),
            annotations: Vec::new(),
        }
    }
}

impl Head {
    /// Parse the head of `raw`, skipping everything else without allocating.
    ///
    /// The parse stops once `apiVersion`, `kind` and `metadata` have been
    /// read: nothing after them can change the head. The host sends them
    /// first (as the API server does), so the spec, status or data of an
    /// object are not even scanned.
    pub(crate) fn parse(raw: &str) -> Self {
        let Some(wire) = read_head(raw) else {
            return Self::default();
        };
        let text = |s: Cow<'_, str>| Text::of(raw, s);
        let pairs = |p: Pairs<'_>| p.0.into_iter().map(|(k, v)| (text(k), text(v))).collect();
        let meta = wire.metadata;
        Self {
            api_version: text(wire.api_version),
            kind: text(wire.kind),
            name: text(meta.name),
            namespace: meta.namespace.map(text),
            uid: text(meta.uid),
            resource_version: text(meta.resource_version),
            labels: pairs(meta.labels),
            annotations: pairs(meta.annotations),
        }
    }

    /// The value of `key` among `pairs` (the last one, as a JSON object with
    /// a repeated key reads).
    pub(crate) fn find<'a>(pairs: &'a [(Text, Text)], raw: &'a str, key: &str) -> Option<&'a str> {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k.get(raw) == key)
            .map(|(_, v)| v.get(raw))
    }
}

/// The three fields of the head.
#[derive(Default)]
struct WireHead<'a> {
    api_version: Cow<'a, str>,
    kind: Cow<'a, str>,
    metadata: WireMeta<'a>,
}

/// Read the top-level object's members one by one until `apiVersion`,
/// `kind` and `metadata` are all read; none when the text is not a JSON
/// object (as far as it was read).
///
/// serde_json reads each key and value (`value`); only the punctuation
/// between them is handled here, so that the parse can stop before the end
/// without an error (an error costs an allocation and a scan of the text
/// for its line number).
fn read_head(raw: &str) -> Option<WireHead<'_>> {
    let mut head = WireHead::default();
    let mut at = punctuation(raw, 0, b'{')?;
    if punctuation(raw, at, b'}').is_some_and(|end| end == raw.len()) {
        return Some(head);
    }
    let mut seen = 0u8;
    loop {
        let Borrowed(key) = value(raw, &mut at)?;
        at = punctuation(raw, at, b':')?;
        match &*key {
            "apiVersion" => {
                head.api_version = value::<Borrowed<'_>>(raw, &mut at)?.0;
                seen |= 1;
            }
            "kind" => {
                head.kind = value::<Borrowed<'_>>(raw, &mut at)?.0;
                seen |= 2;
            }
            "metadata" => {
                head.metadata = value(raw, &mut at)?;
                seen |= 4;
            }
            _ => {
                value::<IgnoredAny>(raw, &mut at)?;
            }
        }
        if seen == 7 {
            return Some(head);
        }
        if let Some(next) = punctuation(raw, at, b',') {
            at = next;
        } else {
            let end = punctuation(raw, at, b'}')?;
            return (end == raw.len()).then_some(head);
        }
    }
}

/// One JSON value at `raw[*at..]`, moving `at` past it.
fn value<'a, T: Deserialize<'a>>(raw: &'a str, at: &mut usize) -> Option<T> {
    let mut values = serde_json::Deserializer::from_str(raw.get(*at..)?).into_iter::<T>();
    let value = values.next()?.ok()?;
    *at += values.byte_offset();
    Some(value)
}

/// The position after `byte` (and the whitespace around it) at `raw[at..]`,
/// if that is where it is.
fn punctuation(raw: &str, at: usize, byte: u8) -> Option<usize> {
    let bytes = raw.as_bytes();
    let skip = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    let at = skip(at);
    (bytes.get(at) == Some(&byte)).then(|| skip(at + 1))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireMeta<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow)]
    resource_version: Cow<'a, str>,
    #[serde(borrow)]
    labels: Pairs<'a>,
    #[serde(borrow)]
    annotations: Pairs<'a>,
}

/// A JSON object of strings (or `null`), in the order written.
#[derive(Default)]
struct Pairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// One string, borrowed from the text when it has no escapes.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Pairs(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Pairs(Vec::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some((Borrowed(k), Borrowed(v))) =
                    map.next_entry::<Borrowed<'de>, Borrowed<'de>>()?
                {
                    pairs.push((k, v));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_option(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_spans_of_the_text_unless_they_had_escapes() {
        let raw = r#"{"apiVersion":"v1","kind":"ConfigMap","data":{"x":[1,{"y":"z"}]},
            "metadata":{"name":"web","namespace":"shop","uid":"u-1","resourceVersion":"7",
            "labels":{"app":"web","quote":"a\"b","app":"last"},"annotations":null}}"#;
        let head = Head::parse(raw);
        assert_eq!(head.api_version.get(raw), "v1");
        assert_eq!(head.kind.get(raw), "ConfigMap");
        assert_eq!(head.name.get(raw), "web");
        assert!(matches!(head.name, Text::At { .. }));
        assert_eq!(head.namespace.as_ref().map(|n| n.get(raw)), Some("shop"));
        assert_eq!(head.uid.get(raw), "u-1");
        assert_eq!(head.resource_version.get(raw), "7");
        assert_eq!(Head::find(&head.labels, raw, "quote"), Some("a\"b"));
        assert!(matches!(head.labels[1].1, Text::Decoded(_)));
        assert_eq!(Head::find(&head.labels, raw, "app"), Some("last"));
        assert_eq!(Head::find(&head.labels, raw, "missing"), None);
        assert!(head.annotations.is_empty());
    }

    #[test]
    fn the_parse_stops_once_the_head_is_read_and_reads_any_order() {
        // Whatever follows the three fields is not read: not even checked.
        let raw = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"x": oops"#;
        let head = Head::parse(raw);
        assert_eq!((head.kind.get(raw), head.name.get(raw)), ("Pod", "p"));
        // Sorted keys: `data` comes first and is skipped.
        let raw =
            r#"{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"name":"c"}}"#;
        let head = Head::parse(raw);
        assert_eq!((head.kind.get(raw), head.name.get(raw)), ("ConfigMap", "c"));
        // Whitespace anywhere, numbers and nesting before the head.
        let raw = "{ \"n\" : 1 ,\n \"x\": [{\"kind\": 2}],\t\"metadata\" : {\"name\":\"m\"}, \"kind\":\"K\" }\n";
        let head = Head::parse(raw);
        assert_eq!((head.kind.get(raw), head.name.get(raw)), ("K", "m"));
        assert_eq!(Head::parse(" {} ").name.get(" {} "), "");
        // A head without a kind is read to the end, and must be valid.
        let raw = r#"{"apiVersion":"v1","metadata":{"name":"c"}}"#;
        assert_eq!(Head::parse(raw).name.get(raw), "c");
        assert_eq!(
            Head::parse(r#"{"metadata":{"name":"c"}} x"#).name.get(""),
            ""
        );
    }

    #[test]
    fn text_that_is_not_an_object_head_reads_as_empty() {
        for raw in ["", "null", "[1]", r#"{"metadata":{"labels":{"a":1}}}"#] {
            let head = Head::parse(raw);
            assert_eq!(head.name.get(raw), "");
            assert!(head.namespace.is_none() && head.labels.is_empty());
        }
    }
}
