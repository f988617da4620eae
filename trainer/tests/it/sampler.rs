//! Batch samplers on generated manifests: validity, exact composition, determinism.

use std::collections::{BTreeMap, BTreeSet};

use fas_core::dataset::{Label, Sample, Split, ATTACK_NONE, DATASET_MANIFEST_VERSION};
use fas_train::data::sampler::{
    BatchSampler, ClassBalanced, ClassBalancedConfig, DomainLabels, EpochLength, IdentityConfig,
    IdentitySampler, MetaSplit, PerDomain, PerDomainConfig, SamplerError,
};
use proptest::prelude::*;

fn sample(domain: &str, subject: &str, label: Label, n: usize) -> Sample {
    Sample {
        v: DATASET_MANIFEST_VERSION,
        path: format!("{domain}/{subject}/{}-{n}.png", label.as_str()),
        label,
        attack: if label == Label::Live {
            ATTACK_NONE
        } else {
            "print"
        }
        .into(),
        domain: domain.into(),
        subject: subject.into(),
        device: "cam".into(),
        split: Split::Train,
        video: format!("{subject}-{}", label.as_str()),
        frame: n as u32,
    }
}

const DOMAINS: [&str; 4] = ["casia", "msu", "oulu", "replay"];

/// `(domain, subject, is_spoof)` triples → samples.
fn build(spec: &[(usize, usize, bool)]) -> Vec<Sample> {
    spec.iter()
        .enumerate()
        .map(|(n, &(d, s, spoof))| {
            let label = if spoof { Label::Spoof } else { Label::Live };
            sample(DOMAINS[d], &format!("s{s}"), label, n)
        })
        .collect()
}

fn all(samples: &[Sample]) -> Vec<usize> {
    (0..samples.len()).collect()
}

/// A manifest where every domain has both classes and several subjects with both.
fn rich(domains: usize, subjects: usize, per_class: usize) -> Vec<Sample> {
    let mut v = Vec::new();
    for d in &DOMAINS[..domains] {
        for s in 0..subjects {
            for label in [Label::Live, Label::Spoof] {
                for _ in 0..per_class {
                    let n = v.len();
                    v.push(sample(d, &format!("s{s}"), label, n));
                }
            }
        }
    }
    v
}

