//! fp32 vs int8 (weight-only, QDQ) in tract, on one thread: EdgeNet at 80² and ResNet-18
//! at 128², random deterministic weights, SynthFAS crops.
//!
//! ```text
//! cargo run --release -p fas-quantize --example int8_bench -- [OUT_DIR] [RUNS]
//! ```
//!
//! Writes `OUT_DIR/{model}-{fp32,int8-weight-only,int8-qdq}.onnx` (plus `…-1dq.onnx`, one
//! `DequantizeLinear` per weight, where the default splits large weights into chunks that
//! tract folds at load: see `fas_quantize::int8::TRACT_FOLD_BYTES`) and the timing input
//! `OUT_DIR/{model}-input.f32` (raw little-endian NCHW) for `quantize/bench/ort_bench.py`,
//! then prints, per model and encoding: file size, median latency of RUNS runs after
//! warm-up (same input), ratio to fp32, and the largest |Δp_live| against fp32 on held-out
//! crops.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;
use std::time::Instant;

use fas_core::bundle::Encoding;
use fas_core::ir::backbones::BackboneKind;
use fas_infer::liveness::LivenessModel;
use fas_quantize::int8::{encoding_name, quantize, QuantizeConfig};

const WARMUP: usize = 5;

fn median_ms(model: &mut LivenessModel, x: &[f32], runs: usize) -> f64 {
    for _ in 0..WARMUP {
        model.score(x).expect("run");
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            model.score(x).expect("run");
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "target/int8-bench".into()));
    let runs: usize = args
        .next()
        .map_or(50, |r| r.parse().expect("RUNS is a number"));
    std::fs::create_dir_all(&out).expect("create the output dir");
    println!(
        "| model | encoding | file MB | tract median ms (1 thread, {runs} runs) | × fp32 | max |Δp_live| |"
    );
    println!("|---|---|---|---|---|---|");
    for (kind, size, name) in [
        (BackboneKind::EdgeNet, 80, "edgenet-80"),
        (BackboneKind::Resnet18, 128, "resnet18-128"),
    ] {
        let crops = synthetic::face_crops(size, 48, 11);
        let (calib, held) = crops.split_at(32);
        let (_, _, onnx) = synthetic::model(kind, size, 1.0, 5, calib);
        let calib: Vec<Vec<f32>> = calib.iter().map(|(x, _)| x.clone()).collect();
        let x = &held[0].0;
        std::fs::write(
            out.join(format!("{name}-input.f32")),
            x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .expect("write input");
        let fp32 = onnx.to_bytes();
        let mut variants = vec![("fp32".to_string(), fp32.clone())];
        for encoding in [Encoding::Int8WeightOnly, Encoding::Int8Qdq] {
            let cfg = QuantizeConfig {
                encoding,
                ..QuantizeConfig::default()
            };
            let q = quantize(&onnx, &calib, &cfg).expect("quantize");
            let chunked = q.weights.iter().any(|w| w.chunks > 1);
            variants.push((encoding_name(encoding).to_string(), q.onnx_bytes));
            if chunked {
                // The same without chunking: what onnxruntime fuses best, and what tract
                // would pay for dequantising large weights at every run.
                let cfg = QuantizeConfig {
                    dequantize_chunk_bytes: None,
                    ..cfg
                };
                let q = quantize(&onnx, &calib, &cfg).expect("quantize");
                variants.push((format!("{}-1dq", encoding_name(encoding)), q.onnx_bytes));
            }
        }
        let shape = onnx.input_shape.clone();
        let mut reference = LivenessModel::from_bytes(&fp32, &shape, "fp32").expect("load");
        let ref_scores: Vec<f32> = held
            .iter()
            .map(|(h, _)| reference.score(h).unwrap())
            .collect();
        let mut base = None;
        for (enc, bytes) in &variants {
            std::fs::write(out.join(format!("{name}-{enc}.onnx")), bytes).expect("write model");
            let mut m = LivenessModel::from_bytes(bytes, &shape, enc).expect("load");
            let ms = median_ms(&mut m, x, runs);
            let base_ms = *base.get_or_insert(ms);
            let drift = held
                .iter()
                .zip(&ref_scores)
                .map(|((h, _), r)| (m.score(h).unwrap() - r).abs())
                .fold(0f32, f32::max);
            println!(
                "| {name} | {enc} | {:.2} | {ms:.2} | {:.2} | {drift:.4} |",
                bytes.len() as f64 / 1e6,
                ms / base_ms
            );
        }
    }
    println!("\nONNX files and inputs in {}", out.display());
}
