use super::*;

fn cfg() -> PolicyConfig {
    PolicyConfig {
        mode: Mode::Triggered,
        frames: 3,
        window_ms: 1000,
        aggregate: Aggregate::Mean,
        threshold: 0.6,
        hysteresis: 0.2,
        hysteresis_ms: 10_000,
        cooldown_ms: 500,
        multiple_faces: MultipleFaces::Abort,
        lockout_after: 0,
        lockout_ms: 60_000,
    }
}

fn score(t_ms: u64, p_live: f32) -> Observation {
    Observation::Score {
        t_ms,
        p_live,
        track: 1,
    }
}

/// Opens a session at `t` and feeds `p` every 10 ms until it ends.
fn run(policy: &mut Policy, t: u64, p: f32) -> SessionOutcome {
    assert!(policy.start(t, Trigger::External).is_none());
    (1..)
        .find_map(|i| policy.observe(score(t + 10 * i, p)))
        .unwrap()
}

/// The guest's near-miss: a session that began on one face's last frame and would have
/// ended on the next face's first. Averaged, 0.99 and 0.0 clear a 0.45 bar; bound to one
/// track, the second face ends the session without a decision.
#[test]
fn a_second_face_ends_the_session_without_mixing_scores() {
    let mut p = Policy::new(PolicyConfig {
        mode: Mode::Continuous,
        frames: 2,
        threshold: 0.45,
        ..cfg()
    })
    .unwrap();
    assert!(p
        .observe(Observation::Score {
            t_ms: 10,
            p_live: 0.99,
            track: 7
        })
        .is_none());
    let out = p
        .observe(Observation::Score {
            t_ms: 20,
            p_live: 0.0,
            track: 8,
        })
        .expect("the session ends");
    assert_eq!(out.verdict, Verdict::from_reason(Reason::FaceChanged));
    assert_eq!(out.aggregate, None);
    assert_eq!(out.scores, vec![0.99]);
    // The same two scores from one track do decide (and here grant: the mean is 0.495).
    let mut p = Policy::new(PolicyConfig {
        mode: Mode::Continuous,
        frames: 2,
        threshold: 0.45,
        ..cfg()
    })
    .unwrap();
    assert!(p.observe(score(10, 0.99)).is_none());
    let out = p.observe(score(20, 0.0)).unwrap();
    assert_eq!(out.verdict.reason, Reason::AboveThreshold);
}

/// Trying card numbers locks the door out like trying photos does.
#[test]
fn refused_credentials_count_toward_the_lockout() {
    let mut p = Policy::new(PolicyConfig {
        lockout_after: 3,
        lockout_ms: 1000,
        ..cfg()
    })
    .unwrap();
    for t in [10, 20] {
        let out = p.refuse(t, Reason::CredentialUnknown);
        assert_eq!(out.verdict.reason, Reason::CredentialUnknown);
        assert_eq!(out.lockout_until_ms, None);
        assert!(!p.is_running());
    }
    let third = p.refuse(30, Reason::CredentialInvalid);
    assert_eq!(third.lockout_until_ms, Some(1030));
    // Locked out: even a good card's session is refused.
    assert_eq!(
        p.refuse(40, Reason::CredentialUnknown).verdict.reason,
        Reason::LockedOut
    );
    assert_eq!(
        p.start(50, Trigger::External).unwrap().verdict.reason,
        Reason::LockedOut
    );
    // A non-deny reason is a caller's bug: recorded as an internal error.
    let mut q = Policy::new(cfg()).unwrap();
    assert_eq!(
        q.refuse(5, Reason::AboveThreshold).verdict.reason,
        Reason::InternalError
    );
    // Nothing opens the door through `refuse`.
    for r in Reason::ALL {
        assert_ne!(q.refuse(6, r).verdict.decision, Decision::Grant);
    }
}

#[test]
fn median_and_mean_known_answers() {
    assert_eq!(Aggregate::Median.apply(&[0.9, 0.1, 0.5]), Some(0.5));
    assert_eq!(Aggregate::Median.apply(&[0.4, 0.1, 0.8, 0.2]), Some(0.3));
    assert_eq!(Aggregate::Median.apply(&[0.7]), Some(0.7));
    assert_eq!(Aggregate::Mean.apply(&[0.25, 0.75, 0.5]), Some(0.5));
    // n = 5, fraction 0.2 → drop one from each end: mean(0.2, 0.3, 0.4).
    let t = Aggregate::Trimmed { fraction: 0.2 }.apply(&[0.9, 0.2, 0.0, 0.4, 0.3]);
    assert!((t.unwrap() - 0.3).abs() < 1e-7, "{t:?}");
    // n = 4, fraction 0.2 → floor(0.8) = 0 dropped.
    let t = Aggregate::Trimmed { fraction: 0.2 }.apply(&[0.0, 1.0, 0.5, 0.5]);
    assert_eq!(t, Some(0.5));
    assert_eq!(Aggregate::Mean.apply(&[]), None);
    assert_eq!(Aggregate::Median.apply(&[0.5, f32::NAN]), None);
    assert_eq!(Aggregate::Trimmed { fraction: 0.5 }.apply(&[0.5]), None);
}

