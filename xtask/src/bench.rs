//! `cargo xtask bench-edge`: the door's pipeline benchmark (`edge/examples/pipeline_bench.rs`)
//! on the demo bundle that `cargo xtask guest` trains, against the Python + onnxruntime
//! reference in the same run. Trains the bundle first when there is none.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub fn run(root: &Path, tenv: &crate::env::TestEnv, extra: &[String]) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let guest = target.join("xtask-guest/demo");
    let demo = if guest.join("demo.fasb").exists() {
        guest
    } else {
        let own = target.join("xtask-bench/demo");
        if !own.join("demo.fasb").exists() {
            std::fs::create_dir_all(&own).with_context(|| format!("creating {}", own.display()))?;
            println!("bench-edge: no demo bundle yet; training one (the guest test's model)");
            crate::demo::pipeline(tenv, &own, crate::demo::Scale::GUEST)?;
        }
        own
    };
    let s = |p: PathBuf| p.display().to_string();
    let (bundle, keys) = (s(demo.join("demo.fasb")), s(demo.join("keys")));
    let detector = s(root.join("assets/retinaface_mnet025.onnx"));
    let out = s(target.join("xtask-bench/frames"));
    let mut args = vec![
        "run",
        "--release",
        "-p",
        "fas-edge",
        "--example",
        "pipeline_bench",
        "--",
        "--bundle",
        &bundle,
        "--keys",
        &keys,
        "--detector",
        &detector,
        "--out",
        &out,
    ];
    args.extend(extra.iter().map(String::as_str));
    tenv.cargo(&args)
}
