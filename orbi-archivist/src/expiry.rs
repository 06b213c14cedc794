//! The expiry clock of a stored package (spec archivist §4.4).
//!
//! - The clock starts at acceptance (`decided-at`), not at the package's `created-at`.
//! - `hard = t0 + D`; `idle = last_access + I`, where `last_access` starts at `t0` and only a
//!   `found` retrieval moves it (to the later of the two instants). Denied, unavailable and
//!   tombstoned answers, integrity revalidation, replica sync and discovery hits never do,
//!   otherwise idle expiry would never fire.
//! - `expires_at = min(hard, idle)`; the package is expired from `expires_at` on (the interval
//!   is half-open: alive on `[t0, expires_at)`). A tie is reported as `max-duration`.
//! - Expiry is final: a `found` recorded at or after the expiry the clock already shows changes
//!   nothing (from `expires_at` on every retrieval answers `tombstoned`, and §4.4 never renews
//!   silently). Record accesses in time order: each is judged against those recorded before it.
//! - Instants keep their fractions (`t0 = …:13.9` with `D = 1` lives until `…:14.9`), sums are
//!   checked in UTC, and anything past 9999-12-31T23:59:59.999999999Z (not representable in RFC
//!   3339) saturates to "never". A leap second `23:59:60.f` as `t0` or as an access counts as
//!   `23:59:59.f` for the sums ([`Timestamp::instant_to_add_to`]): one second after it is
//!   `00:00:00.f`, as in SI seconds.

use std::fmt;

use orbi_types::{
    Timestamp,
    archival::{ExpiryCause, RetrievalReason},
};
use time::{Duration, OffsetDateTime, UtcOffset};

/// A point in time, or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Deadline {
    /// At this instant (in UTC; every `At` is earlier than `Never`).
    At(OffsetDateTime),
    /// Never.
    Never,
}

impl Deadline {
    /// `start + length` seconds; `Never` when `length` is absent or the sum is not
    /// representable (past year 9999).
    pub fn after(start: OffsetDateTime, length: Option<u64>) -> Deadline {
        // In UTC first: `checked_add` works on the local date, whose year-9999 limit an
        // instant written with a positive offset reaches before its UTC form does.
        let start = start.checked_to_offset(UtcOffset::UTC);
        length
            .and_then(|length| i64::try_from(length).ok())
            .zip(start)
            .and_then(|(length, start)| start.checked_add(Duration::seconds(length)))
            .map_or(Deadline::Never, Deadline::At)
    }

    /// The deadline as a UTC timestamp (with its fraction, if any), `None` for never.
    pub fn timestamp(self) -> Option<Timestamp> {
        match self {
            Deadline::At(at) => Timestamp::from_instant_exact(at),
            Deadline::Never => None,
        }
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.timestamp() {
            Some(at) => write!(f, "{at}"),
            None => f.write_str("never"),
        }
    }
}

/// The `status` of a retrieval response (upstream `retrieval-response.v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetrievalStatus {
    /// The package was served.
    Found,
    /// The caller was refused.
    Denied,
    /// Not available now.
    Unavailable,
    /// Expired or forgotten.
    Tombstoned,
}

/// Something that touched a stored package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A retrieval answered with this status; only `Found` resets the idle clock.
    Retrieval(RetrievalStatus),
    /// The archivist's own periodic integrity revalidation.
    IntegrityRevalidation,
    /// Synchronisation between replicas.
    ReplicaSync,
    /// A discovery or listing hit.
    DiscoveryHit,
}

impl Access {
    /// Every kind of access.
    pub const ALL: [Access; 7] = [
        Access::Retrieval(RetrievalStatus::Found),
        Access::Retrieval(RetrievalStatus::Denied),
        Access::Retrieval(RetrievalStatus::Unavailable),
        Access::Retrieval(RetrievalStatus::Tombstoned),
        Access::IntegrityRevalidation,
        Access::ReplicaSync,
        Access::DiscoveryHit,
    ];

    /// Whether this access counts as "retrieval" for the idle TTL.
    pub const fn resets_idle(self) -> bool {
        matches!(self, Access::Retrieval(RetrievalStatus::Found))
    }
}

/// When a package expires and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Expiry {
    /// `min(hard, idle)`.
    pub at: Deadline,
    /// Which limit ends it; `None` when it never expires.
    pub cause: Option<ExpiryCause>,
}

