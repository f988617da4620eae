//! Property tests of fas-core metrics invariants.

use fas_core::dataset::Label;
use fas_core::metrics::{
    acer, auc, auc_per_attack, eer, operating_point, roc_curve, MetricsError, Report, Threshold,
};
use proptest::prelude::*;

/// Scores on a coarse grid (many ties) with both classes present.
fn scored() -> impl Strategy<Value = (Vec<f64>, Vec<Label>)> {
    prop::collection::vec((0u8..=20, any::<bool>()), 2..60).prop_map(|v| {
        let scores: Vec<f64> = v.iter().map(|&(k, _)| f64::from(k) / 20.0).collect();
        let mut labels: Vec<Label> = v
            .iter()
            .map(|&(_, live)| if live { Label::Live } else { Label::Spoof })
            .collect();
        labels[0] = Label::Live;
        labels[1] = Label::Spoof;
        (scores, labels)
    })
}

/// Continuous scores with both classes present.
fn scored_continuous() -> impl Strategy<Value = (Vec<f64>, Vec<Label>)> {
    prop::collection::vec((-1e3f64..1e3, any::<bool>()), 2..80).prop_map(|v| {
        let scores = v.iter().map(|&(s, _)| s).collect();
        let mut labels: Vec<Label> = v
            .iter()
            .map(|&(_, live)| if live { Label::Live } else { Label::Spoof })
            .collect();
        labels[0] = Label::Live;
        labels[1] = Label::Spoof;
        (scores, labels)
    })
}

