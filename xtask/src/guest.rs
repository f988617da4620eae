//! `cargo xtask guest` (and the last step of `cargo xtask test`): the real-device test.
//! Trains and bundles the demo model (the same pipeline as `cargo xtask demo`), then
//! `fas-boards testbed` cross-builds fas-edge for aarch64, boots it in QEMU with a vivid
//! camera, a PL061 relay line and a virtio-gpu framebuffer, and judges the run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub fn run(root: &Path, tenv: &crate::env::TestEnv) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let work = target.join("xtask-guest");
    let demo = work.join("demo");
    // A fresh model every run: the test covers the whole chain, not a cached artefact.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&demo).with_context(|| format!("creating {}", demo.display()))?;
    println!("guest: 1/2 a SynthFAS model and its signed bundle (the demo pipeline, larger)");
    crate::demo::pipeline(tenv, &demo, crate::demo::Scale::GUEST)?;
    tenv.cargo(&["build", "--workspace", "--bins", "--quiet"])?;
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
}
