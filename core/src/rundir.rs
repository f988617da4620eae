//! The training run directory (`fas-train train --out DIR`): the one owner of its layout,
//! of the scored-sample lines of `val_scores.jsonl` / `test_scores.jsonl`, and of the part
//! of `run.json` that every reader of a run dir needs ([`RunHeader`]).
//!
//! fas-train writes a run dir (its full `RunConfig` is a superset of [`RunHeader`]);
//! fas-quantize exports from one. Both take every file name from here.
//!
//! ```text
//! run.json                     RunHeader + the trainer's settings
//! model.json                   IR of the deployable model (output p_live)
//! weights.safetensors          its weights (best step on source validation)
//! metrics.json                 training summary and test metrics
//! log.jsonl                    training log
//! val_scores.jsonl             ScoredSample lines, source validation (thresholds)
//! test_scores.jsonl            ScoredSample lines, test split
//! parity.safetensors           trainer inputs/outputs for the exporter's parity check
//! checkpoint/last.{safetensors,json}, checkpoint/validations.json
//! plots/
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dataset::{Sample, DATASET_MANIFEST_VERSION};
use crate::preprocess::PreprocessSpec;

/// The run's configuration ([`RunHeader`] and the trainer's settings).
pub const RUN_FILE: &str = "run.json";
/// The deployable model's IR graph.
pub const MODEL_FILE: &str = "model.json";
/// The deployable model's weights.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// Training summary and test metrics.
pub const METRICS_FILE: &str = "metrics.json";
/// The training log, one JSON object a line.
pub const LOG_FILE: &str = "log.jsonl";
/// Source-validation scores ([`ScoredSample`] lines): the deployable thresholds.
pub const VAL_SCORES_FILE: &str = "val_scores.jsonl";
/// Test-split scores ([`ScoredSample`] lines).
pub const TEST_SCORES_FILE: &str = "test_scores.jsonl";
/// The parity reference: `inputs [K, C, H, W]` and the trainer's `p_live [K]`.
pub const PARITY_FILE: &str = "parity.safetensors";
/// Directory of the plots.
pub const PLOTS_DIR: &str = "plots";
/// Directory of the resumable checkpoint.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// Stem of the last checkpoint's files in [`CHECKPOINT_DIR`] (`last.safetensors`,
/// `last.json`).
pub const CHECKPOINT_NAME: &str = "last";
/// The validations so far, in [`CHECKPOINT_DIR`].
pub const VALIDATIONS_FILE: &str = "validations.json";

/// Why a run dir could not be created or read. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{}: cannot read it — is {} a fas-train run dir (model.json, weights.safetensors, run.json)?", file.display(), dir.display())]
    Read {
        dir: PathBuf,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot create the run dir — check the path and that its parent is writable", dir.display())]
    Create {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot write it — check free space and the run dir's permissions", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: field \"{field}\": {problem} — the run dir was not written by this fas-train; re-run training or fix the file", file.display())]
    Field {
        file: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{}: line {line}: not a scored sample: {problem} — the run dir was not written by this fas-train; re-run training or fix the line", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        problem: String,
    },
}

impl RunDirError {
    /// A field of `file` that is missing or malformed.
    pub fn field(file: &Path, field: impl Into<String>, problem: impl Into<String>) -> Self {
        RunDirError::Field {
            file: file.to_path_buf(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The files of a run dir (paths only; nothing is read until asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// The run dir at `root`, which may not exist yet.
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// Creates `root` with its `checkpoint/` and `plots/` directories (existing ones are
    /// kept).
    pub fn create(root: &Path) -> Result<RunDir, RunDirError> {
        let dir = RunDir::new(root);
        for d in [dir.checkpoint_dir(), dir.plots()] {
            std::fs::create_dir_all(&d).map_err(|source| RunDirError::Create { dir: d, source })?;
        }
        Ok(dir)
    }

    pub fn config(&self) -> PathBuf {
        self.root.join(RUN_FILE)
    }
    pub fn model(&self) -> PathBuf {
        self.root.join(MODEL_FILE)
    }
    pub fn weights(&self) -> PathBuf {
        self.root.join(WEIGHTS_FILE)
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join(METRICS_FILE)
    }
    pub fn log(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }
    pub fn val_scores(&self) -> PathBuf {
        self.root.join(VAL_SCORES_FILE)
    }
    pub fn test_scores(&self) -> PathBuf {
        self.root.join(TEST_SCORES_FILE)
    }
    pub fn parity(&self) -> PathBuf {
        self.root.join(PARITY_FILE)
    }
    pub fn plots(&self) -> PathBuf {
        self.root.join(PLOTS_DIR)
    }
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINT_DIR)
    }
    pub fn validations(&self) -> PathBuf {
        self.checkpoint_dir().join(VALIDATIONS_FILE)
    }

    /// The bytes of the run dir's file `name` (e.g. [`MODEL_FILE`]).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, RunDirError> {
        let file = self.root.join(name);
        std::fs::read(&file).map_err(|source| RunDirError::Read {
            dir: self.root.clone(),
            file,
            source,
        })
    }

    /// `run.json`'s header.
    pub fn header(&self) -> Result<RunHeader, RunDirError> {
        RunHeader::parse(&self.read(RUN_FILE)?, &self.config())
    }
}

/// The task a run trained on, as recorded in `run.json` (the trainer's task has more
/// fields; only the name is shared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHeader {
    /// e.g. `"OCI-M"`, `"unseen-synth-a"`.
    pub name: String,
}

/// The fields of `run.json` that every reader of a run dir relies on. fas-train's
/// `RunConfig` writes them (and more: its loop, loader and sampler settings); fas-quantize
/// reads them to describe the exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// The fas-train version that wrote the run.
    pub fas_version: String,
    /// The recipe's name (`"baseline"`, `"anrl"`, …).
    pub recipe: String,
    /// The protocol, e.g. `"intra"`, `"ocim"` (absent: a custom run).
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub task: Option<TaskHeader>,
    /// The preprocessing the model was trained with (contract 1).
    pub preprocess: PreprocessSpec,
    /// The recipe's model configuration, as the recipe wrote it.
    #[serde(default)]
    pub model: serde_json::Value,
}

