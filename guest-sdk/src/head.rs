//! The fields every object has, read from its JSON text without copying.
//!
//! A handler that looks at a name and a few labels is the common case, and
//! its cost is mostly this parse. Each string here is where it sits in the
//! object's text (start and length), so the parse makes no allocation for
//! names, namespaces, uids, versions or label and annotation strings; only a
//! string with escapes (`\"`, `\u00e9`) is decoded into a copy of its own.

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
        // Read in place: a head is large enough that moving it out of an
        // `Option` showed in the profile.
        let mut head = Self::default();
        if read_head(raw, &mut head).is_none() {
            head = Self::default();
        }
        head
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

/// A cursor over an object's text: the head's reader.
///
/// Written here rather than driven through serde_json, which this crate
/// uses for everything else: the head wants spans of the text and must stop
/// as soon as it has `apiVersion`, `kind` and `metadata`, and serde_json's
/// per-value set-up (a stream deserializer for each member, a visitor per
/// string) was most of the cost of a call that reads names and labels.
/// Strings are read exactly (escapes decoded by serde_json); a value that
/// is skipped is read only as far as its strings and brackets go, so a
/// malformed member the head does not need is not noticed: the host sends
/// the API server's JSON, which is well formed.
struct Scan<'a> {
    raw: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn new(raw: &'a str) -> Self {
        Self {
            raw,
            bytes: raw.as_bytes(),
            at: 0,
        }
    }

    #[inline(always)]
    fn whitespace(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// Move past `byte` (after whitespace) if it is next.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> bool {
        // The API server writes no whitespace: look before skipping any.
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            return true;
        }
        self.whitespace();
        let next = self.bytes.get(self.at) == Some(&byte);
        if next {
            self.at += 1;
        }
        next
    }

    /// Move past `null` (after whitespace) if it is next.
    fn null(&mut self) -> bool {
        self.whitespace();
        let next = self.bytes.get(self.at..self.at + 4) == Some(b"null");
        if next {
            self.at += 4;
        }
        next
    }

    /// Whether only whitespace is left.
    fn end(&mut self) -> bool {
        self.whitespace();
        self.at == self.bytes.len()
    }

    /// The string at the cursor, moving past it: its span, unless it had
    /// escapes (then its decoded copy). None if it is not a string.
    #[inline(always)]
    fn string(&mut self) -> Option<Text> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let escaped = self.rest_of_string()?;
        let end = self.at - 1;
        if escaped {
            let decoded: String = serde_json::from_str(self.raw.get(start - 1..=end)?).ok()?;
            return Some(Text::Decoded(decoded.into_boxed_str()));
        }
        Some(Text::At {
            start: u32::try_from(start).ok()?,
            len: u32::try_from(end - start).ok()?,
        })
    }

    /// Move past the closing quote of a string whose opening quote was
    /// read; whether it had escapes. None at the end of the text or at a
    /// control character (which JSON does not allow in a string).
    #[inline(always)]
    fn rest_of_string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            self.at += plain_run(self.bytes.get(self.at..)?);
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                _ => return None,
            }
        }
    }

    /// Move past one value: a string, an object or array (by its strings
    /// and brackets), or a number or literal (up to the next delimiter).
    fn skip(&mut self) -> Option<()> {
        self.whitespace();
        match *self.bytes.get(self.at)? {
            b'"' => {
                self.at += 1;
                self.rest_of_string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.bytes.get(self.at)? {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        b'"' => {
                            self.at += 1;
                            self.rest_of_string()?;
                            continue;
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while self.bytes.get(self.at).is_some_and(|b| {
                    !matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                }) {
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
            }
        }
        Some(())
    }

    /// The members of the object at the cursor, each handed to `member`
    /// with the cursor at its value (which `member` must read); the read
    /// ends early, at that value, once `member` says so.
    fn members(&mut self, mut member: impl FnMut(&mut Self, Text) -> Option<bool>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            if member(self, key)? {
                return Some(());
            }
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    /// An object of strings, or `null`, in the order written.
    fn pairs(&mut self) -> Option<Vec<(Text, Text)>> {
        let mut pairs = Vec::new();
        if self.null() {
            return Some(pairs);
        }
        self.members(|scan, key| {
            pairs.push((key, scan.string()?));
            Some(false)
        })?;
        Some(pairs)
    }
}

impl Scan<'_> {
    /// Move to the value of the member `key` of the object at the cursor
    /// (the first one: the API server writes no key twice).
    fn member(&mut self, key: &str) -> Option<()> {
        if !self.eat(b'{') || self.eat(b'}') {
            return None;
        }
        loop {
            let name = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            if name.get(self.raw) == key {
                return Some(());
            }
            self.skip()?;
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Move to element `n` of the array at the cursor.
    fn element(&mut self, n: usize) -> Option<()> {
        if !self.eat(b'[') || self.eat(b']') {
            return None;
        }
        for _ in 0..n {
            self.skip()?;
            if !self.eat(b',') {
                return None;
            }
        }
        Some(())
    }
}

/// The text of the value that `steps` lead to in `raw`, without reading
/// anything beside the way: each step is a member's key in an object, or
/// an element's position (as `index` reads it) in an array. None when a
/// step is missing or leads into a string, number or literal.
pub(crate) fn locate<S: AsRef<str>>(
    raw: &str,
    steps: impl IntoIterator<Item = S>,
    index: impl Fn(&str) -> Option<usize>,
) -> Option<&str> {
    let mut scan = Scan::new(raw);
    for step in steps {
        let step = step.as_ref();
        scan.whitespace();
        match scan.bytes.get(scan.at)? {
            b'{' => scan.member(step)?,
            b'[' => scan.element(index(step)?)?,
            _ => return None,
        }
    }
    scan.whitespace();
    let start = scan.at;
    scan.skip()?;
    raw.get(start..scan.at)
}

/// How many bytes at the start of `bytes` need nothing from a string's
/// reader: neither a quote, a backslash nor a control character. Eight
/// bytes at a time (a wasm32 guest has 64-bit integers, not SIMD): most of
/// an object's text is in strings, and this is the loop that reads them.
#[inline(always)]
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether any byte of `word` is below `n` (n ≤ 0x80), per byte lane.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let stop = below(word, 0x20)
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if stop != 0 {
            // The lowest flagged lane is exact: borrows only run upwards.
            return at + (stop.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(bytes.len() - at)
}

/// Read the top-level members into `head` until `apiVersion`, `kind` and
/// `metadata` are all read; none when the text is not a JSON object with a
/// well-formed head (as far as it was read).
fn read_head(raw: &str, head: &mut Head) -> Option<()> {
    let mut scan = Scan::new(raw);
    let mut seen = 0u8;
    let meta = |scan: &mut Scan<'_>, head: &mut Head| {
        scan.members(|scan, key| {
            match key.get(raw) {
                "name" => head.name = scan.string()?,
                "namespace" => {
                    head.namespace = if scan.null() {
                        None
                    } else {
                        Some(scan.string()?)
                    }
                }
                "uid" => head.uid = scan.string()?,
                "resourceVersion" => head.resource_version = scan.string()?,
                "labels" => head.labels = scan.pairs()?,
                "annotations" => head.annotations = scan.pairs()?,
                _ => scan.skip()?,
            }
            Some(false)
        })
    };
    scan.members(|scan, key| {
        match key.get(raw) {
            "apiVersion" => {
                head.api_version = scan.string()?;
                seen |= 1;
            }
            "kind" => {
                head.kind = scan.string()?;
                seen |= 2;
            }
            "metadata" => {
                meta(scan, head)?;
                seen |= 4;
            }
            _ => scan.skip()?,
        }
        Some(seen == 7)
    })?;
    (seen == 7 || scan.end()).then_some(())
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
    fn a_plain_run_ends_at_the_first_quote_backslash_or_control_byte() {
        // Neighbours of the bytes that stop a run, and UTF-8, never stop it.
        let plain = b" !#[]~\x7f\xc3\xa9\xff";
        for len in 0..20 {
            let text: Vec<u8> = plain.iter().copied().cycle().take(len).collect();
            assert_eq!(plain_run(&text), len);
            for stop in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                for at in 0..len {
                    let mut text = text.clone();
                    text[at] = stop;
                    // A later stop byte never hides an earlier one.
                    if at + 1 < len {
                        text[len - 1] = b'"';
                    }
                    assert_eq!(plain_run(&text), at, "{stop:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn skipped_members_of_every_shape_are_stepped_over() {
        let raw = r#"{"s":"a\"}{[","n":-1.5e3,"t":true,"z":null,"o":{"a":[1,{"b":"]}"}],"c":{}},
            "e":[],"apiVersion":"v1","kind":"K","metadata":{"x":{"y":["}"]},"name":"n",
            "namespace":null,"labels":null,"annotations":{"k":"v"}}}"#;
        let head = Head::parse(raw);
        assert_eq!((head.kind.get(raw), head.name.get(raw)), ("K", "n"));
        assert!(head.namespace.is_none() && head.labels.is_empty());
        assert_eq!(Head::find(&head.annotations, raw, "k"), Some("v"));
        // A string that does not end, or a control character in one.
        for raw in [
            r#"{"kind":"K"#,
            "{\"kind\":\"K\u{1}\"}",
            r#"{"metadata":{"name":"n\"}}"#,
        ] {
            assert_eq!(Head::parse(raw).kind.get(raw), "");
        }
    }

    #[test]
    fn locate_finds_the_text_of_a_member_or_element_and_nothing_else() {
        let raw = r#"{"kind":"K","metadata":{"name":"a,b"},"spec":{"n":[10, {"x":"y"}, "z"],
            "s":"q\"uote","e":{},"a":[],"0":"zero"}}"#;
        let at = |path: &str| locate(raw, path.split('.'), |s| s.parse().ok());
        assert_eq!(at("spec.n.0"), Some("10"));
        assert_eq!(at("spec.n.1"), Some(r#"{"x":"y"}"#));
        assert_eq!(at("spec.n.1.x"), Some(r#""y""#));
        assert_eq!(at("spec.n.2"), Some(r#""z""#));
        assert_eq!(at("spec.s"), Some(r#""q\"uote""#));
        assert_eq!(at("spec.0"), Some(r#""zero""#));
        assert_eq!(at("metadata.name"), Some(r#""a,b""#));
        for missing in [
            "spec.n.3", "spec.e.x", "spec.a.0", "spec.s.x", "kind.x", "status",
        ] {
            assert_eq!(at(missing), None, "{missing}");
        }
        assert_eq!(locate(raw, [""; 0], |_| None), Some(raw));
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
