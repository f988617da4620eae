//! The door's access state between a credential and a decision: the credential that
//! started the session, the embeddings of the judged face, and the store to check both
//! against. [`crate::door::Door`] owns one when `[access]` is set.

use fas_core::access::AccessMode;
use fas_core::decision::Verdict;
use fas_core::preprocess::RgbImage;
use fas_infer::detect::Detection;

use super::credential::CredentialRead;
use super::decide::{decide, AccessDecision, CredentialCheck, FaceCheck};
use super::store::Store;

/// A face-embedding network as the door uses it: one L2-normalised embedding of the face
/// `det` in `image`.
pub trait FaceEmbed: Send {
    fn embed(&mut self, image: &RgbImage, det: &Detection) -> anyhow::Result<Vec<f32>>;
}

pub struct Gate {
    pub mode: AccessMode,
    pub store: Store,
    /// Cosine similarity a face needs.
    pub face_threshold: f32,
    pub embedder: Option<Box<dyn FaceEmbed>>,
    /// The credential of the running (or just refused) session.
    pending: Option<CredentialCheck>,
    /// Embeddings of the session's scored frames (all of one track: the policy ends a
    /// session whose track changes).
    embeddings: Vec<Vec<f32>>,
}

impl Gate {
    pub fn new(
        mode: AccessMode,
        store: Store,
        face_threshold: f32,
        embedder: Option<Box<dyn FaceEmbed>>,
    ) -> Gate {
        Gate {
            mode,
            store,
            face_threshold,
            embedder,
            pending: None,
            embeddings: Vec::new(),
        }
    }

    /// What a credential read comes to against the store.
    pub fn check(&self, read: &CredentialRead) -> CredentialCheck {
        match read {
            Err(_) => CredentialCheck::Invalid,
            Ok(c) => match self.store.by_credential(c) {
                Some(p) => CredentialCheck::Person(p.id.clone()),
                None => CredentialCheck::Unknown,
            },
        }
    }

    /// Holds `check` for the next decision.
    pub fn hold(&mut self, check: CredentialCheck) {
        self.pending = Some(check);
    }

    /// Whether scored frames need an embedding.
    pub fn wants_faces(&self) -> bool {
        self.mode.needs_face_match() && self.embedder.is_some()
    }

    /// Embeds the scored face of a frame into the session's evidence.
    pub fn observe_face(&mut self, image: &RgbImage, det: &Detection) -> anyhow::Result<()> {
        if let (true, Some(e)) = (self.mode.needs_face_match(), self.embedder.as_mut()) {
            let v = e.embed(image, det)?;
            self.embeddings.push(v);
        }
        Ok(())
    }

    /// Forgets evidence gathered outside a session.
    pub fn clear_faces(&mut self) {
        self.embeddings.clear();
    }

    /// The session's face against the store: 1:1 against the claimed person, else 1:N.
    fn face_check(&self, credential: &CredentialCheck) -> FaceCheck {
        let Some(mean) = mean_unit(&self.embeddings) else {
            return FaceCheck::NotCompared;
        };
        match credential {
            CredentialCheck::Person(id) if self.mode.needs_credential() => {
                match self.store.verify(id, &mean) {
                    Some(similarity) => FaceCheck::Compared {
                        person: Some(id.clone()),
                        similarity,
                    },
                    // Enrolled with a card but no face: nothing to match.
                    None => FaceCheck::NotCompared,
                }
            }
            _ if self.mode.needs_credential() => FaceCheck::NotCompared,
            _ => match self.store.search(&mean) {
                Some((p, similarity)) => FaceCheck::Compared {
                    person: Some(p.id.clone()),
                    similarity,
                },
                None => FaceCheck::NotCompared,
            },
        }
    }

    /// The access decision for a session that ended with `liveness`; clears the held
    /// credential and the face evidence.
    pub fn decide(&mut self, liveness: Verdict) -> AccessDecision {
        let credential = self.pending.take().unwrap_or(CredentialCheck::None);
        let face = if liveness.reason == fas_core::decision::Reason::AboveThreshold {
            self.face_check(&credential)
        } else {
            FaceCheck::NotCompared
        };
        self.embeddings.clear();
        decide(self.mode, liveness, &credential, &face, self.face_threshold)
    }
}

/// The normalised mean of unit vectors (`None` for none, or vectors of unequal length).
fn mean_unit(vs: &[Vec<f32>]) -> Option<Vec<f32>> {
    let first = vs.first()?;
    let mut sum = vec![0.0f32; first.len()];
    for v in vs {
        if v.len() != sum.len() {
            return None;
        }
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let n = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    (n.is_finite() && n > 0.0).then(|| sum.into_iter().map(|x| x / n).collect())
}

#[cfg(test)]
mod tests {
    use super::super::credential::Credential;
    use super::super::store::Person;
    use super::*;
    use fas_core::decision::Reason;

    /// An embedder that returns what it is told (the real one lives in fas-infer; this
    /// tests the gate's bookkeeping, not a network).
    struct Fixed(Vec<Vec<f32>>);
    impl FaceEmbed for Fixed {
        fn embed(&mut self, _: &RgbImage, _: &Detection) -> anyhow::Result<Vec<f32>> {
            Ok(self.0.remove(0))
        }
    }

    fn store() -> Store {
        let mut s = Store::empty("m");
        s.add(
            Person {
                id: "alice".into(),
                name: None,
                credentials: vec!["26:1:1".parse().unwrap()],
                templates: vec![vec![1.0, 0.0]],
                enrolled_ms: 0,
            },
            2,
        )
        .unwrap();
        s
    }

    fn det() -> Detection {
        Detection {
            bbox: [0.0, 0.0, 10.0, 10.0],
            landmarks: [[5.0, 5.0]; 5],
            score: 1.0,
        }
    }

    #[test]
    fn credential_then_face_one_to_one() {
        let img = RgbImage::new(4, 4, vec![0; 48]).unwrap();
        let embedder = Fixed(vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]]);
        let mut g = Gate::new(
            AccessMode::CredentialFace,
            store(),
            0.5,
            Some(Box::new(embedder)),
        );
        let alice: Credential = "26:1:1".parse().unwrap();
        let check = g.check(&Ok(alice));
        assert_eq!(check, CredentialCheck::Person("alice".into()));
        g.hold(check);
        g.observe_face(&img, &det()).unwrap();
        g.observe_face(&img, &det()).unwrap();
        let d = g.decide(Verdict::from_reason(Reason::AboveThreshold));
        assert_eq!(d.verdict.reason, Reason::Verified);
        // Nothing is held for the next session.
        g.observe_face(&img, &det()).unwrap();
        let d = g.decide(Verdict::from_reason(Reason::AboveThreshold));
        assert_eq!(d.verdict.reason, Reason::Timeout, "no credential this time");
        assert_eq!(
            g.check(&Ok("26:1:2".parse().unwrap())),
            CredentialCheck::Unknown
        );
        assert_eq!(g.check(&Err("parity".into())), CredentialCheck::Invalid);
    }

    #[test]
    fn mean_of_units_known_answer() {
        let m = mean_unit(&[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap();
        assert!((m[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(mean_unit(&[]), None);
        assert_eq!(mean_unit(&[vec![1.0], vec![1.0, 0.0]]), None);
        assert_eq!(mean_unit(&[vec![1.0, 0.0], vec![-1.0, 0.0]]), None);
    }
}