fn spec_strategy() -> impl Strategy<Value = Vec<(usize, usize, bool)>> {
    prop::collection::vec((0..4usize, 0..6usize, any::<bool>()), 2..160)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn class_balanced_batches_are_exactly_half_and_half(
        spec in spec_strategy(),
        half in 1..12usize,
        fixed in prop::option::of(1..20usize),
        seed in any::<u64>(),
        epoch in 0..1000u64,
    ) {
        let samples = build(&spec);
        let pool: Vec<usize> = all(&samples);
        let n_live = samples.iter().filter(|s| s.label == Label::Live).count();
        let n_spoof = samples.len() - n_live;
        prop_assume!(n_live > 0 && n_spoof > 0);
        let length = fixed.map_or(EpochLength::Largest, EpochLength::Batches);
        let cfg = ClassBalancedConfig { batch_size: 2 * half, length, seed };
        let s = ClassBalanced::new(&samples, &pool, cfg).unwrap();
        let batches = s.epoch(epoch);
        let want = fixed.unwrap_or_else(|| n_live.max(n_spoof).div_ceil(half));
        prop_assert_eq!(batches.len(), want);
        for b in &batches {
            prop_assert_eq!(b.len(), 2 * half);
            prop_assert!(b.iter().all(|&i| i < samples.len()));
            prop_assert!(b[..half].iter().all(|&i| samples[i].label == Label::Live));
            prop_assert!(b[half..].iter().all(|&i| samples[i].label == Label::Spoof));
            // A class never repeats inside a batch unless it is smaller than its half.
            for (part, n) in [(&b[..half], n_live), (&b[half..], n_spoof)] {
                let distinct: BTreeSet<usize> = part.iter().copied().collect();
                if n >= half {
                    prop_assert_eq!(distinct.len(), half);
                }
            }
        }
        if fixed.is_none() {
            // The majority class is covered in full.
            let majority = if n_live >= n_spoof { Label::Live } else { Label::Spoof };
            let seen: BTreeSet<usize> = batches.iter().flatten().copied()
                .filter(|&i| samples[i].label == majority).collect();
            prop_assert_eq!(seen.len(), n_live.max(n_spoof));
        }
        // Same (seed, epoch), fresh sampler: same batches.
        let again = ClassBalanced::new(&samples, &pool, cfg).unwrap();
        prop_assert_eq!(again.epoch(epoch), batches);
    }

    #[test]
    fn class_balanced_draws_only_from_the_pool(
        spec in spec_strategy(),
        keep in prop::collection::vec(any::<bool>(), 160),
        seed in any::<u64>(),
    ) {
        let samples = build(&spec);
        let pool: Vec<usize> = (0..samples.len()).filter(|&i| keep[i]).collect();
        let has = |l| pool.iter().any(|&i| samples[i].label == l);
        prop_assume!(has(Label::Live) && has(Label::Spoof));
        let s = ClassBalanced::new(&samples, &pool, ClassBalancedConfig {
            batch_size: 8, length: EpochLength::Batches(5), seed,
        }).unwrap();
        let in_pool: BTreeSet<usize> = pool.iter().copied().collect();
        prop_assert!(s.epoch(3).iter().flatten().all(|i| in_pool.contains(i)));
    }

    #[test]
    fn per_domain_counts_are_exact(
        spec in spec_strategy(),
        per in 1..6usize,
        balanced in any::<bool>(),
        seed in any::<u64>(),
        epoch in 0..100u64,
    ) {
        let samples = build(&spec);
        let pool = all(&samples);
        let per_domain = if balanced { 2 * per } else { per };
        let cfg = PerDomainConfig { per_domain, class_balanced: balanced, length: EpochLength::Largest, seed };
        let domains: BTreeSet<&str> = samples.iter().map(|s| s.domain.as_str()).collect();
        let complete = domains.iter().all(|d| {
            [Label::Live, Label::Spoof].iter().all(|&l| samples.iter().any(|s| s.domain == *d && s.label == l))
        });
        let built = PerDomain::new(&samples, &pool, DomainLabels::Manifest, cfg);
        if balanced && !complete {
            let is_missing_class = matches!(built, Err(SamplerError::MissingClass { .. }));
            prop_assert!(is_missing_class);
            return Ok(());
        }
        let s = built.unwrap();
        prop_assert_eq!(s.domains(), domains.iter().copied().collect::<Vec<_>>());
        let batches = s.epoch(epoch);
        prop_assert!(!batches.is_empty());
        for b in &batches {
            prop_assert_eq!(b.len(), per_domain * domains.len());
            let parts = s.split_batch(b).unwrap();
            prop_assert_eq!(parts.len(), domains.len());
            for (name, part) in parts {
                prop_assert_eq!(part.len(), per_domain);
                prop_assert!(part.iter().all(|&i| samples[i].domain == name));
                if balanced {
                    prop_assert!(part[..per].iter().all(|&i| samples[i].label == Label::Live));
                    prop_assert!(part[per..].iter().all(|&i| samples[i].label == Label::Spoof));
                }
            }
        }
        prop_assert_eq!(PerDomain::new(&samples, &pool, DomainLabels::Manifest, cfg).unwrap().epoch(epoch), batches);
    }

    #[test]
    fn identity_batches_hold_k_identities_with_n_of_each_class(
        spec in prop::collection::vec((0..3usize, 0..8usize, any::<bool>()), 40..240),
        k in 1..4usize,
        n in 1..5usize,
        seed in any::<u64>(),
        epoch in 0..100u64,
    ) {
        let samples = build(&spec);
        let pool = all(&samples);
        let cfg = IdentityConfig { identities_per_domain: k, samples_per_class: n, length: EpochLength::Largest, seed };
        // Expected eligible identities per domain.
        let mut classes: BTreeMap<(&str, &str), [bool; 2]> = BTreeMap::new();
        for s in &samples {
            classes.entry((s.domain.as_str(), s.subject.as_str())).or_default()[usize::from(s.label == Label::Spoof)] = true;
        }
        let mut eligible: BTreeMap<&str, usize> = BTreeMap::new();
        for ((d, _), c) in &classes {
            *eligible.entry(*d).or_default() += usize::from(c[0] && c[1]);
        }
        let skipped = classes.values().filter(|c| !(c[0] && c[1])).count();
        let built = IdentitySampler::new(&samples, &pool, cfg);
        if eligible.values().any(|&e| e < k) {
            let too_few = matches!(built, Err(SamplerError::TooFewIdentities { .. }));
            prop_assert!(too_few);
            return Ok(());
        }
        let s = built.unwrap();
        prop_assert_eq!(s.skipped().len(), skipped);
        prop_assert_eq!(s.identities().len(), eligible.values().sum::<usize>());
        let batches = s.batches(epoch);
        let largest = *eligible.values().max().unwrap();
        prop_assert_eq!(batches.len(), largest.div_ceil(k));
        let domains = s.domains();
        for b in &batches {
            prop_assert_eq!(b.indices.len(), domains.len() * k * 2 * n);
            prop_assert_eq!(b.identity.len(), b.indices.len());
            for (di, dchunk) in b.indices.chunks(k * 2 * n).enumerate() {
                let ids: Vec<usize> = b.identity[di * k * 2 * n..(di + 1) * k * 2 * n].to_vec();
                let mut distinct = BTreeSet::new();
                for (j, chunk) in dchunk.chunks(2 * n).enumerate() {
                    let id = ids[j * 2 * n];
                    prop_assert!(ids[j * 2 * n..(j + 1) * 2 * n].iter().all(|&x| x == id));
                    prop_assert!(distinct.insert(id), "identity repeated within a domain's share");
                    let who = &s.identities()[id];
                    prop_assert_eq!(who.domain.as_str(), domains[di]);
                    for &i in chunk {
                        prop_assert_eq!(&samples[i].subject, &who.subject);
                        prop_assert_eq!(&samples[i].domain, &who.domain);
                    }
                    prop_assert!(chunk[..n].iter().all(|&i| samples[i].label == Label::Live));
                    prop_assert!(chunk[n..].iter().all(|&i| samples[i].label == Label::Spoof));
                }
            }
        }
        prop_assert_eq!(IdentitySampler::new(&samples, &pool, cfg).unwrap().batches(epoch), batches);
    }

    #[test]
    fn meta_splits_partition_the_domains(
        d in 2..9usize,
        t_raw in 1..8usize,
        seed in any::<u64>(),
        round in 0..1000u64,
    ) {
        let t = 1 + (t_raw - 1) % (d - 1);
        let names: Vec<String> = (0..d).map(|i| format!("dom{i}")).collect();
        let m = MetaSplit::new(names.clone(), t, seed).unwrap();
        let period = m.period();
        prop_assert_eq!(period, d.div_ceil(t) as u64);
        let mut tested = BTreeSet::new();
        for it in round * period..(round + 1) * period {
            let sets = m.split(it);
            prop_assert_eq!(sets.meta_test.len(), t);
            prop_assert_eq!(sets.meta_train.len(), d - t);
            let mut union: Vec<String> = sets.meta_train.iter().chain(&sets.meta_test).cloned().collect();
            union.sort();
            prop_assert_eq!(&union, &names);
            prop_assert_eq!(m.split(it), sets.clone());
            tested.extend(sets.meta_test);
        }
        // Every domain is meta-test within each round.
        prop_assert_eq!(tested.len(), d);
    }
}

