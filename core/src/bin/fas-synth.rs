//! `fas-synth`: write a SynthFAS dataset or a sample sheet.

use clap::{Parser, Subcommand, ValueEnum};
use fas_core::synthfas::{
    sample_sheet, video_strip, write_dataset, DomainSpec, ImageFormat, Presentation, SynthConfig,
    SyntheticCamera,
};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fas-synth",
    about = "SynthFAS: deterministic synthetic face presentations"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Png,
    Jpeg,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render a dataset: images, `_depth.png` maps and `manifest.jsonl`.
    Write {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Subjects per domain.
        #[arg(long, default_value_t = 10)]
        subjects: u32,
        /// Videos per subject and presentation.
        #[arg(long, default_value_t = 1)]
        videos: u32,
        #[arg(long, default_value_t = 8)]
        frames: u32,
        /// Square image size in pixels.
        #[arg(long, default_value_t = 128)]
        size: u32,
        /// Domain names to keep (comma-separated; default: all four).
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Png)]
        format: Format,
        /// Train,dev,test subject fractions.
        #[arg(long, value_delimiter = ',', default_value = "0.6,0.2,0.2")]
        split: Vec<f32>,
        #[arg(long)]
        no_depth: bool,
        /// Worker threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Write a sample sheet: rows = domains, columns = live / print / replay / mask.
    Sheet {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Cell size in pixels.
        #[arg(long, default_value_t = 160)]
        size: u32,
        /// Instead of the sheet: a video strip of this domain (index 0..3; rows =
        /// presentations, columns = frames).
        #[arg(long)]
        video: Option<usize>,
        #[arg(long, default_value_t = 8)]
        frames: u32,
    },
    /// Write frames of the 640×480 synthetic camera (what `--camera synthetic:SEED` shows).
    Camera {
        /// Output directory (frames `frame-NNNNN.png`).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fas-synth: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.cmd {
        Cmd::Write {
            out,
            seed,
            subjects,
            videos,
            frames,
            size,
            domains,
            format,
            split,
            no_depth,
            threads,
        } => {
            let mut all = DomainSpec::defaults();
            if !domains.is_empty() {
                all.retain(|d| domains.contains(&d.name));
                if all.len() != domains.len() {
                    return Err(format!("unknown domain in {domains:?}").into());
                }
            }
            if split.len() != 3 {
                return Err("--split wants three numbers".into());
            }
            let cfg = SynthConfig {
                seed,
                domains: all,
                subjects_per_domain: subjects,
                videos_per_presentation: videos,
                frames_per_video: frames,
                image_size: size,
                split_ratio: [split[0], split[1], split[2]],
                presentations: Presentation::ALL.to_vec(),
                format: match format {
                    Format::Png => ImageFormat::Png,
                    Format::Jpeg => ImageFormat::Jpeg,
                },
                write_depth: !no_depth,
                threads,
                ..SynthConfig::default()
            };
            let t0 = std::time::Instant::now();
            let stats = write_dataset(&cfg, &out)?;
            eprintln!(
                "wrote {} samples ({} live, {} spoof; {} videos, {} subjects; train/dev/test {}/{}/{}) {:.1} MB in {:.1} s to {}",
                stats.samples,
                stats.live,
                stats.spoof,
                stats.videos,
                stats.subjects,
                stats.train,
                stats.dev,
                stats.test,
                stats.bytes as f64 / 1e6,
                t0.elapsed().as_secs_f64(),
                out.display()
            );
        }
        Cmd::Sheet {
            out,
            seed,
            size,
            video,
            frames,
        } => {
            let img = match video {
                Some(d) => video_strip(seed, d, frames, size)?,
                None => sample_sheet(seed, size)?,
            };
            img.save(&out)?;
            eprintln!("wrote {}", out.display());
        }
        Cmd::Camera {
            out,
            seed,
            start,
            count,
        } => {
            std::fs::create_dir_all(&out)?;
            let cam = SyntheticCamera::new(seed);
            for i in start..start + count {
                let f = cam.frame(i);
                f.rgb.save(out.join(format!("frame-{i:05}.png")))?;
                println!(
                    "{}",
                    serde_json::json!({"frame": i, "label": f.meta.label, "attack": f.meta.presentation, "domain": f.meta.domain, "subject": f.meta.subject, "bbox": f.face.bbox, "landmarks": f.face.landmarks})
                );
            }
        }
    }
    Ok(())
}
