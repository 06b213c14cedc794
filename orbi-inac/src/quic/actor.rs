//! The receiver on its own thread. Exchange tasks send it jobs; it takes every job that is
//! waiting (up to [`super::TransportConfig::group_max`]), decides them as one group, commits
//! the group's ledger writes once ([`Receiver::commit_group`]) and only then replies. Under
//! load that turns one durable commit per decision into one per group; an idle node still
//! answers each job at once. When the ledger can defer its sync ([`Receiver::defer_sync`]), a
//! syncer thread makes each batch of committed groups durable and only then releases their
//! answers, while the receiver already decides the next group.
//!
//! Tasks ([`ReceiverHandle::run`]: operator decisions, reads) run outside any group: the
//! decisions before a task are committed first, the task's writes commit as it makes them, and
//! its result is returned only once they are durable, like an answer.

use std::{io::Read, time::SystemTime};

use orbi_types::{NodeId, inac::Operation};
use tokio::sync::{mpsc, oneshot};

use crate::{
    CompletedBody, DecodeError, Frame, Handled, Receiver, Refusal, ServeArtifact, Verdict,
    ledger::SyncHandle,
};

/// What the receiver decided about one initiating frame.
pub(crate) enum Decision {
    Answer(Frame),
    ReadBody(crate::IncomingBody),
    Serve(ServeArtifact, Option<Box<dyn Read + Send>>),
    NoAnswer,
}

/// Delivers a task's result: `true` once what it wrote is durable, `false` if that failed.
type Deliver = Box<dyn FnOnce(bool) + Send>;

type Task = Box<dyn FnOnce(&mut Receiver) -> Deliver + Send>;

enum Job {
    Frame {
        peer: NodeId,
        decoded: Box<Result<Frame, DecodeError>>,
        reply: oneshot::Sender<Decision>,
    },
    Unread {
        peer: NodeId,
        refusal: Refusal,
        reply: oneshot::Sender<Frame>,
    },
    Finish {
        body: Box<CompletedBody>,
        reply: oneshot::Sender<Frame>,
    },
    Run(Task),
}

enum Reply {
    Decision(oneshot::Sender<Decision>, Decision),
    Frame(oneshot::Sender<Frame>, Frame),
    /// A task's result, with whether its writes are durable.
    Task(Deliver, bool),
}

/// How committed writes become durable before their replies go out.
struct Durability {
    /// A thread syncing batches of groups while the receiver decides the next one.
    syncer: Option<std::sync::mpsc::Sender<Vec<Reply>>>,
    /// Without the syncer: this thread syncs each group itself.
    inline: Option<SyncHandle>,
    /// Set for good by the first failed sync (see [`SyncFailed`]).
    failed_sync: SyncFailed,
}

/// Whether a ledger sync has failed. After a failed `fdatasync` the kernel may have dropped
/// the dirty pages and marked them clean, so a later sync can succeed without writing them,
/// while the commits they held stay visible to the receiver: a retried push would be answered
/// from a decision that is not on disk. So one failure withdraws every success from then on
/// and stops the node ([`Thread::failed`]); a restart recovers from what the disk really holds.
#[derive(Clone)]
struct SyncFailed {
    set: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fail: Fail,
}

impl SyncFailed {
    fn new(fail: Fail) -> Self {
        SyncFailed {
            set: Default::default(),
            fail,
        }
    }

    fn is_set(&self) -> bool {
        self.set.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn record(&self, error: &std::io::Error) {
        tracing::error!(%error, "ledger sync failed; no answer reports success from now on, and the node stops");
        self.set.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.fail.send(true);
    }
}

/// The task ended before its writes were confirmed durable.
#[derive(Debug)]
pub(crate) struct NotDurable;

/// Why [`ReceiverHandle::run`] returned no result.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The actor is gone.
    Gone,
    /// The task ran, but its writes may not be durable.
    NotDurable,
}

