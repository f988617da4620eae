//! `fas-boards build`: cross-compiles fas-edge for a board and stages it (config, systemd
//! unit, udev rules); `--deb` also packages it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use fas_boards::profile::Profile;
use fas_boards::{cross, deb};

use super::{check_models, workspace_root};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Board name (`fas-boards list`) or the path of a profile .toml.
    #[arg(long)]
    pub board: String,
    /// Optimised build (`--release`: thin LTO).
    #[arg(long)]
    pub release: bool,
    /// `-C target-cpu=` the board's CPU (rebuilds every dependency for it).
    #[arg(long)]
    pub tune: bool,
    /// Output directory (`<out>/<board>/...`).
    #[arg(long, default_value = "target/boards")]
    pub out: PathBuf,
    /// Also build the .deb.
    #[arg(long)]
    pub deb: bool,
    /// Ship this RetinaFace ONNX in the package.
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// Ship this face-embedding network (dlib ResNet ONNX, assets/dlib_face_resnet.onnx) in
    /// the package, as /usr/share/fas/dlib_face_resnet.onnx (`access.face_model`); the
    /// boards' access mode, "credential+face", does not start without it.
    #[arg(long, value_name = "PATH")]
    pub face_model: Option<PathBuf>,
    /// Ship MTCNN's three ONNX files from this directory in the package.
    #[arg(long, value_name = "DIR")]
    pub mtcnn_dir: Option<PathBuf>,
    /// Ship this signed bundle in the package (with --keys).
    #[arg(long, requires = "keys")]
    pub bundle: Option<PathBuf>,
    /// Directory of the bundle signer's `.pub` key(s).
    #[arg(long)]
    pub keys: Option<PathBuf>,
}

pub fn run(a: BuildArgs) -> Result<bool> {
    let profile = Profile::load(&a.board)?;
    if a.deb {
        // Before the cross build: a wrong path should not cost one.
        check_models(a.detector.as_deref(), a.face_model.as_deref())?;
    }
    let root = workspace_root()?;
    let bin_dir = cross::build(
        &root,
        &profile,
        &cross::BuildOptions {
            release: a.release,
            tune: a.tune,
            packages: &["fas-edge"],
            features: &[],
            target_dir: None,
        },
    )?;
    let out = a.out.join(&profile.name);
    std::fs::create_dir_all(&out)?;
    let edge = out.join("fas-edge");
    std::fs::copy(bin_dir.join("fas-edge"), &edge)
        .with_context(|| format!("copying {}", bin_dir.join("fas-edge").display()))?;
    fas_core::atomic::write_atomic(&out.join("edge.toml"), profile.edge_config().as_bytes())?;
    fas_core::atomic::write_atomic(
        &out.join("fas-edge.service"),
        deb::systemd_unit().as_bytes(),
    )?;
    fas_core::atomic::write_atomic(&out.join("60-fas-edge.rules"), deb::udev_rules().as_bytes())?;
    let size = std::fs::metadata(&edge)?.len();
    println!(
        "fas-boards: {} ({:.1} MiB), edge.toml, fas-edge.service, 60-fas-edge.rules in {}",
        edge.display(),
        size as f64 / 1048576.0,
        out.display()
    );
    if a.deb {
        let path = deb::build(
            &profile,
            &deb::DebInputs {
                edge_binary: &edge,
                detector: a.detector.as_deref(),
                face_model: a.face_model.as_deref(),
                mtcnn: a.mtcnn_dir.as_deref(),
                bundle: a.bundle.as_deref(),
                keys: a.keys.as_deref(),
                version: env!("CARGO_PKG_VERSION"),
            },
            &out,
        )?;
        println!(
            "fas-boards: package {} ({:.1} MiB)",
            path.display(),
            std::fs::metadata(&path)?.len() as f64 / 1048576.0
        );
    }
    Ok(true)
}
