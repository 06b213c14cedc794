//! The upstream INAC examples (spec inac §9.1) through the `orbi-inac` receiver.
//!
//! - `valid/push-inline.inac-control.json` with a wildcard acceptor for `memarium-blob.v1`:
//!   `ingested`, the correlation id echoed, the bytes `{}` held under their digest.
//! - `valid/refused.inac-control.json`: decodes as a `refused` answer with
//!   `kind-not-supported`, not retryable, and re-encodes to the same JSON value.
//! - `invalid/inac-push-missing-artifact.inac-control.json`: the codec refuses it as
//!   `malformed`, and the receiver answers `refused` + `malformed`.

use std::{
    fs,
    path::Path,
    time::{Duration, UNIX_EPOCH},
};

use orbi_inac::{
    Frame, Handled, KindRegistry, MemoryLedger, MemoryStore, Receiver, ReceiverConfig, Store,
};
use orbi_types::{
    KeyPair, Sha256Digest,
    inac::{Operation, RefusalCode},
};
use serde_json::Value;

/// Runs the checks; returns `(checks, failures)`.
pub fn run(conformance: &Path) -> Result<(usize, usize), String> {
    let mut checks = 0;
    let mut failures = 0;
    let mut check = |name: &str, outcome: Result<(), String>| {
        checks += 1;
        if let Err(why) = outcome {
            failures += 1;
            println!("FAIL inac {name}: {why}");
        }
    };
    let read = |relative: &str| {
        let path = conformance.join(relative);
        fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))
    };

    let push = read("valid/push-inline.inac-control.json")?;
    check("push-inline is ingested", push_inline_is_ingested(&push));
    let refused = read("valid/refused.inac-control.json")?;
    check(
        "refused decodes and round-trips",
        refused_round_trips(&refused),
    );
    let missing = read("invalid/inac-push-missing-artifact.inac-control.json")?;
    check(
        "push without artifact is malformed",
        missing_artifact_is_malformed(&missing),
    );
    println!("inac examples: {checks} checks, {failures} failed");
    Ok((checks, failures))
}

fn receiver() -> (Receiver, MemoryStore, orbi_types::NodeId) {
    let sender = KeyPair::from_seed(&[2; 32]).node_id();
    let mut config = ReceiverConfig::default();
    config.allowed_peers.insert(sender.clone());
    let kinds = KindRegistry::builder()
        .keep("memarium-blob.v1", None)
        .build()
        .expect("one acceptor cannot conflict");
    let store = MemoryStore::new();
    let receiver = Receiver::new(
        KeyPair::from_seed(&[1; 32]),
        config,
        kinds,
        store.clone(),
        MemoryLedger::new(),
    );
    (receiver, store, sender)
}

fn now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_774_726_920)
}

fn answer(handled: Handled) -> Result<Frame, String> {
    match handled {
        Handled::Answer(frame) => Ok(frame),
        other => Err(format!("expected an answer, got {other:?}")),
    }
}

fn push_inline_is_ingested(bytes: &[u8]) -> Result<(), String> {
    let (mut receiver, store, sender) = receiver();
    let reply = answer(receiver.handle_bytes(&sender, bytes, now()))?;
    if reply.operation() != Operation::Ingested {
        return Err(format!(
            "answered {:?}: {:?}",
            reply.operation(),
            reply.response()
        ));
    }
    if reply.correlation_id() != Some("inac-correlation:example") {
        return Err(format!("correlation id {:?}", reply.correlation_id()));
    }
    let held = store
        .contains(&Sha256Digest::of(b"{}"))
        .map_err(|err| err.to_string())?;
    if !held {
        return Err("the bytes {} are not in the store".into());
    }
    Ok(())
}