/// The actor is gone (its thread ended: the server shut down or a job panicked).
#[derive(Debug)]
pub(crate) struct Gone;

/// A handle to the receiver thread.
#[derive(Clone)]
pub(crate) struct ReceiverHandle {
    jobs: mpsc::Sender<Job>,
}

/// The receiver thread: its end, and a flag set if it ends by a panic.
pub(crate) struct Thread {
    /// Ends with the receiver, or `None` after a panic.
    pub(crate) join: std::thread::JoinHandle<Option<Receiver>>,
    /// Becomes `true` if the thread panicked.
    pub(crate) failed: tokio::sync::watch::Receiver<bool>,
}

/// Starts the receiver thread; it ends when every handle is dropped, returning the receiver.
pub(crate) fn spawn(
    receiver: Receiver,
    group_max: usize,
) -> std::io::Result<(ReceiverHandle, Thread)> {
    let (jobs, queue) = mpsc::channel(1024);
    let (fail, failed) = tokio::sync::watch::channel(false);
    let fail = std::sync::Arc::new(fail);
    let join = std::thread::Builder::new()
        .name("inac-receiver".into())
        .spawn(move || {
            // A panic is a bug; the node must then stop loudly rather than refuse every
            // exchange from here on. The jobs it held are dropped, so their exchanges end.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(receiver, queue, group_max.max(1), &fail)
            }));
            if ran.is_err() {
                tracing::error!("the inac receiver stopped after a panic");
                let _ = fail.send(true);
            }
            ran.ok()
        })?;
    Ok((ReceiverHandle { jobs }, Thread { join, failed }))
}

/// Reports a failure of the receiver or of its syncer ([`Thread::failed`]).
type Fail = std::sync::Arc<tokio::sync::watch::Sender<bool>>;

fn run(
    mut receiver: Receiver,
    mut queue: mpsc::Receiver<Job>,
    group_max: usize,
    fail: &Fail,
) -> Receiver {
    // With a syncer, the receiver goes on deciding while the previous group reaches the disk;
    // answers wait for their sync either way.
    let deferred = match receiver.defer_sync() {
        Ok(handle) => handle,
        Err(error) => {
            tracing::warn!(%error, "cannot defer ledger syncs; every group syncs in its commit");
            None
        }
    };
    // Without the syncer thread, this thread syncs each group itself before answering.
    let failed_sync = SyncFailed::new(fail.clone());
    let syncer = deferred
        .clone()
        .and_then(|handle| spawn_syncer(handle, failed_sync.clone()));
    let inline = deferred.filter(|_| syncer.is_none());
    let durability = Durability {
        syncer,
        inline,
        failed_sync,
    };
    let mut group = Vec::with_capacity(group_max);
    let mut replies = Vec::with_capacity(group_max);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < group_max {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let now = SystemTime::now();
        let mut open = false;
        for job in group.drain(..) {
            let Job::Run(task) = job else {
                if !open {
                    receiver.begin_group();
                    open = true;
                }
                replies.extend(decide(&mut receiver, job, now));
                continue;
            };
            if open {
                flush(&mut receiver, &mut replies, &durability);
                open = false;
            }
            let deliver = task(&mut receiver);
            replies.push(Reply::Task(deliver, true));
            flush(&mut receiver, &mut replies, &durability);
        }
        if open {
            flush(&mut receiver, &mut replies, &durability);
        }
    }
    receiver
}

