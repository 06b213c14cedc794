//! RFC 3339 timestamps that keep the exact text they were parsed from.

use std::{borrow::Cow, fmt};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// An RFC 3339 `date-time`, exactly as the schema gate's `format` reads it: `T` or `t` between
/// date and time, `Z`, `z` or a `±HH:MM` offset.
///
/// Equality is on the text (so documents round-trip byte for byte); compare instants with
/// [`Timestamp::instant`] or [`Timestamp::unix_seconds`]. A leap second (`23:59:60`) is
/// accepted, as RFC 3339 allows, and counts as the last instant of that minute.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Timestamp {
    text: String,
    instant: OffsetDateTime,
}

/// Text that is not an RFC 3339 `date-time`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an rfc 3339 date-time (e.g. 2026-03-28T19:42:00Z)")]
pub struct TimestampError {
    /// The offending text.
    pub text: String,
}

impl Timestamp {
    /// Parses RFC 3339 `date-time` text.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let error = || TimestampError {
            text: text.to_owned(),
        };
        if !text.is_ascii() || !has_date_time_separator(text) {
            return Err(error());
        }
        let instant = match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(instant) => instant,
            Err(_) => parse_leap_second(text).ok_or_else(error)?,
        };
        Ok(Timestamp {
            text: text.to_owned(),
            instant,
        })
    }

    /// A UTC timestamp with second precision and a `Z` suffix, the form we emit.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        let instant = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
        let text = instant.format(&Rfc3339).ok()?;
        Some(Timestamp { text, instant })
    }

    /// The same instant as `instant`, emitted in UTC with second precision.
    pub fn from_instant(instant: OffsetDateTime) -> Option<Self> {
        Self::from_unix_seconds(instant.unix_timestamp())
    }

    /// The same instant as `instant`, emitted in UTC with its fraction of a second (none when
    /// it has none), for instants computed from parsed ones; `None` past year 9999.
    pub fn from_instant_exact(instant: OffsetDateTime) -> Option<Self> {
        let instant = instant.checked_to_offset(UtcOffset::UTC)?;
        let text = instant.format(&Rfc3339).ok()?;
        Some(Timestamp { text, instant })
    }

    /// The text exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant this text denotes.
    pub fn instant(&self) -> OffsetDateTime {
        self.instant
    }

    /// The instant to add durations to. Like Unix time, `time` has no leap seconds: a leap
    /// second `23:59:60.f` orders after every `23:59:59.x` ([`Timestamp::instant`]), but adding
    /// to it must start from `23:59:59.f`, so that one second later is `00:00:00.f` (as in SI
    /// seconds) and not almost two. Every other timestamp gives its [`Timestamp::instant`].
    pub fn instant_to_add_to(&self) -> OffsetDateTime {
        if !is_leap_second(&self.text) {
            return self.instant;
        }
        as_second_59(&self.text).unwrap_or(self.instant)
    }

    /// Whole seconds since the Unix epoch (fractions truncated toward negative infinity).
    pub fn unix_seconds(&self) -> i64 {
        self.instant.unix_timestamp()
    }
}

/// Whether byte 10, between `full-date` and `full-time`, is `T` or `t` (RFC 3339 §5.6 and its
/// note on case), as the schema gate's `date-time` demands. `time`'s parser skips whatever byte
/// is there (it also reads SQL's `2026-03-28 19:42:00`), so this is checked first.
fn has_date_time_separator(text: &str) -> bool {
    matches!(text.as_bytes().get(10), Some(b'T' | b't'))
}

/// Whether RFC 3339 text writes second 60 (`HH:MM:60`).
fn is_leap_second(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20 && &bytes[16..19] == b":60"
}

/// Leap-second text read as second 59 of its minute, fraction and offset kept.
fn as_second_59(text: &str) -> Option<OffsetDateTime> {
    let mut replaced = text.to_owned();
    replaced.replace_range(17..19, "59");
    OffsetDateTime::parse(&replaced, &Rfc3339).ok()
}

