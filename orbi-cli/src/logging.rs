//! Logs on stderr, one line per event whatever the event carries.
//!
//! Log fields can hold text a peer chose: a QUIC close reason, an error that names the
//! offending input. The fmt subscriber writes fields formatted with `%` as they are, so a peer
//! could end our line and forge the next one ("… ERROR …"), or move the cursor and rewrite
//! what the operator reads. [`OneLinePerEvent`] writes every character
//! [`crate::exit::acts_on_terminal`] picks, and every line feed but the one that ends the
//! event, as `\u{..}`. Colour codes are therefore off: the writer could not tell the
//! formatter's escape sequences from a peer's.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use tracing_subscriber::fmt::MakeWriter;

/// Logs to stderr, filtered by `RUST_LOG`, else at `default` (`warn`, `info`, …).
pub(crate) fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(OneLinePerEvent(io::stderr))
        // No colour codes: every escape sequence in an event is written out (module doc).
        .with_ansi(false)
        // A closed stderr must not stop the node: by default the subscriber reports its own
        // write failures with `eprintln!`, which panics on a closed pipe.
        .log_internal_errors(false)
        .try_init();
}

/// A [`MakeWriter`] whose writers keep each event on one line. The fmt subscriber formats a
/// whole event and hands it to one writer in one `write_all`, so every break but a final one
/// is inside the event.
#[derive(Clone, Copy)]
pub(crate) struct OneLinePerEvent<M>(pub(crate) M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLinePerEvent<M> {
    type Writer = OneLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(self.0.make_writer())
    }
}

/// Writes what it is given with inner line breaks escaped (see [`OneLinePerEvent`]).
pub(crate) struct OneLine<W>(W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        let text = String::from_utf8_lossy(body);
        let line = crate::exit::one_line(&text);
        if matches!((&text, &line), (Cow::Borrowed(_), Cow::Borrowed(_))) {
            self.0.write_all(buf)?;
        } else {
            let mut bytes = Vec::with_capacity(line.len() + end.len());
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(end);
            self.0.write_all(&bytes)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer, as the subscriber's sink.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(event: impl FnOnce()) -> String {
        let sink = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(OneLinePerEvent(sink.clone()))
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let bytes = sink.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn a_peer_chosen_line_break_cannot_start_a_log_line() {
        let reason = "bye\n ERROR orbi: forged line\r\nmore";
        let text = logged(|| {
            tracing::warn!(error = %reason, "connection ended");
            tracing::warn!("next event");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(
            lines[0].ends_with(r"bye\u{a} ERROR orbi: forged line\u{d}\u{a}more"),
            "{text:?}"
        );
        assert!(lines[1].contains("next event"), "{text:?}");
    }

    #[test]
    fn terminal_controls_in_a_field_are_written_out() {
        let reason = "x\u{1b}[1A\u{1b}[2K\u{b}\u{c}\u{85}\u{2028}y";
        let text = logged(|| tracing::warn!(%reason, "connection ended"));
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            text.ends_with("reason=x\\u{1b}[1A\\u{1b}[2K\\u{b}\\u{c}\\u{85}\\u{2028}y\n"),
            "{text:?}"
        );
    }

    #[test]
    fn plain_events_are_written_unchanged() {
        let text = logged(|| tracing::warn!(peer = "node-a", "connected"));
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with("connected peer=\"node-a\"\n"), "{text:?}");
    }

    #[test]
    fn bytes_split_across_writes_are_each_kept_on_their_line() {
        let mut out = Vec::new();
        let mut writer = OneLine(&mut out);
        assert_eq!(writer.write(b"a\rb").expect("written"), 3);
        assert_eq!(writer.write(b"c\n").expect("written"), 2);
        assert_eq!(out, b"a\\u{d}bc\n");
    }
}