impl RunHeader {
    /// Parses `run.json`'s bytes; `file` names it in errors, which name the field.
    pub fn parse(bytes: &[u8], file: &Path) -> Result<RunHeader, RunDirError> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| RunDirError::field(file, "(root)", format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| RunDirError::field(file, "(root)", "not a JSON object"))?;
        fn get<T: DeserializeOwned>(
            obj: &serde_json::Map<String, serde_json::Value>,
            file: &Path,
            name: &str,
        ) -> Result<Option<T>, RunDirError> {
            match obj.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => T::deserialize(v)
                    .map(Some)
                    .map_err(|e| RunDirError::field(file, name, e.to_string())),
            }
        }
        let required = |name: &str| RunDirError::field(file, name, "missing");
        Ok(RunHeader {
            fas_version: get(obj, file, "fas_version")?.ok_or_else(|| required("fas_version"))?,
            recipe: get(obj, file, "recipe")?.ok_or_else(|| required("recipe"))?,
            protocol: get(obj, file, "protocol")?,
            task: get(obj, file, "task")?,
            preprocess: get(obj, file, "preprocess")?.ok_or_else(|| required("preprocess"))?,
            model: obj.get("model").cloned().unwrap_or_default(),
        })
    }

    /// `"<protocol> <task>"`, e.g. `"synth-domain unseen-synth-a"` (`"custom"` without a
    /// protocol).
    pub fn protocol_label(&self) -> String {
        let protocol = self.protocol.as_deref().unwrap_or("custom");
        let task = self.task.as_ref().map_or("", |t| t.name.as_str());
        format!("{protocol} {task}").trim().to_string()
    }
}

/// One scored sample: a line of `val_scores.jsonl` / `test_scores.jsonl` (the manifest's
/// `Sample` fields plus `score`, the model's `p_live`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredSample {
    #[serde(flatten)]
    pub sample: Sample,
    pub score: f64,
}

/// Writes `samples` with their `scores` (same order and length) as scored-sample lines,
/// atomically.
pub fn write_scores(path: &Path, samples: &[&Sample], scores: &[f64]) -> Result<(), RunDirError> {
    debug_assert_eq!(samples.len(), scores.len());
    let mut text = String::new();
    for (s, &score) in samples.iter().zip(scores) {
        let line = ScoredSample {
            sample: (*s).clone(),
            score,
        };
        text.push_str(&serde_json::to_string(&line).expect("a scored sample serialises"));
        text.push('\n');
    }
    crate::atomic::write_atomic(path, text.as_bytes()).map_err(|source| RunDirError::Write {
        file: path.to_path_buf(),
        source,
    })
}

/// Reads scored-sample lines (blank lines skipped); an error names the file and line.
pub fn read_scores(path: &Path) -> Result<Vec<ScoredSample>, RunDirError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunDirError::Read {
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        file: path.to_path_buf(),
        source,
    })?;
    let line_err = |i: usize, problem: String| RunDirError::Line {
        file: path.to_path_buf(),
        line: i + 1,
        problem,
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let s: ScoredSample = serde_json::from_str(l).map_err(|e| line_err(i, e.to_string()))?;
            if s.sample.v > DATASET_MANIFEST_VERSION {
                return Err(line_err(
                    i,
                    format!(
                        "field \"v\": version {} is newer than this fas reads (up to {DATASET_MANIFEST_VERSION}); upgrade fas",
                        s.sample.v
                    ),
                ));
            }
            Ok(s)
        })
        .collect()
}

#[cfg(test)]
mod tests;
