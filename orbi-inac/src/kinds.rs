//! Which artifact kinds this node accepts, and who decides about each: the [`KindRegistry`]
//! of [`Acceptor`]s.
//!
//! A kind is `(artifact schema, media type)`. Lookup prefers an exact registration over the
//! schema's wildcard (any media type). Two authoritative acceptors for one key are a
//! configuration error found when the registry is built ([`KindConflicts`]), never resolved by
//! registration order. A kind with no acceptor is refused (`kind-not-supported`) and nothing is
//! stored: keeping bytes requires an explicit [`StoreAcceptor`] registration.

use std::{collections::BTreeMap, fmt, io::Read, sync::Arc};

use orbi_types::NodeId;

use crate::{Descriptor, Refusal, store::StoreError};

/// What an acceptor decides about a verified artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Keep the bytes in this node's content-addressed store (answered `ingested`, or
    /// `already-present` when the store already holds them).
    Keep,
    /// The acceptor took the bytes into its own custody (answered `ingested`).
    Taken,
    /// The acceptor already holds this artifact, e.g. by its domain id (`already-present`).
    AlreadyPresent,
    /// Refused; a retryable code such as `handler-unavailable` lets the sender retry.
    Refuse(Refusal),
}

/// A verified artifact offered to an acceptor: size and digest match the descriptor.
pub struct Delivery<'a> {
    pub(crate) peer: &'a NodeId,
    pub(crate) descriptor: &'a Descriptor,
    pub(crate) body: DeliveryBody<'a>,
}

pub(crate) enum DeliveryBody<'a> {
    Memory(&'a [u8]),
    Staged(&'a dyn crate::store::StagedBody),
}

impl Delivery<'_> {
    /// The authenticated node that pushed it.
    pub fn peer(&self) -> &NodeId {
        self.peer
    }

    /// What it is.
    pub fn descriptor(&self) -> &Descriptor {
        self.descriptor
    }

    /// Reads the exact bytes (from memory for inline pushes, from the staged file for
    /// streamed ones).
    pub fn open(&self) -> Result<Box<dyn Read + '_>, StoreError> {
        match self.body {
            DeliveryBody::Memory(bytes) => Ok(Box::new(bytes)),
            DeliveryBody::Staged(staged) => staged.open(),
        }
    }

    /// The bytes when they are already in memory (inline pushes).
    pub fn in_memory(&self) -> Option<&[u8]> {
        match self.body {
            DeliveryBody::Memory(bytes) => Some(bytes),
            DeliveryBody::Staged(_) => None,
        }
    }
}

/// Decides about verified artifacts of the kinds it is registered for.
///
/// Called only after the sender was authorized and the bytes matched size and digest. It runs
/// synchronously inside the receiver; a slow acceptor should hand work off and answer
/// [`Acceptance::Taken`]. It may be called again for the same artifact after a retryable
/// outcome, so it must be idempotent.
pub trait Acceptor: Send + Sync {
    /// Decides about one artifact.
    fn accept(&self, delivery: &Delivery<'_>) -> Acceptance;

    /// The largest artifact this acceptor takes, if it has a limit: a push or offer declaring
    /// more is refused `payload-too-large` with the header, before any body byte is read
    /// (default: none beyond the receiver's own).
    fn max_size_bytes(&self) -> Option<u64> {
        None
    }
}

impl<F> Acceptor for F
where
    F: Fn(&Delivery<'_>) -> Acceptance + Send + Sync,
{
    fn accept(&self, delivery: &Delivery<'_>) -> Acceptance {
        self(delivery)
    }
}

/// The acceptor an operator registers for the kinds it wants kept: every verified artifact goes
/// into this node's content-addressed store.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreAcceptor;

impl Acceptor for StoreAcceptor {
    fn accept(&self, _: &Delivery<'_>) -> Acceptance {
        Acceptance::Keep
    }
}

/// A registration key: an artifact schema and a media type, or every media type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindKey {
    /// The artifact schema.
    pub schema: String,
    /// The media type; `None` matches any for which no exact registration exists.
    pub content_type: Option<String>,
}

impl fmt::Display for KindKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.content_type {
            Some(content_type) => write!(f, "{}={content_type}", self.schema),
            None => write!(f, "{}=*", self.schema),
        }
    }
}

#[derive(Clone)]
enum Route {
    Acceptor(Arc<dyn Acceptor>),
    Conflicted,
}

/// The result of a kind lookup.
pub enum KindMatch<'a> {
    /// The acceptor that decides.
    Acceptor(&'a dyn Acceptor),
    /// More than one authoritative acceptor claims this kind (a degraded registry).
    Conflicted,
    /// Nobody accepts this kind.
    Unsupported,
}

/// The acceptors by kind. Build it with [`KindRegistry::builder`]; the default accepts nothing.
#[derive(Clone, Default)]
pub struct KindRegistry {
    routes: BTreeMap<KindKey, Route>,
}

impl fmt::Debug for KindRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.routes.keys().map(KindKey::to_string).collect();
        write!(f, "KindRegistry({keys:?})")
    }
}

impl KindRegistry {
    /// A builder with no registrations.
    pub fn builder() -> KindRegistryBuilder {
        KindRegistryBuilder::default()
    }

