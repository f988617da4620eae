//! Property tests of the door policy: faults never grant, a grant always rests on enough
//! good frames, and the aggregate functions behave.

use fas_core::decision::{Decision, Reason, Verdict};
use fas_edge::policy::{
    Aggregate, Mode, MultipleFaces, Observation, Policy, PolicyConfig, SessionOutcome, Trigger,
};
use proptest::prelude::*;

fn aggregate() -> impl Strategy<Value = Aggregate> {
    prop_oneof![
        Just(Aggregate::Mean),
        Just(Aggregate::Median),
        (0.0f32..0.49).prop_map(|fraction| Aggregate::Trimmed { fraction }),
    ]
}

fn config() -> impl Strategy<Value = PolicyConfig> {
    (
        (
            prop_oneof![Just(Mode::Triggered), Just(Mode::Continuous)],
            1usize..6,
            50u64..1500,
            aggregate(),
        ),
        (0.05f32..1.0, 0.0f32..1.0),
        (0u64..3000, 0u64..600),
        (
            prop_oneof![Just(MultipleFaces::Abort), Just(MultipleFaces::SkipFrame)],
            0u32..4,
            1u64..4000,
        ),
    )
        .prop_map(
            |(
                (mode, frames, window_ms, aggregate),
                (threshold, h),
                (hysteresis_ms, cooldown_ms),
                (multiple_faces, lockout_after, lockout_ms),
            )| {
                PolicyConfig {
                    mode,
                    frames,
                    window_ms,
                    aggregate,
                    threshold,
                    // Scale into the allowed range threshold + hysteresis ≤ 1.
                    hysteresis: h * (1.0 - threshold),
                    hysteresis_ms,
                    cooldown_ms,
                    multiple_faces,
                    lockout_after,
                    lockout_ms,
                }
            },
        )
}

/// One step of a run; times are deltas so the clock is monotonic.
#[derive(Debug, Clone)]
enum Step {
    Start(u64),
    Tick(u64),
    Obs(u64, Kind),
}

#[derive(Debug, Clone)]
enum Kind {
    Score(f32),
    NoFace,
    Multiple,
    Rejected,
    Fault(FaultKind),
}

#[derive(Debug, Clone, Copy)]
enum FaultKind {
    BadFrame,
    Inference,
    CameraLost,
    Nan,
    Inf,
    OutOfRange(f32),
}

impl FaultKind {
    fn reason(self) -> Reason {
        match self {
            FaultKind::BadFrame => Reason::BadFrame,
            FaultKind::CameraLost => Reason::CameraLost,
            FaultKind::Inference | FaultKind::Nan | FaultKind::Inf | FaultKind::OutOfRange(_) => {
                Reason::InferenceError
            }
        }
    }
}

fn fault() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        Just(FaultKind::BadFrame),
        Just(FaultKind::Inference),
        Just(FaultKind::CameraLost),
        Just(FaultKind::Nan),
        Just(FaultKind::Inf),
        prop_oneof![1.0001f32..10.0, -10.0f32..-0.0001].prop_map(FaultKind::OutOfRange),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (0.0f32..=1.0).prop_map(Kind::Score),
        // Scores clustered around typical thresholds, including the extremes.
        3 => prop_oneof![Just(0.0f32), Just(1.0f32), 0.45f32..0.95].prop_map(Kind::Score),
        1 => Just(Kind::NoFace),
        1 => Just(Kind::Multiple),
        1 => Just(Kind::Rejected),
        1 => fault().prop_map(Kind::Fault),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u64..400).prop_map(Step::Start),
        1 => (0u64..800).prop_map(Step::Tick),
        8 => ((0u64..120), kind()).prop_map(|(dt, k)| Step::Obs(dt, k)),
    ]
}

fn observation(t_ms: u64, k: &Kind) -> Observation {
    match *k {
        Kind::Score(p_live) => Observation::Score {
            t_ms,
            p_live,
            track: 1,
        },
        Kind::NoFace => Observation::NoFace { t_ms },
        Kind::Multiple => Observation::MultipleFaces { t_ms },
        Kind::Rejected => Observation::Rejected {
            t_ms,
            why: "blur".into(),
        },
        Kind::Fault(f) => match f {
            FaultKind::BadFrame => Observation::BadFrame { t_ms },
            FaultKind::Inference => Observation::InferenceError { t_ms },
            FaultKind::CameraLost => Observation::CameraLost { t_ms },
            FaultKind::Nan => Observation::Score {
                t_ms,
                p_live: f32::NAN,
                track: 1,
            },
            FaultKind::Inf => Observation::Score {
                t_ms,
                p_live: f32::INFINITY,
                track: 1,
            },
            FaultKind::OutOfRange(p_live) => Observation::Score {
                t_ms,
                p_live,
                track: 1,
            },
        },
    }
}

