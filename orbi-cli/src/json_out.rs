//! JSON on stdout that cannot drive a terminal. serde_json escapes the C0 control characters
//! but writes DEL, the C1 controls and the bidi overrides raw; a peer's refusal message or
//! advertisement printed by `orbi` could then move the cursor or reorder what the operator
//! reads. [`TerminalSafe`] writes those as `\uXXXX` too: the JSON value is the same.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter, Serializer};

use crate::exit::acts_on_terminal;

/// A formatter that escapes what a terminal would act on, wrapping another (for its layout).
struct TerminalSafe<F>(F);

impl<F: Formatter> Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if acts_on_terminal(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                // Every such character is in the basic multilingual plane: one \u escape.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    // The layout is the wrapped formatter's.
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

/// Writes `value` as JSON, indented when `pretty`, one line otherwise.
pub fn write<W: io::Write, T: Serialize + ?Sized>(
    writer: W,
    value: &T,
    pretty: bool,
) -> serde_json::Result<()> {
    if pretty {
        let formatter = TerminalSafe(PrettyFormatter::new());
        value.serialize(&mut Serializer::with_formatter(writer, formatter))
    } else {
        let formatter = TerminalSafe(serde_json::ser::CompactFormatter);
        value.serialize(&mut Serializer::with_formatter(writer, formatter))
    }
}

/// `value` as indented JSON.
pub fn to_string_pretty<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    // Writing to a Vec fails only if `value` cannot serialize, which a `Value` always can.
    let _ = write(&mut out, value, true);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn what_a_terminal_acts_on_is_escaped_and_the_value_is_unchanged() {
        let value = json!({
            "message": "ok\u{7f} \u{9b}2J \u{202e}txt.exe \u{1b}[31m «données» 東京",
            "list": ["\u{2066}a\u{2069}", 1, null],
        });
        for pretty in [true, false] {
            let mut out = Vec::new();
            write(&mut out, &value, pretty).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                !text.contains(['\u{7f}', '\u{9b}', '\u{202e}', '\u{1b}', '\u{2066}']),
                "{text:?}"
            );
            assert!(text.contains(r"ok\u007f \u009b2J \u202etxt.exe \u001b[31m «données» 東京"));
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
            assert_eq!(text.contains('\n'), pretty);
        }
    }

    #[test]
    fn the_layout_is_serde_json_own() {
        let value = json!({"a": [1, {"b": "c"}], "d": {}});
        assert_eq!(
            to_string_pretty(&value),
            serde_json::to_string_pretty(&value).unwrap()
        );
        let mut compact = Vec::new();
        write(&mut compact, &value, false).unwrap();
        assert_eq!(compact, serde_json::to_vec(&value).unwrap());
    }
}