#[test]
fn validate_names_the_field() {
    let bad: Vec<(PolicyConfig, &str)> = vec![
        (PolicyConfig { frames: 0, ..cfg() }, "frames"),
        (
            PolicyConfig {
                window_ms: 0,
                ..cfg()
            },
            "window_ms",
        ),
        (
            PolicyConfig {
                threshold: 0.0,
                ..cfg()
            },
            "threshold",
        ),
        (
            PolicyConfig {
                threshold: f32::NAN,
                ..cfg()
            },
            "threshold",
        ),
        (
            PolicyConfig {
                threshold: 1.01,
                ..cfg()
            },
            "threshold",
        ),
        (
            PolicyConfig {
                hysteresis: -0.1,
                ..cfg()
            },
            "hysteresis",
        ),
        (
            PolicyConfig {
                hysteresis: 0.5,
                ..cfg()
            },
            "hysteresis",
        ),
        (
            PolicyConfig {
                aggregate: Aggregate::Trimmed { fraction: 0.5 },
                ..cfg()
            },
            "aggregate.trimmed.fraction",
        ),
    ];
    for (c, field) in bad {
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, field);
        assert!(
            e.to_string().starts_with(&format!("policy.{field} = ")),
            "{e}"
        );
        assert!(Policy::new(c).is_err());
    }
    cfg().validate().unwrap();
    PolicyConfig::with_threshold(0.7).validate().unwrap();
}