/// Runs `steps`, returning each outcome with the observations fed since its session could
/// have opened (a superset of the session's own observations).
fn drive(policy: &mut Policy, steps: &[Step]) -> Vec<(SessionOutcome, Vec<Kind>)> {
    let mut t = 0u64;
    let mut since = Vec::new();
    let mut outs = Vec::new();
    for s in steps {
        if !policy.is_running() {
            since.clear(); // ignored while idle; not part of any session
        }
        let out = match s {
            Step::Start(dt) => {
                t += dt;
                policy.start(t, Trigger::External)
            }
            Step::Tick(dt) => {
                t += dt;
                policy.tick(t)
            }
            Step::Obs(dt, k) => {
                t += dt;
                since.push(k.clone());
                policy.observe(observation(t, k))
            }
        };
        if let Some(out) = out {
            outs.push((out, std::mem::take(&mut since)));
        }
    }
    outs
}

fn check_grant(cfg: &PolicyConfig, out: &SessionOutcome) -> Result<(), TestCaseError> {
    prop_assert!(out.verdict.is_consistent(), "{:?}", out.verdict);
    if out.decision() != Decision::Grant {
        return Ok(());
    }
    prop_assert_eq!(out.verdict.reason, Reason::AboveThreshold);
    prop_assert!(out.scores.len() >= cfg.frames);
    prop_assert_eq!(out.frames_used, out.scores.len());
    prop_assert!(out
        .scores
        .iter()
        .all(|s| s.is_finite() && (0.0..=1.0).contains(s)));
    let agg = cfg.aggregate.apply(&out.scores).unwrap();
    prop_assert_eq!(out.aggregate, Some(agg));
    prop_assert!(out.threshold_used >= cfg.threshold);
    prop_assert!(
        out.threshold_used == cfg.threshold || out.threshold_used == cfg.threshold + cfg.hysteresis
    );
    prop_assert!(agg >= out.threshold_used, "{agg} < {}", out.threshold_used);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Across arbitrary runs (both modes, restarts, cooldowns, hysteresis): every grant rests
    /// on ≥ N finite scores whose aggregate clears the session's bar, and no session that
    /// saw a fault grants.
    #[test]
    fn no_fault_ever_grants(cfg in config(), steps in prop::collection::vec(step(), 0..80)) {
        let mut policy = Policy::new(cfg.clone()).unwrap();
        for (out, seen) in drive(&mut policy, &steps) {
            check_grant(&cfg, &out)?;
            if out.decision() == Decision::Grant {
                prop_assert!(
                    !seen.iter().any(|k| matches!(k, Kind::Fault(_))),
                    "granted after {seen:?}"
                );
            }
            prop_assert!(out.ended_ms >= out.started_ms);
        }
    }

    /// The lockout, against a model of it: it starts exactly at the `lockout_after`-th
    /// `BelowThreshold` in a row (a `Grant` resets the count; refusals, faults and
    /// `NoDecision`s leave it), and until it ends every outcome is a `LockedOut` refusal.
    #[test]
    fn lockout_follows_consecutive_denials(
        cfg in config(),
        steps in prop::collection::vec(step(), 0..120),
    ) {
        let mut policy = Policy::new(cfg.clone()).unwrap();
        let (mut run, mut until) = (0u32, None::<u64>);
        for (out, _) in drive(&mut policy, &steps) {
            let reason = out.verdict.reason;
            if let Some(u) = until.filter(|&u| out.started_ms < u) {
                prop_assert_eq!(reason, Reason::LockedOut, "{:?}", out);
                prop_assert_eq!(out.lockout_until_ms, Some(u));
                continue;
            }
            prop_assert_ne!(reason, Reason::LockedOut, "refused outside a lockout: {:?}", out);
            match reason {
                Reason::AboveThreshold => run = 0,
                Reason::BelowThreshold if cfg.lockout_after > 0 => run += 1,
                _ => {}
            }
            if cfg.lockout_after > 0 && run == cfg.lockout_after {
                run = 0;
                until = Some(out.ended_ms + cfg.lockout_ms);
                prop_assert_eq!(out.lockout_until_ms, until, "{:?}", out);
            } else {
                prop_assert_eq!(out.lockout_until_ms, None, "{:?}", out);
            }
        }
    }

    /// A fault anywhere in a triggered session ends it as Deny with the fault's reason,
    /// unless the session already ended before the fault arrived.
    #[test]
    fn injected_fault_denies(
        cfg in config(),
        before in prop::collection::vec((0u64..50, kind()), 0..10),
        f in fault(),
    ) {
        let cfg = PolicyConfig { mode: Mode::Triggered, ..cfg };
        let mut policy = Policy::new(cfg.clone()).unwrap();
        prop_assert!(policy.start(0, Trigger::External).is_none());
        let mut t = 0;
        for (dt, k) in &before {
            t += dt;
            if let Some(out) = policy.observe(observation(t, k)) {
                check_grant(&cfg, &out)?;
                return Ok(()); // ended before the fault
            }
        }
        let out = policy.observe(observation(t, &Kind::Fault(f))).unwrap();
        if t >= cfg.window_ms {
            prop_assert_eq!(out.decision(), Decision::NoDecision); // timed out first
        } else {
            prop_assert_eq!(out.verdict, Verdict::from_reason(f.reason()));
            prop_assert_eq!(out.aggregate, None);
        }
        prop_assert!(!policy.is_running());
    }

    #[test]
    fn aggregates_lie_within_the_scores(
        a in aggregate(),
        scores in prop::collection::vec(0.0f32..=1.0, 1..40),
    ) {
        let v = a.apply(&scores).unwrap();
        let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        prop_assert!(min <= v && v <= max, "{a:?} {v} outside [{min}, {max}]");
        // Order does not matter.
        let mut rev = scores.clone();
        rev.reverse();
        prop_assert_eq!(a.apply(&rev), Some(v));
    }

    #[test]
    fn trimmed_zero_is_the_mean(scores in prop::collection::vec(0.0f32..=1.0, 1..40)) {
        let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len() as f64;
        let m = Aggregate::Mean.apply(&scores).unwrap();
        prop_assert!((f64::from(m) - mean).abs() < 1e-6);
        prop_assert_eq!(Aggregate::Trimmed { fraction: 0.0 }.apply(&scores), Some(m));
    }

    #[test]
    fn median_has_as_many_below_as_above(scores in prop::collection::vec(0.0f32..=1.0, 1..40)) {
        let m = Aggregate::Median.apply(&scores).unwrap();
        let below = scores.iter().filter(|&&s| s < m).count();
        let above = scores.iter().filter(|&&s| s > m).count();
        prop_assert!(below <= scores.len() / 2 && above <= scores.len() / 2);
    }

    #[test]
    fn non_finite_scores_have_no_aggregate(
        a in aggregate(),
        mut scores in prop::collection::vec(0.0f32..=1.0, 0..10),
        bad in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
        at in any::<prop::sample::Index>(),
    ) {
        let i = at.index(scores.len() + 1);
        scores.insert(i, bad);
        prop_assert_eq!(a.apply(&scores), None);
    }
}

