//! The access decision: a liveness session's verdict, the credential and the face match,
//! combined by the access mode into one verdict that names every factor. Pure and total:
//! every combination is tested below.
//!
//! | mode | credential | liveness | face | verdict |
//! |---|---|---|---|---|
//! | any | any | `LockedOut` | — | `Deny` / `LockedOut` (the door refuses everything) |
//! | any identity mode | invalid | — | — | `Deny` / `CredentialInvalid` |
//! | any identity mode | unknown | — | — | `Deny` / `CredentialUnknown` |
//! | `credential*` | none arrived | — | — | `NoDecision` / `Timeout` |
//! | every mode | ok or not required | not `AboveThreshold` | — | the liveness verdict (`not_live` = `BelowThreshold`) |
//! | `presence` | — | `AboveThreshold` | — | `Grant` / `AboveThreshold` |
//! | `credential` | known | `AboveThreshold` | — | `Grant` / `Verified` |
//! | `credential+face` | known | `AboveThreshold` | that person's, ≥ threshold | `Grant` / `Verified` |
//! | `face` | — | `AboveThreshold` | an enrolled person's, ≥ threshold | `Grant` / `Verified` |
//! | `credential+face`, `face` | | `AboveThreshold` | below threshold, another person's, or not compared | `Deny` / `FaceMismatch` |
//!
//! Checks run in that order, so a deny names the first factor that failed, and the record
//! still shows the state of every factor.

use fas_core::access::{AccessMode, AccessRecord, FactorState, Factors};
use fas_core::decision::{Decision, Reason, Verdict};

/// What the credential factor came to.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialCheck {
    /// No credential arrived (or the mode takes none).
    None,
    /// A reader delivered something that is not a credential.
    Invalid,
    /// A credential that names nobody enrolled.
    Unknown,
    /// The enrolled person the credential names.
    Person(String),
}

/// What the face factor came to.
#[derive(Debug, Clone, PartialEq)]
pub enum FaceCheck {
    /// No face was compared (the mode needs none, or the session ended before).
    NotCompared,
    /// The session's face against the templates: the best person and the similarity
    /// (1:N), or the named person's similarity (1:1).
    Compared {
        person: Option<String>,
        similarity: f32,
    },
}

/// The one door decision of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessDecision {
    pub verdict: Verdict,
    pub record: AccessRecord,
}

