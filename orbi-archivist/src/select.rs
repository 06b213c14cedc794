//! Choosing among many archivists (spec archivist §4.1 stage 0b, §4.6): the newest
//! advertisement per archivist, exclusions with reasons, a deterministic ranking, and the
//! replication set over distinct archivists.
//!
//! Everything works on indices into a slice of admitted advertisements, so callers keep
//! whatever they know about each one (its file, its cache entry).

use std::{
    cmp::{Ordering, Reverse},
    collections::{HashMap, HashSet},
    fmt,
};

use orbi_types::{
    ArchivistAdvertisement, Timestamp,
    archival::{ExclusionCode, ReplicationCommitment},
};

use crate::{
    advertisement::Advertisement,
    engine::{Decision, Policy, Verdict, decide},
    request::PreparedRequest,
};

/// An advertisement left out before matching, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// Index into the admitted advertisements.
    pub index: usize,
    /// Why.
    pub code: ExclusionCode,
    /// The detail in words.
    pub detail: String,
}

/// The outcome of stage 0b over admitted advertisements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Indices of the advertisements to match, in input order.
    pub current: Vec<usize>,
    /// The others, in input order.
    pub excluded: Vec<Exclusion>,
}

/// Stage 0b and local policy: per archivist only the newest advertisement counts (ties: the
/// larger `advertisement/id`); future-dated (beyond the skew), stale (beyond the configured
/// age), disallowed (allow/deny lists) and, for a direct submission, other archivists'
/// advertisements are excluded. Copies of the newest one (same id and `created-at`) count
/// once, the later input kept; if they differ in anything but `policy_annotations`, every
/// one of them is excluded `advertisement-conflicting`, so the outcome never depends on input
/// order and nobody can pick which terms hold by sending a twin. Each excluded advertisement
/// gets exactly one code, the first that applies in the order future-dated, conflicting,
/// superseded, stale, not allowed, not targeted. `policy_annotations` never take part.
pub fn select(
    ads: &[Advertisement],
    target: Option<&str>,
    policy: &Policy,
    now: &Timestamp,
) -> Selection {
    let now_nanos = now.instant().unix_timestamp_nanos();
    let seconds = |s: u64| i128::from(s) * 1_000_000_000;
    let future_limit = now_nanos.saturating_add(seconds(policy.max_future_skew_sec));
    let mut current = Vec::new();
    let mut excluded = Vec::new();
    let mut exclude = |index: usize, code: ExclusionCode, detail: String| {
        excluded.push(Exclusion {
            index,
            code,
            detail,
        })
    };

    // The newest advertisement per archivist among those not future-dated; ties go to the
    // larger `advertisement/id`, then the later input.
    let newness = |index: usize| {
        let ad = &ads[index];
        (ad.created_nanos(), ad.id(), index)
    };
    // Per archivist (by first appearance) its newest advertisement; per advertisement the
    // archivist's slot, or NOT_PRESENT when future-dated.
    const NOT_PRESENT: usize = usize::MAX;
    let mut slots: HashMap<&str, usize> = HashMap::with_capacity(ads.len());
    let mut newest: Vec<usize> = Vec::new();
    let mut slot_of = vec![NOT_PRESENT; ads.len()];
    for (index, ad) in ads.iter().enumerate() {
        if ad.created_nanos() > future_limit {
            exclude(
                index,
                ExclusionCode::AdvertisementFutureDated,
                format!(
                    "created-at {} is more than {} s after now ({now})",
                    ad.created_at(),
                    policy.max_future_skew_sec
                ),
            );
            continue;
        }
        let slot = *slots.entry(ad.archivist()).or_insert_with(|| {
            newest.push(index);
            newest.len() - 1
        });
        if newness(index) > newness(newest[slot]) {
            newest[slot] = index;
        }
        slot_of[index] = slot;
    }
    // An archivist whose newest id and instant come with different terms has no current
    // advertisement.
    let mut conflicting = vec![false; newest.len()];
    for (index, &slot) in slot_of.iter().enumerate() {
        if let Some(&winner) = newest.get(slot)
            && winner != index
            && twins(&ads[winner], &ads[index])
            && !same_terms(&ads[winner], &ads[index])
        {
            conflicting[slot] = true;
        }
    }
    let age_limit = policy.max_advertisement_age_sec.map(seconds);
    for (index, ad) in ads.iter().enumerate() {
        let Some(&winner) = newest.get(slot_of[index]) else {
            continue;
        };
        if conflicting[slot_of[index]] && twins(&ads[winner], ad) {
            exclude(
                index,
                ExclusionCode::AdvertisementConflicting,
                format!(
                    "archivist {} published different documents as {} (created-at {}); none \
                     is used",
                    ad.archivist(),
                    ad.id(),
                    ad.created_at()
                ),
            );
        } else if winner != index {
            let detail = if twins(&ads[winner], ad) {
                format!("a later copy of {} is kept", ad.id())
            } else {
                format!(
                    "{} (created-at {}) supersedes it for archivist {}",
                    ads[winner].id(),
                    ads[winner].created_at(),
                    ad.archivist()
                )
            };
            exclude(index, ExclusionCode::AdvertisementSuperseded, detail);
        } else if let Some(limit) = age_limit
            && now_nanos.saturating_sub(ad.created_nanos()) > limit
        {
            exclude(
                index,
                ExclusionCode::AdvertisementStale,
                format!(
                    "created-at {} is more than {} s before now ({now})",
                    ad.created_at(),
                    policy.max_advertisement_age_sec.unwrap_or_default()
                ),
            );
        } else if !policy.allows(ad.archivist()) {
            exclude(
                index,
                ExclusionCode::ArchivistNotAllowed,
                format!("local policy does not allow archivist {}", ad.archivist()),
            );
        } else if let Some(target) = target.filter(|target| *target != ad.archivist()) {
            exclude(
                index,
                ExclusionCode::ArchivistNotTargeted,
                format!("the request is a direct submission to {target}"),
            );
        } else {
            current.push(index);
        }
    }
    current.sort_unstable();
    excluded.sort_by_key(|exclusion| exclusion.index);
    Selection { current, excluded }
}