#[test]
fn config_parses_with_defaults() {
    let c: PolicyConfig = serde_json::from_str(
        r#"{"threshold": 0.8, "aggregate": {"trimmed": {"fraction": 0.1}}, "mode": "continuous"}"#,
    )
    .unwrap();
    assert_eq!(c.aggregate, Aggregate::Trimmed { fraction: 0.1 });
    assert_eq!(c.mode, Mode::Continuous);
    assert_eq!(c.frames, 5);
    assert!(serde_json::from_str::<PolicyConfig>(r#"{"threshold": 0.8, "treshold": 1}"#).is_err());
    assert!(serde_json::from_str::<PolicyConfig>(r#"{"frames": 3}"#).is_err());
}

#[test]
fn grants_and_denies_on_the_aggregate() {
    let mut p = Policy::new(cfg()).unwrap();
    let out = run(&mut p, 0, 0.7);
    assert_eq!(out.verdict, Verdict::from_reason(Reason::AboveThreshold));
    assert_eq!(out.scores, vec![0.7; 3]);
    assert_eq!(out.frames_used, 3);
    assert_eq!((out.started_ms, out.ended_ms), (0, 30));
    assert_eq!(out.aggregate, Some(0.7));
    assert_eq!(out.threshold_used, 0.6);
    let out = run(&mut p, 1000, 0.5);
    assert_eq!(out.verdict, Verdict::from_reason(Reason::BelowThreshold));
    assert_eq!(out.aggregate, Some(0.5));
}

#[test]
fn each_fault_denies_at_once() {
    let faults = [
        (Observation::BadFrame { t_ms: 20 }, Reason::BadFrame),
        (
            Observation::InferenceError { t_ms: 20 },
            Reason::InferenceError,
        ),
        (Observation::CameraLost { t_ms: 20 }, Reason::CameraLost),
        (score(20, f32::NAN), Reason::InferenceError),
        (score(20, f32::INFINITY), Reason::InferenceError),
        (score(20, -0.01), Reason::InferenceError),
        (score(20, 1.5), Reason::InferenceError),
    ];
    for (obs, reason) in faults {
        let mut p = Policy::new(cfg()).unwrap();
        p.start(0, Trigger::External);
        assert!(p.observe(score(10, 0.99)).is_none());
        let out = p.observe(obs.clone()).expect("a fault ends the session");
        assert_eq!(out.verdict, Verdict::from_reason(reason), "{obs:?}");
        assert_eq!(out.decision(), Decision::Deny);
        assert_eq!(out.scores, vec![0.99], "a bad score is never recorded");
        assert_eq!(out.aggregate, None);
        assert!(!p.is_running());
    }
}

#[test]
fn timeouts_pick_their_reason() {
    let cases: [(&[Observation], Reason); 4] = [
        (&[], Reason::Timeout),
        (&[Observation::NoFace { t_ms: 10 }], Reason::NoFace),
        (
            &[
                score(10, 0.9),
                Observation::Rejected {
                    t_ms: 20,
                    why: "blur".into(),
                },
            ],
            Reason::NotEnoughFrames,
        ),
        (
            &[Observation::Rejected {
                t_ms: 20,
                why: "too small".into(),
            }],
            Reason::NotEnoughFrames,
        ),
    ];
    for (obs, reason) in cases {
        let mut p = Policy::new(cfg()).unwrap();
        p.start(0, Trigger::External);
        for o in obs {
            assert!(p.observe(o.clone()).is_none());
        }
        assert!(p.tick(999).is_none(), "window is [0, 1000)");
        let out = p.tick(1000).unwrap();
        assert_eq!(out.verdict, Verdict::from_reason(reason));
        assert_eq!(out.ended_ms, 1000);
    }
    // A frame stamped after the window ends it by timeout and is not counted.
    let mut p = Policy::new(cfg()).unwrap();
    p.start(0, Trigger::External);
    p.observe(score(10, 0.9));
    p.observe(score(20, 0.9));
    let out = p.observe(score(1000, 0.9)).unwrap();
    assert_eq!(out.verdict.reason, Reason::NotEnoughFrames);
    assert_eq!(out.frames_used, 2);
}

#[test]
fn multiple_faces_rule() {
    let mut p = Policy::new(cfg()).unwrap();
    p.start(0, Trigger::External);
    let out = p.observe(Observation::MultipleFaces { t_ms: 5 }).unwrap();
    assert_eq!(out.verdict, Verdict::from_reason(Reason::MultipleFaces));

    let mut p = Policy::new(PolicyConfig {
        multiple_faces: MultipleFaces::SkipFrame,
        ..cfg()
    })
    .unwrap();
    p.start(0, Trigger::External);
    assert!(p.observe(Observation::MultipleFaces { t_ms: 5 }).is_none());
    assert_eq!(p.progress(), Some((0, 3)));
    p.observe(score(10, 0.9));
    p.observe(score(20, 0.9));
    let out = p.observe(score(30, 0.9)).unwrap();
    assert_eq!(out.decision(), Decision::Grant);
}

#[test]
fn cooldown_refuses_without_extending() {
    let mut p = Policy::new(cfg()).unwrap();
    let out = run(&mut p, 0, 0.9); // ends at 30, cooldown until 530
    assert_eq!(out.decision(), Decision::Grant);
    let refused = p.start(100, Trigger::External).unwrap();
    assert_eq!(refused.verdict, Verdict::from_reason(Reason::Cooldown));
    assert!(!p.is_running());
    assert!(p.start(529, Trigger::External).is_some());
    assert!(
        p.start(530, Trigger::External).is_none(),
        "refusals do not extend"
    );
    assert!(p.is_running());
    // A second trigger joins the running session.
    assert!(p.start(540, Trigger::External).is_none());
}

#[test]
fn hysteresis_raises_then_clears() {
    let mut p = Policy::new(cfg()).unwrap();
    let out = run(&mut p, 0, 0.5);
    assert_eq!(out.decision(), Decision::Deny);
    // Bar raised to 0.8: 0.7 is now denied.
    let out = run(&mut p, 1000, 0.7);
    assert_eq!(out.threshold_used, 0.8);
    assert_eq!(out.decision(), Decision::Deny);
    // A Deny-free session (here: no face) clears it.
    p.start(2000, Trigger::External);
    let out = p.tick(3000).unwrap();
    assert_eq!(out.verdict.reason, Reason::Timeout);
    let out = run(&mut p, 4000, 0.7);
    assert_eq!((out.threshold_used, out.decision()), (0.6, Decision::Grant));

    // The raise also lapses after hysteresis_ms.
    let out = run(&mut p, 5000, 0.1);
    assert_eq!(out.decision(), Decision::Deny); // raised at 5030
    assert_eq!(p.effective_threshold(15_029), 0.8);
    assert_eq!(p.effective_threshold(15_030), 0.6);
    let out = run(&mut p, 15_030, 0.7);
    assert_eq!(out.decision(), Decision::Grant);

    // hysteresis_ms = 0 disables it.
    let mut p = Policy::new(PolicyConfig {
        hysteresis_ms: 0,
        ..cfg()
    })
    .unwrap();
    run(&mut p, 0, 0.1);
    assert_eq!(run(&mut p, 1000, 0.7).decision(), Decision::Grant);
}

#[test]
fn continuous_mode_opens_on_faces_only() {
    let mut p = Policy::new(PolicyConfig {
        mode: Mode::Continuous,
        ..cfg()
    })
    .unwrap();
    assert!(p.observe(Observation::NoFace { t_ms: 0 }).is_none());
    assert!(!p.is_running());
    p.observe(score(10, 0.9));
    assert_eq!(p.progress(), Some((1, 3)));
    p.observe(score(20, 0.9));
    let out = p.observe(score(30, 0.9)).unwrap();
    assert_eq!((out.trigger, out.started_ms), (Trigger::Auto, 10));
    assert_eq!(out.decision(), Decision::Grant);
    // In cooldown, faces are ignored; afterwards a fault opens and denies at once.
    assert!(p.observe(score(100, 0.9)).is_none());
    assert!(!p.is_running());
    let out = p.observe(Observation::CameraLost { t_ms: 600 }).unwrap();
    assert_eq!(out.verdict, Verdict::from_reason(Reason::CameraLost));

    // Triggered mode ignores observations while idle.
    let mut p = Policy::new(cfg()).unwrap();
    assert!(p.observe(score(0, 0.9)).is_none());
    assert!(p.observe(Observation::CameraLost { t_ms: 1 }).is_none());
    assert!(!p.is_running());
}

#[test]
fn backwards_clock_denies_a_running_session() {
    let mut p = Policy::new(cfg()).unwrap();
    p.start(100, Trigger::External);
    p.observe(score(110, 0.9));
    let out = p.observe(score(50, 0.9)).unwrap();
    assert_eq!(out.verdict, Verdict::from_reason(Reason::InternalError));
    assert_eq!(out.ended_ms, 110);
    assert!(p.in_cooldown(609));
}

#[test]
fn abort_records_a_fault() {
    let mut p = Policy::new(cfg()).unwrap();
    assert!(p.abort(0, Reason::CameraLost).is_none(), "nothing to abort");
    p.start(0, Trigger::External);
    let out = p.abort(5, Reason::AboveThreshold).unwrap();
    assert_eq!(out.verdict, Verdict::from_reason(Reason::InternalError));
}

#[test]
fn lockout_after_consecutive_denials() {
    let mut p = Policy::new(PolicyConfig {
        lockout_after: 3,
        lockout_ms: 10_000,
        hysteresis_ms: 0,
        ..cfg()
    })
    .unwrap();
    // Two denials, a grant (resets), a fault (does not count), three denials.
    let mut t = 0;
    for (score, reason) in [
        (0.1, Reason::BelowThreshold),
        (0.1, Reason::BelowThreshold),
        (0.9, Reason::AboveThreshold),
        (0.1, Reason::BelowThreshold),
    ] {
        let out = run(&mut p, t, score);
        assert_eq!((out.verdict.reason, out.lockout_until_ms), (reason, None));
        t = out.ended_ms + 1000;
    }
    assert!(p.start(t, Trigger::External).is_none());
    let out = p.observe(Observation::CameraLost { t_ms: t + 5 }).unwrap();
    assert_eq!(out.verdict.reason, Reason::CameraLost);
    t = out.ended_ms + 1000;
    let out = run(&mut p, t, 0.1);
    assert_eq!(out.lockout_until_ms, None, "second denial in a row");
    t = out.ended_ms + 1000;
    let third = run(&mut p, t, 0.1);
    let until = third.ended_ms + 10_000;
    assert_eq!(third.verdict.reason, Reason::BelowThreshold);
    assert_eq!(third.lockout_until_ms, Some(until));
    // Locked out: refused (Deny), even a would-be grant, until the window ends.
    for at in [third.ended_ms + 600, until - 1] {
        let r = p.start(at, Trigger::External).unwrap();
        assert_eq!(r.verdict, Verdict::from_reason(Reason::LockedOut));
        assert_eq!(r.lockout_until_ms, Some(until));
        assert!(!p.is_running());
    }
    assert_eq!(p.locked_until(until - 1), Some(until));
    assert_eq!(p.locked_until(until), None);
    assert_eq!(
        run(&mut p, until, 0.9).verdict.reason,
        Reason::AboveThreshold
    );
}

#[test]
fn continuous_lockout_refuses_once_per_cooldown() {
    let mut p = Policy::new(PolicyConfig {
        mode: Mode::Continuous,
        lockout_after: 1,
        lockout_ms: 5_000,
        ..cfg()
    })
    .unwrap();
    let out = (0..).find_map(|i| p.observe(score(10 * i, 0.1))).unwrap();
    let until = out.lockout_until_ms.unwrap();
    let t0 = out.ended_ms + cfg().cooldown_ms;
    // A face standing there: one refusal, then silence for a cooldown, then another.
    let refusals: Vec<u64> = (0..200)
        .map(|i| t0 + 10 * i)
        .filter(|&t| p.observe(score(t, 0.9)).is_some())
        .collect();
    assert_eq!(refusals, vec![t0, t0 + 500, t0 + 1000, t0 + 1500]);
    assert!(until > t0 + 2000);
    assert_eq!(
        Policy::new(PolicyConfig {
            lockout_ms: 0,
            lockout_after: 2,
            ..cfg()
        })
        .unwrap_err()
        .field,
        "lockout_ms"
    );
}
