//! `cargo xtask guest` (and the last step of `cargo xtask test`): the real-device test.
//! Trains and bundles the demo model (the same pipeline as `cargo xtask demo`), then
//! `fas-boards testbed` cross-builds fas-edge for aarch64, boots it in QEMU with a vivid
//! camera, a PL061 relay line and a virtio-gpu framebuffer, and judges the run.
//!
//! The trained, signed model is cached by the hash of everything that makes it (the
//! `fas-synth`, `fas-train` and `fas-quantize` binaries, this xtask binary with the pipeline's
//! arguments, the detector assets, the torch version): a run whose inputs are unchanged reuses
//! it instead of training for ten minutes again; any change to them trains afresh, and
//! `FAS_GUEST_FRESH=1` always does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::demo::Scale;
use crate::stages::Stages;

/// What the cache entry's name is made of; bump the tag when the entry's layout changes.
const CACHE_TAG: &str = "fas guest model v1";
/// The assets the pipeline reads (prepare's detector, the bundle's pinned detectors).
const ASSETS: [&str; 4] = [
    "retinaface_mnet025.onnx",
    "mtcnn_pnet.onnx",
    "mtcnn_rnet.onnx",
    "mtcnn_onet.onnx",
];
/// The built binaries the pipeline runs.
const BINS: [&str; 3] = ["fas-synth", "fas-train", "fas-quantize"];

pub fn run(root: &Path, tenv: &crate::env::TestEnv, stages: &mut Stages) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let work = target.join("xtask-guest");
    let demo = work.join("demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&demo).with_context(|| format!("creating {}", demo.display()))?;
    stages.run("guest: demo model", || model(root, tenv, &target, &demo))?;
    // The binaries are the ones `cargo test --workspace --no-run` built (in `model`): a
    // `cargo build --bins` here would unify features differently and rebuild half the
    // dependency graph (~5 minutes) for the same programs.
    stages.run("guest: QEMU aarch64 device test", || {
        println!("guest: 2/2 fas-edge in an aarch64 QEMU guest (real V4L2, GPIO, framebuffer)");
        let s = |p: PathBuf| p.display().to_string();
        tenv.run_bin(
            "fas-boards",
            &[
                "testbed",
                "--bundle",
                &s(demo.join("demo.fasb")),
                "--keys",
                &s(demo.join("keys")),
                "--detector",
                &s(root.join("assets/retinaface_mnet025.onnx")),
                "--work",
                &s(work.join("testbed")),
            ],
        )
    })
}

/// `demo.fasb` and `keys/` in `demo`: from the cache when its inputs are unchanged, else
/// trained by the demo pipeline (and then cached).
fn model(root: &Path, tenv: &crate::env::TestEnv, target: &Path, demo: &Path) -> Result<()> {
    println!("demo: building the workspace (shared with `cargo xtask test`)");
    tenv.cargo(&["test", "--workspace", "--no-run", "--quiet"])?;
    let key = cache_key(root, target)?;
    let cached = target.join("xtask-cache").join("guest-model");
    let fresh = std::env::var_os("FAS_GUEST_FRESH").is_some_and(|v| v == "1");
    let hit = std::fs::read_to_string(cached.join("key")).is_ok_and(|k| k.trim() == key);
    if hit && !fresh {
        println!(
            "guest: 1/2 the signed demo model from the cache ({}; its inputs are unchanged; \
             FAS_GUEST_FRESH=1 retrains)",
            cached.display()
        );
        return copy_model(&cached, demo);
    }
    println!("guest: 1/2 a SynthFAS model and its signed bundle (the demo pipeline, larger)");
    crate::demo::pipeline(tenv, demo, Scale::GUEST)?;
    store(demo, &cached, &key)
}

/// sha256 over the tag, the scale, the pipeline's binaries, the assets and the torch version.
fn cache_key(root: &Path, target: &Path) -> Result<String> {
    let mut h = Sha256::new();
    h.update(CACHE_TAG);
    h.update(format!("{:?}", Scale::GUEST));
    h.update(crate::venv::expected_torch_version(root)?);
    let xtask = std::env::current_exe().context("locating the xtask binary")?;
    let bins = BINS.iter().map(|b| target.join("debug").join(b));
    let assets = ASSETS.iter().map(|a| root.join("assets").join(a));
    for path in std::iter::once(xtask).chain(bins).chain(assets) {
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{}: cannot read it to key the cache", path.display()))?;
        h.update(path.file_name().unwrap_or_default().as_encoded_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}

/// Replaces the cache entry with `demo`'s bundle and keys; the key file is written last, so
/// an interrupted store is a miss, never a wrong hit.
fn store(demo: &Path, cached: &Path, key: &str) -> Result<()> {
    let tmp = cached.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_model(demo, &tmp)?;
    std::fs::write(tmp.join("key"), key)
        .with_context(|| format!("{}: cannot write the cache key", tmp.display()))?;
    let _ = std::fs::remove_dir_all(cached);
    std::fs::rename(&tmp, cached)
        .with_context(|| format!("{}: cannot move the cache entry in place", cached.display()))
}

/// Copies `demo.fasb` and `keys/` (file modes kept: the private key stays 0600).
fn copy_model(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to.join("keys"))
        .with_context(|| format!("creating {}", to.join("keys").display()))?;
    let mut files = vec![PathBuf::from("demo.fasb")];
    let keys = from.join("keys");
    for e in std::fs::read_dir(&keys).with_context(|| format!("reading {}", keys.display()))? {
        files.push(Path::new("keys").join(e?.file_name()));
    }
    for f in files {
        std::fs::copy(from.join(&f), to.join(&f))
            .with_context(|| format!("copying {} to {}", from.join(&f).display(), to.display()))?;
    }
    Ok(())
}