/// Whether two advertisements claim to be the same publication: one archivist, one
/// `advertisement/id`, one `created-at` instant.
fn twins(a: &Advertisement, b: &Advertisement) -> bool {
    a.archivist() == b.archivist() && a.id() == b.id() && a.created_nanos() == b.created_nanos()
}

/// Whether two twins state the same terms: `policy_annotations` aside, and `created-at` as
/// an instant (twins share it, perhaps written with another offset).
fn same_terms(a: &Advertisement, b: &Advertisement) -> bool {
    let terms = |ad: &Advertisement| ArchivistAdvertisement {
        policy_annotations: None,
        created_at: a.typed().created_at.clone(),
        ..ad.typed().clone()
    };
    terms(a) == terms(b)
}

/// The §4.6 ranking key; smaller ranks first. Ordered field by field, in this order:
/// outcome class (accept, negotiate settlement only, negotiate terms, refused), mode-fit
/// score, settlement not required first, retention then idle shortfall, larger default
/// duration (absent counts as unbounded, the largest), newer `created-at`, then
/// `advertisement/id` and `archivist/node-id` ascending. Distinct archivists never tie.
#[derive(Clone, Copy)]
pub struct RankKey<'a> {
    numbers: (u8, u8, bool, u64, u64, Reverse<u64>, Reverse<i128>),
    // The identifiers are read only when every number ties.
    ad: &'a Advertisement,
}

impl<'a> RankKey<'a> {
    /// The key of `ad` under `decision`.
    pub fn new(ad: &'a Advertisement, decision: &Decision) -> Self {
        let class = match decision.verdict {
            Verdict::Accept => 0,
            Verdict::Negotiate(items) if items.settlement_only() => 1,
            Verdict::Negotiate(_) => 2,
            Verdict::Refuse(_) => 3,
        };
        RankKey {
            numbers: (
                class,
                decision.terms.mode_fit,
                decision.terms.settlement_required,
                decision.retention_shortfall,
                decision.idle_shortfall,
                Reverse(ad.default_max_duration_sec().unwrap_or(u64::MAX)),
                Reverse(ad.created_nanos()),
            ),
            ad,
        }
    }
}

impl Ord for RankKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers
            .cmp(&other.numbers)
            .then_with(|| self.ad.id().cmp(other.ad.id()))
            .then_with(|| self.ad.archivist().cmp(other.ad.archivist()))
    }
}

impl PartialOrd for RankKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RankKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RankKey<'_> {}

impl fmt::Debug for RankKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RankKey")
            .field("numbers", &self.numbers)
            .field("advertisement_id", &self.ad.id())
            .field("archivist", &self.ad.archivist())
            .finish()
    }
}

/// One advertisement's decision, in rank order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    /// Index into the admitted advertisements.
    pub index: usize,
    /// The decision for the pair.
    pub decision: Decision,
}

