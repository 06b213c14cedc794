//! State survives a restart: the real [`FsStore`] and [`SqliteLedger`] in a temporary data
//! directory, reopened between steps.

use std::{fs, path::Path};

use orbi_inac::{
    BodyEnd, Descriptor, Frame, FsStore, Handled, KindRegistry, Ledger, MemoryLedger, MemoryStore,
    Receiver, ReceiverConfig, SqliteLedger, StoreError,
    store::{StagedBody, StagingWriter, Store, StoredObject},
};
use orbi_types::Sha256Digest;
use orbi_types::inac::{Operation, RefusalCode};

use crate::common::*;

fn open(dir: &Path) -> Receiver {
    let mut config = ReceiverConfig::default();
    config.allowed_peers.insert(peer().node_id());
    config.open_offer_intake = true;
    let kinds = KindRegistry::builder().keep(BLOB, None).build().unwrap();
    Receiver::new(
        receiver_key(),
        config,
        kinds,
        FsStore::open(dir.join("store")).unwrap(),
        SqliteLedger::open(dir.join("inac.sqlite")).unwrap(),
    )
}

fn send(receiver: &mut Receiver, who: &orbi_types::KeyPair, frame: &Frame, seconds: u64) -> Frame {
    answer(receiver.handle(&who.node_id(), frame, at(seconds)))
}

#[test]
fn admissions_and_idempotency_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let push = inline_push(BLOB, A0, Some("k-1"));
    {
        let mut receiver = open(dir.path());
        assert_answer(
            &send(&mut receiver, &peer(), &push, 0),
            Operation::Ingested,
            None,
        );
    }
    let mut receiver = open(dir.path());
    assert!(
        receiver
            .store()
            .contains(&Descriptor::of_bytes(BLOB, JSON, A0).digest)
            .unwrap()
    );
    // Same key: the recorded outcome. Another key: content dedup.
    assert_answer(
        &send(&mut receiver, &peer(), &push, 1),
        Operation::Ingested,
        None,
    );
    let other_key = inline_push(BLOB, A0, Some("k-2"));
    assert_answer(
        &send(&mut receiver, &peer(), &other_key, 2),
        Operation::AlreadyPresent,
        None,
    );
    // Reusing the key for other bytes is still caught.
    let reused = inline_push(BLOB, b"[]", Some("k-1"));
    assert_refused(
        &send(&mut receiver, &peer(), &reused, 3),
        RefusalCode::Malformed,
    );
    // Every decision was logged, the first one included.
    let log = receiver.ledger().recent_transfers(10).unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[3].answer, Operation::Ingested);
    assert_eq!(log[3].at_ms, T0 * 1000);
    // A retry shares the admission id of the original transfer; another key does not.
    assert!(log[3].admission_id.is_some());
    assert_eq!(log[2].admission_id, log[3].admission_id);
    assert_ne!(log[1].admission_id, log[3].admission_id);
}

#[test]
fn offers_decided_by_another_process_and_invitations_survive() {
    let dir = tempfile::tempdir().unwrap();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let offer = Frame::offer(&descriptor).build().unwrap();
    let q = other_peer();
    let passport = {
        let mut receiver = open(dir.path());
        assert_answer(&send(&mut receiver, &q, &offer, 0), Operation::Defer, None);
        // The operator's tool opens the same ledger while the node runs.
        let mut operator = SqliteLedger::open(dir.path().join("inac.sqlite")).unwrap();
        let pending = operator.offers().unwrap();
        assert_eq!(pending.len(), 1);
        operator
            .decide_offer(pending[0].id, true, T0 * 1000)
            .unwrap();
        let accepted = send(&mut receiver, &q, &offer, 1);
        assert_answer(&accepted, Operation::Accept, None);
        accepted.authorization().unwrap().passport.clone()
    };
    let push = push_under(A0, BLOB, "k-q", &passport);
    {
        let mut receiver = open(dir.path());
        // The issued invitation is known after a restart; the accept answer repeats it.
        let again = send(&mut receiver, &q, &offer, 2);
        assert_eq!(again.authorization().unwrap().passport, passport);
        assert_answer(
            &send(&mut receiver, &q, &push, 3),
            Operation::Ingested,
            None,
        );
    }
    let mut receiver = open(dir.path());
    // The consumption is durable: a replay is the same transfer, anything else a second use.
    assert_answer(
        &send(&mut receiver, &q, &push, 4),
        Operation::Ingested,
        None,
    );
    let second_use = push_under(A0, BLOB, "k-other", &passport);
    assert_refused(
        &send(&mut receiver, &q, &second_use, 5),
        RefusalCode::InvitationRevoked,
    );
    let id = passport["passport_id"].as_str().unwrap();
    let consumed = receiver
        .ledger()
        .invitation(id)
        .unwrap()
        .unwrap()
        .consumed
        .unwrap();
    assert_eq!(consumed.idempotency_key.as_deref(), Some("k-q"));
}

