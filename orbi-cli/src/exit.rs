//! Exit codes shared by every command.

use std::{borrow::Cow, fmt::Write, process::ExitCode};

/// How a command that ran to completion judged its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything valid, admitted, ingested: exit 0.
    Success,
    /// The input was judged and refused (invalid, rejected, declined): exit 1.
    Refused,
}

/// A usage or I/O error: exit 2, message on stderr.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    /// A usage or I/O error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        CliError(message.into())
    }
}

/// Maps a command result to the process exit code.
pub fn finish(result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(1),
        Err(error) => {
            say(&error.to_string());
            ExitCode::from(2)
        }
    }
}

/// Tells the operator `message` on stderr, on one line and terminal-safe: it may quote peers
/// (a close reason) and files, and must not start a line of its own beside the logs.
pub fn say(message: &str) {
    use std::io::Write as _;
    // Not `eprintln!`, which panics when stderr is a closed pipe.
    let _ = writeln!(std::io::stderr().lock(), "orbi: {}", one_line(message));
}

/// [`terminal_safe`], with line feeds written out too: the text stays on the line it starts.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || acts_on_terminal(c))
}

/// `text` with every character a terminal would act on written out as `\u{..}`: control
/// characters (C0 but newline and tab, DEL, C1) and the bidirectional overrides. Error messages
/// quote peers (a connection's close reason, a refusal message) and files; on stderr they
/// must not move the cursor, retitle the window or reorder what the operator reads.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    escape(text, acts_on_terminal)
}

/// `text` with every character `unsafe_char` picks written out as `\u{..}`.
fn escape(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.contains(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(safe, "{}", c.escape_unicode());
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

/// Whether a terminal (or a reader splitting lines) would act on `c` rather than show it: a
/// control character (but newline and tab; carriage return, vertical tab, form feed and NEL
/// included), a bidirectional override, or the Unicode line and paragraph separators.
pub fn acts_on_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::{one_line, terminal_safe};

    #[test]
    fn one_line_writes_out_every_line_break() {
        let reason = "bye\n2026-11-22T06:00:00Z ERROR forged\r\u{b}\u{c}\u{85}\u{2028}\u{2029}end";
        assert_eq!(
            one_line(reason),
            "bye\\u{a}2026-11-22T06:00:00Z ERROR forged\\u{d}\\u{b}\\u{c}\\u{85}\\u{2028}\\u{2029}end"
        );
        assert!(matches!(
            one_line("plain\ttext"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn what_a_terminal_would_act_on_is_written_out() {
        let hostile =
            "closed by peer: \u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\u{202e}txt.exe\u{61c}";
        assert_eq!(
            terminal_safe(hostile),
            "closed by peer: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{7f}\\u{202e}txt.exe\\u{61c}"
        );
    }

    /// Every bidirectional control and line separator the function names is written out, each
    /// end of each range included; the characters just outside them are shown as they are.
    #[test]
    fn every_bidi_control_and_separator_is_written_out() {
        let acted_on = [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202b}',
            '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        for c in acted_on {
            let text = format!("a{c}b");
            assert_eq!(
                terminal_safe(&text),
                format!("a{}b", c.escape_unicode()),
                "U+{:04X}",
                u32::from(c)
            );
        }
        let shown = "\u{61b}\u{200d}\u{2027}\u{202f}\u{2065}\u{206a}";
        assert!(matches!(terminal_safe(shown), std::borrow::Cow::Borrowed(text) if text == shown));
    }

    #[test]
    fn plain_text_lines_and_letters_pass_unchanged() {
        let plain = "cannot read «données.json»:\n\tno such file (état 2) — 東京";
        assert!(matches!(terminal_safe(plain), std::borrow::Cow::Borrowed(text) if text == plain));
    }
}
