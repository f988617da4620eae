//! Evaluation protocols on generated manifests: task lists, held-out targets, val from
//! sources only, subject-disjoint tests, determinism, and errors that name what is missing.

use std::collections::BTreeSet;

use clap::ValueEnum;
use fas_core::dataset::{Label, Manifest, Sample, Split, ATTACK_NONE, DATASET_MANIFEST_VERSION};
use fas_train::data::protocol::{
    DomainSplits, Protocol, ProtocolError, ProtocolOptions, Target, Task, TaskSplit, SIWM_ATTACKS,
};
use proptest::prelude::*;

fn sample(domain: &str, subject: &str, attack: &str, split: Split, frame: u32) -> Sample {
    Sample {
        v: DATASET_MANIFEST_VERSION,
        path: format!("{domain}/{subject}/{attack}-{frame}.png"),
        label: if attack == ATTACK_NONE {
            Label::Live
        } else {
            Label::Spoof
        },
        attack: attack.into(),
        domain: domain.into(),
        subject: subject.into(),
        device: "cam".into(),
        split,
        video: format!("{subject}-{attack}"),
        frame,
    }
}

/// A dataset with `n` subjects per listed split, each with a live video and one video per
/// attack, 2 frames each.
fn dataset(domain: &str, splits: &[(Split, usize)], attacks: &[&str]) -> Vec<Sample> {
    let mut v = Vec::new();
    let mut subject = 0;
    for &(split, n) in splits {
        for _ in 0..n {
            let sub = format!("{}{subject}", &domain[..1]);
            for attack in std::iter::once(ATTACK_NONE).chain(attacks.iter().copied()) {
                for f in 0..2 {
                    v.push(sample(domain, &sub, attack, split, f));
                }
            }
            subject += 1;
        }
    }
    v
}

const WITH_DEV: [(Split, usize); 3] = [(Split::Train, 4), (Split::Dev, 2), (Split::Test, 3)];
const NO_DEV: [(Split, usize); 2] = [(Split::Train, 5), (Split::Test, 5)];

fn ocim(skip: &[&str]) -> Manifest {
    let mut v = Vec::new();
    for (domain, splits) in [
        ("oulu", &WITH_DEV[..]),
        ("casia", &NO_DEV[..]),
        ("replay", &WITH_DEV[..]),
        ("msu", &NO_DEV[..]),
    ] {
        if !skip.contains(&domain) {
            v.extend(dataset(domain, splits, &["print", "replay"]));
        }
    }
    Manifest::new(v)
}

fn synth(domains: usize) -> Manifest {
    let mut v = Vec::new();
    for d in ["synth-a", "synth-b", "synth-c", "synth-d"]
        .iter()
        .take(domains)
    {
        v.extend(dataset(
            d,
            &[(Split::Train, 6), (Split::Dev, 2), (Split::Test, 2)],
            &["print", "replay", "mask"],
        ));
    }
    Manifest::new(v)
}

/// 20 subjects with live videos (some also attacking), plus spoof-only subjects; every SiW-M
/// attack type worn by 3 subjects. SiW-M has no official split: all `train`.
fn siwm(attacks: &[&str]) -> Manifest {
    let mut v = Vec::new();
    for s in 0..20 {
        for f in 0..2 {
            v.push(sample(
                "siwm",
                &format!("p{s}"),
                ATTACK_NONE,
                Split::Train,
                f,
            ));
        }
    }
    for (a, attack) in attacks.iter().enumerate() {
        for k in 0..3 {
            // Alternate between live subjects and spoof-only subjects.
            let subject = if k == 0 {
                format!("p{}", (a * 3) % 20)
            } else {
                format!("q{a}-{k}")
            };
            for f in 0..2 {
                v.push(sample("siwm", &subject, attack, Split::Train, f));
            }
        }
    }
    Manifest::new(v)
}

fn part<'m>(m: &'m Manifest, idx: &[usize]) -> Vec<&'m Sample> {
    idx.iter().map(|&i| &m.samples[i]).collect()
}

fn domains_of(m: &Manifest, idx: &[usize]) -> BTreeSet<String> {
    idx.iter().map(|&i| m.samples[i].domain.clone()).collect()
}

