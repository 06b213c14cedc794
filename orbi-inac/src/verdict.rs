//! What a receiver answers: [`Verdict`] (one per initiating frame) and [`Refusal`].

use orbi_types::inac::{MAX_MESSAGE_CHARS, Operation, RefusalCode};

use crate::passport::IssuedPassport;

/// Whether a refusal with `code` may succeed when retried unchanged (spec §6 table).
///
/// `rate-limited`, `quota-exceeded`, `handler-unavailable` and `transport-unavailable` are
/// transient; every other code is permanent for the same frame. `already-present` is a success,
/// never retried.
pub const fn is_retryable(code: RefusalCode) -> bool {
    matches!(
        code,
        RefusalCode::HandlerUnavailable
            | RefusalCode::TransportUnavailable
            | RefusalCode::RateLimited
            | RefusalCode::QuotaExceeded
    )
}

/// A typed refusal: the code, an optional wait, and a message for humans.
///
/// The message never carries secrets or payload bytes; it is cut to the contract's 1024
/// characters when a frame is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    code: RefusalCode,
    retry_after_ms: Option<u64>,
    message: String,
}

impl Refusal {
    /// A refusal with `code` and a human-readable reason.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            retry_after_ms: None,
            message: message.into(),
        }
    }

    /// The same refusal asking the sender to wait `ms` milliseconds before retrying.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// `handler-unavailable`: the acceptor exists but cannot take the artifact now.
    pub fn handler_unavailable(message: impl Into<String>) -> Self {
        Refusal::new(RefusalCode::HandlerUnavailable, message)
    }

    /// The refusal code.
    pub fn code(&self) -> RefusalCode {
        self.code
    }

    /// Whether retrying may succeed ([`is_retryable`] of the code).
    pub fn retryable(&self) -> bool {
        is_retryable(self.code)
    }

    /// How long to wait before retrying, when known.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after_ms
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The wait a transient refusal of an offer asks for when it names none (e.g. the ledger is
/// unavailable).
pub const DEFAULT_DEFER_MS: u64 = 5_000;

/// A `defer` answer: try again after `retry_after_ms`, optionally with the reason's code
/// (`quota-exceeded`, `rate-limited`); an operator decision still pending carries no code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deferral {
    /// Why, when a code applies.
    pub code: Option<RefusalCode>,
    /// How long to wait before offering again.
    pub retry_after_ms: u64,
    /// For humans.
    pub message: String,
}

/// The receiver's answer to one initiating frame. [`crate::Frame::answer`] turns it into the
/// response frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// `accept` to an offer, carrying the invitation passport when one was issued.
    Accept {
        /// The invitation to push under, as issued and signed by this node.
        invitation: Option<IssuedPassport>,
    },
    /// `decline` to an offer or request.
    Decline(Refusal),
    /// `defer` to an offer.
    Defer(Deferral),
    /// `ingested`: the pushed artifact is now held.
    Ingested,
    /// `already-present`: the artifact was held already (a success).
    AlreadyPresent,
    /// `refused` to a push (or any frame that cannot be processed).
    Refuse(Refusal),
}

impl Verdict {
    /// The response operation this verdict is sent as.
    pub fn operation(&self) -> Operation {
        match self {
            Verdict::Accept { .. } => Operation::Accept,
            Verdict::Decline(_) => Operation::Decline,
            Verdict::Defer(_) => Operation::Defer,
            Verdict::Ingested => Operation::Ingested,
            Verdict::AlreadyPresent => Operation::AlreadyPresent,
            Verdict::Refuse(_) => Operation::Refused,
        }
    }

    /// The refusal code, if this verdict carries one.
    pub fn refusal_code(&self) -> Option<RefusalCode> {
        match self {
            Verdict::Decline(refusal) | Verdict::Refuse(refusal) => Some(refusal.code),
            Verdict::Defer(deferral) => deferral.code,
            _ => None,
        }
    }

    /// Whether the sender should consider the artifact delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Verdict::Ingested | Verdict::AlreadyPresent)
    }

    /// Whether the outcome is final for a repeated idempotency key (spec §3.4 rule (a)):
    /// everything except a refusal whose code is retryable.
    pub fn is_terminal(&self) -> bool {
        match self {
            Verdict::Refuse(refusal) | Verdict::Decline(refusal) => !refusal.retryable(),
            Verdict::Defer(_) => false,
            _ => true,
        }
    }

    /// The verdict for an initiating `operation` refused with `refusal`: `decline` for offers
    /// and requests, `refused` for pushes; transient reasons on an offer become `defer`, after
    /// the refusal's own wait or [`DEFAULT_DEFER_MS`] (a `defer` of 0 would invite the sender
    /// to offer again at once, while the receiver is still failing).
    pub fn refusing(operation: Operation, refusal: Refusal) -> Verdict {
        match operation {
            Operation::Offer if refusal.retryable() => Verdict::Defer(Deferral {
                code: Some(refusal.code),
                retry_after_ms: refusal.retry_after_ms.unwrap_or(DEFAULT_DEFER_MS),
                message: refusal.message,
            }),
            Operation::Offer | Operation::Request => Verdict::Decline(refusal),
            _ => Verdict::Refuse(refusal),
        }
    }
}

/// Cuts a message to the contract's limit on a character boundary.
pub(crate) fn bounded_message(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_the_spec_table() {
        let retryable: Vec<_> = RefusalCode::ALL
            .iter()
            .copied()
            .filter(|code| is_retryable(*code))
            .collect();
        assert_eq!(
            retryable,
            [
                RefusalCode::HandlerUnavailable,
                RefusalCode::TransportUnavailable,
                RefusalCode::RateLimited,
                RefusalCode::QuotaExceeded
            ]
        );
    }

    #[test]
    fn refusing_picks_the_answer_operation() {
        let limited = Refusal::new(RefusalCode::RateLimited, "slow down").retry_after_ms(5);
        let denied = Refusal::new(RefusalCode::PolicyDenied, "no");
        assert!(matches!(
            Verdict::refusing(Operation::Offer, limited.clone()),
            Verdict::Defer(Deferral {
                code: Some(RefusalCode::RateLimited),
                retry_after_ms: 5,
                ..
            })
        ));
        assert_eq!(
            Verdict::refusing(Operation::Offer, denied.clone()).operation(),
            Operation::Decline
        );
        assert_eq!(
            Verdict::refusing(Operation::Request, limited.clone()).operation(),
            Operation::Decline
        );
        assert_eq!(
            Verdict::refusing(Operation::Push, limited.clone()).operation(),
            Operation::Refused
        );
        let down = Refusal::handler_unavailable("ledger");
        assert!(matches!(
            Verdict::refusing(Operation::Offer, down),
            Verdict::Defer(Deferral {
                retry_after_ms: DEFAULT_DEFER_MS,
                ..
            })
        ));
        assert!(Verdict::Refuse(denied).is_terminal());
        assert!(!Verdict::Refuse(limited).is_terminal());
        assert!(Verdict::Ingested.is_terminal() && Verdict::AlreadyPresent.is_delivered());
    }

    #[test]
    fn message_is_bounded_by_characters() {
        let long = "ą".repeat(2000);
        assert_eq!(bounded_message(&long).chars().count(), MAX_MESSAGE_CHARS);
    }
}
