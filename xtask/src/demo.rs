//! `cargo xtask demo`: the main job on generated data, without hardware.
//!
//! SynthFAS data → `fas-train` (a small EdgeNet on the CPU) → `fas-quantize export`
//! (parity-checked ONNX) → `calibrate` (int8, drift-gated) → `keygen` + signed bundle → `fas-edge` watching the synthetic
//! camera with that bundle (decisions on stdout, overlay snapshots, audit log) →
//! `fas-edge audit verify`. The model is a demo model (SynthFAS only): the door runs it
//! only because the demo passes `--allow-demo`.

use std::path::Path;

use anyhow::{bail, Context, Result};

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let out = match args {
        [] => root.join("demo-out"),
        [flag, dir] if flag == "--out" => Path::new(dir).to_path_buf(),
        _ => bail!("usage: cargo xtask demo [--out DIR]"),
    };
    let out = if out.is_absolute() {
        out
    } else {
        std::env::current_dir()?.join(out)
    };
    if out.join("run").exists() || out.join("keys").exists() {
        bail!(
            "{} holds an earlier demo; remove it or pass --out NEW_DIR",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    crate::setup(root)?;
    let tenv = crate::env::TestEnv::new(root)?;
    let p = |name: &str| out.join(name).display().to_string();
    let cargo_run =
        |_pkg: &str, bin: &str, args: &[&str]| -> Result<()> { tenv.run_bin(bin, args) };
    pipeline(&tenv, &out, Scale::DEMO)?;
    println!("demo: 5/6 fas-edge at the door, watching the synthetic camera");
    let assets = root.join("assets");
    cargo_run(
        "fas-edge",
        "fas-edge",
        &[
            "--camera",
            "synthetic:1",
            "--bundle",
            &p("demo.fasb"),
            "--keys",
            &p("keys"),
            "--allow-demo",
            "--detector",
            &assets.join("retinaface_mnet025.onnx").display().to_string(),
            "--audit",
            &p("audit.jsonl"),
            "--calibration",
            &p("calibration.json"),
            "--device-dir",
            &p("device"),
            "--snapshots",
            &p("snapshots"),
            "--max-frames",
            "600",
        ],
    )?;
    println!("demo: 6/6 verify the audit log's hash chain");
    cargo_run(
        "fas-edge",
        "fas-edge",
        &["audit", "verify", &p("audit.jsonl")],
    )?;
    println!(
        "demo: done; outputs in {} (run/, export/, demo.fasb, audit.jsonl, snapshots/)",
        out.display()
    );
    Ok(())
}

/// Where the training faces come from.
#[derive(Debug, Clone, Copy)]
pub enum Data {
    /// `fas-synth write`: face-centred SynthFAS renders, `subjects` per domain × 4
    /// presentations × `frames`. Cheap, but framed by the renderer, not by the door's crop
    /// (the face fills about as much of the image as an aligned crop at ≈1.5× context,
    /// where the door cuts 2.7×), so the door sees its faces at about half the trained size.
    Dataset { subjects: u32, frames: u32 },
    /// What a user does with real footage: `frames` full frames of the synthetic camera
    /// (seed `seed`, one per person/presentation segment, at the door camera's resolution)
    /// → `fas-train prepare` (RetinaFace, aligned crop) → training on exactly the crops
    /// the door will cut.
    Camera {
        seed: u64,
        frames: u32,
        width: u32,
        height: u32,
        /// Context around the aligned face (`fas-train prepare --crop-scale`); the
        /// trained model's manifest records it, so the door cuts the same crop.
        crop_scale: f32,
    },
}

/// How much data and training the pipeline spends.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub data: Data,
    pub steps: u32,
}

impl Scale {
    /// `cargo xtask demo`: about a minute of CPU training; the door gets it mostly right.
    pub const DEMO: Scale = Scale {
        data: Data::Dataset {
            subjects: 12,
            frames: 2,
        },
        steps: 120,
    };
    /// The real-device test judges every session, so its model must be right on all of
    /// them: it trains on door-cut crops of PAL camera frames (the guest camera's size;
    /// seed 3000, never the plan's seed 11), 2000 of them, for 1200 steps.
    pub const GUEST: Scale = Scale {
        data: Data::Camera {
            seed: 3000,
            frames: 2000,
            width: 720,
            height: 576,
            crop_scale: 1.6,
        },
        steps: 1200,
    };
}

