//! The dataset manifest (`manifest.jsonl`, ARCHITECTURE.md contract 5): one face sample a line.

use serde::{Deserialize, Serialize};

/// Version written in every record; readers refuse records from a newer version.
pub const DATASET_MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Live,
    Spoof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
}

/// One face sample. `path` is relative to the manifest's directory unless absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub v: u32,
    pub path: String,
    pub label: Label,
    /// `"none"` for bona fide; e.g. `"print"`, `"replay"`, `"mask"` for attacks.
    pub attack: String,
    /// Source dataset = domain (e.g. `"oulu"`, `"synth-a"`).
    pub domain: String,
    pub subject: String,
    pub device: String,
    pub split: Split,
    /// Video this frame belongs to (video-level metrics average over it).
    pub video: String,
    pub frame: u32,
}
