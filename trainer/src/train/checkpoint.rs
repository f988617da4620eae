//! Checkpoints: model weights + optimiser state in one safetensors file and the loop's
//! position in a JSON sidecar, both written atomically (temp file, fsync, rename, fsync dir).
//! A crash leaves the previous checkpoint or the new one, never a torn file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Where the loop stands; everything else needed to continue bit-identically is derived
/// from the run config and these numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    pub format: u32,
    pub step: usize,
    pub best_step: Option<usize>,
    /// Validation metric of the best model so far (source validation only).
    pub best_metric: Option<f64>,
}

pub const CHECKPOINT_FORMAT: u32 = 1;

/// Writes `tensors` as safetensors to `path` atomically: libtorch writes the file at a
/// temporary path, [`fas_core::atomic::write_atomic_via`] fsyncs and renames it.
pub fn write_tensors_atomic(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    fas_core::atomic::write_atomic_via(path, |tmp| -> Result<()> {
        Tensor::write_safetensors(&cpu, tmp)?;
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

/// Reads a safetensors file into a name → tensor map.
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let v = Tensor::read_safetensors(path).with_context(|| {
        format!(
            "reading {}: not a safetensors file, or truncated",
            path.display()
        )
    })?;
    Ok(v.into_iter().collect())
}

/// The checkpoint files of a run dir.
pub struct CheckpointPaths {
    pub tensors: PathBuf,
    pub state: PathBuf,
}

impl CheckpointPaths {
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            tensors: dir.join(format!("{name}.safetensors")),
            state: dir.join(format!("{name}.json")),
        }
    }

    pub fn exists(&self) -> bool {
        self.tensors.exists() && self.state.exists()
    }

    /// Tensors first, then the state that points at them: a crash between the two leaves
    /// a state file from the previous save, which `load` detects by the step recorded in
    /// the tensors.
    pub fn save(&self, tensors: &[(String, Tensor)], state: &LoopState) -> Result<()> {
        let mut all: Vec<(String, Tensor)> = tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect();
        all.push((
            "checkpoint.step".into(),
            Tensor::from_slice(&[state.step as i64]),
        ));
        write_tensors_atomic(&self.tensors, &all)?;
        let json = serde_json::to_vec_pretty(state)?;
        fas_core::atomic::write_atomic(&self.state, &json)
            .with_context(|| format!("writing {}", self.state.display()))
    }

    pub fn load(&self) -> Result<(BTreeMap<String, Tensor>, LoopState)> {
        let text = std::fs::read(&self.state)
            .with_context(|| format!("reading {}", self.state.display()))?;
        let state: LoopState = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a fas checkpoint state", self.state.display()))?;
        if state.format > CHECKPOINT_FORMAT {
            bail!("{}: checkpoint format {} is newer than this fas-train ({CHECKPOINT_FORMAT}); upgrade", self.state.display(), state.format);
        }
        let mut tensors = read_tensors(&self.tensors)?;
        let step = tensors
            .remove("checkpoint.step")
            .with_context(|| format!("{}: no checkpoint.step tensor", self.tensors.display()))?
            .int64_value(&[0]);
        if step as usize != state.step {
            bail!(
                "{} is at step {step} but {} says {}: the run was interrupted while saving; \
                 delete both to restart, or resume from the other checkpoint",
                self.tensors.display(),
                self.state.display(),
                state.step
            );
        }
        Ok((tensors, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_mismatch_detection() {
        let dir = std::env::temp_dir().join(format!("fas-ckpt-{}", std::process::id()));
        let paths = CheckpointPaths::in_dir(&dir, "last");
        let w = Tensor::from_slice(&[1.5f32, -2.0, 3.25]).view([3, 1]);
        let state = LoopState {
            format: CHECKPOINT_FORMAT,
            step: 7,
            best_step: Some(5),
            best_metric: Some(0.93),
        };
        paths
            .save(&[("layer.weight".into(), w.shallow_clone())], &state)
            .unwrap();
        let (t, s) = paths.load().unwrap();
        assert_eq!(s, state);
        assert_eq!(t["layer.weight"].size(), vec![3, 1]);
        assert!(t["layer.weight"].equal(&w));
        // A state file from another save is detected.
        let newer = LoopState { step: 9, ..state };
        fas_core::atomic::write_atomic(&paths.state, &serde_json::to_vec(&newer).unwrap()).unwrap();
        let e = paths.load().unwrap_err().to_string();
        assert!(e.contains("interrupted while saving"), "{e}");
        // A truncated tensor file names the file.
        std::fs::write(&paths.tensors, b"garbage").unwrap();
        let e = format!("{:#}", paths.load().unwrap_err());
        assert!(e.contains("last.safetensors"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