/// Steps 1–4 of the demo: SynthFAS data → trained EdgeNet → parity-checked ONNX → int8
/// (when the drift gate passes) → signing key + signed bundle, all under `out`
/// (`demo.fasb`, `keys/`). Shared with the real-device test.
pub fn pipeline(tenv: &crate::env::TestEnv, out: &Path, scale: Scale) -> Result<()> {
    let steps = scale.steps.to_string();
    let val_every = (scale.steps / 4).max(1).to_string();
    let p = |name: &str| out.join(name).display().to_string();
    let assets = crate::env::workspace_root()?.join("assets");
    let asset = |name: &str| assets.join(name).display().to_string();
    // Build exactly what `cargo xtask test` builds (same packages, so the same feature
    // unification): after a test run this is a no-op, and no dependency is built twice.
    println!("demo: building the workspace (shared with `cargo xtask test`)");
    tenv.cargo(&["test", "--workspace", "--no-run", "--quiet"])?;
    let cargo_run =
        |_pkg: &str, bin: &str, args: &[&str]| -> Result<()> { tenv.run_bin(bin, args) };

    println!("demo: 1/6 SynthFAS sample sheet and training faces");
    cargo_run(
        "fas-core",
        "fas-synth",
        &["sheet", "--out", &p("sheet.png")],
    )?;
    let manifest = match scale.data {
        Data::Dataset { subjects, frames } => {
            cargo_run(
                "fas-core",
                "fas-synth",
                &[
                    "write",
                    "--out",
                    &p("synthfas"),
                    "--subjects",
                    &subjects.to_string(),
                    "--frames",
                    &frames.to_string(),
                ],
            )?;
            p("synthfas/manifest.jsonl")
        }
        Data::Camera {
            seed,
            frames,
            width,
            height,
            crop_scale,
        } => {
            cargo_run(
                "fas-core",
                "fas-synth",
                &[
                    "camera",
                    "--out",
                    &p("camera"),
                    "--seed",
                    &seed.to_string(),
                    "--count",
                    &frames.to_string(),
                    "--stride",
                    "48",
                    "--width",
                    &width.to_string(),
                    "--height",
                    &height.to_string(),
                    "--manifest",
                ],
            )?;
            println!(
                "demo: 1/6 … detect, align and crop them as the door does (fas-train prepare)"
            );
            cargo_run(
                "fas-train",
                "fas-train",
                &[
                    "prepare",
                    "--sources",
                    &p("camera/manifest.jsonl"),
                    "--root",
                    &p("camera"),
                    "--out",
                    &p("crops"),
                    "--stride",
                    "1",
                    "--size",
                    "128",
                    "--crop-scale",
                    &crop_scale.to_string(),
                ],
            )?;
            p("crops/manifest.jsonl")
        }
    };
    println!("demo: 2/6 train a small EdgeNet (80 px) on the CPU");
    cargo_run(
        "fas-train",
        "fas-train",
        &[
            "train",
            "--manifest",
            &manifest,
            "--protocol",
            "intra",
            "--task",
            "all",
            "--backbone",
            "edgenet",
            "--size",
            "80",
            "--batch-size",
            "32",
            "--steps",
            &steps,
            "--lr",
            "3e-3",
            "--val-every",
            &val_every,
            "--device",
            "auto",
            "--quiet",
            "--out",
            &p("run"),
        ],
    )?;
    println!("demo: 3/6 export to ONNX, checked in tract against the trainer");
    cargo_run(
        "fas-quantize",
        "fas-quantize",
        &["export", "--run", &p("run"), "--out", &p("export")],
    )?;
    println!("demo: 4/6 int8 (weight-only) calibrated on the training crops, drift-gated on held-out faces");
    let (draft, model) = match cargo_run(
        "fas-quantize",
        "fas-quantize",
        &[
            "calibrate",
            "--export",
            &p("export"),
            "--manifest",
            &manifest,
            "--encoding",
            "int8-weight-only",
            "--out",
            &p("int8"),
        ],
    ) {
        Ok(()) => (p("int8/manifest.draft.json"), p("int8/liveness.onnx")),
        Err(e) => {
            println!("demo: int8 refused ({e}); the bundle ships the fp32 model");
            (p("export/manifest.draft.json"), p("export/liveness.onnx"))
        }
    };
    println!("demo: a signing key and a signed bundle");
    cargo_run(
        "fas-quantize",
        "fas-quantize",
        &["keygen", "--out", &p("keys/demo")],
    )?;
    cargo_run(
        "fas-quantize",
        "fas-quantize",
        &[
            "bundle",
            "--manifest",
            &draft,
            "--model",
            &model,
            "--key",
            &p("keys/demo.key"),
            "--out",
            &p("demo.fasb"),
            "--bundle-version",
            "1",
            // The detectors a door may load beside it (the packaged assets).
            "--pin-detector",
            &asset("retinaface_mnet025.onnx"),
            "--pin-detector",
            &asset("mtcnn_pnet.onnx"),
            "--pin-detector",
            &asset("mtcnn_rnet.onnx"),
            "--pin-detector",
            &asset("mtcnn_onet.onnx"),
        ],
    )?;
    cargo_run(
        "fas-quantize",
        "fas-quantize",
        &["inspect", "--bundle", &p("demo.fasb")],
    )?;
    Ok(())
}
