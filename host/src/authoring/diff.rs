//! A readable difference between the actions a test case expected and the
//! ones the plugin took: one action per line, `-` for an expected action
//! that was not taken, `+` for one taken that was not expected, and under a
//! changed action, the fields that differ by their JSON pointer.

use serde_json::Value;
use similar::{Algorithm, DiffOp, capture_diff_slices};

/// At most this many differing fields are listed under a changed action.
const MAX_FIELDS: usize = 8;

/// Runs of more matching actions than this are shortened to a count.
const CONTEXT: usize = 2;

/// The difference between `expected` and `actual`, or `None` when they are
/// the same actions in the same order.
pub fn actions(expected: &[Value], actual: &[Value]) -> Option<String> {
    let old: Vec<String> = expected.iter().map(canonical_line).collect();
    let new: Vec<String> = actual.iter().map(canonical_line).collect();
    if old == new {
        return None;
    }
    let mut out = Vec::new();
    let ops = capture_diff_slices(Algorithm::Myers, &old, &new);
    let last = ops.len().saturating_sub(1);
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            DiffOp::Equal { old_index, len, .. } => {
                let lines = &old[old_index..old_index + len];
                // Keep a little context next to the changes around it.
                let head = if i == 0 { 0 } else { CONTEXT.min(len) };
                let tail = if i == last {
                    0
                } else {
                    CONTEXT.min(len - head)
                };
                lines[..head]
                    .iter()
                    .for_each(|l| out.push(format!("  {l}")));
                let skipped = len - head - tail;
                if skipped > 0 {
                    out.push(format!("  ... {skipped} matching action(s)"));
                }
                lines[len - tail..]
                    .iter()
                    .for_each(|l| out.push(format!("  {l}")));
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => old[old_index..old_index + old_len]
                .iter()
                .for_each(|l| out.push(format!("- {l}"))),
            DiffOp::Insert {
                new_index, new_len, ..
            } => new[new_index..new_index + new_len]
                .iter()
                .for_each(|l| out.push(format!("+ {l}"))),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let paired = old_len.min(new_len);
                for k in 0..paired {
                    out.push(format!("- {}", old[old_index + k]));
                    out.push(format!("+ {}", new[new_index + k]));
                    let mut fields = Vec::new();
                    differences(
                        "",
                        &expected[old_index + k],
                        &actual[new_index + k],
                        &mut fields,
                    );
                    let more = fields.len().saturating_sub(MAX_FIELDS);
                    fields.truncate(MAX_FIELDS);
                    out.extend(fields.into_iter().map(|f| format!("    {f}")));
                    if more > 0 {
                        out.push(format!("    ... and {more} more field(s)"));
                    }
                }
                old[old_index + paired..old_index + old_len]
                    .iter()
                    .for_each(|l| out.push(format!("- {l}")));
                new[new_index + paired..new_index + new_len]
                    .iter()
                    .for_each(|l| out.push(format!("+ {l}")));
            }
        }
    }
    Some(out.join("\n"))
}

/// The fields where `expected` and `actual` differ, by JSON pointer.
fn differences(at: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (e.get(key), a.get(key)) {
                    (Some(e), Some(a)) => differences(&path, e, a, out),
                    (Some(e), None) => out.push(format!("{path}: expected {e}, missing")),
                    (None, Some(a)) => out.push(format!("{path}: not expected, got {a}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                differences(&format!("{at}/{i}"), e, a, out);
            }
        }
        (e, a) if e != a => {
            let path = if at.is_empty() { "/" } else { at };
            out.push(format!("{path}: expected {e}, got {a}"));
        }
        _ => {}
    }
}

/// An action as one line of JSON: `event`, `type` and `target` first, then
/// every other key in order, so that equal actions print alike whatever
/// order their keys were written in.
pub fn canonical_line(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &["event", "type", "target"], &mut out);
    out
}

fn write_canonical(value: &Value, first: &[&str], out: &mut String) {
    match value {
        Value::Object(map) => {
            let rank = |k: &str| first.iter().position(|f| *f == k).unwrap_or(first.len());
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| (rank(a.0), a.0).cmp(&(rank(b.0), b.0)));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(value, &[], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, &[], out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(event: u64, team: &str) -> Value {
        json!({"event": event, "type": "mergePatch",
               "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "a"},
               "patch": {"metadata": {"labels": {"team": team}}}})
    }

    #[test]
    fn the_same_actions_make_no_difference_whatever_their_key_order() {
        let written: Value = serde_json::from_str(
            r#"{"type":"delete","event":1,"target":{"name":"a","kind":"Pod"}}"#,
        )
        .unwrap();
        let taken = json!({"event": 1, "target": {"kind": "Pod", "name": "a"}, "type": "delete"});
        assert_eq!(actions(&[written], &[taken]), None);
    }

    #[test]
    fn a_changed_action_shows_both_lines_and_the_fields_that_differ() {
        let diff = actions(&[patch(1, "unowned")], &[patch(1, "payments")]).unwrap();
        let lines: Vec<&str> = diff.lines().collect();
        assert_eq!(lines.len(), 3, "{diff}");
        assert!(lines[0].starts_with("- {") && lines[0].contains(r#""team":"unowned""#));
        assert!(lines[1].starts_with("+ {") && lines[1].contains(r#""team":"payments""#));
        assert_eq!(
            lines[2],
            r#"    /patch/metadata/labels/team: expected "unowned", got "payments""#
        );
    }

    #[test]
    fn missing_and_unexpected_actions_are_marked_with_context_around_them() {
        let expected: Vec<Value> = (1..=8).map(|i| patch(i, "t")).collect();
        let mut actual = expected.clone();
        actual.remove(4); // event 5 not taken
        actual.push(patch(9, "x")); // one more
        let diff = actions(&expected, &actual).unwrap();
        assert!(diff.contains("  ... 2 matching action(s)"), "{diff}");
        assert_eq!(diff.matches("\n- ").count(), 1, "{diff}");
        assert!(diff.contains(r#"- {"event":5,"#), "{diff}");
        assert!(
            diff.ends_with(&format!("+ {}", canonical_line(&patch(9, "x")))),
            "{diff}"
        );
    }

    #[test]
    fn a_line_starts_with_the_event_the_type_and_the_target() {
        let line = canonical_line(&json!({"patch": {"z": 1, "a": [{"y": 2, "b": 3}]},
                                           "type": "mergePatch", "target": {"name": "a"}, "event": 3}));
        assert_eq!(
            line,
            r#"{"event":3,"type":"mergePatch","target":{"name":"a"},"patch":{"a":[{"b":3,"y":2}],"z":1}}"#
        );
    }

    #[test]
    fn fields_missing_or_added_are_named() {
        let mut fields = Vec::new();
        differences(
            "",
            &json!({"a": 1, "b": {"c/d": [1, 2]}}),
            &json!({"b": {"c/d": [1, 3]}, "e": true}),
            &mut fields,
        );
        assert_eq!(
            fields,
            [
                "/a: expected 1, missing",
                "/b/c~1d/1: expected 2, got 3",
                "/e: not expected, got true"
            ]
        );
    }
}