fn subjects_of(m: &Manifest, idx: &[usize]) -> BTreeSet<(String, String)> {
    idx.iter()
        .map(|&i| (m.samples[i].domain.clone(), m.samples[i].subject.clone()))
        .collect()
}

/// The invariants every task split keeps.
fn check_common(m: &Manifest, task: &Task, s: &TaskSplit) {
    for p in [&s.train, &s.val, &s.test] {
        assert!(!p.is_empty(), "{}: an empty part", task.name);
        assert!(
            p.windows(2).all(|w| w[0] < w[1]),
            "{}: not ascending",
            task.name
        );
        assert!(p.iter().all(|&i| i < m.samples.len()));
    }
    let (tr, va, te): (BTreeSet<_>, BTreeSet<_>, BTreeSet<_>) = (
        s.train.iter().collect(),
        s.val.iter().collect(),
        s.test.iter().collect(),
    );
    assert!(
        tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te),
        "{}: parts overlap",
        task.name
    );
    let never_seen = |x: &Sample| match &task.target {
        Target::Domain(d) => x.domain != *d,
        Target::Attack(a) => x.attack != *a,
    };
    assert!(
        part(m, &s.train).into_iter().all(never_seen),
        "{}: target in train",
        task.name
    );
    assert!(
        part(m, &s.val).into_iter().all(never_seen),
        "{}: target in val",
        task.name
    );
    for p in [&s.train, &s.test] {
        for l in [Label::Live, Label::Spoof] {
            assert!(
                part(m, p).iter().any(|x| x.label == l),
                "{}: a part lacks {l:?}",
                task.name
            );
        }
    }
}

fn check_lodo(m: &Manifest, task: &Task, s: &TaskSplit) {
    check_common(m, task, s);
    let sources: BTreeSet<String> = task.train_domains.iter().cloned().collect();
    assert_eq!(domains_of(m, &s.train), sources, "{}", task.name);
    assert!(
        domains_of(m, &s.val).is_subset(&sources),
        "{}: val outside the sources",
        task.name
    );
    assert_eq!(
        domains_of(m, &s.test),
        BTreeSet::from([task.target.name().to_string()]),
        "{}",
        task.name
    );
    // Held-out validation subjects never train.
    assert!(
        subjects_of(m, &s.train).is_disjoint(&subjects_of(m, &s.val)),
        "{}",
        task.name
    );
}

#[test]
fn ocim_has_the_four_leave_one_out_tasks() {
    let m = ocim(&[]);
    let tasks = Protocol::Ocim.tasks(&m).unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["OCI-M", "OMI-C", "OCM-I", "ICM-O"]);
    let targets: Vec<&str> = tasks.iter().map(|t| t.target.name()).collect();
    assert_eq!(targets, ["msu", "casia", "replay", "oulu"]);
    assert_eq!(tasks[0].train_domains, ["oulu", "casia", "replay"]);
    assert_eq!(tasks[0].train_attacks, ["print", "replay"]);
    for t in &tasks {
        let s = t.apply(&m).unwrap();
        check_lodo(&m, t, &s);
        // SSDG convention: the target is tested on everything outside its dev split, the
        // sources train on everything outside theirs except held-out validation subjects.
        let target = t.target.name();
        let want_test: Vec<usize> = (0..m.samples.len())
            .filter(|&i| m.samples[i].domain == target && m.samples[i].split != Split::Dev)
            .collect();
        assert_eq!(s.test, want_test, "{}", t.name);
        for x in part(&m, &s.train) {
            assert_ne!(x.split, Split::Dev);
        }
        for source in &t.train_domains {
            let val: Vec<&Sample> = part(&m, &s.val)
                .into_iter()
                .filter(|x| x.domain == *source)
                .collect();
            assert!(!val.is_empty(), "{}: no val from {source}", t.name);
            if source == "oulu" || source == "replay" {
                // Sources with a dev split validate on exactly it.
                assert!(val.iter().all(|x| x.split == Split::Dev));
                assert_eq!(
                    val.len(),
                    m.samples
                        .iter()
                        .filter(|x| x.domain == *source && x.split == Split::Dev)
                        .count()
                );
            } else {
                // casia / msu: 20 % of their 10 subjects, held out whole.
                let subjects: BTreeSet<&str> = val.iter().map(|x| x.subject.as_str()).collect();
                assert_eq!(subjects.len(), 2, "{}: {source}", t.name);
            }
        }
    }
}