#[test]
fn different_epochs_and_seeds_differ() {
    let samples = rich(3, 6, 5);
    let pool = all(&samples);
    let cb = |seed| {
        ClassBalanced::new(
            &samples,
            &pool,
            ClassBalancedConfig {
                batch_size: 16,
                length: EpochLength::Largest,
                seed,
            },
        )
        .unwrap()
    };
    assert_ne!(cb(1).epoch(0), cb(1).epoch(1));
    assert_ne!(cb(1).epoch(0), cb(2).epoch(0));
    let pd = PerDomain::new(
        &samples,
        &pool,
        DomainLabels::Manifest,
        PerDomainConfig {
            per_domain: 4,
            class_balanced: true,
            length: EpochLength::Largest,
            seed: 1,
        },
    )
    .unwrap();
    assert_ne!(pd.epoch(0), pd.epoch(1));
    let id = IdentitySampler::new(&samples, &pool, IdentityConfig::default()).unwrap();
    assert_ne!(id.batches(0), id.batches(1));
    let m = MetaSplit::new(DOMAINS, 1, 9).unwrap();
    let rounds: BTreeSet<Vec<String>> = (0..8)
        .map(|r| (0..4).flat_map(|i| m.split(r * 4 + i).meta_test).collect())
        .collect();
    assert!(rounds.len() > 1, "every round used the same order");
}

