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