#[test]
fn official_splits_train_on_train_and_test_on_test() {
    let m = ocim(&[]);
    let opts = ProtocolOptions {
        domain_splits: DomainSplits::Official,
        ..ProtocolOptions::default()
    };
    for t in Protocol::Ocim.tasks_with(&m, &opts).unwrap() {
        let s = t.apply(&m).unwrap();
        check_lodo(&m, &t, &s);
        assert!(part(&m, &s.test).iter().all(|x| x.split == Split::Test));
        assert_eq!(
            s.test.len(),
            m.samples
                .iter()
                .filter(|x| x.domain == t.target.name() && x.split == Split::Test)
                .count()
        );
        assert!(part(&m, &s.train).iter().all(|x| x.split == Split::Train));
        // casia/msu validation subjects come out of their train split (5 subjects → 1).
        for x in part(&m, &s.val) {
            assert!(x.split == Split::Dev || x.split == Split::Train);
        }
    }
}

#[test]
fn limited_source_trains_on_msu_and_replay() {
    let m = ocim(&[]);
    let tasks = Protocol::LimitedSource.tasks(&m).unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["MI-C", "MI-O"]);
    for t in &tasks {
        assert_eq!(t.train_domains, ["msu", "replay"]);
        check_lodo(&m, t, &t.apply(&m).unwrap());
    }
    // casia is not needed by limited-source as a source but is a target.
    let err = Protocol::LimitedSource
        .tasks(&ocim(&["casia"]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"casia\" (C, needed as a target)"),
        "{err}"
    );
}

#[test]
fn a_missing_domain_is_named_with_those_present() {
    let err = Protocol::Ocim.tasks(&ocim(&["msu"])).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProtocolError::MissingDomain { ref domain, .. } if domain == "msu"));
    assert!(msg.contains("no samples of domain \"msu\""), "{msg}");
    // The fix names the command that imports a dataset, then the one that crops it.
    assert!(
        msg.contains("`fas-train import`, then `fas-train prepare`"),
        "{msg}"
    );
    assert!(
        msg.contains("domains present: casia, oulu, replay"),
        "{msg}"
    );
    let err = Protocol::SynthDomain.tasks(&synth(1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("at least 2 domains, the manifest has: synth-a"),
        "{err}"
    );
}

#[test]
fn synth_domain_holds_out_each_domain() {
    for n in [2, 3, 4] {
        let m = synth(n);
        let tasks = Protocol::SynthDomain.tasks(&m).unwrap();
        assert_eq!(tasks.len(), n);
        assert_eq!(tasks[0].name, "unseen-synth-a");
        for t in &tasks {
            assert_eq!(t.train_domains.len(), n - 1);
            let s = t.apply(&m).unwrap();
            check_lodo(&m, t, &s);
            // Every SynthFAS domain has a dev split, so validation is exactly the sources' dev.
            assert!(part(&m, &s.val).iter().all(|x| x.split == Split::Dev));
        }
    }
}

#[test]
fn synth_attack_holds_out_each_attack_on_unseen_subjects() {
    let m = synth(4);
    let tasks = Protocol::SynthAttack.tasks(&m).unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["unseen-mask", "unseen-print", "unseen-replay"]);
    for t in &tasks {
        let s = t.apply(&m).unwrap();
        check_common(&m, t, &s);
        assert_eq!(t.train_attacks.len(), 2);
        let test_attacks: BTreeSet<&str> = part(&m, &s.test)
            .iter()
            .map(|x| x.attack.as_str())
            .collect();
        assert_eq!(test_attacks, BTreeSet::from([ATTACK_NONE, t.target.name()]));
        let test_subjects = subjects_of(&m, &s.test);
        assert!(
            subjects_of(&m, &s.train).is_disjoint(&test_subjects),
            "{}",
            t.name
        );
        assert!(
            subjects_of(&m, &s.val).is_disjoint(&test_subjects),
            "{}",
            t.name
        );
    }
    let one_attack = Manifest::new(dataset("synth-a", &WITH_DEV, &["print"]));
    let err = Protocol::SynthAttack.tasks(&one_attack).unwrap_err();
    assert!(
        err.to_string()
            .contains("at least 2 attack types, the manifest has: print"),
        "{err}"
    );
}

