//! The body of each `fas-boards` subcommand, one module each (`main.rs` parses the
//! command line and dispatches), and what several of them share.

pub mod build;
pub mod check_image;
pub mod check_raspi4b;
pub mod flash;
pub mod guest_bins;
pub mod image;
pub mod list;
pub mod testbed;

use std::path::{Path, PathBuf};

use anyhow::Result;
use fas_boards::stage;

fn workspace_root() -> Result<PathBuf> {
    let mut d = std::env::current_dir()?;
    loop {
        if d.join("Cargo.toml").exists() && d.join("edge/Cargo.toml").exists() {
            return Ok(d);
        }
        if !d.pop() {
            anyhow::bail!(
                "run fas-boards inside the fas workspace (it builds fas-edge from source)"
            );
        }
    }
}

pub fn mib(n: u64) -> f64 {
    n as f64 / 1048576.0
}

/// Checks the detector and face-embedding network given for a package or image, and says
/// which of the two the board's fas-edge will lack (its config loads both at start).
fn check_models(detector: Option<&Path>, face_model: Option<&Path>) -> Result<()> {
    const SETUP: &str = "`cargo xtask setup` puts it in assets/";
    if let Some(d) = detector {
        stage::check_model_file(
            d,
            "--detector",
            &format!("pass the RetinaFace ONNX (retinaface_mnet025.onnx; {SETUP})"),
        )?;
    }
    if let Some(f) = face_model {
        stage::check_model_file(
            f,
            "--face-model",
            &format!(
                "pass the face-embedding ONNX ({}; {SETUP})",
                stage::FACE_MODEL_FILE
            ),
        )?;
    }
    for (given, flag, what) in [
        (detector.is_some(), "--detector", "the face detector"),
        (
            face_model.is_some(),
            "--face-model",
            "the face-embedding network",
        ),
    ] {
        if !given {
            eprintln!(
                "fas-boards: warning: no {flag}: this fas-edge will not start until {what} is installed where its config points (or pass {flag} PATH)"
            );
        }
    }
    Ok(())
}