    /// Finds who decides about `(schema, content_type)`: an exact registration, else the
    /// schema's wildcard.
    pub fn lookup(&self, schema: &str, content_type: &str) -> KindMatch<'_> {
        let exact = KindKey {
            schema: schema.to_owned(),
            content_type: Some(content_type.to_owned()),
        };
        let wildcard = KindKey {
            schema: schema.to_owned(),
            content_type: None,
        };
        match self
            .routes
            .get(&exact)
            .or_else(|| self.routes.get(&wildcard))
        {
            Some(Route::Acceptor(acceptor)) => KindMatch::Acceptor(acceptor.as_ref()),
            Some(Route::Conflicted) => KindMatch::Conflicted,
            None => KindMatch::Unsupported,
        }
    }

    /// Every registered key, with whether it is usable (`false` for a conflicted key).
    pub fn keys(&self) -> impl Iterator<Item = (&KindKey, bool)> {
        self.routes
            .iter()
            .map(|(key, route)| (key, matches!(route, Route::Acceptor(_))))
    }
}

/// Collects registrations; [`KindRegistryBuilder::build`] refuses conflicts.
#[derive(Default)]
pub struct KindRegistryBuilder {
    registrations: Vec<(KindKey, Arc<dyn Acceptor>)>,
}

impl KindRegistryBuilder {
    /// Registers `acceptor` for `schema` with `content_type` (`None`: any media type).
    pub fn accept(
        mut self,
        schema: &str,
        content_type: Option<&str>,
        acceptor: impl Acceptor + 'static,
    ) -> Self {
        self.registrations.push((
            KindKey {
                schema: schema.to_owned(),
                content_type: content_type.map(str::to_owned),
            },
            Arc::new(acceptor),
        ));
        self
    }

    /// Registers the [`StoreAcceptor`]: keep artifacts of this kind in the store.
    pub fn keep(self, schema: &str, content_type: Option<&str>) -> Self {
        self.accept(schema, content_type, StoreAcceptor)
    }

    /// The registry, or every key claimed more than once.
    pub fn build(self) -> Result<KindRegistry, KindConflicts> {
        let mut routes = BTreeMap::new();
        let mut conflicts = Vec::new();
        for (key, acceptor) in self.registrations {
            match routes.get(&key) {
                None => {
                    routes.insert(key, Route::Acceptor(acceptor));
                }
                Some(_) => {
                    if !conflicts.contains(&key) {
                        conflicts.push(key.clone());
                    }
                    routes.insert(key, Route::Conflicted);
                }
            }
        }
        let registry = KindRegistry { routes };
        if conflicts.is_empty() {
            Ok(registry)
        } else {
            Err(KindConflicts {
                keys: conflicts,
                degraded: registry,
            })
        }
    }
}

/// Kinds claimed by more than one authoritative acceptor: the registry is not ready.
#[derive(thiserror::Error)]
#[error("conflicting acceptors registered for {}", self.keys.iter().map(KindKey::to_string).collect::<Vec<_>>().join(", "))]
pub struct KindConflicts {
    keys: Vec<KindKey>,
    degraded: KindRegistry,
}

impl fmt::Debug for KindConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KindConflicts({:?})", self.keys)
    }
}

impl KindConflicts {
    /// The conflicted keys.
    pub fn keys(&self) -> &[KindKey] {
        &self.keys
    }

    /// Runs anyway with the conflicted routes disabled: artifacts of those kinds are refused
    /// with `kind-conflict`; every other kind works.
    pub fn into_degraded(self) -> KindRegistry {
        self.degraded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(_: &Delivery<'_>) -> Acceptance {
        Acceptance::Taken
    }

    #[test]
    fn exact_beats_wildcard() {
        let registry = KindRegistry::builder()
            .accept("vendor.x.v1", Some("application/json"), taken)
            .keep("vendor.x.v1", None)
            .build()
            .unwrap();
        let peer = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let descriptor = Descriptor::of_bytes("vendor.x.v1", "application/json", b"{}");
        let delivery = Delivery {
            peer: &peer,
            descriptor: &descriptor,
            body: DeliveryBody::Memory(b"{}"),
        };
        let decide = |content_type| match registry.lookup("vendor.x.v1", content_type) {
            KindMatch::Acceptor(acceptor) => Some(acceptor.accept(&delivery)),
            _ => None,
        };
        assert_eq!(decide("application/json"), Some(Acceptance::Taken));
        assert_eq!(decide("text/plain"), Some(Acceptance::Keep));
        assert!(matches!(
            registry.lookup("vendor.y.v1", "text/plain"),
            KindMatch::Unsupported
        ));
        assert!(matches!(
            KindRegistry::default().lookup("vendor.x.v1", "text/plain"),
            KindMatch::Unsupported
        ));
    }

    #[test]
    fn duplicates_are_a_build_error_never_resolved_by_order() {
        let error = KindRegistry::builder()
            .keep("vendor.x.v1", Some("application/json"))
            .accept("vendor.x.v1", Some("application/json"), taken)
            .keep("vendor.x.v1", None)
            .keep("vendor.x.v1", None)
            .keep("vendor.z.v1", None)
            .build()
            .unwrap_err();
        assert_eq!(error.keys().len(), 2);
        assert_eq!(
            error.to_string(),
            "conflicting acceptors registered for vendor.x.v1=application/json, vendor.x.v1=*"
        );
        let degraded = error.into_degraded();
        assert!(matches!(
            degraded.lookup("vendor.x.v1", "application/json"),
            KindMatch::Conflicted
        ));
        assert!(matches!(
            degraded.lookup("vendor.x.v1", "text/plain"),
            KindMatch::Conflicted
        ));
        assert!(matches!(
            degraded.lookup("vendor.z.v1", "text/plain"),
            KindMatch::Acceptor(_)
        ));
        assert_eq!(degraded.keys().filter(|(_, usable)| !usable).count(), 2);
    }
}