/// Decides one job of a group (a task is not one: `None`).
fn decide(receiver: &mut Receiver, job: Job, now: SystemTime) -> Option<Reply> {
    Some(match job {
        Job::Frame {
            peer,
            decoded,
            reply,
        } => {
            let decision = match receiver.handle_decoded(&peer, *decoded, now) {
                Handled::Answer(frame) => Decision::Answer(frame),
                Handled::ReadBody(body) => Decision::ReadBody(body),
                Handled::Serve(serve) => {
                    let body = if serve.is_inline() {
                        None
                    } else {
                        receiver
                            .store()
                            .open(&serve.descriptor().digest)
                            .ok()
                            .flatten()
                    };
                    Decision::Serve(serve, body)
                }
                Handled::NoAnswer => Decision::NoAnswer,
            };
            Reply::Decision(reply, decision)
        }
        Job::Unread {
            peer,
            refusal,
            reply,
        } => Reply::Frame(reply, receiver.refuse_unread(&peer, refusal, now)),
        Job::Finish { body, reply } => Reply::Frame(reply, receiver.finish_push(*body, now)),
        Job::Run(_) => return None,
    })
}

/// Commits the open group (if any) and sends `replies` once what they report is durable.
fn flush(receiver: &mut Receiver, replies: &mut Vec<Reply>, durability: &Durability) {
    let mut replies = std::mem::take(replies);
    if let Err(error) = receiver.commit_group() {
        tracing::error!(%error, decisions = replies.len(), "group commit failed");
        // The node goes on serving: its counts must say what the peers were told.
        withdraw_successes(&mut replies, |was| receiver.count_withdrawn(was));
    }
    match &durability.syncer {
        Some(syncer) => {
            if let Err(unsent) = syncer.send(replies) {
                // The syncer is gone: nothing can be confirmed durable.
                let mut replies = unsent.0;
                withdraw_successes(&mut replies, |_| {});
                send_all(replies);
            }
        }
        None => {
            if let Some(handle) = &durability.inline
                && let Err(error) = handle.sync()
            {
                durability.failed_sync.record(&error);
            }
            if durability.failed_sync.is_set() {
                withdraw_successes(&mut replies, |_| {});
            }
            send_all(replies);
        }
    }
}

/// Replaces every answer that reports success (the decision is not durable); `withdrawn` gets
/// each replaced answer's operation.
fn withdraw_successes(replies: &mut [Reply], mut withdrawn: impl FnMut(Operation)) {
    for reply in replies {
        let frame = match reply {
            Reply::Decision(_, Decision::Answer(frame)) | Reply::Frame(_, frame) => frame,
            Reply::Task(_, durable) => {
                *durable = false;
                continue;
            }
            Reply::Decision(..) => continue,
        };
        let operation = frame.operation();
        if matches!(
            operation,
            Operation::Refused | Operation::Decline | Operation::Defer
        ) {
            continue;
        }
        withdrawn(operation);
        let refusal = Refusal::handler_unavailable("the receiver's ledger is unavailable");
        let verdict = match operation {
            Operation::Accept => Verdict::refusing(Operation::Offer, refusal),
            _ => Verdict::Refuse(refusal),
        };
        *frame = Frame::answer(frame.correlation_id(), &verdict);
    }
}

fn send_all(replies: Vec<Reply>) {
    for reply in replies {
        match reply {
            Reply::Decision(reply, decision) => {
                let _ = reply.send(decision);
            }
            Reply::Frame(reply, frame) => {
                let _ = reply.send(frame);
            }
            Reply::Task(deliver, durable) => deliver(durable),
        }
    }
}

/// A thread that syncs the ledger once for every batch of groups waiting, then releases their
/// answers. Ends when the receiver thread drops its sender.
/// A panic there (a bug) is reported like the receiver's own: without the syncer every answer
/// would be withdrawn from then on.
fn spawn_syncer(
    handle: SyncHandle,
    failed_sync: SyncFailed,
) -> Option<std::sync::mpsc::Sender<Vec<Reply>>> {
    let (sender, groups) = std::sync::mpsc::channel::<Vec<Reply>>();
    let spawned = std::thread::Builder::new()
        .name("inac-ledger-sync".into())
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                while let Ok(first) = groups.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(groups.try_iter());
                    if let Err(error) = handle.sync() {
                        failed_sync.record(&error);
                    }
                    for mut replies in waiting {
                        if failed_sync.is_set() {
                            withdraw_successes(&mut replies, |_| {});
                        }
                        send_all(replies);
                    }
                }
            }));
            if ran.is_err() {
                tracing::error!("the inac ledger syncer stopped after a panic");
                let _ = failed_sync.fail.send(true);
            }
        });
    match spawned {
        Ok(_) => Some(sender),
        Err(error) => {
            tracing::warn!(%error, "cannot start the ledger sync thread");
            None
        }
    }
}

