//! `fas-synth`: write a SynthFAS dataset or a sample sheet.

use clap::{Parser, Subcommand, ValueEnum};
use fas_core::dataset::{Sample, Split, DATASET_MANIFEST_VERSION};
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
    /// Write frames of the synthetic camera (what `--camera synthetic:SEED` shows).
    Camera {
        /// Output directory (frames `frame-NNNNN.png`).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Frames to write.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Take every N-th camera frame from `start` (the camera shows a new person every
        /// 48 frames).
        #[arg(long, default_value_t = 1)]
        stride: u64,
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
        /// Also write `manifest.jsonl`: the frames as a labelled source manifest (one video
        /// per camera segment; subjects split 60/20/20 into train/dev/test), ready for
        /// `fas-train prepare` to detect, align and crop them the way the door does.
        #[arg(long)]
        manifest: bool,
        /// Worker threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fas-synth: error: {}", fas_core::report::chain(&*e));
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
            stride,
            width,
            height,
            manifest,
            threads,
        } => {
            if stride == 0 || width < 64 || height < 64 || width % 2 != 0 {
                return Err(format!(
                    "--stride {stride} --width {width} --height {height}: the stride must be at \
                     least 1 and the frame at least 64×64 with an even width"
                )
                .into());
            }
            std::fs::create_dir_all(&out)?;
            let mut cam = SyntheticCamera::new(seed);
            cam.width = width;
            cam.height = height;
            let indices: Vec<u64> = (0..count).map(|k| start + k * stride).collect();
            let threads = match threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            let chunk = indices.len().div_ceil(threads.max(1)).max(1);
            let results: Vec<Result<Vec<(u64, CameraFrameInfo)>, String>> =
                std::thread::scope(|sc| {
                    let handles: Vec<_> = indices
                        .chunks(chunk)
                        .map(|part| {
                            let (cam, out) = (&cam, &out);
                            sc.spawn(move || {
                                part.iter()
                                    .map(|&i| {
                                        let f = cam.frame(i);
                                        let path = out.join(frame_name(i));
                                        f.rgb
                                            .save(&path)
                                            .map_err(|e| format!("{}: {e}", path.display()))?;
                                        Ok((i, CameraFrameInfo::of(&f)))
                                    })
                                    .collect()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or_else(|_| Err("a render thread panicked".into()))
                        })
                        .collect()
                });
            let mut lines = String::new();
            for part in results {
                for (i, info) in part? {
                    println!(
                        "{}",
                        serde_json::json!({"frame": i, "label": info.sample.label, "attack": info.sample.attack, "domain": info.sample.domain, "subject": info.sample.subject, "bbox": info.bbox, "landmarks": info.landmarks})
                    );
                    let mut sample = info.sample;
                    sample.path = frame_name(i);
                    sample.video = format!(
                        "camera-{seed}-segment-{}",
                        i / u64::from(cam.segment_frames)
                    );
                    sample.frame = (i % u64::from(cam.segment_frames)) as u32;
                    sample.split = subject_split(&sample.subject);
                    lines += &serde_json::to_string(&sample)?;
                    lines.push('\n');
                }
            }
            if manifest {
                let path = out.join("manifest.jsonl");
                fas_core::atomic::write_atomic(&path, lines.as_bytes())?;
                eprintln!("wrote {} frames and {}", indices.len(), path.display());
            }
        }
    }
    Ok(())
}

fn frame_name(i: u64) -> String {
    format!("frame-{i:05}.png")
}

/// What the camera knows about one frame.
struct CameraFrameInfo {
    sample: Sample,
    bbox: [f32; 4],
    landmarks: [[f32; 2]; 5],
}

impl CameraFrameInfo {
    fn of(f: &fas_core::synthfas::CameraFrame) -> CameraFrameInfo {
        CameraFrameInfo {
            sample: Sample {
                v: DATASET_MANIFEST_VERSION,
                path: String::new(),
                label: f.meta.label,
                attack: f.meta.presentation.attack().into(),
                domain: f.meta.domain.clone(),
                subject: f.meta.subject.clone(),
                device: f.meta.device.clone(),
                split: Split::Train,
                video: String::new(),
                frame: 0,
            },
            bbox: f.face.bbox,
            landmarks: f.face.landmarks,
        }
    }
}

/// 60/20/20 train/dev/test by subject (a stable hash of its id), so no person is in two
/// splits.
fn subject_split(subject: &str) -> Split {
    let h = subject.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    match h % 5 {
        0 => Split::Dev,
        1 => Split::Test,
        _ => Split::Train,
    }
}
