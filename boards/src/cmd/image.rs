//! `fas-boards image`: a board's SD image or (Jetson) rootfs overlay.

use std::path::PathBuf;

use anyhow::Result;
use fas_boards::profile::Profile;
use fas_boards::{image, jetson};

use super::{check_models, guest_bins, mib};

#[derive(clap::Args)]
pub struct ImageArgs {
    /// Board name (`fas-boards list`) or the path of a profile .toml.
    #[arg(long)]
    pub board: String,
    /// fas-edge built for aarch64-unknown-linux-musl (static); built here (debug) when absent.
    #[arg(long)]
    pub edge: Option<PathBuf>,
    /// Signed model bundle to install as /etc/fas/model.fasb (with --keys).
    #[arg(long, requires = "keys")]
    pub bundle: Option<PathBuf>,
    /// Directory of the bundle signer's `.pub` key(s).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// RetinaFace ONNX to install.
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// Face-embedding network (dlib ResNet ONNX, assets/dlib_face_resnet.onnx) to install
    /// where the board's config looks for it (`access.face_model`): the boards' access
    /// mode, "credential+face", does not start without it.
    #[arg(long, value_name = "PATH")]
    pub face_model: Option<PathBuf>,
    /// Directory holding mtcnn_pnet.onnx, mtcnn_rnet.onnx and mtcnn_onet.onnx (assets/),
    /// installed beside the detector for `detector.kind = "mtcnn"`.
    #[arg(long, value_name = "DIR")]
    pub mtcnn_dir: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "target/boards")]
    pub out: PathBuf,
}

pub fn run(a: ImageArgs) -> Result<bool> {
    let profile = Profile::load(&a.board)?;
    check_models(a.detector.as_deref(), a.face_model.as_deref())?;
    let edge = match a.edge {
        Some(e) => e,
        None => {
            // The image's root has no C library: fas-edge is always the static musl build
            // (the same build as the guest test's).
            guest_bins::build()?.join("fas-edge")
        }
    };
    let files = image::EdgeFiles {
        edge: &edge,
        bundle: a.bundle.as_deref(),
        keys: a.keys.as_deref(),
        detector: a.detector.as_deref(),
        face_model: a.face_model.as_deref(),
        mtcnn: a.mtcnn_dir.as_deref(),
    };
    match profile.image {
        fas_boards::profile::ImageKind::Overlay => {
            let o = jetson::build_overlay(&profile, &files, &a.out)?;
            println!(
                "fas-boards: {} ({:.1} MiB, {} files) and {}",
                o.tarball.display(),
                mib(std::fs::metadata(&o.tarball)?.len()),
                o.files.len(),
                o.install_sh.display()
            );
            Ok(true)
        }
        _ => {
            let cache = fas_boards::debian::cache_root();
            println!(
                "fas-boards: SD image for {} (Debian packages cached in {})",
                profile.name,
                cache.display()
            );
            let img = image::build_sd(&profile, &cache, &files, &a.out)?;
            println!(
                "fas-boards: kernel {}; initramfs loads {} modules ({} built in: {})",
                img.kernel_version,
                img.modules.len(),
                img.builtin.len(),
                img.builtin.join(", ")
            );
            println!(
                "fas-boards: p1 boot FAT32 {:.0} MiB ({:.1} MiB used), p2 root ext4 {:.0} MiB ({:.1} MiB used)",
                mib(img.boot.len_bytes()),
                mib(img.boot_content),
                mib(img.root.len_bytes()),
                mib(img.root_content)
            );
            println!(
                "fas-boards: {} {:.0} MiB, built in {:.1} s",
                img.path.display(),
                mib(img.image_bytes),
                img.elapsed.as_secs_f64()
            );
            Ok(true)
        }
    }
}
