//! APCER per presentation attack instrument species (attack type), ACER, and the AUC of
//! bona fide against each attack type.
//!
//! ISO/IEC 30107-3 reports APCER per attack type and, as *the* APCER of a system, the
//! worst (maximum) of them. ACER = (worst APCER + BPCER) / 2.

use super::error::{MetricsError, Result};
use super::input::{check_threshold, validate, validate_both};
use super::operating_point::operating_point;
use super::roc::Roc;
use crate::dataset::Label;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// APCER of every attack type at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackApcer {
    /// Attack type → accepted attacks of that type / attacks of that type. Only types
    /// that occur on attack ([`Label::Spoof`]) samples appear; the attack strings of
    /// bona fide samples are ignored.
    pub per_attack: BTreeMap<String, f64>,
    /// The attack type with the highest APCER (the lexicographically first on ties).
    pub worst_attack: String,
    /// The highest per-type APCER: the APCER ISO/IEC 30107-3 reports.
    pub worst: f64,
    /// APCER pooled over all attacks regardless of type (the HTER's APCER).
    pub pooled: f64,
}

fn check_attacks<S: AsRef<str>>(scores: &[f64], attacks: &[S]) -> Result<()> {
    if attacks.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            what: "attacks",
            expected: scores.len(),
            got: attacks.len(),
        });
    }
    Ok(())
}

/// APCER per attack type at `threshold` (attack accepted iff `score >= threshold`).
/// `attacks[i]` is the attack type of sample `i`. Needs at least one attack sample, no
/// bona fide sample. Errors: length mismatch, empty, non-finite score, NaN threshold,
/// no attack sample ([`MetricsError::OneClass`] with `present: Live`).
pub fn apcer_per_attack<S: AsRef<str>>(
    scores: &[f64],
    labels: &[Label],
    attacks: &[S],
    threshold: f64,
) -> Result<AttackApcer> {
    let counts = validate(scores, labels)?;
    check_attacks(scores, attacks)?;
    check_threshold(threshold)?;
    if counts.attack == 0 {
        return Err(MetricsError::OneClass {
            present: Label::Live,
        });
    }
    // type -> (accepted, total)
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut accepted_total = 0usize;
    for ((&s, &l), a) in scores.iter().zip(labels).zip(attacks) {
        if l == Label::Spoof {
            let e = tally.entry(a.as_ref()).or_default();
            e.1 += 1;
            if s >= threshold {
                e.0 += 1;
                accepted_total += 1;
            }
        }
    }
    let per_attack: BTreeMap<String, f64> = tally
        .into_iter()
        .map(|(k, (acc, n))| (k.to_owned(), acc as f64 / n as f64))
        .collect();
    let (worst_attack, worst) = per_attack
        .iter()
        .fold(None::<(&String, f64)>, |best, (k, &v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((k, v)),
        })
        .map(|(k, v)| (k.clone(), v))
        .expect("at least one attack sample");
    Ok(AttackApcer {
        per_attack,
        worst_attack,
        worst,
        pooled: accepted_total as f64 / counts.attack as f64,
    })
}

/// AUC of the bona fide samples against the attacks of each type alone (the other
/// types left out): attack type → P(score_live > score_attack) + ½·P(equal), as
/// [`Roc::auc`]. It says which attack a model ranks above real faces, which one pooled
/// AUC hides. The pooled AUC is the mean of these weighted by each type's count.
/// Errors: length mismatch, empty, non-finite score, and [`MetricsError::OneClass`]
/// when either class is missing.
pub fn auc_per_attack<S: AsRef<str>>(
    scores: &[f64],
    labels: &[Label],
    attacks: &[S],
) -> Result<BTreeMap<String, f64>> {
    validate_both(scores, labels)?;
    check_attacks(scores, attacks)?;
    let types: std::collections::BTreeSet<&str> = labels
        .iter()
        .zip(attacks)
        .filter(|(&l, _)| l == Label::Spoof)
        .map(|(_, a)| a.as_ref())
        .collect();
    types
        .into_iter()
        .map(|t| {
            let (s, l): (Vec<f64>, Vec<Label>) = scores
                .iter()
                .zip(labels)
                .zip(attacks)
                .filter(|((_, &l), a)| l == Label::Live || a.as_ref() == t)
                .map(|((&s, &l), _)| (s, l))
                .unzip();
            Ok((t.to_owned(), Roc::new(&s, &l)?.auc()))
        })
        .collect()
}