fn mann_whitney(scores: &[f64], labels: &[Label]) -> f64 {
    let (mut num, mut pairs) = (0.0, 0.0);
    for (&a, &la) in scores.iter().zip(labels) {
        for (&b, &lb) in scores.iter().zip(labels) {
            if la == Label::Live && lb == Label::Spoof {
                pairs += 1.0;
                num += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    num / pairs
}

fn swap(labels: &[Label]) -> Vec<Label> {
    labels
        .iter()
        .map(|&l| match l {
            Label::Live => Label::Spoof,
            Label::Spoof => Label::Live,
        })
        .collect()
}

/// Attack types for `labels`: bona fide "none", attacks one of three types by `pick`.
fn attack_types(labels: &[Label], pick: &[u8]) -> Vec<&'static str> {
    labels
        .iter()
        .zip(pick.iter().cycle())
        .map(|(&l, &k)| match l {
            Label::Live => "none",
            Label::Spoof => ["print", "replay", "mask"][usize::from(k % 3)],
        })
        .collect()
}

proptest! {
    #[test]
    fn pooled_auc_is_the_count_weighted_mean_of_per_attack_aucs(
        (s, l) in scored(),
        pick in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let a = attack_types(&l, &pick);
        let per = auc_per_attack(&s, &l, &a).unwrap();
        let n_attack = l.iter().filter(|&&x| x == Label::Spoof).count() as f64;
        let mut weighted = 0.0;
        for (t, &v) in &per {
            // Each type's AUC is Mann–Whitney on bona fide plus that type alone.
            let (ts, tl): (Vec<f64>, Vec<Label>) = s
                .iter()
                .zip(&l)
                .zip(&a)
                .filter(|((_, &x), &y)| x == Label::Live || y == t.as_str())
                .map(|((&x, &y), _)| (x, y))
                .unzip();
            prop_assert!((v - mann_whitney(&ts, &tl)).abs() < 1e-12);
            weighted += v * tl.iter().filter(|&&x| x == Label::Spoof).count() as f64;
        }
        prop_assert!((weighted / n_attack - auc(&s, &l).unwrap()).abs() < 1e-12);
        prop_assert!(per.keys().all(|t| a.contains(&t.as_str()) && t != "none"));
    }

    #[test]
    fn auc_is_mann_whitney((s, l) in scored()) {
        let a = auc(&s, &l).unwrap();
        prop_assert!((0.0..=1.0).contains(&a));
        prop_assert!((a - mann_whitney(&s, &l)).abs() < 1e-12);
    }

    #[test]
    fn auc_invariant_under_strictly_monotone_maps((s, l) in scored(), which in 0usize..4) {
        let f = |x: f64| match which {
            0 => 3.0 * x - 7.0,
            1 => x.powi(3),
            2 => (5.0 * x).exp(),
            _ => (x - 0.3).atan(),
        };
        let t: Vec<f64> = s.iter().map(|&x| f(x)).collect();
        prop_assert_eq!(auc(&s, &l).unwrap(), auc(&t, &l).unwrap());
    }

    #[test]
    fn auc_of_negated_scores_is_complement((s, l) in scored_continuous()) {
        let n: Vec<f64> = s.iter().map(|&x| -x).collect();
        let sum = auc(&s, &l).unwrap() + auc(&n, &l).unwrap();
        prop_assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn swapping_labels_complements_auc((s, l) in scored()) {
        let a = auc(&s, &l).unwrap();
        let b = auc(&s, &swap(&l)).unwrap();
        prop_assert!((a + b - 1.0).abs() < 1e-12);
    }

    #[test]
    fn all_equal_scores_give_half(n_live in 1usize..30, n_spoof in 1usize..30, v in -5.0f64..5.0) {
        let mut l = vec![Label::Live; n_live];
        l.extend(vec![Label::Spoof; n_spoof]);
        let s = vec![v; l.len()];
        prop_assert_eq!(auc(&s, &l).unwrap(), 0.5);
        prop_assert_eq!(eer(&s, &l).unwrap().eer, 0.5);
    }

    #[test]
    fn eer_in_unit_interval((s, l) in scored_continuous()) {
        let e = eer(&s, &l).unwrap();
        prop_assert!((0.0..=1.0).contains(&e.eer));
        prop_assert!(e.threshold.is_finite());
        // APCER rises and BPCER falls along the curve, so at every ROC point the EER
        // lies between that point's APCER and BPCER.
        let roc = roc_curve(&s, &l).unwrap();
        for i in 0..roc.len() {
            let (a, b) = (roc.apcer(i), roc.bpcer(i));
            prop_assert!(a.min(b) - 1e-12 <= e.eer && e.eer <= a.max(b) + 1e-12);
        }
    }

    #[test]
    fn hter_is_mean_of_apcer_and_bpcer((s, l) in scored(), t in -0.1f64..1.1) {
        let p = operating_point(&s, &l, t).unwrap();
        prop_assert!((0.0..=1.0).contains(&p.apcer) && (0.0..=1.0).contains(&p.bpcer));
        prop_assert_eq!(p.hter, (p.apcer + p.bpcer) / 2.0);
        let attacks = vec!["print"; s.len()];
        // With one attack type, ACER equals HTER.
        prop_assert_eq!(acer(&s, &l, &attacks, t).unwrap(), p.hter);
    }

    #[test]
    fn selected_thresholds_meet_their_targets((s, l) in scored(), x in 0.0f64..=1.0) {
        let ta = Threshold::at_apcer(&s, &l, x).unwrap();
        prop_assert!(ta.point.apcer <= x);
        prop_assert_eq!(ta.point, operating_point(&s, &l, ta.value).unwrap());
        let tb = Threshold::at_bpcer(&s, &l, x).unwrap();
        prop_assert!(tb.point.bpcer <= x);
        prop_assert_eq!(tb.point, operating_point(&s, &l, tb.value).unwrap());
        let te = Threshold::at_eer(&s, &l).unwrap();
        prop_assert!(te.value.is_finite());
        prop_assert!(te.point.hter.is_finite());
    }

    #[test]
    fn one_class_is_a_typed_error(s in prop::collection::vec(-1.0f64..1.0, 1..20), live in any::<bool>()) {
        let label = if live { Label::Live } else { Label::Spoof };
        let l = vec![label; s.len()];
        let want = Err(MetricsError::OneClass { present: label });
        prop_assert_eq!(auc(&s, &l), want.clone());
        prop_assert_eq!(eer(&s, &l).map(|e| e.eer), want.clone());
        prop_assert_eq!(operating_point(&s, &l, 0.0).map(|p| p.hter), want.clone());
        prop_assert_eq!(Threshold::at_apcer(&s, &l, 0.1).map(|t| t.value), want.clone());
        let attacks = vec!["x"; s.len()];
        prop_assert!(Report::compute(&s, &l, &attacks, 0.0).is_err());
    }

    #[test]
    fn non_finite_score_is_a_typed_error((mut s, l) in scored(), i in any::<prop::sample::Index>(), which in 0usize..3) {
        let i = i.index(s.len());
        s[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][which];
        let is_typed = |r: Result<f64, MetricsError>| {
            matches!(r, Err(MetricsError::NonFiniteScore { index, .. }) if index == i)
        };
        prop_assert!(is_typed(auc(&s, &l)));
        prop_assert!(is_typed(eer(&s, &l).map(|e| e.eer)));
        prop_assert!(is_typed(operating_point(&s, &l, 0.5).map(|p| p.hter)));
    }
}

#[test]
fn empty_input_is_a_typed_error() {
    assert_eq!(auc(&[], &[]), Err(MetricsError::Empty));
    assert_eq!(eer(&[], &[]).map(|e| e.eer), Err(MetricsError::Empty));
    assert_eq!(
        operating_point(&[], &[], 0.5).map(|p| p.hter),
        Err(MetricsError::Empty)
    );
    assert_eq!(
        Threshold::at_bpcer(&[], &[], 0.1).map(|t| t.value),
        Err(MetricsError::Empty)
    );
    let no: [&str; 0] = [];
    assert_eq!(
        Report::compute(&[], &[], &no, 0.5).map(|r| r.auc),
        Err(MetricsError::Empty)
    );
    assert_eq!(
        auc(&[0.1, 0.2], &[Label::Live]),
        Err(MetricsError::LengthMismatch {
            what: "labels",
            expected: 2,
            got: 1
        })
    );
}
