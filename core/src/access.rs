//! What a door decision says about access (issue 25): the mode the door ran in, the person
//! the decision concerns (an enrolment id, never a name) and the state of each factor. One
//! owner for these words: the edge decides with them, the audit log records them.

use serde::{Deserialize, Serialize};

/// Which factors a door asks for before it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccessMode {
    /// A credential names an enrolled person; the live face in the same session must be
    /// that person's (1:1).
    #[serde(rename = "credential+face")]
    CredentialFace,
    /// No reader: the live face must match an enrolled person (1:N).
    #[serde(rename = "face")]
    Face,
    /// The credential alone; liveness only requires a live person in front of the camera.
    #[serde(rename = "credential")]
    Credential,
    /// Any live face opens (no identity at all). Only with `allow_any_live_face = true`.
    #[serde(rename = "presence")]
    Presence,
}

impl AccessMode {
    pub const ALL: [AccessMode; 4] = [
        AccessMode::CredentialFace,
        AccessMode::Face,
        AccessMode::Credential,
        AccessMode::Presence,
    ];

    /// The name used in `edge.toml` and in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            AccessMode::CredentialFace => "credential+face",
            AccessMode::Face => "face",
            AccessMode::Credential => "credential",
            AccessMode::Presence => "presence",
        }
    }

    pub fn needs_credential(self) -> bool {
        matches!(self, AccessMode::CredentialFace | AccessMode::Credential)
    }

    pub fn needs_face_match(self) -> bool {
        matches!(self, AccessMode::CredentialFace | AccessMode::Face)
    }
}

impl std::fmt::Display for AccessMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The state of one factor when the decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorState {
    /// Checked and passed.
    Passed,
    /// Checked and failed.
    Failed,
    /// Required but never checked (the session ended before it could be).
    Missing,
    /// The access mode does not ask for it.
    NotRequired,
}

/// Every factor of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factors {
    pub credential: FactorState,
    pub live: FactorState,
    pub face: FactorState,
    /// Cosine similarity of the session's face to the person's template (1:1) or to the
    /// best enrolled template (1:N), when a face was compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_similarity: Option<f32>,
}

/// The access part of an audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRecord {
    pub mode: AccessMode,
    /// The enrolment id the decision concerns: named by the credential, or found by the
    /// face (1:N). Absent when nobody was identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    pub factors: Factors,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_round_trip() {
        for m in AccessMode::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<AccessMode>(&json).unwrap(), m);
        }
    }

    #[test]
    fn record_refuses_unknown_fields() {
        let ok = r#"{"mode":"face","person":"p1","factors":{"credential":"not_required","live":"passed","face":"passed","face_similarity":0.7}}"#;
        let r: AccessRecord = serde_json::from_str(ok).unwrap();
        assert_eq!(r.person.as_deref(), Some("p1"));
        let bad = ok.replace("\"person\"", "\"name\"");
        assert!(serde_json::from_str::<AccessRecord>(&bad).is_err());
    }
}