/// Combines the factors. `threshold` is the face-similarity bar of the mode.
pub fn decide(
    mode: AccessMode,
    liveness: Verdict,
    credential: &CredentialCheck,
    face: &FaceCheck,
    threshold: f32,
) -> AccessDecision {
    // Failed only when the model judged the face and found it not live; faults, refusals
    // and sessions without enough frames never judged it.
    let live = match liveness.reason {
        Reason::AboveThreshold => FactorState::Passed,
        Reason::BelowThreshold => FactorState::Failed,
        _ => FactorState::Missing,
    };
    let cred_state = match (mode.needs_credential(), credential) {
        (false, _) => FactorState::NotRequired,
        (true, CredentialCheck::Person(_)) => FactorState::Passed,
        (true, CredentialCheck::None) => FactorState::Missing,
        (true, CredentialCheck::Invalid | CredentialCheck::Unknown) => FactorState::Failed,
    };
    let claimed = match credential {
        CredentialCheck::Person(p) if mode.needs_credential() => Some(p.clone()),
        _ => None,
    };
    // The face factor: does the face belong to the claimed person (1:1) or to anyone (1:N)?
    let (face_state, similarity, face_person) = match (mode.needs_face_match(), face) {
        (false, _) => (FactorState::NotRequired, None, None),
        (true, FaceCheck::NotCompared) => (FactorState::Missing, None, None),
        (true, FaceCheck::Compared { person, similarity }) => {
            let same = match (&claimed, person) {
                (Some(c), Some(p)) => c == p,
                (Some(_), None) => false,
                (None, p) => p.is_some(),
            };
            let ok = same && similarity.is_finite() && *similarity >= threshold;
            let state = if ok {
                FactorState::Passed
            } else {
                FactorState::Failed
            };
            (
                state,
                Some(*similarity).filter(|s| s.is_finite()),
                person.clone(),
            )
        }
    };
    let reason = if liveness.reason == Reason::LockedOut {
        Reason::LockedOut
    } else if mode.needs_credential() && *credential == CredentialCheck::Invalid {
        Reason::CredentialInvalid
    } else if mode.needs_credential() && *credential == CredentialCheck::Unknown {
        Reason::CredentialUnknown
    } else if mode.needs_credential() && *credential == CredentialCheck::None {
        Reason::Timeout
    } else if liveness.reason != Reason::AboveThreshold {
        // Only the liveness policy's own grant counts; any other granting reason here is a
        // caller's bug and must not open the door.
        match liveness.decision {
            Decision::Grant => Reason::InternalError,
            _ => liveness.reason,
        }
    } else if mode == AccessMode::Presence {
        Reason::AboveThreshold
    } else if mode.needs_face_match() && face_state != FactorState::Passed {
        Reason::FaceMismatch
    } else {
        Reason::Verified
    };
    // With a credential the person is who it names; without, who the face matched.
    let person = match (mode.needs_credential(), face_state) {
        (true, _) => claimed,
        (false, FactorState::Passed) => face_person,
        (false, _) => None,
    };
    AccessDecision {
        verdict: Verdict::from_reason(reason),
        record: AccessRecord {
            mode,
            person,
            factors: Factors {
                credential: cred_state,
                live,
                face: face_state,
                face_similarity: similarity,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f32 = 0.5;

    fn creds() -> Vec<CredentialCheck> {
        vec![
            CredentialCheck::None,
            CredentialCheck::Invalid,
            CredentialCheck::Unknown,
            CredentialCheck::Person("alice".into()),
        ]
    }

    fn faces() -> Vec<FaceCheck> {
        let c = |p: Option<&str>, s| FaceCheck::Compared {
            person: p.map(String::from),
            similarity: s,
        };
        vec![
            FaceCheck::NotCompared,
            c(Some("alice"), 0.9),
            c(Some("alice"), 0.2),
            c(Some("bob"), 0.9),
            c(None, 0.3),
            c(Some("alice"), f32::NAN),
        ]
    }

    /// The table in the module docs, over every mode × liveness reason × credential × face.
    #[test]
    fn every_combination_follows_the_table() {
        for mode in AccessMode::ALL {
            for live in Reason::ALL.map(Verdict::from_reason) {
                for cred in creds() {
                    for face in faces() {
                        let d = decide(mode, live, &cred, &face, T);
                        let v = d.verdict;
                        assert!(v.is_consistent());
                        let why = format!("{mode} {live:?} {cred:?} {face:?} → {v:?}");
                        // A grant needs every factor the mode asks for.
                        if v.decision == Decision::Grant {
                            assert_eq!(live.reason, Reason::AboveThreshold, "{why}");
                            if mode.needs_credential() {
                                assert_eq!(cred, CredentialCheck::Person("alice".into()), "{why}");
                            }
                            if mode.needs_face_match() {
                                let FaceCheck::Compared { person, similarity } = &face else {
                                    panic!("{why}");
                                };
                                assert!(*similarity >= T, "{why}");
                                if mode == AccessMode::CredentialFace {
                                    assert_eq!(person.as_deref(), Some("alice"), "{why}");
                                } else {
                                    assert!(person.is_some(), "{why}");
                                }
                            }
                            assert_eq!(
                                v.reason,
                                if mode == AccessMode::Presence {
                                    Reason::AboveThreshold
                                } else {
                                    Reason::Verified
                                },
                                "{why}"
                            );
                            assert!(mode == AccessMode::Presence || d.record.person.is_some());
                        }
                        if live.reason == Reason::LockedOut {
                            assert_eq!(v.reason, Reason::LockedOut, "{why}");
                            continue;
                        }
                        // The first failed factor is the reason.
                        if mode.needs_credential() {
                            match cred {
                                CredentialCheck::Invalid => {
                                    assert_eq!(v.reason, Reason::CredentialInvalid, "{why}")
                                }
                                CredentialCheck::Unknown => {
                                    assert_eq!(v.reason, Reason::CredentialUnknown, "{why}")
                                }
                                CredentialCheck::None => {
                                    assert_eq!(v.reason, Reason::Timeout, "{why}")
                                }
                                CredentialCheck::Person(_) => {}
                            }
                        }
                        let cred_ok =
                            !mode.needs_credential() || matches!(cred, CredentialCheck::Person(_));
                        if cred_ok && live.decision != Decision::Grant {
                            assert_eq!(v, live, "{why}");
                        }
                        assert_eq!(d.record.mode, mode);
                        if !mode.needs_face_match() {
                            assert_eq!(d.record.factors.face, FactorState::NotRequired);
                        }
                    }
                }
            }
        }
    }

    /// The four door cases of issue 25, by name.
    #[test]
    fn the_four_door_cases() {
        let live = Verdict::from_reason(Reason::AboveThreshold);
        let alice = CredentialCheck::Person("alice".into());
        let alice_face = FaceCheck::Compared {
            person: Some("alice".into()),
            similarity: 0.8,
        };
        let m = AccessMode::CredentialFace;
        let grant = decide(m, live, &alice, &alice_face, T);
        assert_eq!(grant.verdict.reason, Reason::Verified);
        assert_eq!(grant.record.person.as_deref(), Some("alice"));
        assert_eq!(grant.record.factors.face_similarity, Some(0.8));
        // Alice's card, Bob's live face (compared 1:1 against Alice: low similarity).
        let bob_face = FaceCheck::Compared {
            person: Some("alice".into()),
            similarity: 0.1,
        };
        let d = decide(m, live, &alice, &bob_face, T);
        assert_eq!(d.verdict.reason, Reason::FaceMismatch);
        assert_eq!(d.record.factors.face, FactorState::Failed);
        assert_eq!(d.record.person.as_deref(), Some("alice"));
        // An unknown card.
        let d = decide(m, live, &CredentialCheck::Unknown, &alice_face, T);
        assert_eq!(d.verdict.reason, Reason::CredentialUnknown);
        assert_eq!(d.record.person, None);
        // Alice's card and a replay of Alice's face.
        let replay = Verdict::from_reason(Reason::BelowThreshold);
        let d = decide(m, replay, &alice, &alice_face, T);
        assert_eq!(d.verdict.reason, Reason::BelowThreshold);
        assert_eq!(d.record.factors.live, FactorState::Failed);
        assert_eq!(d.record.factors.face, FactorState::Passed);
    }

    /// 1:N: a live stranger (no template above the bar) is refused.
    #[test]
    fn a_live_stranger_is_refused_in_face_mode() {
        let live = Verdict::from_reason(Reason::AboveThreshold);
        let stranger = FaceCheck::Compared {
            person: Some("alice".into()),
            similarity: 0.3,
        };
        let d = decide(AccessMode::Face, live, &CredentialCheck::None, &stranger, T);
        assert_eq!(d.verdict.reason, Reason::FaceMismatch);
        assert_eq!(d.record.person, None, "a failed 1:N search names nobody");
        assert_eq!(d.record.factors.face_similarity, Some(0.3));
    }
}