/// The state of a package at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpiryStatus {
    /// Retrievable; it will expire at `expires_at`.
    Live {
        /// The current expiry.
        expires_at: Deadline,
    },
    /// Expired: retrievals answer `tombstoned` with [`ExpiryStatus::retrieval_reason`].
    Expired {
        /// When it expired.
        at: OffsetDateTime,
        /// Which limit ended it.
        cause: ExpiryCause,
    },
}

impl ExpiryStatus {
    /// The retrieval `reason/code` a `tombstoned` answer carries, `None` while live.
    pub fn retrieval_reason(self) -> Option<RetrievalReason> {
        match self {
            ExpiryStatus::Live { .. } => None,
            ExpiryStatus::Expired { cause, .. } => cause.retrieval_reason(),
        }
    }
}

/// The expiry clock of one stored package.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExpiryClock {
    accepted_at: OffsetDateTime,
    max_idle_ttl_sec: Option<u64>,
    hard: Deadline,
    last_access: OffsetDateTime,
}

/// What [`ExpiryClock::record`] made of an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// A `found` retrieval while the package was live: the idle clock now runs from the later
    /// of it and the last access before it.
    IdleRestarted,
    /// An access that never moves the idle clock (not a `found` retrieval).
    NotARetrieval,
    /// A `found` at or after the expiry the clock already showed: expiry is final, so nothing
    /// changed. A correct archivist answers `tombstoned` then; this is a late or replayed event.
    AfterExpiry {
        /// When the package expired.
        expired_at: OffsetDateTime,
        /// Which limit ended it.
        cause: ExpiryCause,
    },
}

impl ExpiryClock {
    /// A clock started at `accepted_at` with the effective terms (`None`: unbounded).
    pub fn new(
        accepted_at: &Timestamp,
        max_duration_sec: Option<u64>,
        max_idle_ttl_sec: Option<u64>,
    ) -> Self {
        ExpiryClock {
            accepted_at: accepted_at.instant(),
            max_idle_ttl_sec,
            hard: Deadline::after(accepted_at.instant_to_add_to(), max_duration_sec),
            last_access: accepted_at.instant_to_add_to(),
        }
    }

    /// Records an access at `at`. Only a `found` retrieval while the package is live moves the
    /// last access, and never backwards; once expired, the package stays expired.
    pub fn record(&mut self, access: Access, at: &Timestamp) -> Recorded {
        if !access.resets_idle() {
            return Recorded::NotARetrieval;
        }
        if let ExpiryStatus::Expired {
            at: expired_at,
            cause,
        } = self.status_at_instant(at.instant())
        {
            return Recorded::AfterExpiry { expired_at, cause };
        }
        self.last_access = self.last_access.max(at.instant_to_add_to());
        Recorded::IdleRestarted
    }

    /// The acceptance instant.
    pub fn accepted_at(&self) -> OffsetDateTime {
        self.accepted_at
    }

    /// The last successful retrieval, or the acceptance.
    pub fn last_access(&self) -> OffsetDateTime {
        self.last_access
    }

    /// `t0 + D`.
    pub fn hard_expires_at(&self) -> Deadline {
        self.hard
    }

    /// `last_access + I`.
    pub fn idle_expires_at(&self) -> Deadline {
        Deadline::after(self.last_access, self.max_idle_ttl_sec)
    }

    /// `min(hard, idle)` and its cause (a tie is `max-duration`).
    pub fn expiry(&self) -> Expiry {
        let idle = self.idle_expires_at();
        match (self.hard, idle) {
            (Deadline::Never, Deadline::Never) => Expiry {
                at: Deadline::Never,
                cause: None,
            },
            (hard, idle) if hard <= idle => Expiry {
                at: hard,
                cause: Some(ExpiryCause::MaxDuration),
            },
            (_, idle) => Expiry {
                at: idle,
                cause: Some(ExpiryCause::IdleTtl),
            },
        }
    }

    /// The state at `now`: expired iff `now ≥ expires_at`.
    pub fn status_at(&self, now: &Timestamp) -> ExpiryStatus {
        self.status_at_instant(now.instant())
    }

    fn status_at_instant(&self, now: OffsetDateTime) -> ExpiryStatus {
        let expiry = self.expiry();
        match (expiry.at, expiry.cause) {
            (Deadline::At(at), Some(cause)) if now >= at => ExpiryStatus::Expired { at, cause },
            _ => ExpiryStatus::Live {
                expires_at: expiry.at,
            },
        }
    }
}
