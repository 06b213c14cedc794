//! Property tests: ranking is a total, deterministic order; an unrelated advertisement never
//! reorders the others; the expiry clock never moves earlier when an access is added; effective
//! terms never exceed what the requester asked for.

use orbi_archivist::{
    Access, Advertisement, Deadline, ExpiryClock, ExpiryStatus, Policy, PreparedRequest, RankKey,
    Recorded, RetrievalStatus, decide, rank,
};
use orbi_types::{
    ArchivalStorageRequest, Artifact, Timestamp,
    strategies::{archival_storage_request, archivist_advertisement},
};
use proptest::{collection, prelude::*, sample::select};
use serde_json::{Value, json};

/// Admits generated advertisements, each under its own archivist id.
fn admit_all(values: Vec<Value>) -> Vec<Advertisement> {
    values
        .into_iter()
        .enumerate()
        .map(|(index, mut value)| {
            value["archivist/node-id"] = json!(format!("node:archivist-{index}"));
            Advertisement::admit(&value).expect("generated advertisements are valid")
        })
        .collect()
}

/// A generated request whose export gates passed, so every scope reaches the later stages
/// (without evidence the vault scopes would all be refused `curation-missing`).
fn prepared(value: &Value) -> PreparedRequest {
    PreparedRequest::new(&ArchivalStorageRequest::from_value(value).expect("generated request"))
        .with_gate_findings([])
        .expect("no findings")
}

fn order(request: &PreparedRequest, ads: &[Advertisement], candidates: &[usize]) -> Vec<usize> {
    rank(request, ads, candidates, &Policy::default())
        .into_iter()
        .map(|entry| entry.index)
        .collect()
}

/// Instants up to year 2096, half of them with a fraction of a second.
fn instant() -> impl Strategy<Value = Timestamp> {
    (
        0i64..4_000_000_000,
        prop_oneof![Just(0i64), 0i64..1_000_000_000],
    )
        .prop_map(|(seconds, nanos)| {
            let instant = time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
            )
            .unwrap();
            Timestamp::from_instant_exact(instant).unwrap()
        })
}

/// Any access, `found` retrievals as often as all the others together.
fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        Just(Access::Retrieval(RetrievalStatus::Found)),
        select(Access::ALL.to_vec()),
    ]
}