/// `time` rejects second 60; RFC 3339 allows it where a leap second may occur.
fn parse_leap_second(text: &str) -> Option<OffsetDateTime> {
    if !is_leap_second(text) {
        return None;
    }
    let instant = as_second_59(text)?;
    // Near the ends of the range the UTC form can fall outside what `time` represents
    // (9999-12-31T23:59:60-23:59 is in year 10000): no leap second there, and no panic.
    let utc = instant.checked_to_offset(UtcOffset::UTC)?;
    // A leap second can only be the last second of a UTC day.
    (utc.hour() == 23 && utc.minute() == 59).then_some(instant)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Just;

    use super::*;

    #[test]
    fn keeps_text_and_compares_instants() {
        let a = Timestamp::parse("2026-03-28T19:42:00Z").unwrap();
        let b = Timestamp::parse("2026-03-28T21:42:00+02:00").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.instant(), b.instant());
        assert_eq!(b.as_str(), "2026-03-28T21:42:00+02:00");
        assert_eq!(a.unix_seconds(), 1_774_726_920);
    }

    #[test]
    fn accepts_rfc3339_variants() {
        for text in [
            "2026-03-28T19:42:00.123456789Z",
            "2026-03-28t19:42:00z",
            "2026-03-28T19:42:00-00:00",
            "2016-12-31T23:59:60Z",
            "2017-01-01T00:59:60+01:00",
        ] {
            assert!(Timestamp::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn rejects_non_rfc3339() {
        for text in [
            "2026-03-28 19:42",
            "2026-03-28",
            "2026-02-30T00:00:00Z",
            "2026-03-28T24:00:00Z",
            "2026-03-28T19:42:00",
            "2026-03-28T12:00:60Z",
            "2026-03-28T19:42:00+2:00",
        ] {
            assert!(Timestamp::parse(text).is_err(), "{text}");
        }
    }

    /// RFC 3339 §5.6: `T` between date and time, or `t` ("may alternatively be lower case");
    /// likewise `Z` or `z`. Each of the four spellings is accepted, as the schema gate's
    /// `date-time` accepts them.
    #[test]
    fn t_and_z_may_be_either_case() {
        for (separator, zone) in [('T', 'Z'), ('t', 'Z'), ('T', 'z'), ('t', 'z')] {
            let text = format!("2026-03-28{separator}19:42:00{zone}");
            let parsed = Timestamp::parse(&text).unwrap();
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed.unix_seconds(), 1_774_726_920, "{text}");
        }
    }

    /// Every other byte between date and time is refused: `time` alone takes any (a space,
    /// `_`, `x`, `/`, a digit, a tab, ...), the contract's `date-time` only `T` or `t`.
    #[test]
    fn no_other_separator_is_accepted() {
        let mut refused = 0;
        for byte in 0u8..=0x7f {
            let separator = char::from(byte);
            let text = format!("2026-03-28{separator}19:42:00Z");
            let parsed = Timestamp::parse(&text);
            if byte == b'T' || byte == b't' {
                assert!(parsed.is_ok(), "{text:?}");
            } else {
                assert_eq!(parsed, Err(TimestampError { text }));
                refused += 1;
            }
        }
        assert_eq!(refused, 126);
        // Nor a non-ASCII one, nor none at all.
        for text in [
            "2026-03-28\u{2028}19:42:00Z",
            "2026-03-28é19:42:00Z",
            "2026-03-2819:42:00Z",
        ] {
            assert!(Timestamp::parse(text).is_err(), "{text:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Any text of the RFC 3339 shape, over the whole range of years, offsets and
        /// seconds (60 included), with any ASCII byte between date and time, parses or is
        /// refused: never a panic, nothing separated by another byte than `T`/`t`, and every instant
        /// accepted can be compared and counted in seconds. The ends of the range and the leap
        /// second are drawn often: there an instant can fall outside what `time` represents
        /// once moved to UTC.
        #[test]
        fn every_rfc3339_shaped_text_parses_or_is_refused(
            year in proptest::prop_oneof![Just(0u32), Just(9999), 0u32..=9999],
            month in proptest::prop_oneof![Just(1u32), Just(12), 1u32..=12],
            day in proptest::prop_oneof![Just(1u32), Just(31), 1u32..=31],
            clock in proptest::prop_oneof![
                Just((23u32, 59u32, 60u32)),
                Just((0, 0, 60)),
                (0u32..=23, 0u32..=59, 0u32..=60),
            ],
            offset in proptest::option::of(
                (proptest::bool::ANY, proptest::prop_oneof![Just(23u32), 0u32..=23], 0u32..=59)
            ),
            separator in proptest::prop_oneof![Just('T'), Just('t'), proptest::char::range('\0', '\x7f')],
            utc in proptest::prop_oneof![Just('Z'), Just('z')],
        ) {
            let (hour, minute, second) = clock;
            let zone = match offset {
                None => utc.to_string(),
                Some((east, hours, minutes)) => {
                    format!("{}{hours:02}:{minutes:02}", if east { '+' } else { '-' })
                }
            };
            let text = format!("{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{zone}");
            let parsed = Timestamp::parse(&text);
            if !matches!(separator, 'T' | 't') {
                proptest::prop_assert!(parsed.is_err(), "{text:?}");
            }
            if let Ok(parsed) = parsed {
                let epoch = Timestamp::parse("1970-01-01T00:00:00Z").unwrap();
                proptest::prop_assert_eq!(
                    parsed.instant() > epoch.instant(),
                    parsed.unix_seconds() > 0
                );
            }
        }
    }

    /// A leap second is the last second of a UTC day (RFC 3339 §5.7), on any day (the table
    /// of real ones is not ours to check), in any offset: second 60 at any other UTC hour or
    /// minute is refused.
    #[test]
    fn a_leap_second_is_only_at_23_59_utc() {
        for text in [
            "2026-03-28T23:59:60Z",
            "2026-03-28T23:59:60.5Z",
            "0000-01-01T23:59:60Z",
            "2026-03-29T01:59:60+02:00",
            "2026-03-28T22:29:60-01:30",
        ] {
            let parsed = Timestamp::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), text);
            let utc = parsed.instant().to_offset(UtcOffset::UTC);
            assert_eq!(
                (utc.hour(), utc.minute(), utc.second()),
                (23, 59, 59),
                "{text}"
            );
        }
        for text in [
            "2026-03-28T23:58:60Z",
            "2026-03-28T22:59:60Z",
            "2026-03-28T12:59:60Z",
            "2026-03-28T00:59:60Z",
            "2026-03-28T23:59:60+01:00",
            "2026-03-28T23:59:60-00:01",
        ] {
            assert_eq!(
                Timestamp::parse(text),
                Err(TimestampError { text: text.into() })
            );
        }
    }

    /// `from_instant` emits whole seconds (the fraction is dropped, as `unix_seconds` does);
    /// `from_instant_exact` keeps it.
    #[test]
    fn from_instant_drops_the_fraction() {
        let at = Timestamp::parse("2026-03-22T23:21:13.9+01:00")
            .unwrap()
            .instant();
        assert_eq!(
            Timestamp::from_instant(at).unwrap().as_str(),
            "2026-03-22T22:21:13Z"
        );
        assert_eq!(
            Timestamp::from_instant_exact(at).unwrap().as_str(),
            "2026-03-22T22:21:13.9Z"
        );
    }

    #[test]
    fn leap_seconds_at_the_ends_of_the_range_are_refused_not_a_panic() {
        for text in ["9999-12-31T23:59:60-23:59", "9999-12-31T23:59:60-00:01"] {
            assert!(Timestamp::parse(text).is_err(), "{text}");
        }
        // The last leap second the range can hold is still one.
        assert!(Timestamp::parse("9999-12-31T23:59:60Z").is_ok());
    }

    #[test]
    fn emits_utc_seconds() {
        assert_eq!(
            Timestamp::from_unix_seconds(1_774_726_920)
                .unwrap()
                .as_str(),
            "2026-03-28T19:42:00Z"
        );
    }

    #[test]
    fn a_leap_second_is_added_to_from_the_second_before() {
        let leap = Timestamp::parse("2016-12-31T23:59:60.25Z").unwrap();
        let later = leap.instant_to_add_to() + time::Duration::seconds(1);
        assert_eq!(
            Timestamp::from_instant_exact(later).unwrap().as_str(),
            "2017-01-01T00:00:00.25Z"
        );
        // It still orders after the whole second before it.
        let before = Timestamp::parse("2016-12-31T23:59:59.75Z").unwrap();
        assert!(leap.instant() > before.instant());
        // Other timestamps add from their own instant.
        assert_eq!(before.instant_to_add_to(), before.instant());
    }

    #[test]
    fn exact_instants_keep_their_fraction_in_utc() {
        let at = |text| Timestamp::parse(text).unwrap().instant();
        let exact = |text| Timestamp::from_instant_exact(at(text)).unwrap();
        assert_eq!(
            exact("2026-03-22T23:21:13.90+01:00").as_str(),
            "2026-03-22T22:21:13.9Z"
        );
        assert_eq!(
            exact("2026-03-22T22:21:13Z").as_str(),
            "2026-03-22T22:21:13Z"
        );
        assert_eq!(
            exact("2026-03-22T22:21:13.000000001Z").instant(),
            at("2026-03-22T22:21:13.000000001Z")
        );
        // Its UTC form is in year 10000: no timestamp, no panic.
        assert_eq!(
            Timestamp::from_instant_exact(at("9999-12-31T23:59:59-01:00")),
            None
        );
    }
}