#[test]
fn siwm_has_thirteen_leave_one_attack_out_tasks() {
    let m = siwm(&SIWM_ATTACKS);
    let tasks = Protocol::SiwmLoao.tasks(&m).unwrap();
    assert_eq!(tasks.len(), 13);
    assert_eq!(tasks[3].name, "unseen-mask-silicone");
    let mut test_live_subjects = None;
    for t in &tasks {
        let s = t.apply(&m).unwrap();
        check_common(&m, t, &s);
        assert_eq!(t.train_attacks.len(), 12);
        assert!(!t.train_attacks.contains(&t.target.name().to_string()));
        // Every held-out-attack sample is tested.
        let held: Vec<usize> = (0..m.samples.len())
            .filter(|&i| m.samples[i].attack == t.target.name())
            .collect();
        assert!(held.iter().all(|i| s.test.contains(i)));
        // Test = held-out attack + live.
        assert!(part(&m, &s.test)
            .iter()
            .all(|x| x.attack == t.target.name() || x.label == Label::Live));
        // Live test subjects are unseen: not in train, not in val.
        let live_test: BTreeSet<(String, String)> = s
            .test
            .iter()
            .filter(|&&i| m.samples[i].label == Label::Live)
            .map(|&i| (m.samples[i].domain.clone(), m.samples[i].subject.clone()))
            .collect();
        assert_eq!(live_test.len(), 4, "20 % of 20 live subjects");
        assert!(
            live_test.is_disjoint(&subjects_of(&m, &s.train)),
            "{}",
            t.name
        );
        assert!(
            live_test.is_disjoint(&subjects_of(&m, &s.val)),
            "{}",
            t.name
        );
        assert!(
            subjects_of(&m, &s.train).is_disjoint(&subjects_of(&m, &s.val)),
            "{}",
            t.name
        );
        // The subject split is the same for every task.
        match &test_live_subjects {
            None => test_live_subjects = Some(live_test),
            Some(first) => assert_eq!(first, &live_test),
        }
    }
}

#[test]
fn siwm_names_missing_and_unknown_attacks() {
    let without: Vec<&str> = SIWM_ATTACKS
        .iter()
        .copied()
        .filter(|&a| a != "mask:paper")
        .collect();
    let err = Protocol::SiwmLoao.tasks(&siwm(&without)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no samples of attack \"mask:paper\""), "{msg}");
    assert!(
        msg.contains("attacks present: makeup:cosmetic, makeup:impersonation"),
        "{msg}"
    );

    let mut odd: Vec<&str> = SIWM_ATTACKS.to_vec();
    odd.push("mask:hardresin");
    let err = Protocol::SiwmLoao.tasks(&siwm(&odd)).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"mask:hardresin\" is not a SiW-M spoof type"),
        "{err}"
    );

    // Several domains: the SiW-M one must be named.
    let mut mixed = siwm(&SIWM_ATTACKS);
    mixed.samples.extend(dataset("oulu", &WITH_DEV, &["print"]));
    let err = Protocol::SiwmLoao.tasks(&mixed).unwrap_err();
    assert!(
        matches!(err, ProtocolError::AmbiguousDomain { .. }),
        "{err}"
    );
    let opts = ProtocolOptions {
        siwm_domain: Some("siwm".into()),
        ..ProtocolOptions::default()
    };
    let tasks = Protocol::SiwmLoao.tasks_with(&mixed, &opts).unwrap();
    let s = tasks[0].apply(&mixed).unwrap();
    assert_eq!(
        domains_of(&mixed, &s.train),
        BTreeSet::from(["siwm".to_string()])
    );
    assert_eq!(
        domains_of(&mixed, &s.test),
        BTreeSet::from(["siwm".to_string()])
    );
}

