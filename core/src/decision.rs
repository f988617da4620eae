//! Door decisions (ARCHITECTURE.md contract 6).
//!
//! A decision is `Grant`, `Deny` or `NoDecision`, always together with the [`Reason`] that
//! produced it. There are two ways to a `Grant`: [`Reason::AboveThreshold`] (liveness alone,
//! the `presence` access mode) and [`Reason::Verified`] (every factor the access mode asks
//! for passed: credential, live face, same person). Every other path —
//! no face, too few frames, timeout, camera loss, inference error, bad frame, bad config,
//! cooldown — maps to `Deny` or `NoDecision` through [`Reason::decision`], so the door
//! fails closed. Construct outcomes with [`Verdict::from_reason`] so the pairing cannot be
//! got wrong.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Bona fide face with enough evidence: open the door.
    Grant,
    /// Evidence of an attack, or a fault that must not open the door.
    Deny,
    /// Not enough evidence either way (no face, too few frames, timeout, cooldown).
    NoDecision,
}

/// Why a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Aggregate `p_live` at or above the threshold → `Grant` in `presence` mode, the one
    /// mode where liveness alone grants (`Verified` is the other granting reason).
    AboveThreshold,
    /// Aggregate `p_live` below the threshold → `Deny`.
    BelowThreshold,
    /// No face found in the window → `NoDecision`.
    NoFace,
    /// More than one face where policy requires exactly one → `NoDecision`.
    MultipleFaces,
    /// Faces found, but too few frames passed the quality gates → `NoDecision`.
    NotEnoughFrames,
    /// The decision window ran out → `NoDecision`.
    Timeout,
    /// A request arrived during the post-decision cooldown → `NoDecision`.
    Cooldown,
    /// The camera disappeared or stopped delivering frames → `Deny`.
    CameraLost,
    /// A frame could not be decoded or had an unexpected size/format → `Deny`.
    BadFrame,
    /// The model failed to run or returned a non-finite score → `Deny`.
    InferenceError,
    /// The configuration or bundle is invalid → `Deny`.
    ConfigError,
    /// Anything not foreseen above → `Deny`.
    InternalError,
    /// Too many attack denials in a row: the door refuses every session until the lockout
    /// window ends → `Deny`.
    LockedOut,
    /// Every factor the access mode requires passed (an enrolled person, live, the same
    /// face) → `Grant`.
    Verified,
    /// The presented credential names nobody enrolled → `Deny`.
    CredentialUnknown,
    /// The credential could not be read (parity, length, noise, malformed line) → `Deny`.
    CredentialInvalid,
    /// The live face is not the enrolled person's (or, without a credential, nobody's) → `Deny`.
    FaceMismatch,
    /// The tracked face was replaced by another inside the session → `NoDecision`.
    FaceChanged,
}

impl Reason {
    /// Every reason, for exhaustive tests and documentation.
    pub const ALL: [Reason; 18] = [
        Reason::AboveThreshold,
        Reason::BelowThreshold,
        Reason::NoFace,
        Reason::MultipleFaces,
        Reason::NotEnoughFrames,
        Reason::Timeout,
        Reason::Cooldown,
        Reason::CameraLost,
        Reason::BadFrame,
        Reason::InferenceError,
        Reason::ConfigError,
        Reason::InternalError,
        Reason::LockedOut,
        Reason::Verified,
        Reason::CredentialUnknown,
        Reason::CredentialInvalid,
        Reason::FaceMismatch,
        Reason::FaceChanged,
    ];

    /// The decision this reason leads to. Only `AboveThreshold` and `Verified` grant.
    pub fn decision(self) -> Decision {
        match self {
            Reason::AboveThreshold | Reason::Verified => Decision::Grant,
            Reason::NoFace
            | Reason::MultipleFaces
            | Reason::NotEnoughFrames
            | Reason::Timeout
            | Reason::Cooldown
            | Reason::FaceChanged => Decision::NoDecision,
            Reason::BelowThreshold
            | Reason::CameraLost
            | Reason::BadFrame
            | Reason::InferenceError
            | Reason::ConfigError
            | Reason::InternalError
            | Reason::LockedOut
            | Reason::CredentialUnknown
            | Reason::CredentialInvalid
            | Reason::FaceMismatch => Decision::Deny,
        }
    }

    /// True for faults (as opposed to a normal outcome of the policy).
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Reason::CameraLost
                | Reason::BadFrame
                | Reason::InferenceError
                | Reason::ConfigError
                | Reason::InternalError
        )
    }
}

/// A decision together with its reason; always consistent with [`Reason::decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: Reason,
}

impl Verdict {
    pub fn from_reason(reason: Reason) -> Verdict {
        Verdict {
            decision: reason.decision(),
            reason,
        }
    }

    /// Compare an aggregate `p_live` with a threshold. A non-finite score or threshold is an
    /// inference/config error and denies.
    pub fn from_score(aggregate: f32, threshold: f32) -> Verdict {
        if !threshold.is_finite() || !(0.0..=1.0).contains(&threshold) {
            Verdict::from_reason(Reason::ConfigError)
        } else if !aggregate.is_finite() {
            Verdict::from_reason(Reason::InferenceError)
        } else if aggregate >= threshold {
            Verdict::from_reason(Reason::AboveThreshold)
        } else {
            Verdict::from_reason(Reason::BelowThreshold)
        }
    }

    /// True when the pair is one that [`Verdict::from_reason`] would produce.
    pub fn is_consistent(&self) -> bool {
        self.reason.decision() == self.decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_above_threshold_and_verified_grant() {
        for r in Reason::ALL {
            assert_eq!(
                r.decision() == Decision::Grant,
                matches!(r, Reason::AboveThreshold | Reason::Verified),
                "{r:?}"
            );
            if r.is_fault() {
                assert_eq!(r.decision(), Decision::Deny, "{r:?}");
            }
        }
    }

    #[test]
    fn scores_fail_closed() {
        assert_eq!(Verdict::from_score(0.9, 0.5).decision, Decision::Grant);
        assert_eq!(Verdict::from_score(0.5, 0.5).decision, Decision::Grant);
        assert_eq!(Verdict::from_score(0.1, 0.5).decision, Decision::Deny);
        assert_eq!(
            Verdict::from_score(f32::NAN, 0.5).reason,
            Reason::InferenceError
        );
        assert_eq!(
            Verdict::from_score(0.9, f32::NAN).reason,
            Reason::ConfigError
        );
        assert_eq!(Verdict::from_score(0.9, 1.5).decision, Decision::Deny);
    }

    #[test]
    fn serde_names() {
        assert_eq!(
            serde_json::to_string(&Decision::NoDecision).unwrap(),
            "\"no_decision\""
        );
        assert_eq!(
            serde_json::to_string(&Reason::CameraLost).unwrap(),
            "\"camera_lost\""
        );
        let v = Verdict::from_reason(Reason::Timeout);
        assert!(v.is_consistent());
        assert!(!Verdict {
            decision: Decision::Grant,
            reason: Reason::Timeout
        }
        .is_consistent());
    }
}