/// Decides `request` against every advertisement in `candidates` and orders the decisions by
/// [`RankKey`]. Refusals are kept, last, so every reason stays visible.
pub fn rank(
    request: &PreparedRequest,
    ads: &[Advertisement],
    candidates: &[usize],
    policy: &Policy,
) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = candidates
        .iter()
        .map(|&index| Ranked {
            index,
            decision: decide(request, &ads[index], policy),
        })
        .collect();
    // Sort positions, not the (large) entries; the position breaks ties between duplicates.
    let mut order: Vec<usize> = (0..ranked.len()).collect();
    {
        let keys: Vec<RankKey> = ranked
            .iter()
            .map(|entry| RankKey::new(&ads[entry.index], &entry.decision))
            .collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]).then(a.cmp(&b)));
    }
    permute(&mut ranked, order);
    ranked
}

/// Reorders `items` in place so that `items[k]` becomes the old `items[order[k]]`, moving each
/// entry once (cycle by cycle) instead of copying the vector.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut current = start;
        // A settled position points at itself.
        while order[current] != current {
            let next = order[current];
            order[current] = current;
            if next == start {
                break;
            }
            items.swap(current, next);
            current = next;
        }
    }
}

/// Copies placed with one archivist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Index into the admitted advertisements.
    pub index: usize,
    /// How many copies it keeps or coordinates.
    pub copies: u64,
    /// The decision for that many copies.
    pub decision: Decision,
}

/// Where the requested copies go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationPlan {
    /// Copies requested.
    pub copies: u64,
    /// Guarantee or hint.
    pub commitment: ReplicationCommitment,
    /// Placements, best ranked first, each on a distinct archivist.
    pub assignments: Vec<Assignment>,
    /// Copies no usable archivist could take.
    pub missing: u64,
}

/// The replication set (§4.6 step 3). Every placement is on a distinct `archivist/node-id`
/// (advertisements of one archivist count once, even when stage 0b did not run). With
/// `guarantee`, each copy goes to a distinct archivist; with `hint`, an archivist may
/// coordinate up to its `replication/max-copies`, but at least `policy.min_distinct_archivists` archivists are used when there are that many
/// copies. The requested copies are split per archivist, so an archivist whose
/// `max-copies` is below the total still takes part.
pub fn plan_replication(
    request: &PreparedRequest,
    ads: &[Advertisement],
    candidates: &[usize],
    policy: &Policy,
) -> ReplicationPlan {
    let single = request.with_copies(1);
    plan_from_ranking(
        request,
        ads,
        &rank(&single, ads, candidates, policy),
        policy,
    )
}

/// [`plan_replication`] over a ranking already made for one copy per archivist.
pub(crate) fn plan_from_ranking(
    request: &PreparedRequest,
    ads: &[Advertisement],
    ranked_single: &[Ranked],
    policy: &Policy,
) -> ReplicationPlan {
    let copies = request.copies();
    let commitment = request.commitment();
    let min_distinct = policy.min_distinct_archivists.clamp(1, copies);
    let mut assignments = Vec::new();
    let mut assigned: HashSet<&str> = HashSet::new();
    let mut remaining = copies;
    for entry in ranked_single {
        if remaining == 0 {
            break;
        }
        let ad = &ads[entry.index];
        // Two advertisements of one archivist (the caller skipped stage 0b) are one archivist.
        if !entry.decision.is_candidate() || !assigned.insert(ad.archivist()) {
            continue;
        }
        let take = match commitment {
            ReplicationCommitment::Guarantee => 1,
            ReplicationCommitment::Hint => {
                // Leave one copy for each distinct archivist still needed.
                let still_needed = min_distinct.saturating_sub(assignments.len() as u64 + 1);
                ad.max_copies()
                    .min(remaining.saturating_sub(still_needed))
                    .max(1)
            }
        };
        let decision = if take == 1 {
            entry.decision.clone()
        } else {
            decide(&request.with_copies(take), ad, policy)
        };
        remaining -= take;
        assignments.push(Assignment {
            index: entry.index,
            copies: take,
            decision,
        });
    }
    ReplicationPlan {
        copies,
        commitment,
        assignments,
        missing: remaining,
    }
}

#[cfg(test)]
mod tests {
    use super::permute;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn permute_moves_every_item_to_its_ordered_place(
            order in (0usize..40).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let items: Vec<String> = (0..order.len()).map(|i| format!("item-{i}")).collect();
            let expected: Vec<String> = order.iter().map(|&k| items[k].clone()).collect();
            let mut permuted = items;
            permute(&mut permuted, order);
            prop_assert_eq!(permuted, expected);
        }
    }
}