#[test]
fn revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let offer = Frame::offer(&descriptor).build().unwrap();
    let q = other_peer();
    let passport = {
        let mut receiver = open(dir.path());
        send(&mut receiver, &q, &offer, 0);
        receiver.accept_offer(1, at(0)).unwrap();
        let passport = send(&mut receiver, &q, &offer, 1)
            .authorization()
            .unwrap()
            .passport
            .clone();
        receiver
            .revoke_passport(passport["passport_id"].as_str().unwrap(), at(2))
            .unwrap();
        passport
    };
    let mut receiver = open(dir.path());
    let answer = send(&mut receiver, &q, &push_under(A0, BLOB, "k", &passport), 3);
    assert_refused(&answer, RefusalCode::InvitationRevoked);
}

#[test]
fn a_crash_mid_body_leaves_an_orphan_that_opening_removes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = vec![1u8; 100_000];
    let header = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, &bytes), "4")
        .idempotency_key("k-crash")
        .build()
        .unwrap();
    {
        let mut receiver = open(dir.path());
        let Handled::ReadBody(mut body) = receiver.handle(&peer().node_id(), &header, at(0)) else {
            panic!("header refused")
        };
        body.write(&bytes[..60_000]).unwrap();
        // A crash: no destructor runs, so the staged file stays (and the OS releases the
        // store's lock). In-process: keep a copy of the file, let everything drop, put it back.
        let staging = dir.path().join("store/staging");
        let entry = fs::read_dir(&staging)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let partial = fs::read(&entry).unwrap();
        drop((body, receiver));
        fs::write(&entry, partial).unwrap();
    }
    let staging = dir.path().join("store/staging");
    assert_eq!(fs::read_dir(&staging).unwrap().count(), 1);
    let store = FsStore::open(dir.path().join("store")).unwrap();
    assert_eq!(store.orphans_removed(), 1);
    assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
    drop(store);
    // The retry is evaluated afresh and ingests once.
    let mut receiver = open(dir.path());
    let Handled::ReadBody(mut body) = receiver.handle(&peer().node_id(), &header, at(1)) else {
        panic!("header refused")
    };
    body.write(&bytes).unwrap();
    let answer = receiver.finish_push(body.complete(orbi_inac::BodyEnd::Finished), at(1));
    assert_answer(&answer, Operation::Ingested, None);
    assert_eq!(receiver.store().list().unwrap().len(), 1);
}

/// A store whose staged bodies cannot be written (a full disk).
#[derive(Clone)]
struct FullDisk(MemoryStore);

struct RefusingWriter;

/// Where [`RefusingWriter`] says it failed: the node's own path, never the peer's business.
const STAGED_AT: &str = "/srv/node/data/store/staging/body-1.part";

impl StagingWriter for RefusingWriter {
    fn write(&mut self, _bytes: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Io {
            action: "write",
            path: STAGED_AT.into(),
            source: std::io::Error::from_raw_os_error(28),
        })
    }

    fn finish(self: Box<Self>) -> Result<Box<dyn StagedBody>, StoreError> {
        Err(StoreError::Database("disk full".into()))
    }
}

impl Store for FullDisk {
    fn stage(&self) -> Result<Box<dyn StagingWriter>, StoreError> {
        Ok(Box::new(RefusingWriter))
    }

    fn contains(&self, digest: &Sha256Digest) -> Result<bool, StoreError> {
        self.0.contains(digest)
    }

    fn open(
        &self,
        digest: &Sha256Digest,
    ) -> Result<Option<Box<dyn std::io::Read + Send>>, StoreError> {
        self.0.open(digest)
    }

    fn list(&self) -> Result<Vec<StoredObject>, StoreError> {
        self.0.list()
    }
}

// Spec §6: a body the receiver cannot stage is its own temporary failure,
// `handler-unavailable` (retryable), never the sender's `malformed`.
#[test]
fn a_body_that_cannot_be_staged_is_handler_unavailable() {
    let mut config = ReceiverConfig::default();
    config.allowed_peers.insert(peer().node_id());
    let mut receiver = Receiver::new(
        receiver_key(),
        config,
        KindRegistry::builder().keep(BLOB, None).build().unwrap(),
        FullDisk(MemoryStore::new()),
        MemoryLedger::new(),
    );
    let header = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, A0), "4")
        .build()
        .unwrap();
    let Handled::ReadBody(mut body) = receiver.handle(&peer().node_id(), &header, at(1)) else {
        panic!("the header is admitted")
    };
    assert!(body.write(A0).is_err());
    let answer = receiver.finish_push(body.complete(BodyEnd::Finished), at(1));
    assert_refused(&answer, RefusalCode::HandlerUnavailable);
    assert_eq!(answer.response().unwrap().retryable, Some(true));
    // The answer goes to the peer: the node's paths and system errors stay in its log.
    let message = answer
        .response()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        !message.contains("/srv/node") && !message.contains("os error"),
        "{message}"
    );
}
