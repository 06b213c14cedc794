//! Shared keys, clock and receiver setups for the spec tests.

#![allow(dead_code)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use orbi_inac::AuthorizationMode;
use orbi_inac::{
    Acceptance, Acceptor, BodyEnd, Delivery, Descriptor, Frame, Handled, IncomingBody,
    KindRegistry, KindRegistryBuilder, MemoryLedger, MemoryStore, Receiver, ReceiverConfig,
};
use orbi_types::{
    KeyPair, NodeId,
    inac::{Operation, RefusalCode},
};
use serde_json::{Map, Value};

/// A0: the bytes `{}`.
pub const A0: &[u8] = b"{}";
pub const A0_DIGEST: &str = "sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o";
pub const EMPTY_ARRAY_DIGEST: &str = "sha256:T1PNoYwrqgwDVLtfmj7L5e0Sq02OEbqHPC8RFhICuUU";
pub const BLOB: &str = "memarium-blob.v1";
pub const JSON: &str = "application/json";

/// 2026-03-28T19:42:00Z, the clock's origin.
pub const T0: u64 = 1_774_726_920;

pub fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 + seconds)
}

pub fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

/// R, the receiving node.
pub fn receiver_key() -> KeyPair {
    KeyPair::from_seed(&[1; 32])
}

/// P, the usual pushing peer.
pub fn peer() -> KeyPair {
    KeyPair::from_seed(&[2; 32])
}

/// Q, another peer.
pub fn other_peer() -> KeyPair {
    KeyPair::from_seed(&[3; 32])
}

/// The push of spec §9.1 (`push-inline`): A0 inline as `memarium-blob.v1`.
pub fn push_a0_value() -> Value {
    serde_json::from_str(include_str!(
        "../../../schemas/examples/valid/push-inline-a0.inac-control.json"
    ))
    .unwrap()
}

pub struct Node {
    pub receiver: Receiver,
    pub store: MemoryStore,
}

pub struct Setup {
    config: ReceiverConfig,
    kinds: KindRegistryBuilder,
    degraded: bool,
}

impl Setup {
    /// Deny-all defaults, no kinds.
    pub fn new() -> Self {
        Setup {
            config: ReceiverConfig::default(),
            kinds: KindRegistry::builder(),
            degraded: false,
        }
    }

    pub fn allow(mut self, peer: &NodeId) -> Self {
        self.config.allowed_peers.insert(peer.clone());
        self
    }

    pub fn keep(mut self, schema: &str, content_type: Option<&str>) -> Self {
        self.kinds = self.kinds.keep(schema, content_type);
        self
    }

    pub fn accept(
        mut self,
        schema: &str,
        content_type: Option<&str>,
        acceptor: impl Acceptor + 'static,
    ) -> Self {
        self.kinds = self.kinds.accept(schema, content_type, acceptor);
        self
    }

    /// Runs even with conflicting registrations (routes disabled).
    pub fn degraded(mut self) -> Self {
        self.degraded = true;
        self
    }

    pub fn config(mut self, edit: impl FnOnce(&mut ReceiverConfig)) -> Self {
        edit(&mut self.config);
        self
    }

    pub fn build(self) -> Node {
        let kinds = match self.kinds.build() {
            Ok(kinds) => kinds,
            Err(conflicts) if self.degraded => conflicts.into_degraded(),
            Err(conflicts) => panic!("{conflicts}"),
        };
        let store = MemoryStore::new();
        let receiver = Receiver::new(
            receiver_key(),
            self.config,
            kinds,
            store.clone(),
            MemoryLedger::new(),
        );
        Node { receiver, store }
    }
}

/// P allowlisted; `memarium-blob.v1` kept whatever its media type.
pub fn standard() -> Node {
    standard_with(|_| {})
}

/// [`standard`] with `edit` applied to its receiver policy.
pub fn standard_with(edit: impl FnOnce(&mut ReceiverConfig)) -> Node {
    Setup::new()
        .allow(&peer().node_id())
        .keep(BLOB, None)
        .config(edit)
        .build()
}

/// Pushes `bytes` as a `BLOB` in stream mode, as P, and asserts they were ingested.
pub fn ingest_stream(node: &mut Node, bytes: &[u8]) -> Descriptor {
    let descriptor = Descriptor::of_bytes(BLOB, JSON, bytes);
    let header = Frame::push_stream(&descriptor, "4").build().unwrap();
    assert_answer(
        &node.stream(&peer(), &header, bytes, at(0)),
        Operation::Ingested,
        None,
    );
    descriptor
}

pub fn answer(handled: Handled) -> Frame {
    match handled {
        Handled::Answer(frame) => frame,
        other => panic!("expected an answer, got {other:?}"),
    }
}

pub fn code(frame: &Frame) -> Option<RefusalCode> {
    frame.response().and_then(|r| r.refusal_code)
}

/// The answer's `response.message` (empty when it has none).
pub fn message(frame: &Frame) -> &str {
    frame
        .response()
        .and_then(|r| r.message.as_deref())
        .unwrap_or_default()
}

