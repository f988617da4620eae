//! Training-step throughput of fas-train (IR on tch) against PyTorch eager running the same
//! graph, weights, batch and optimiser (trainer/tests/reference/train_step_bench.py), in
//! one run on the same machine.
//!
//! ```text
//! cargo run -p fas-train --release --example train_bench -- [backbone] [size] [batch] [steps] [threads]
//! cargo run -p fas-train --release --example train_bench -- edgenet 80 32 10 2
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fas_core::ir::backbones::BackboneKind;
use fas_train::recipe::baseline::{Baseline, BaselineConfig, ClsLoss};
use fas_train::recipe::{Recipe, StepInfo, TrainBatch};
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let kind: BackboneKind = arg(0, "edgenet")
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let size: usize = arg(1, "80").parse()?;
    let batch: i64 = arg(2, "32").parse()?;
    let steps: usize = arg(3, "10").parse()?;
    let threads: i32 = arg(4, "2").parse()?;
    tch::set_num_threads(threads);

    let cfg = BaselineConfig {
        backbone: kind,
        in_channels: 3,
        input_size: size,
        width: 1.0,
        loss: ClsLoss::Bce,
        ..BaselineConfig::default()
    };
    let mut r = Baseline::new(cfg.clone(), Device::Cpu, 0)?;
    let dir = std::env::temp_dir().join(format!("fas-train-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    r.network().graph().save(dir.join("model.json"))?;
    r.network()
        .save_safetensors(&dir.join("weights.safetensors"))?;

    tch::manual_seed(0);
    let b = TrainBatch {
        images: Tensor::randn(
            [batch, 3, size as i64, size as i64],
            (Kind::Float, Device::Cpu),
        ),
        labels: Tensor::arange(batch, (Kind::Int64, Device::Cpu)).remainder(2),
        domains: Tensor::zeros([batch], (Kind::Int64, Device::Cpu)),
        identities: Tensor::zeros([batch], (Kind::Int64, Device::Cpu)),
        depth: None,
        indices: Vec::new(),
    };
    let info = |step| StepInfo {
        step,
        epoch: 0,
        lr: 1e-3,
    };
    r.step(&b, &info(0))?; // warm-up
    let py = match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => Path::new(&v).join("bin/python"),
        None => "python3".into(),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/train_step_bench.py");
    // Alternate the two engines over several rounds so that load changes on a shared
    // machine hit both; report medians.
    let rounds = 3;
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let t = Instant::now();
        for s in 0..steps {
            r.step(&b, &info(round * steps + s + 1))?;
        }
        let o = batch as f64 * steps as f64 / t.elapsed().as_secs_f64();
        let out = Command::new(&py)
            .arg(&script)
            .arg(&dir)
            .args([batch.to_string(), steps.to_string(), threads.to_string()])
            .output()
            .with_context(|| format!("running {}", py.display()))?;
        if !out.status.success() {
            bail!(
                "PyTorch reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let p = v["images_per_s"].as_f64().context("images_per_s")?;
        println!("  round {round}: fas-train {o:7.1} img/s   PyTorch eager {p:7.1} img/s");
        ours.push(o);
        theirs.push(p);
        ratios.push(o / p);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{} {}x{} batch {batch}, {threads} thread(s), {} params, {steps} steps x {rounds} rounds",
        kind.as_str(),
        size,
        size,
        r.network().num_params()
    );
    println!(
        "  median: fas-train {:.1} img/s, PyTorch eager {:.1} img/s, ratio {:.2}",
        median(&mut ours),
        median(&mut theirs),
        median(&mut ratios)
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