#[test]
fn median_known_answers() {
    let cases: [(&[f32], f32); 5] = [
        (&[0.3], 0.3),
        (&[0.9, 0.1], 0.5),
        (&[0.2, 0.9, 0.4], 0.4),
        (&[1.0, 0.0, 0.25, 0.75], 0.5),
        (&[0.6, 0.6, 0.1, 0.9, 0.6], 0.6),
    ];
    for (scores, want) in cases {
        assert_eq!(Aggregate::Median.apply(scores), Some(want), "{scores:?}");
    }
}

#[test]
fn trimmed_known_answer() {
    // n = 10, fraction 0.25 → drop floor(2.5) = 2 from each end.
    let s = [0.0, 0.05, 0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.99, 1.0];
    let t = Aggregate::Trimmed { fraction: 0.25 }.apply(&s).unwrap();
    assert!((t - 0.6).abs() < 1e-6, "{t}");
}

/// A whole triggered door cycle: grant, cooldown refusal, deny, raised bar, fault.
#[test]
fn door_cycle() {
    let mut p = Policy::new(PolicyConfig {
        frames: 3,
        aggregate: Aggregate::Median,
        threshold: 0.7,
        hysteresis: 0.1,
        ..PolicyConfig::with_threshold(0.7)
    })
    .unwrap();
    let feed = |p: &mut Policy, t0: u64, scores: &[f32]| {
        assert!(p.start(t0, Trigger::External).is_none());
        scores
            .iter()
            .enumerate()
            .find_map(|(i, &s)| {
                p.observe(Observation::Score {
                    t_ms: t0 + 33 * (i as u64 + 1),
                    p_live: s,
                    track: 1,
                })
            })
            .expect("session ends")
    };
    let out = feed(&mut p, 0, &[0.9, 0.2, 0.8]);
    assert_eq!(out.verdict, Verdict::from_reason(Reason::AboveThreshold));
    assert_eq!(out.aggregate, Some(0.8));
    let refused = p.start(1000, Trigger::External).unwrap();
    assert_eq!(refused.verdict.reason, Reason::Cooldown);
    let out = feed(&mut p, 3000, &[0.6, 0.75, 0.65]);
    assert_eq!(out.verdict.reason, Reason::BelowThreshold);
    let out = feed(&mut p, 6000, &[0.75, 0.75, 0.75]);
    assert_eq!(out.threshold_used, 0.8);
    assert_eq!(out.verdict.reason, Reason::BelowThreshold);
    assert!(p.start(9000, Trigger::External).is_none());
    let out = p.observe(Observation::CameraLost { t_ms: 9010 }).unwrap();
    assert_eq!(out.verdict, Verdict::from_reason(Reason::CameraLost));
}