#[test]
fn splits_are_deterministic_and_independent_of_sample_order() {
    let m = ocim(&[]);
    let mut shuffled = m.clone();
    shuffled.samples.reverse();
    shuffled.samples.rotate_left(7);
    let paths = |m: &Manifest, idx: &[usize]| -> BTreeSet<String> {
        idx.iter().map(|&i| m.samples[i].path.clone()).collect()
    };
    for p in [Protocol::Ocim, Protocol::LimitedSource] {
        for (a, b) in p.tasks(&m).unwrap().iter().zip(p.tasks(&shuffled).unwrap()) {
            let (sa, sb) = (a.apply(&m).unwrap(), b.apply(&shuffled).unwrap());
            assert_eq!(a.apply(&m).unwrap(), sa);
            assert_eq!(paths(&m, &sa.train), paths(&shuffled, &sb.train));
            assert_eq!(paths(&m, &sa.val), paths(&shuffled, &sb.val));
            assert_eq!(paths(&m, &sa.test), paths(&shuffled, &sb.test));
        }
    }
    let s = siwm(&SIWM_ATTACKS);
    let mut r = s.clone();
    r.samples.reverse();
    let (a, b) = (
        Protocol::SiwmLoao.tasks(&s).unwrap()[5].apply(&s).unwrap(),
        Protocol::SiwmLoao.tasks(&r).unwrap()[5].apply(&r).unwrap(),
    );
    assert_eq!(paths(&s, &a.test), paths(&r, &b.test));
    assert_eq!(paths(&s, &a.val), paths(&r, &b.val));
}

#[test]
fn a_source_too_small_to_hold_out_validation_is_refused() {
    let mut v = dataset("casia", &[(Split::Train, 1), (Split::Test, 0)], &["print"]);
    v.extend(dataset("msu", &NO_DEV, &["print"]));
    v.extend(dataset("replay", &WITH_DEV, &["print"]));
    v.extend(dataset("oulu", &WITH_DEV, &["print"]));
    let m = Manifest::new(v);
    let opts = ProtocolOptions {
        domain_splits: DomainSplits::Official,
        ..ProtocolOptions::default()
    };
    let task = &Protocol::Ocim.tasks_with(&m, &opts).unwrap()[0]; // OCI-M: casia is a source
    let err = task.apply(&m).unwrap_err();
    assert!(
        err.to_string()
            .contains("source casia (no dev split; split train) has 1 subject(s)"),
        "{err}"
    );
    let bad = ProtocolOptions {
        val_fraction: 1.0,
        ..ProtocolOptions::default()
    };
    assert!(matches!(
        Protocol::Ocim.tasks_with(&m, &bad),
        Err(ProtocolError::BadOption {
            field: "val_fraction",
            ..
        })
    ));
}

#[test]
fn protocol_names_parse_from_the_command_line_and_serde() {
    let names = [
        "ocim",
        "limited-source",
        "siwm-loao",
        "synth-domain",
        "synth-attack",
        "intra",
    ];
    for (p, name) in Protocol::ALL.iter().zip(names) {
        assert_eq!(p.as_str(), name);
        assert_eq!(Protocol::from_str(name, false).unwrap(), *p);
        assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{name}\""));
    }
    let t = &Protocol::Ocim.tasks(&ocim(&[])).unwrap()[0];
    let back: Task = serde_json::from_str(&serde_json::to_string(t).unwrap()).unwrap();
    assert_eq!(&back, t);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random SynthFAS-like manifests: whenever a task applies, its invariants hold.
    #[test]
    fn random_manifests_keep_the_invariants(
        rows in prop::collection::vec((0..3usize, 0..6usize, 0..4usize), 10..200),
    ) {
        let domains = ["synth-a", "synth-b", "synth-c"];
        let attacks = [ATTACK_NONE, "print", "replay", "mask"];
        let m = Manifest::new(rows.iter().enumerate().map(|(n, &(d, s, a))| {
            // A subject keeps one split (SynthFAS splits by subject).
            let split = [Split::Train, Split::Dev, Split::Test][s % 3];
            sample(domains[d], &format!("s{s}"), attacks[a], split, n as u32)
        }).collect());
        for p in [Protocol::SynthDomain, Protocol::SynthAttack] {
            let Ok(tasks) = p.tasks(&m) else { continue };
            for t in &tasks {
                let Ok(s) = t.apply(&m) else { continue };
                check_common(&m, t, &s);
                if p == Protocol::SynthDomain {
                    check_lodo(&m, t, &s);
                } else {
                    prop_assert!(subjects_of(&m, &s.train).is_disjoint(&subjects_of(&m, &s.test)));
                }
            }
        }
    }
}