#[test]
fn missing_class_errors_name_the_domain_and_split() {
    let mut samples = rich(3, 4, 2);
    samples.retain(|s| !(s.domain == "oulu" && s.label == Label::Spoof));
    let pool = all(&samples);
    let err = PerDomain::new(
        &samples,
        &pool,
        DomainLabels::Manifest,
        PerDomainConfig {
            per_domain: 4,
            class_balanced: true,
            length: EpochLength::Largest,
            seed: 0,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("domain oulu has no spoof samples in split train"),
        "{err}"
    );
    // Without class balancing the same pool is fine.
    PerDomain::new(
        &samples,
        &pool,
        DomainLabels::Manifest,
        PerDomainConfig {
            per_domain: 4,
            class_balanced: false,
            length: EpochLength::Largest,
            seed: 0,
        },
    )
    .unwrap();

    let live_only: Vec<usize> = (0..samples.len())
        .filter(|&i| samples[i].label == Label::Live)
        .collect();
    let err = ClassBalanced::new(
        &samples,
        &live_only,
        ClassBalancedConfig {
            batch_size: 4,
            length: EpochLength::Largest,
            seed: 0,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the pool has no spoof samples in split train"),
        "{err}"
    );
}

#[test]
fn bad_configs_are_refused() {
    let samples = rich(2, 3, 2);
    let pool = all(&samples);
    let cb = |batch_size, length| {
        ClassBalanced::new(
            &samples,
            &pool,
            ClassBalancedConfig {
                batch_size,
                length,
                seed: 0,
            },
        )
    };
    assert!(matches!(
        cb(7, EpochLength::Largest),
        Err(SamplerError::BadConfig {
            field: "batch_size",
            ..
        })
    ));
    assert!(matches!(
        cb(8, EpochLength::Batches(0)),
        Err(SamplerError::BadConfig { .. })
    ));
    assert!(matches!(
        ClassBalanced::new(
            &samples,
            &[],
            ClassBalancedConfig {
                batch_size: 2,
                length: EpochLength::Largest,
                seed: 0
            }
        ),
        Err(SamplerError::EmptyPool { .. })
    ));
    assert!(matches!(
        ClassBalanced::new(
            &samples,
            &[0, 999],
            ClassBalancedConfig {
                batch_size: 2,
                length: EpochLength::Largest,
                seed: 0
            }
        ),
        Err(SamplerError::IndexOutOfRange { index: 999, .. })
    ));
    assert!(matches!(
        MetaSplit::new(["a", "b"], 2, 0),
        Err(SamplerError::MetaSplitSize { .. })
    ));
    assert!(matches!(
        MetaSplit::new(["a", "b"], 0, 0),
        Err(SamplerError::MetaSplitSize { .. })
    ));
}

#[test]
fn assigned_pseudo_domains_regroup_every_reassign() {
    let samples = rich(2, 4, 3);
    let pool: Vec<usize> = all(&samples);
    let cfg = PerDomainConfig {
        per_domain: 2,
        class_balanced: true,
        length: EpochLength::Batches(6),
        seed: 4,
    };
    // Pseudo-domain = subject parity, across the manifest domains.
    let parity: Vec<usize> = pool
        .iter()
        .map(|&i| usize::from(samples[i].subject.ends_with(['1', '3'])))
        .collect();
    let mut s =
        PerDomain::new(&samples, &pool, DomainLabels::Assigned(parity.clone()), cfg).unwrap();
    assert_eq!(s.domains(), ["pseudo-0", "pseudo-1"]);
    for b in s.epoch(0) {
        for (name, part) in s.split_batch(&b).unwrap() {
            let want = usize::from(name == "pseudo-1");
            assert!(part
                .iter()
                .all(|&i| parity[pool.iter().position(|&p| p == i).unwrap()] == want));
        }
    }
    // Re-cluster into three pseudo-domains by subject number.
    let three: Vec<usize> = pool
        .iter()
        .map(|&i| samples[i].subject[1..].parse::<usize>().unwrap() % 3)
        .collect();
    s.reassign(&samples, DomainLabels::Assigned(three)).unwrap();
    assert_eq!(s.domains().len(), 3);
    assert_eq!(s.epoch(0)[0].len(), 6);
    assert!(s.split_batch(&[1, 2, 3]).is_err());
    assert!(matches!(
        s.reassign(&samples, DomainLabels::Assigned(vec![0; 3])),
        Err(SamplerError::LabelCount { got: 3, .. })
    ));
    // A pseudo-domain without spoof samples is refused and the old grouping kept.
    let live_alone: Vec<usize> = pool
        .iter()
        .map(|&i| {
            if samples[i].label == Label::Live && samples[i].subject == "s0" {
                7
            } else {
                0
            }
        })
        .collect();
    let err = s
        .reassign(&samples, DomainLabels::Assigned(live_alone))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("domain pseudo-7 has no spoof samples"),
        "{err}"
    );
    assert_eq!(s.domains(), ["pseudo-0", "pseudo-1", "pseudo-2"]);
    assert!(s.describe().contains("assigned pseudo-domains"));
}

#[test]
fn identity_sampler_skips_one_class_subjects_and_resamples_small_identities() {
    // Two domains × 5 subjects; subject s4 of each domain is live-only; s0 has a single
    // spoof sample (fewer than n = 4), which must then repeat.
    let mut samples = Vec::new();
    for d in ["casia", "msu"] {
        for s in 0..5 {
            for _ in 0..6 {
                let n = samples.len();
                samples.push(sample(d, &format!("s{s}"), Label::Live, n));
            }
            let spoofs = match s {
                4 => 0,
                0 => 1,
                _ => 6,
            };
            for _ in 0..spoofs {
                let n = samples.len();
                samples.push(sample(d, &format!("s{s}"), Label::Spoof, n));
            }
        }
    }
    let pool = all(&samples);
    let s = IdentitySampler::new(&samples, &pool, IdentityConfig::default()).unwrap();
    assert_eq!(s.skipped().len(), 2);
    assert!(s
        .skipped()
        .iter()
        .all(|x| x.subject == "s4" && x.missing == Label::Spoof));
    assert_eq!(s.identities().len(), 8);
    assert!(
        s.describe().contains("2 subjects skipped"),
        "{}",
        s.describe()
    );
    // k = 4 of 4 eligible: every batch holds every identity, so s0's lone spoof repeats 4×.
    let lone: Vec<usize> = (0..samples.len())
        .filter(|&i| samples[i].subject == "s0" && samples[i].label == Label::Spoof)
        .collect();
    for b in s.batches(0) {
        for &i in &lone {
            assert_eq!(b.indices.iter().filter(|&&x| x == i).count(), 4);
        }
    }
    let err = IdentitySampler::new(
        &samples,
        &pool,
        IdentityConfig {
            identities_per_domain: 5,
            ..IdentityConfig::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("domain casia has 4 identities with both live and spoof samples in split train (1 lack one class)"),
        "{msg}"
    );
}

#[test]
fn describe_names_the_configuration() {
    let samples = rich(2, 3, 2);
    let pool = all(&samples);
    let cb = ClassBalanced::new(
        &samples,
        &pool,
        ClassBalancedConfig {
            batch_size: 4,
            length: EpochLength::Batches(3),
            seed: 11,
        },
    )
    .unwrap();
    let d = cb.describe();
    assert!(
        d.contains("batch 4 (2 live + 2 spoof)")
            && d.contains("3 batches/epoch")
            && d.contains("seed 11"),
        "{d}"
    );
}
