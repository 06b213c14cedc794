//! Where the reference validators disagree with each other or with orbi, orbi follows the
//! standards: RFC 3339 for `date-time`, RFC 3986 for `uri`, ECMA-262 for `pattern` (JSON
//! Schema 2020-12 §6.4), RFC 8259 for the JSON text. Each case names the reference that
//! decides differently (see the crate docs, "Agreement with reference validators").

use orbi_schema::{Profile, Report, validate_bytes};
use serde_json::{Value, json};

/// A valid bind from the fixtures.
fn bind() -> Value {
    serde_json::from_str(include_str!(
        "../../schemas/examples/valid/k2-signed.participant-bind.json"
    ))
    .unwrap()
}

fn bind_with(pointer: &str, value: Value) -> Result<Value, Report> {
    let mut document = bind();
    *document
        .pointer_mut(pointer)
        .expect("pointer into the bind") = value;
    validate_bytes(
        "participant-bind",
        document.to_string().as_bytes(),
        Profile::Seed,
    )
}

fn offer_href(href: &str) -> Result<Value, Report> {
    let frame = json!({
        "schema": "inac-control.v1", "operation": "offer",
        "artifact": {
            "schema": "memarium-blob.v1", "content/type": "text/plain", "artifact/id": "a",
            "digest": "sha256:abc", "size/bytes": 1, "artifact/href": href
        }
    });
    validate_bytes("inac-control", frame.to_string().as_bytes(), Profile::Seed)
}

#[test]
fn date_time_follows_rfc_3339() {
    let valid = [
        // §5.8 gives this very leap second as an example; rfc3339-validator and
        // check-jsonschema reject every second 60.
        "1990-12-31T23:59:60Z",
        "1990-12-31T15:59:60-08:00",
        // `date-fullyear = 4DIGIT`; rfc3339-validator rejects year 0000.
        "0000-01-01T00:00:00Z",
        // §5.6 note: "T" and "Z" may be lower case.
        "2026-03-28t19:42:00z",
        "2024-02-29T00:00:00Z",
        "2026-03-28T19:42:00.123456789-00:00",
    ];
    for text in valid {
        assert!(bind_with("/bound-at", json!(text)).is_ok(), "{text}");
    }
    let invalid = [
        // A leap second happens at 23:59:60 UTC only.
        "2026-03-28T22:59:60Z",
        "2026-03-28T19:42:60Z",
        // Python's `$` accepts a final newline (rfc3339-validator, check-jsonschema).
        "2026-03-28T19:42:00Z\n",
        // `time-secfrac = "." 1*DIGIT`; check-jsonschema also takes a comma.
        "2026-03-28T19:42:00,5Z",
        "2026-02-29T00:00:00Z",
        "2026-03-28T19:42:00",
        "2026-03-28 19:42:00Z",
        "2026-03-28T19:42:00+24:00",
    ];
    for text in invalid {
        let report = bind_with("/bound-at", json!(text)).unwrap_err();
        assert!(
            report.issues()[0].keyword.ends_with("/format"),
            "{text}: {report}"
        );
    }
}

#[test]
fn uri_follows_rfc_3986() {
    for href in [
        "https://example.org/a/b?c=1",
        "urn:isbn:0451450523",
        "x:",
        "http://[::1]:80/",
        "http://[v1.x]/",
    ] {
        assert!(offer_href(href).is_ok(), "{href}");
    }
    // A newline is no URI character (python-jsonschema's rfc3987 regex ends in `$`).
    for href in [
        "http://x/\n",
        "/relative/path",
        "http://x/ y",
        "http://[::1/",
        "http://x/%zz",
    ] {
        assert!(offer_href(href).is_err(), "{href}");
    }
}

#[test]
fn patterns_follow_ecma_262() {
    // In ECMA-262 `$` matches only at the end of input; python's `re.search` (used by
    // python-jsonschema for `pattern`) also matches before a final newline.
    let report = bind_with(
        "/via~1node-id",
        json!("node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE\n"),
    )
    .unwrap_err();
    assert!(report.issues()[0].keyword.ends_with("/pattern"), "{report}");
}

#[test]
fn json_text_follows_rfc_8259() {
    let text = bind().to_string();
    let body = text.strip_suffix('}').unwrap();
    for (extra, why) in [
        // Python keeps the last value; two parsers could read two documents.
        (r#""schema/v": 1"#, "duplicate key"),
        // Python reads these; JSON has no such numbers.
        (r#""policy_annotations": {"x": NaN}"#, "expected value"),
        (r#""policy_annotations": {"x": "\ud800"}"#, "hex escape"),
        (r#""policy_annotations": {"x": 1e400}"#, "out of range"),
    ] {
        let document = format!("{body},{extra}}}");
        let report =
            validate_bytes("participant-bind", document.as_bytes(), Profile::Seed).unwrap_err();
        assert!(
            matches!(&report, Report::Syntax { message, .. } if message.contains(why)),
            "{extra}: {report:?}"
        );
    }
    // Numbers compare by value: 1.0 is the integer 1 (2020-12 §6.1.1 / Core §4.2.2).
    assert!(bind_with("/schema~1v", json!(1.0)).is_ok());
}