impl ReceiverHandle {
    async fn call<T>(&self, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, Gone> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(job(reply)).await.map_err(|_| Gone)?;
        answer.await.map_err(|_| Gone)
    }

    /// Decides about one initiating frame from `peer`, decoded by the caller.
    pub(crate) async fn frame(
        &self,
        peer: NodeId,
        decoded: Result<Frame, DecodeError>,
    ) -> Result<Decision, Gone> {
        self.call(|reply| Job::Frame {
            peer,
            decoded: Box::new(decoded),
            reply,
        })
        .await
    }

    /// Logs and answers a frame that could not be read.
    pub(crate) async fn unread(&self, peer: NodeId, refusal: Refusal) -> Result<Frame, Gone> {
        self.call(|reply| Job::Unread {
            peer,
            refusal,
            reply,
        })
        .await
    }

    /// Finishes a stream-mode push.
    pub(crate) async fn finish(&self, body: CompletedBody) -> Result<Frame, Gone> {
        self.call(|reply| Job::Finish {
            body: Box::new(body),
            reply,
        })
        .await
    }

    /// Runs `task` on the receiver thread, outside any group, and returns its result once what
    /// it wrote is durable.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Receiver) -> T + Send + 'static,
    ) -> Result<T, RunError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Run(Box::new(move |receiver: &mut Receiver| {
            let value = task(receiver);
            Box::new(move |durable: bool| {
                let _ = reply.send(if durable { Ok(value) } else { Err(NotDurable) });
            }) as Deliver
        }));
        self.jobs.send(job).await.map_err(|_| RunError::Gone)?;
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(NotDurable)) => Err(RunError::NotDurable),
            Err(_) => Err(RunError::Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Mutex, mpsc as sync_mpsc},
        task::{Context, Waker},
        time::Duration,
    };

    use orbi_types::KeyPair;

    use super::*;
    use crate::{KindRegistry, MemoryLedger, MemoryStore, ReceiverConfig};

    const PASSPORT: &str = "passport:capability:x";

    fn receiver(sync: impl Fn() -> std::io::Result<()> + Send + Sync + 'static) -> Receiver {
        let mut ledger = MemoryLedger::new();
        ledger.deferred = Some(SyncHandle::new(sync));
        let kinds = KindRegistry::builder().build().unwrap();
        let key = KeyPair::from_seed(&[1; 32]);
        Receiver::new(
            key,
            ReceiverConfig::default(),
            kinds,
            MemoryStore::new(),
            ledger,
        )
    }

    fn revoke(receiver: &mut Receiver) -> bool {
        receiver
            .revoke_passport(PASSPORT, SystemTime::now())
            .is_ok()
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_task_returns_only_once_its_writes_are_durable() {
        let (started, syncing) = sync_mpsc::channel();
        let (release, released) = sync_mpsc::channel::<()>();
        let (started, released) = (Mutex::new(started), Mutex::new(released));
        // Each sync reports that it began, then waits until the test lets it end.
        let receiver = receiver(move || {
            let _ = started.lock().unwrap().send(());
            let _ = released.lock().unwrap().recv();
            Ok(())
        });
        let (handle, thread) = spawn(receiver, 8).unwrap();
        let thread = thread.join;
        let mut run = Box::pin(handle.run(revoke));
        let mut context = Context::from_waker(Waker::noop());
        assert!(
            run.as_mut().poll(&mut context).is_pending(),
            "the job is queued"
        );
        syncing
            .recv_timeout(Duration::from_secs(10))
            .expect("the task's writes are synced");
        assert!(
            run.as_mut().poll(&mut context).is_pending(),
            "no result while the sync is under way"
        );
        drop(release);
        assert!(block_on(run).unwrap(), "revoked");
        drop(handle);
        let receiver = thread.join().unwrap().unwrap();
        assert!(receiver.ledger().is_revoked(PASSPORT).unwrap());
    }

    #[test]
    fn a_syncer_that_panics_is_reported_as_a_failure() {
        let receiver = receiver(|| panic!("a bug in the ledger sync"));
        let (handle, thread) = spawn(receiver, 8).unwrap();
        // The task's result is dropped with the syncer: nothing is confirmed durable.
        assert!(matches!(block_on(handle.run(revoke)), Err(RunError::Gone)));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !*thread.failed.borrow() {
            assert!(
                std::time::Instant::now() < deadline,
                "the failure is reported"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(handle);
        assert!(
            thread.join.join().unwrap().is_some(),
            "the receiver itself ends normally"
        );
    }

    #[test]
    fn after_one_failed_sync_nothing_reports_success_and_the_node_stops() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use orbi_types::inac::Operation;

        use crate::Descriptor;
        // The first sync fails (EIO); later ones succeed, as on Linux after a writeback error
        // even though the pages of the first were never written.
        let syncs = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = syncs.clone();
        let mut ledger = MemoryLedger::new();
        ledger.deferred = Some(SyncHandle::new(move || {
            match counted.fetch_add(1, Ordering::SeqCst) {
                0 => Err(std::io::Error::from_raw_os_error(5)),
                _ => Ok(()),
            }
        }));
        let peer = KeyPair::from_seed(&[2; 32]).node_id();
        let mut config = ReceiverConfig::default();
        config.allowed_peers.insert(peer.clone());
        let kinds = KindRegistry::builder()
            .keep("blob.v1", None)
            .build()
            .unwrap();
        let key = KeyPair::from_seed(&[1; 32]);
        let receiver = Receiver::new(key, config, kinds, MemoryStore::new(), ledger);
        let (handle, thread) = spawn(receiver, 8).unwrap();
        let bytes = br#"{"hello":"world"}"#;
        let descriptor = Descriptor::of_bytes("blob.v1", "application/json", bytes);
        let push = |key: &str| {
            Frame::push_inline(&descriptor, bytes)
                .idempotency_key(key)
                .build()
                .unwrap()
        };
        let answer = |frame: Frame| match block_on(handle.frame(peer.clone(), Ok(frame))) {
            Ok(Decision::Answer(frame)) => frame,
            _ => panic!("an answer"),
        };
        assert_eq!(answer(push("k-1")).operation(), Operation::Refused);
        assert!(*thread.failed.borrow(), "the failure stops the node");
        // The retry would be replayed from the decision whose sync failed: withdrawn too, as
        // is any other success.
        let retry = answer(push("k-1"));
        assert_eq!(retry.operation(), Operation::Refused);
        let refusal = retry.response().and_then(|response| response.refusal_code);
        assert_eq!(
            refusal,
            Some(orbi_types::inac::RefusalCode::HandlerUnavailable)
        );
        assert_eq!(answer(push("k-2")).operation(), Operation::Refused);
        assert!(syncs.load(Ordering::SeqCst) >= 2, "later syncs succeeded");
        assert!(matches!(
            block_on(handle.run(revoke)),
            Err(RunError::NotDurable)
        ));
        drop(handle);
        thread.join.join().unwrap();
    }

    #[test]
    fn a_task_whose_writes_fail_to_sync_returns_no_result() {
        let receiver = receiver(|| Err(std::io::Error::other("the disk is gone")));
        let (handle, thread) = spawn(receiver, 8).unwrap();
        let thread = thread.join;
        assert!(matches!(
            block_on(handle.run(revoke)),
            Err(RunError::NotDurable)
        ));
        drop(handle);
        thread.join().unwrap();
    }
}