/// Durations, sometimes huge (saturation), sometimes absent (unbounded).
fn length() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        Just(None),
        (1u64..100_000_000).prop_map(Some),
        (u64::MAX - 10..=u64::MAX).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ranking_is_a_total_deterministic_order(
        request in archival_storage_request(),
        ads in collection::vec(archivist_advertisement(), 1..10),
        seed in any::<u64>(),
    ) {
        let ads = admit_all(ads);
        let request = prepared(&request);
        let all: Vec<usize> = (0..ads.len()).collect();
        let first = order(&request, &ads, &all);
        // Any input order gives the same ranking.
        let mut shuffled = all.clone();
        let len = shuffled.len();
        shuffled.rotate_left((seed as usize) % len);
        if seed % 2 == 1 {
            shuffled.reverse();
        }
        prop_assert_eq!(&order(&request, &ads, &shuffled), &first);
        // Keys are antisymmetric and strictly increase along the ranking: no ties.
        let keys: Vec<RankKey> = first
            .iter()
            .map(|&i| RankKey::new(&ads[i], &decide(&request, &ads[i], &Policy::default())))
            .collect();
        for (a, b) in keys.iter().zip(keys.iter().skip(1)) {
            prop_assert!(a < b, "{a:?} !< {b:?}");
            prop_assert_eq!(b.cmp(a), std::cmp::Ordering::Greater);
        }
    }

    #[test]
    fn an_unrelated_advertisement_never_reorders_the_others(
        request in archival_storage_request(),
        ads in collection::vec(archivist_advertisement(), 2..10),
    ) {
        let ads = admit_all(ads);
        let request = prepared(&request);
        let others: Vec<usize> = (0..ads.len() - 1).collect();
        let without = order(&request, &ads, &others);
        let all: Vec<usize> = (0..ads.len()).collect();
        let with: Vec<usize> = order(&request, &ads, &all)
            .into_iter()
            .filter(|&i| i != ads.len() - 1)
            .collect();
        prop_assert_eq!(with, without);
    }

    #[test]
    fn effective_terms_never_exceed_the_request(
        request in archival_storage_request(),
        ad in archivist_advertisement(),
    ) {
        let ads = admit_all(vec![ad]);
        let request = prepared(&request);
        let decision = decide(&request, &ads[0], &Policy::default());
        let within = |effective: Option<u64>, asked: Option<u64>| match (effective, asked) {
            (_, None) => true,
            (Some(effective), Some(asked)) => effective <= asked,
            (None, Some(_)) => false,
        };
        prop_assert!(within(decision.terms.max_duration_sec, request.max_duration_sec()));
        prop_assert!(within(decision.terms.max_idle_ttl_sec, request.max_idle_ttl_sec()));
        if let (Some(idle), Some(duration)) = (decision.terms.max_idle_ttl_sec, decision.terms.max_duration_sec) {
            prop_assert!(idle <= duration);
        }
        // Every reason comes out once, in pipeline order.
        let codes: Vec<_> = decision.reason_codes().iter().collect();
        prop_assert!(codes.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn expiry_never_moves_earlier_when_an_access_is_added(
        accepted in instant(),
        duration in length(),
        idle in length(),
        accesses in collection::vec((access(), instant()), 0..6),
        extra in (access(), instant()),
    ) {
        let mut clock = ExpiryClock::new(&accepted, duration, idle);
        for (kind, at) in &accesses {
            let _ = clock.record(*kind, at);
        }
        let before = clock.expiry();
        let _ = clock.record(extra.0, &extra.1);
        let after = clock.expiry();
        prop_assert!(after.at >= before.at, "{before:?} -> {after:?}");
        // Never past the hard limit, and never before the acceptance.
        prop_assert!(after.at <= clock.hard_expires_at());
        if let Deadline::At(at) = after.at {
            prop_assert!(at >= clock.accepted_at());
        }
    }

    /// Expiry is final: once the clock shows the package expired at some instant, no access
    /// recorded from then on changes when or why it expired.
    #[test]
    fn an_expired_package_stays_expired(
        accepted in instant(),
        duration in length(),
        idle in length(),
        accesses in collection::vec((access(), instant()), 0..6),
        late in collection::vec((access(), instant()), 1..6),
        now in instant(),
    ) {
        let mut clock = ExpiryClock::new(&accepted, duration, idle);
        for (kind, at) in &accesses {
            let _ = clock.record(*kind, at);
        }
        let before = clock.status_at(&now);
        if let ExpiryStatus::Expired { .. } = before {
            for (kind, at) in late.iter().filter(|(_, at)| at.instant() >= now.instant()) {
                let recorded = clock.record(*kind, at);
                prop_assert!(
                    !matches!(recorded, Recorded::IdleRestarted),
                    "{kind:?} at {at} after expiry: {recorded:?}"
                );
                prop_assert_eq!(clock.status_at(&now), before);
                prop_assert_eq!(clock.status_at(at), before);
            }
        }
    }

    /// The package lives exactly until `t0 + D` (fractions of a second included), not a
    /// second less or more.
    #[test]
    fn hard_expiry_is_exact_to_the_nanosecond(
        accepted in instant(),
        duration in 1u64..100_000_000,
    ) {
        let clock = ExpiryClock::new(&accepted, Some(duration), None);
        let end = accepted.instant() + time::Duration::seconds(duration as i64);
        let just_before = Timestamp::from_instant_exact(end - time::Duration::nanoseconds(1)).unwrap();
        let at_end = Timestamp::from_instant_exact(end).unwrap();
        let live = matches!(clock.status_at(&just_before), ExpiryStatus::Live { .. });
        let expired = matches!(clock.status_at(&at_end), ExpiryStatus::Expired { .. });
        prop_assert!(live, "expired 1 ns before {}", at_end);
        prop_assert!(expired, "live at {}", at_end);
        prop_assert_eq!(clock.hard_expires_at().timestamp(), Some(at_end));
    }
}
