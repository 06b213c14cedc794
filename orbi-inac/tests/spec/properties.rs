//! Property tests: the codec is faithful (an accepted frame re-encodes to the same JSON value
//! and text) and nothing panics on hostile input, at the codec or through the receiver.

use orbi_inac::{BodyEnd, Descriptor, Frame, Handled, Payload, Refusal, Verdict};
use orbi_types::{
    Sha256Digest,
    inac::{Operation, RefusalCode},
    strategies,
};
use proptest::{collection, prelude::*, sample::select};
use serde_json::Value;

use crate::common::*;

/// Frames from the builders, with arbitrary tokens, payloads and meta.
fn built_frame() -> impl Strategy<Value = Frame> {
    (
        collection::vec(any::<u8>(), 1..200),
        "[A-Za-z0-9:_./-]{1,40}",
        proptest::option::of("[A-Za-z0-9:_./-]{1,40}"),
        collection::btree_map("[a-z]{1,8}", "[ -~]{0,20}", 0..4),
        0u8..4,
    )
        .prop_map(|(bytes, correlation, key, meta, kind)| {
            let descriptor =
                Descriptor::of_bytes("vendor.x.v1", "application/octet-stream", &bytes);
            let mut builder = match kind {
                0 => Frame::push_inline(&descriptor, &bytes),
                1 => Frame::push_stream(&descriptor, &correlation),
                2 => Frame::offer(&descriptor),
                _ => Frame::request_for("vendor.x.v1", "text/plain").digest(&descriptor.digest),
            }
            .correlation_id(&correlation);
            if let Some(key) = &key {
                builder = builder.idempotency_key(key);
            }
            for (k, v) in &meta {
                builder = builder.meta(k, v);
            }
            builder.build().expect("builders produce valid frames")
        })
}

fn verdict() -> impl Strategy<Value = Verdict> {
    (
        0u8..5,
        select(RefusalCode::ALL),
        proptest::option::of(0u64..1_000_000),
        "[ -~]{0,1100}",
    )
        .prop_map(|(kind, code, after, message)| {
            let refusal = match after {
                Some(ms) => Refusal::new(code, message.clone()).retry_after_ms(ms),
                None => Refusal::new(code, message.clone()),
            };
            match kind {
                0 => Verdict::Ingested,
                1 => Verdict::AlreadyPresent,
                2 => Verdict::Decline(refusal),
                3 => Verdict::refusing(Operation::Offer, refusal),
                _ => Verdict::Refuse(refusal),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn accepted_frames_re_encode_to_the_same_value(value in strategies::inac_control()) {
        let text = serde_json::to_vec(&value).unwrap();
        if let Ok(frame) = Frame::decode(&text) {
            prop_assert_eq!(&frame.to_value(), &value);
            prop_assert_eq!(frame.encode(), text);
            prop_assert_eq!(Frame::decode(&frame.encode()).unwrap(), frame);
        }
    }

    #[test]
    fn accepted_mutations_re_encode_to_the_same_value(bytes in strategies::inac_control().prop_flat_map(strategies::mutated)) {
        if let Ok(frame) = Frame::decode(&bytes) {
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(frame.to_value(), value);
        }
    }

    #[test]
    fn frames_keep_the_encoding_they_were_built_from_and_their_decoded_payload(frame in built_frame()) {
        prop_assert_eq!(frame.encode(), serde_json::to_vec(&frame.to_value()).unwrap());
        let decoded = Frame::decode(&frame.encode()).unwrap();
        for frame in [&frame, &decoded] {
            match frame.payload() {
                Some(Payload::Inline(text)) => {
                    let bytes = text.decode().unwrap();
                    let digest = Sha256Digest::of(&bytes);
                    prop_assert_eq!(frame.inline_bytes(), Some((bytes.as_slice(), &digest)));
                }
                _ => prop_assert!(frame.inline_bytes().is_none()),
            }
        }
    }

    #[test]
    fn built_frames_decode_to_themselves(frame in built_frame()) {
        let decoded = Frame::decode(&frame.encode()).unwrap();
        prop_assert_eq!(&decoded, &frame);
        prop_assert_eq!(decoded.encode(), frame.encode());
    }

    #[test]
    fn answers_are_valid_frames(verdict in verdict(), correlation in proptest::option::of("[A-Za-z0-9:_./ -]{0,300}")) {
        let frame = Frame::answer(correlation.as_deref(), &verdict);
        let decoded = Frame::decode(&frame.encode()).unwrap();
        prop_assert_eq!(decoded.operation(), verdict.operation());
        prop_assert_eq!(decoded.response().unwrap().refusal_code, verdict.refusal_code());
    }

    #[test]
    fn random_bytes_never_panic(bytes in collection::vec(any::<u8>(), 0..512)) {
        let _ = Frame::decode(&bytes);
        let mut node = standard();
        let handled = node.receiver.handle_bytes(&peer().node_id(), &bytes, at(0));
        prop_assert!(matches!(handled, Handled::Answer(_) | Handled::NoAnswer));
    }

    #[test]
    fn mutated_frames_never_panic_the_receiver(bytes in strategies::inac_control().prop_flat_map(strategies::mutated)) {
        let mut node = standard();
        if let Handled::ReadBody(body) = node.receiver.handle_bytes(&peer().node_id(), &bytes, at(0)) {
            let expected = body.expected_len().min(4096) as usize;
            let mut body = body;
            let _ = body.write(&vec![0; expected]);
            let _ = node.receiver.finish_push(body.complete(BodyEnd::Finished), at(0));
        }
        prop_assert_eq!(node.store.staged_count(), 0);
    }

    #[test]
    fn any_chunking_of_a_body_gives_the_same_outcome(
        body in collection::vec(any::<u8>(), 0..20_000),
        cuts in collection::vec(any::<usize>(), 0..12),
    ) {
        let mut node = standard();
        let descriptor = Descriptor::of_bytes(BLOB, "application/octet-stream", &body);
        let header = Frame::push_stream(&descriptor, "4").build().unwrap();
        let Handled::ReadBody(mut incoming) = node.receiver.handle(&peer().node_id(), &header, at(0)) else {
            return Err(TestCaseError::fail("header refused"));
        };
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.push(0);
        points.push(body.len());
        points.sort_unstable();
        for pair in points.windows(2) {
            incoming.write(&body[pair[0]..pair[1]]).unwrap();
        }
        let answer = node.receiver.finish_push(incoming.complete(BodyEnd::Finished), at(0));
        prop_assert_eq!(answer.operation(), Operation::Ingested);
        prop_assert!(node.holds(&body));
    }
}

/// Guards the first property against vacuity: most generated frames must decode.
#[test]
fn most_generated_frames_are_accepted() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = strategies::inac_control();
    let total = 300;
    let accepted = (0..total)
        .filter(|_| {
            let value = strategy.new_tree(&mut runner).unwrap().current();
            Frame::decode(&serde_json::to_vec(&value).unwrap()).is_ok()
        })
        .count();
    assert!(accepted * 2 > total, "only {accepted} of {total} accepted");
}