/// Asserts the answer's operation and code, and that `retryable` follows the spec table.
#[track_caller]
pub fn assert_answer(frame: &Frame, operation: Operation, expected: Option<RefusalCode>) {
    assert_eq!(
        (frame.operation(), code(frame)),
        (operation, expected),
        "answer {:?}",
        frame.to_value()
    );
    let response = frame.response().expect("an answer carries response");
    if let Some(expected) = expected {
        assert_eq!(
            response.retryable,
            Some(orbi_inac::is_retryable(expected)),
            "retryable of {expected}"
        );
    }
}

/// Asserts a `refused` answer with `code`.
#[track_caller]
pub fn assert_refused(frame: &Frame, code: RefusalCode) {
    assert_answer(frame, Operation::Refused, Some(code));
}

impl Node {
    pub fn send(&mut self, peer: &KeyPair, frame: &Frame, now: SystemTime) -> Frame {
        answer(self.receiver.handle(&peer.node_id(), frame, now))
    }

    pub fn send_value(&mut self, peer: &KeyPair, value: &Value, now: SystemTime) -> Frame {
        let bytes = serde_json::to_vec(value).unwrap();
        answer(self.receiver.handle_bytes(&peer.node_id(), &bytes, now))
    }

    /// Starts a stream-mode push; panics unless the header is admitted.
    pub fn begin(&mut self, peer: &KeyPair, header: &Frame, now: SystemTime) -> IncomingBody {
        match self.receiver.handle(&peer.node_id(), header, now) {
            Handled::ReadBody(body) => body,
            Handled::Answer(frame) => panic!("header refused: {:?}", frame.to_value()),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A whole stream-mode push: header, `body` in 8 KiB chunks, FIN.
    pub fn stream(
        &mut self,
        peer: &KeyPair,
        header: &Frame,
        body: &[u8],
        now: SystemTime,
    ) -> Frame {
        match self.receiver.handle(&peer.node_id(), header, now) {
            Handled::ReadBody(mut incoming) => {
                for chunk in body.chunks(8 * 1024) {
                    if incoming.write(chunk).is_err() {
                        break;
                    }
                }
                self.receiver
                    .finish_push(incoming.complete(BodyEnd::Finished), now)
            }
            Handled::Answer(frame) => frame,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn holds(&self, bytes: &[u8]) -> bool {
        use orbi_inac::Store;
        self.store
            .contains(&orbi_types::Sha256Digest::of(bytes))
            .unwrap()
    }

    pub fn stored_count(&self) -> usize {
        use orbi_inac::Store;
        self.store.list().unwrap().len()
    }
}

/// An inline push of `bytes` as `schema`.
pub fn inline_push(schema: &str, bytes: &[u8], key: Option<&str>) -> Frame {
    let descriptor = Descriptor::of_bytes(schema, JSON, bytes);
    let builder = Frame::push_inline(&descriptor, bytes).correlation_id("inac-correlation:test");
    match key {
        Some(key) => builder.idempotency_key(key).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

/// An acceptor that counts its calls and answers what it is told.
#[derive(Clone)]
pub struct Scripted {
    pub calls: Arc<AtomicUsize>,
    pub answer: Arc<std::sync::Mutex<Acceptance>>,
}

impl Scripted {
    pub fn new(answer: Acceptance) -> Self {
        Scripted {
            calls: Arc::new(AtomicUsize::new(0)),
            answer: Arc::new(std::sync::Mutex::new(answer)),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn set(&self, answer: Acceptance) {
        *self.answer.lock().unwrap() = answer;
    }
}

impl Acceptor for Scripted {
    fn accept(&self, _: &Delivery<'_>) -> Acceptance {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer.lock().unwrap().clone()
    }
}

pub type Passport = Map<String, Value>;

/// R with open offer intake and `memarium-blob.v1` / `agora-record.v1` kept; P is *not*
/// allowlisted, so its pushes stand on their passports.
pub fn invitation_node() -> Node {
    Setup::new()
        .keep(BLOB, None)
        .keep("agora-record.v1", None)
        .config(|c| c.open_offer_intake = true)
        .build()
}

/// Runs the invitation flow for `descriptor`: offer, operator accept, offer again.
pub fn invite(node: &mut Node, who: &KeyPair, descriptor: &Descriptor, now: u64) -> Passport {
    let offer = Frame::offer(descriptor)
        .correlation_id("c-offer")
        .build()
        .unwrap();
    let first = node.send(who, &offer, at(now));
    assert_answer(&first, Operation::Defer, None);
    let id = node
        .receiver
        .offers()
        .unwrap()
        .into_iter()
        .rfind(|o| o.peer == who.node_id() && o.descriptor == *descriptor)
        .unwrap()
        .id;
    node.receiver.accept_offer(id, at(now)).unwrap();
    let accepted = node.send(who, &offer, at(now));
    assert_answer(&accepted, Operation::Accept, None);
    accepted
        .authorization()
        .expect("accept carries the invitation")
        .passport
        .clone()
}

pub fn push_under(bytes: &[u8], schema: &str, key: &str, passport: &Passport) -> Frame {
    Frame::push_inline(&Descriptor::of_bytes(schema, JSON, bytes), bytes)
        .correlation_id("c-offer")
        .idempotency_key(key)
        .authorization(AuthorizationMode::InvitationPassport, passport)
        .build()
        .unwrap()
}