fn refused_round_trips(bytes: &[u8]) -> Result<(), String> {
    let frame = Frame::decode(bytes).map_err(|err| format!("does not decode: {err}"))?;
    let response = frame.response().ok_or("no response")?;
    if frame.operation() != Operation::Refused
        || response.refusal_code != Some(RefusalCode::KindNotSupported)
        || response.retryable != Some(false)
    {
        return Err(format!("decoded as {:?} {response:?}", frame.operation()));
    }
    let original: Value = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
    if frame.to_value() != original {
        return Err("re-encoding changed the value".into());
    }
    Ok(())
}

fn missing_artifact_is_malformed(bytes: &[u8]) -> Result<(), String> {
    let code = Frame::decode(bytes)
        .err()
        .ok_or("the codec accepted it")?
        .refusal()
        .code();
    if code != RefusalCode::Malformed {
        return Err(format!("codec says {code}"));
    }
    let (mut receiver, _, sender) = receiver();
    let reply = answer(receiver.handle_bytes(&sender, bytes, now()))?;
    let code = reply.response().and_then(|r| r.refusal_code);
    if reply.operation() != Operation::Refused || code != Some(RefusalCode::Malformed) {
        return Err(format!(
            "receiver answered {:?} {code:?}",
            reply.operation()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{scratch, workspace_root};

    fn fixture(relative: &str) -> Vec<u8> {
        fs::read(workspace_root().join("schemas/examples").join(relative)).unwrap()
    }

    /// Our own push fixture, shaped as the spec's example (its correlation id).
    fn push() -> Value {
        let mut push: Value =
            serde_json::from_slice(&fixture("valid/push-inline-a0.inac-control.json")).unwrap();
        push["correlation/id"] = json!("inac-correlation:example");
        push
    }

    fn examples(dir: &Path, push: &Value) {
        for sub in ["valid", "invalid"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::write(
            dir.join("valid/push-inline.inac-control.json"),
            push.to_string(),
        )
        .unwrap();
        fs::write(
            dir.join("valid/refused.inac-control.json"),
            fixture("valid/refused-kind-not-supported.inac-control.json"),
        )
        .unwrap();
        fs::write(
            dir.join("invalid/inac-push-missing-artifact.inac-control.json"),
            fixture("invalid/push-missing-artifact.inac-control.json"),
        )
        .unwrap();
    }

    /// The three examples pass; a push answered under another correlation id is one failure.
    #[test]
    fn inac_examples_pass_and_a_wrong_one_is_counted() {
        let dir = scratch("inac-examples");
        examples(&dir, &push());
        assert_eq!(run(&dir), Ok((3, 0)));
        let mut other = push();
        other["correlation/id"] = json!("inac-correlation:orbi-1");
        examples(&dir, &other);
        assert_eq!(run(&dir), Ok((3, 1)));
        fs::remove_dir_all(dir).unwrap();
    }

    /// Each check refuses what its example must not be.
    #[test]
    fn each_inac_check_refuses_the_wrong_frame() {
        let mut other = push();
        other["correlation/id"] = json!("inac-correlation:orbi-1");
        assert_eq!(
            push_inline_is_ingested(other.to_string().as_bytes()),
            Err(r#"correlation id Some("inac-correlation:orbi-1")"#.into())
        );
        // `[]` instead of `{}`, with its own digest: ingested, but not the spec's bytes.
        let mut brackets = push();
        let digest = "sha256:T1PNoYwrqgwDVLtfmj7L5e0Sq02OEbqHPC8RFhICuUU";
        brackets["artifact"]["artifact/id"] = json!(digest);
        brackets["artifact"]["digest"] = json!(digest);
        brackets["artifact"]["bytes/base64url"] = json!("W10");
        assert_eq!(
            push_inline_is_ingested(brackets.to_string().as_bytes()),
            Err("the bytes {} are not in the store".into())
        );
        let push = push().to_string();
        assert_eq!(
            refused_round_trips(push.as_bytes()),
            Err("no response".into())
        );
        assert_eq!(
            missing_artifact_is_malformed(push.as_bytes()),
            Err("the codec accepted it".into())
        );
    }
}
