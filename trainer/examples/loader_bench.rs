//! Loader throughput on a generated SynthFAS set: images/s for 1 and 2 workers, with and
//! without augmentation, and each as a ratio of the 1-worker, no-augmentation run
//! measured in the same process (so machines and build profiles compare by ratio).
//!
//! `cargo run -p fas-train --example loader_bench [-- SUBJECTS_PER_DOMAIN [EPOCHS]]`

use fas_core::preprocess::PreprocessSpec;
use fas_core::synthfas::{write_dataset, SynthConfig};
use fas_train::data::augment::AugmentConfig;
use fas_train::data::loader::{Dataset, Loader, LoaderConfig};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let subjects: u32 = args.next().map_or(Ok(4), |a| a.parse())?;
    let epochs: u64 = args.next().map_or(Ok(2), |a| a.parse())?;

    let dir = std::env::temp_dir().join(format!("fas-loader-bench-{}", std::process::id()));
    let synth = SynthConfig {
        subjects_per_domain: subjects,
        frames_per_video: 4,
        image_size: 128,
        ..SynthConfig::default()
    };
    let t = Instant::now();
    let stats = write_dataset(&synth, &dir)?;
    println!(
        "SynthFAS: {} samples of 128x128 PNG (+ depth) in {:.1} s",
        stats.samples,
        t.elapsed().as_secs_f64()
    );
    let result = bench(&dir, epochs);
    std::fs::remove_dir_all(&dir)?;
    result
}

fn bench(dir: &std::path::Path, epochs: u64) -> anyhow::Result<()> {
    let ds = std::sync::Arc::new(Dataset::load(dir.join("manifest.jsonl"))?);
    let indices: Vec<usize> = (0..ds.len()).collect();
    let spec = PreprocessSpec::rgb_hsv_256();
    println!(
        "spec: {}x{}, {} channels; depth 32x32; batch 32; {} epochs per run; {} CPUs available",
        spec.width,
        spec.height,
        spec.channels(),
        epochs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("workers  augment   images/s   ratio");
    let mut base = None;
    for augment in [false, true] {
        for workers in [1, 2] {
            let cfg = LoaderConfig {
                batch_size: 32,
                workers,
                queue_depth: 2 * workers,
                augment: if augment {
                    AugmentConfig::default()
                } else {
                    AugmentConfig::none()
                },
                depth_size: Some(32),
                drop_last: false,
                ..LoaderConfig::train(spec.clone())
            };
            let loader = Loader::new(ds.clone(), cfg)?;
            let t = Instant::now();
            let mut images = 0usize;
            for epoch in 0..epochs {
                for batch in loader.epoch(&indices, epoch)? {
                    images += batch?.len();
                }
            }
            let rate = images as f64 / t.elapsed().as_secs_f64();
            let base = *base.get_or_insert(rate);
            println!(
                "{workers:>7}  {:>7}  {rate:>9.1}  {:>6.2}",
                if augment { "default" } else { "none" },
                rate / base
            );
        }
    }
    Ok(())
}