/// Average classification error rate at `threshold`:
/// `(max over attack types of APCER + BPCER) / 2`, in `[0, 1]`. Errors as
/// [`apcer_per_attack`], plus [`MetricsError::OneClass`] if no bona fide sample.
pub fn acer<S: AsRef<str>>(
    scores: &[f64],
    labels: &[Label],
    attacks: &[S],
    threshold: f64,
) -> Result<f64> {
    let per = apcer_per_attack(scores, labels, attacks, threshold)?;
    let point = operating_point(scores, labels, threshold)?;
    Ok((per.worst + point.bpcer) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::*;

    const S: [f64; 7] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3];
    const L: [Label; 7] = [Live, Spoof, Spoof, Live, Spoof, Spoof, Spoof];
    const A: [&str; 7] = ["none", "print", "replay", "none", "print", "replay", "mask"];

    #[test]
    fn per_type_and_worst() {
        let r = apcer_per_attack(&S, &L, &A, 0.55).unwrap();
        assert_eq!(r.per_attack["print"], 0.5);
        assert_eq!(r.per_attack["replay"], 0.5);
        assert_eq!(r.per_attack["mask"], 0.0);
        assert!(!r.per_attack.contains_key("none"));
        assert_eq!((r.worst_attack.as_str(), r.worst), ("print", 0.5));
        assert_eq!(r.pooled, 2.0 / 5.0);
        // BPCER at 0.55 is 0 → ACER = 0.25
        assert_eq!(acer(&S, &L, &A, 0.55).unwrap(), 0.25);
        let r = apcer_per_attack(&S, &L, &A, 0.3).unwrap();
        assert_eq!((r.worst_attack.as_str(), r.worst), ("mask", 1.0));
    }

    #[test]
    fn auc_per_type_by_hand() {
        // Live scores 0.9 and 0.6. print: 0.8, 0.5 → pairs (0.9>0.8, 0.9>0.5, 0.6<0.8,
        // 0.6>0.5) = 3/4; replay: 0.7, 0.4 → 3/4; mask: 0.3 → 2/2 = 1.
        let r = auc_per_attack(&S, &L, &A).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r["print"], r["replay"], r["mask"]), (0.75, 0.75, 1.0));
        // A tie counts one half: live 0.5 against a mask at 0.5.
        let r = auc_per_attack(
            &[0.5, 0.5, 0.9],
            &[Live, Spoof, Spoof],
            &["none", "mask", "print"],
        )
        .unwrap();
        assert_eq!((r["mask"], r["print"]), (0.5, 0.0));
    }

    #[test]
    fn errors() {
        assert_eq!(
            apcer_per_attack(&S, &L, &A[..3], 0.5),
            Err(MetricsError::LengthMismatch {
                what: "attacks",
                expected: 7,
                got: 3
            })
        );
        assert_eq!(
            apcer_per_attack(&[0.2], &[Live], &["none"], 0.5),
            Err(MetricsError::OneClass { present: Live })
        );
        assert_eq!(
            acer(&[0.2], &[Spoof], &["print"], 0.5),
            Err(MetricsError::OneClass { present: Spoof })
        );
        assert_eq!(
            auc_per_attack(&[0.2], &[Spoof], &["print"]),
            Err(MetricsError::OneClass { present: Spoof })
        );
        assert_eq!(
            auc_per_attack(&[0.2], &[Live], &["none"]),
            Err(MetricsError::OneClass { present: Live })
        );
        assert!(matches!(
            auc_per_attack(&S, &L, &A[..2]),
            Err(MetricsError::LengthMismatch {
                what: "attacks",
                ..
            })
        ));
    }
}
