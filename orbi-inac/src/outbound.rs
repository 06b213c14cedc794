//! The sender-side allowlist (`inac.outbound/allows`, spec §6): which local component may
//! send which operations for which schemas. Unlike inbound budgets, an **empty list grants
//! nothing**: authority is never a wildcard.

use orbi_types::inac::Operation;

/// One entry: `{component/id, operations, schemas, max/bytes?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundAllow {
    /// The local component.
    pub component_id: String,
    /// Operations it may send (empty: none).
    pub operations: Vec<Operation>,
    /// Artifact schemas it may send (empty: none).
    pub schemas: Vec<String>,
    /// Largest artifact it may send.
    pub max_bytes: Option<u64>,
}

/// Every outbound allow entry; the default grants nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundAllows {
    /// The entries; any one may grant.
    pub entries: Vec<OutboundAllow>,
}

impl OutboundAllows {
    /// Whether `component_id` may send `operation` for an artifact of `schema` and
    /// `size_bytes`.
    ///
    /// ```
    /// use orbi_inac::{OutboundAllow, OutboundAllows};
    /// use orbi_types::inac::Operation;
    ///
    /// let allows = OutboundAllows { entries: vec![OutboundAllow {
    ///     component_id: "backup".into(),
    ///     operations: vec![Operation::Push],
    ///     schemas: vec!["memarium-blob.v1".into()],
    ///     max_bytes: Some(1 << 20),
    /// }] };
    /// assert!(allows.permits("backup", Operation::Push, "memarium-blob.v1", 10));
    /// assert!(!allows.permits("backup", Operation::Offer, "memarium-blob.v1", 10));
    /// assert!(!allows.permits("backup", Operation::Push, "memarium-blob.v1", 2 << 20));
    /// ```
    pub fn permits(
        &self,
        component_id: &str,
        operation: Operation,
        schema: &str,
        size_bytes: u64,
    ) -> bool {
        self.entries.iter().any(|entry| {
            entry.component_id == component_id
                && entry.operations.contains(&operation)
                && entry.schemas.iter().any(|s| s == schema)
                && entry.max_bytes.is_none_or(|max| size_bytes <= max)
        })
    }
}
