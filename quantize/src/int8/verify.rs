//! The int8 model must run in tract before it is shipped: it is loaded with the edge's own
//! loader ([`LivenessModel`]) and scored once. A failure names the ONNX node and op that
//! tract refused.

use fas_infer::liveness::{LivenessError, LivenessModel};
use tract_onnx::pb::ModelProto;

/// Why tract would not run the quantised model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("int8 model: tract cannot run it — {op} node \"{node}\": {detail} — the model was not written; use another encoding (e.g. int8-weight-only) or report the op")]
pub struct TractRefusal {
    /// ONNX op type of the failing node (`"unknown op"` when tract's message names none).
    pub op: String,
    pub node: String,
    pub detail: String,
}

/// Why the quantised model is not shipped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Refused(#[from] TractRefusal),
    /// tract ran it, but the output is not one `p_live` in `[0, 1]` (contract 3).
    #[error("int8 model: {0} — the model was not written")]
    Output(String),
}

/// Loads and scores `bytes` (whose proto is `proto`) on `sample`; returns `p_live`.
pub fn verify_runs(
    bytes: &[u8],
    proto: &ModelProto,
    shape: &[usize],
    sample: &[f32],
) -> Result<f32, VerifyError> {
    let res =
        LivenessModel::from_bytes(bytes, shape, "int8 model").and_then(|mut m| m.score(sample));
    res.map_err(|e| match e {
        LivenessError::Load { detail, .. } | LivenessError::Run { detail, .. } => {
            VerifyError::Refused(refusal(proto, detail))
        }
        other => VerifyError::Output(other.to_string()),
    })
}

fn refusal(proto: &ModelProto, detail: String) -> TractRefusal {
    // The longest node name tract's message mentions (names can prefix each other).
    let node = proto
        .graph
        .iter()
        .flat_map(|g| g.node.iter())
        .filter(|n| !n.name.is_empty() && detail.contains(&n.name))
        .max_by_key(|n| n.name.len());
    match node {
        Some(n) => TractRefusal {
            op: n.op_type.clone(),
            node: n.name.clone(),
            detail,
        },
        None => TractRefusal {
            op: "unknown op".into(),
            node: String::new(),
            detail,
        },
    }
}
