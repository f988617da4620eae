//! **SynthFAS**: a deterministic, seedable generator of synthetic face presentations — the
//! project's own dataset for tests, demos and benchmarks.
//!
//! Everything is procedural (ellipses, gradients, an ellipsoid height field with Lambert +
//! Blinn-Phong shading) and keyed by explicit seeds: the same [`SynthConfig`] gives
//! bit-identical images; every random draw goes through a `ChaCha8Rng` seeded from
//! `(seed, domain, subject, presentation, video, frame)` so samples can be rendered in any
//! order or in parallel.
//!
//! # Identities
//! A subject ([`face::Identity`]) has a head shape (ellipse aspect, jaw narrowing, relief),
//! skin tone and texture, eye / brow / nose / mouth geometry and colours, hair colour,
//! hairline, volume and length, and a shirt colour. Subjects are drawn per domain (each
//! domain is its own "dataset" with its own people), ids `"<domain>-sNNN"`.
//!
//! # Capture domains
//! A [`DomainSpec`] is a *distribution*: each video samples illumination level and colour
//! temperature, auto-white-balance residue, light direction, ambient, sensor noise, optics
//! blur, sensor resolution (down- then up-sampling), JPEG quality, and a background style.
//! The four defaults ([`DomainSpec::defaults`]):
//!
//! | domain  | device           | light / camera                                   | print                  | replay                          | mask                   | spoof bias (spurious)      |
//! |---------|------------------|--------------------------------------------------|------------------------|---------------------------------|------------------------|----------------------------|
//! | synth-a | phone-indoor     | warm tungsten, JPEG 75–90, gradient wall         | strong coarse halftone, low saturation | strong moiré (pitch ≈ 1 px), gamma ↑, bezel visible | glossy, no skin texture | spoofs 20 % darker |
//! | synth-b | webcam-office    | cool fluorescent, half resolution, noisy, JPEG 50–65, office | medium fine halftone (mostly lost to resampling) | fine pitch, gamma ↓, strong glare | medium                 | spoofs warmer              |
//! | synth-c | dslr-studio      | neutral, sharp, low noise, JPEG 92–98, flat wall | faint, high-quality print | faint moiré, little glare     | high quality (skin texture kept) | spoofs 12 % brighter, cooler |
//! | synth-d | outdoor-daylight | hard directional sun, low ambient, foliage       | medium halftone, strong sheen, paper edge visible | dim screen, strong glare, bezel | glossy                 | spoofs cooler, blurrier, noisier |
//!
//! The spoof biases are deliberate *spurious correlations*: inside a domain, exposure or
//! white balance predicts the label, but the direction differs between domains (a darker,
//! brighter, warmer or cooler spoof), so a model that learns source-domain styles loses on
//! a held-out domain. The test `domain_shift_is_measurable` shows it with a logistic
//! regression on mean colour, contrast, saturation and high-frequency energy, trained on
//! three domains (numbers printed with `--nocapture`; seed 1, 64 px, 16 subjects/domain):
//!
//! | held-out domain | in-domain AUC (held-out subjects) | held-out-domain AUC |
//! |-----------------|-----------------------------------|---------------------|
//! | synth-a         | 0.80                              | 0.18                |
//! | synth-b         | 0.80                              | 0.77                |
//! | synth-c         | 0.82                              | 0.49                |
//! | synth-d         | 0.73                              | 0.50                |
//! | mean            | 0.79                              | 0.48                |
//!
//! (synth-a's darker spoofs invert what the other domains teach, hence AUC < 0.5.)
//!
//! Sample sheet (rows = domains, columns = live / print / replay / mask):
//! `docs/synthfas/sheet.png`; video strips: `docs/synthfas/video-synth-{a,d}.png`. Writing
//! the default 4-domain dataset (10 subjects/domain, 4 presentations, 1 video × 8 frames,
//! 128 px, PNG + depth: 1280 samples, 32 MB) takes ≈ 16 CPU-seconds in release.
//!
//! # Presentations
//! * **Live**: the 3D-shaded head lit by the scene light; blinks, smile, talking.
//! * **Print**: a photo of the subject (own frontal lighting and background) printed with
//!   gamut compression (lower saturation, raised black, lowered white), CMY halftone dots on
//!   rotated screens, paper texture, lit by the scene as a *flat* sheet (one normal, a small
//!   bend gradient: no 3D shading consistency), a broad specular sheen; the paper margin
//!   shows where the print field is small.
//! * **Replay**: the photo on an emissive screen: an RGB sub-pixel stripe grid sampled by the
//!   camera (moiré), display gamma shift and white point, glare, a dark bezel.
//! * **Mask**: the same 3D head with a mask material (less skin texture, no blush, paint
//!   tint, higher and sharper specular), eye holes with a dark rim (real eyes behind them,
//!   which still blink), a painted rigid mouth and a seam at the forehead.
//!
//! # Videos
//! Each video has `frames_per_video` frames of smooth motion (sinusoidal sway of
//! translation, roll, scale and — for 3D heads — yaw). Live faces blink and change
//! expression; print and replay move rigidly in the image plane; masks move rigidly in 3D.
//!
//! # Depth
//! [`Rendered::depth`] is the true face height field (u8, 0 = background, ≥ 30 inside the
//! face) for bona fide samples and all-zero for attacks. [`write_dataset`] writes it next
//! to each image as `<image stem>_depth.png` (when `write_depth`); the manifest does not
//! record it — the suffix is the convention.
//!
//! # Layout written by [`write_dataset`]
//! `manifest.jsonl` ([`crate::dataset::Sample`] a line) and
//! `<domain>/<subject>/<attack>-vNN-fNN.{png,jpg}` (+ `_depth.png`).

#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

pub mod domain;
pub mod face;
pub mod render;
mod util;
pub mod yuyv;

pub use domain::{Background, DomainSpec, MaskStyle, PrintStyle, ReplayStyle, SpoofBias};

use crate::dataset::{Label, Sample, Split, DATASET_MANIFEST_VERSION};
use image::{GrayImage, RgbImage};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What is in front of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presentation {
    Live,
    Print,
    Replay,
    Mask,
}

impl Presentation {
    pub const ALL: [Presentation; 4] = [
        Presentation::Live,
        Presentation::Print,
        Presentation::Replay,
        Presentation::Mask,
    ];

    /// The manifest's `attack` string (`"none"` for bona fide).
    pub fn attack(self) -> &'static str {
        match self {
            Presentation::Live => "none",
            Presentation::Print => "print",
            Presentation::Replay => "replay",
            Presentation::Mask => "mask",
        }
    }

    pub fn label(self) -> Label {
        if self == Presentation::Live {
            Label::Live
        } else {
            Label::Spoof
        }
    }

    fn index(self) -> u64 {
        self as u64
    }
}

/// Output image encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid SynthFAS config: {0}")]
    Config(String),
    #[error("{path}: cannot read or write it — check the path, free space and permissions")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode or decode an image")]
    Image(#[from] image::ImageError),
    #[error("cannot write the dataset's JSON")]
    Json(#[from] serde_json::Error),
}

/// Generator configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthConfig {
    pub seed: u64,
    pub domains: Vec<DomainSpec>,
    pub subjects_per_domain: u32,
    pub videos_per_presentation: u32,
    pub frames_per_video: u32,
    /// Square output size in pixels (64..=1024; 128–256 intended).
    pub image_size: u32,
    /// Train / dev / test fractions of each domain's subjects.
    pub split_ratio: [f32; 3],
    pub presentations: Vec<Presentation>,
    pub format: ImageFormat,
    /// JPEG quality of the *output* files when `format` is JPEG.
    pub output_quality: u8,
    pub write_depth: bool,
    /// Worker threads for [`write_dataset`] (0 = available parallelism).
    pub threads: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            domains: DomainSpec::defaults(),
            subjects_per_domain: 10,
            videos_per_presentation: 1,
            frames_per_video: 8,
            image_size: 128,
            split_ratio: [0.6, 0.2, 0.2],
            presentations: Presentation::ALL.to_vec(),
            format: ImageFormat::Png,
            output_quality: 95,
            write_depth: true,
            threads: 0,
        }
    }
}

impl SynthConfig {
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |m: &str| Err(SynthError::Config(m.into()));
        if self.domains.is_empty() {
            return bad("no domains");
        }
        if !(64..=1024).contains(&self.image_size) {
            return bad("image_size must be in 64..=1024");
        }
        if self.subjects_per_domain == 0
            || self.videos_per_presentation == 0
            || self.frames_per_video == 0
        {
            return bad("subjects, videos and frames must be > 0");
        }
        if self.split_ratio.iter().any(|r| !(0.0..=1.0).contains(r))
            || self.split_ratio.iter().sum::<f32>() <= 0.0
        {
            return bad("split_ratio must be non-negative with a positive sum");
        }
        if self.presentations.is_empty() {
            return bad("no presentations");
        }
        let mut names: Vec<&str> = self.domains.iter().map(|d| d.name.as_str()).collect();
        names.sort();
        names.dedup();
        if names.len() != self.domains.len() {
            return bad("duplicate domain names");
        }
        Ok(())
    }
}

/// One sample to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleSpec {
    /// Index into `SynthConfig::domains`.
    pub domain: usize,
    pub subject: u32,
    pub presentation: Presentation,
    pub video: u32,
    pub frame: u32,
}

/// Face box `[x0, y0, x1, y1]` and 5 landmarks: left eye, right eye, nose tip, left and right
/// mouth corner ("left" = smaller image x), in pixel coordinates of the image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceAnnotation {
    pub bbox: [f32; 4],
    pub landmarks: [[f32; 2]; 5],
}

impl From<FaceAnnotation> for crate::preprocess::Face {
    /// The ground-truth face as a detection with confidence 1.
    fn from(a: FaceAnnotation) -> Self {
        crate::preprocess::Face {
            bbox: a.bbox,
            landmarks: a.landmarks,
            score: 1.0,
        }
    }
}

/// Descriptive metadata of a rendered sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderMeta {
    pub domain: String,
    pub device: String,
    pub subject: String,
    pub video: String,
    pub frame: u32,
    pub presentation: Presentation,
    pub label: Label,
}

pub struct Rendered {
    pub rgb: RgbImage,
    /// Face height field (u8) for bona fide, all-zero for attacks.
    pub depth: Option<GrayImage>,
    pub face: FaceAnnotation,
    pub meta: RenderMeta,
}

/// Counts of what [`write_dataset`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub samples: usize,
    pub live: usize,
    pub spoof: usize,
    pub videos: usize,
    pub subjects: usize,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
    pub bytes: u64,
}

/// Renders samples of a [`SynthConfig`].
pub struct Generator {
    cfg: SynthConfig,
    identities: Vec<Vec<face::Identity>>,
    splits: Vec<Vec<Split>>,
}

impl Generator {
    pub fn new(cfg: SynthConfig) -> Result<Generator, SynthError> {
        cfg.validate()?;
        let mut identities = Vec::new();
        let mut splits = Vec::new();
        for d in 0..cfg.domains.len() {
            let ids = (0..cfg.subjects_per_domain)
                .map(|s| face::Identity::sample(&mut util::rng(cfg.seed, &[1, d as u64, s as u64])))
                .collect();
            identities.push(ids);
            splits.push(assign_splits(
                cfg.seed,
                d,
                cfg.subjects_per_domain,
                cfg.split_ratio,
            ));
        }
        Ok(Generator {
            cfg,
            identities,
            splits,
        })
    }

    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    /// The split of a subject (all its videos share it).
    pub fn split(&self, domain: usize, subject: u32) -> Split {
        self.splits[domain][subject as usize]
    }

    pub fn subject_id(&self, domain: usize, subject: u32) -> String {
        format!("{}-s{:03}", self.cfg.domains[domain].name, subject)
    }

    pub fn video_id(&self, s: &SampleSpec) -> String {
        format!(
            "{}-{}-v{:02}",
            self.subject_id(s.domain, s.subject),
            s.presentation.attack(),
            s.video
        )
    }

    /// Every sample of the config, in manifest order.
    pub fn samples(&self) -> Vec<SampleSpec> {
        let mut v = Vec::new();
        for domain in 0..self.cfg.domains.len() {
            for subject in 0..self.cfg.subjects_per_domain {
                for &presentation in &self.cfg.presentations {
                    for video in 0..self.cfg.videos_per_presentation {
                        for frame in 0..self.cfg.frames_per_video {
                            v.push(SampleSpec {
                                domain,
                                subject,
                                presentation,
                                video,
                                frame,
                            });
                        }
                    }
                }
            }
        }
        v
    }

    fn video_seed(&self, s: &SampleSpec) -> u64 {
        util::derive(
            self.cfg.seed,
            &[
                2,
                s.domain as u64,
                s.subject as u64,
                s.presentation.index(),
                s.video as u64,
            ],
        )
    }

    /// Renders one sample at `image_size`.
    pub fn render(&self, s: &SampleSpec) -> Rendered {
        let n = self.cfg.image_size as usize;
        let frame = render::Frame {
            w: n,
            h: n,
            cx: n as f32 * 0.5,
            cy: n as f32 * 0.52,
            scale: n as f32 * 0.3,
        };
        self.render_in(s, &frame)
    }

    fn render_in(&self, s: &SampleSpec, frame: &render::Frame) -> Rendered {
        let d = &self.cfg.domains[s.domain];
        let id = &self.identities[s.domain][s.subject as usize];
        let vseed = self.video_seed(s);
        let out = render::render_scene(
            id,
            d,
            s.presentation,
            vseed,
            s.frame,
            self.cfg.frames_per_video,
            frame,
        );
        let mut nr = util::rng(vseed, &[3, s.frame as u64]);
        let mut cr = util::rng(vseed, &[0]);
        let cap = domain::Capture::sample(d, &mut cr, s.presentation != Presentation::Live);
        let rgb = domain::capture(&out.radiance, &cap, &mut nr);
        let depth = self.cfg.write_depth.then(|| {
            let mut g = GrayImage::new(frame.w as u32, frame.h as u32);
            if let Some(dz) = &out.depth {
                let zmax = id.relief + 0.3;
                for (i, p) in g.pixels_mut().enumerate() {
                    if dz[i] > 1e-3 {
                        p.0[0] = (30.0 + 225.0 * (dz[i] / zmax).min(1.0)).round() as u8;
                    }
                }
            }
            g
        });
        Rendered {
            rgb,
            depth,
            face: FaceAnnotation {
                bbox: out.bbox,
                landmarks: out.landmarks,
            },
            meta: RenderMeta {
                domain: d.name.clone(),
                device: d.device.clone(),
                subject: self.subject_id(s.domain, s.subject),
                video: self.video_id(s),
                frame: s.frame,
                presentation: s.presentation,
                label: s.presentation.label(),
            },
        }
    }

    /// Manifest path (relative) of a sample.
    pub fn relative_path(&self, s: &SampleSpec) -> String {
        let ext = match self.cfg.format {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
        };
        format!(
            "{}/{}/{}-v{:02}-f{:02}.{}",
            self.cfg.domains[s.domain].name,
            self.subject_id(s.domain, s.subject),
            s.presentation.attack(),
            s.video,
            s.frame,
            ext
        )
    }

    /// The manifest record of a sample.
    pub fn record(&self, s: &SampleSpec) -> Sample {
        let d = &self.cfg.domains[s.domain];
        Sample {
            v: DATASET_MANIFEST_VERSION,
            path: self.relative_path(s),
            label: s.presentation.label(),
            attack: s.presentation.attack().into(),
            domain: d.name.clone(),
            subject: self.subject_id(s.domain, s.subject),
            device: d.device.clone(),
            split: self.split(s.domain, s.subject),
            video: self.video_id(s),
            frame: s.frame,
        }
    }
}

/// Deterministic split by subject: shuffled subjects, `round(ratio × n)` per split (train
/// gets the remainder).
fn assign_splits(seed: u64, domain: usize, n: u32, ratio: [f32; 3]) -> Vec<Split> {
    let sum: f32 = ratio.iter().sum();
    let n_dev = ((ratio[1] / sum) * n as f32).round() as usize;
    let n_test =
        (((ratio[2] / sum) * n as f32).round() as usize).min(n as usize - n_dev.min(n as usize));
    let mut order: Vec<usize> = (0..n as usize).collect();
    order.shuffle(&mut util::rng(seed, &[4, domain as u64]));
    let mut out = vec![Split::Train; n as usize];
    for (k, &s) in order.iter().enumerate() {
        if k < n_test {
            out[s] = Split::Test;
        } else if k < n_test + n_dev {
            out[s] = Split::Dev;
        }
    }
    out
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes an image: readers see the old or the complete new file
/// ([`crate::atomic::replace_atomic`]; images are not fsynced one by one, the manifest
/// written after them is).
fn write_image(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    crate::atomic::replace_atomic(path, bytes).map_err(io_err(path))
}

fn encode_png_rgb(img: &RgbImage) -> Result<Vec<u8>, SynthError> {
    let mut buf = Vec::new();
    img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut buf))?;
    Ok(buf)
}

fn encode_png_gray(img: &GrayImage) -> Result<Vec<u8>, SynthError> {
    let mut buf = Vec::new();
    img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut buf))?;
    Ok(buf)
}

/// Renders and writes the whole dataset (images, depth maps, `manifest.jsonl`) to `out_dir`.
pub fn write_dataset(cfg: &SynthConfig, out_dir: &Path) -> Result<Stats, SynthError> {
    let gen = Generator::new(cfg.clone())?;
    let specs = gen.samples();
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    for d in 0..cfg.domains.len() {
        for s in 0..cfg.subjects_per_domain {
            let dir = out_dir
                .join(&cfg.domains[d].name)
                .join(gen.subject_id(d, s));
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
    }
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    };
    let threads = threads.clamp(1, 64);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<u64, SynthError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| -> Result<u64, SynthError> {
                    let mut bytes = 0u64;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(s) = specs.get(i) else { break };
                        let r = gen.render(s);
                        let rel = gen.relative_path(s);
                        let path = out_dir.join(&rel);
                        let buf = match cfg.format {
                            ImageFormat::Png => encode_png_rgb(&r.rgb)?,
                            ImageFormat::Jpeg => {
                                let mut b = Vec::new();
                                r.rgb.write_with_encoder(
                                    image::codecs::jpeg::JpegEncoder::new_with_quality(
                                        &mut b,
                                        cfg.output_quality,
                                    ),
                                )?;
                                b
                            }
                        };
                        bytes += buf.len() as u64;
                        write_image(&path, &buf)?;
                        if let Some(dm) = &r.depth {
                            let dpath = depth_path(&path);
                            let b = encode_png_gray(dm)?;
                            bytes += b.len() as u64;
                            write_image(&dpath, &b)?;
                        }
                    }
                    Ok(bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("SynthFAS worker panicked"))
            .collect()
    });
    let mut stats = Stats::default();
    for r in results {
        stats.bytes += r?;
    }
    let mut manifest = String::new();
    let mut videos = std::collections::HashSet::new();
    for s in &specs {
        let rec = gen.record(s);
        match rec.label {
            Label::Live => stats.live += 1,
            Label::Spoof => stats.spoof += 1,
        }
        match rec.split {
            Split::Train => stats.train += 1,
            Split::Dev => stats.dev += 1,
            Split::Test => stats.test += 1,
        }
        videos.insert(rec.video.clone());
        manifest.push_str(&serde_json::to_string(&rec)?);
        manifest.push('\n');
    }
    stats.samples = specs.len();
    stats.videos = videos.len();
    stats.subjects = cfg.domains.len() * cfg.subjects_per_domain as usize;
    stats.bytes += manifest.len() as u64;
    let manifest_path = out_dir.join("manifest.jsonl");
    crate::atomic::write_atomic(&manifest_path, manifest.as_bytes())
        .map_err(io_err(&manifest_path))?;
    Ok(stats)
}

/// `dir/x.png` → `dir/x_depth.png` (the depth-map naming convention).
pub fn depth_path(image: &Path) -> PathBuf {
    let stem = image
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("image");
    image.with_file_name(format!("{stem}_depth.png"))
}

/// One frame of a [`SyntheticCamera`] session.
pub struct CameraFrame {
    pub rgb: RgbImage,
    pub face: FaceAnnotation,
    pub meta: RenderMeta,
    /// Frame index since the camera started.
    pub index: u64,
}

/// An endless in-memory "camera" (for `--camera synthetic[:seed]`): 640×480 frames with one
/// face somewhere in the frame; every `segment_frames` frames a new person / presentation /
/// domain / placement is drawn (live about half the time), with smooth motion inside a
/// segment.
pub struct SyntheticCamera {
    gen: Generator,
    seed: u64,
    pub width: u32,
    pub height: u32,
    pub segment_frames: u32,
    index: u64,
}

impl SyntheticCamera {
    pub fn new(seed: u64) -> SyntheticCamera {
        let cfg = SynthConfig {
            seed,
            subjects_per_domain: 16,
            videos_per_presentation: 1 << 16,
            frames_per_video: 48,
            write_depth: false,
            ..SynthConfig::default()
        };
        let gen = Generator::new(cfg).expect("default config is valid");
        SyntheticCamera {
            gen,
            seed,
            width: 640,
            height: 480,
            segment_frames: 48,
            index: 0,
        }
    }

    /// Parses a camera spec `synthetic` or `synthetic:SEED` (seed 0 when absent); `None`
    /// for anything else.
    pub fn from_spec(spec: &str) -> Option<SyntheticCamera> {
        match spec.strip_prefix("synthetic") {
            Some("") => Some(SyntheticCamera::new(0)),
            Some(rest) => rest
                .strip_prefix(':')?
                .parse()
                .ok()
                .map(SyntheticCamera::new),
            None => None,
        }
    }

    /// Renders frame `index` (random access; the iterator just counts up).
    pub fn frame(&self, index: u64) -> CameraFrame {
        let seg = index / self.segment_frames as u64;
        let t = (index % self.segment_frames as u64) as u32;
        let mut r = util::rng(self.seed, &[5, seg]);
        let presentation = if r.random::<f32>() < 0.5 {
            Presentation::Live
        } else {
            Presentation::ALL[r.random_range(1..4)]
        };
        let spec = SampleSpec {
            domain: r.random_range(0..self.gen.cfg.domains.len()),
            subject: r.random_range(0..self.gen.cfg.subjects_per_domain),
            presentation,
            video: (seg % (1 << 16)) as u32,
            frame: t,
        };
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = util::uni(&mut r, 0.12, 0.22) * h;
        let frame = render::Frame {
            w: self.width as usize,
            h: self.height as usize,
            cx: util::uni(&mut r, 2.0 * scale, w - 2.0 * scale),
            cy: util::uni(&mut r, 1.6 * scale, h - 1.4 * scale),
            scale,
        };
        let rd = self.gen.render_in(&spec, &frame);
        CameraFrame {
            rgb: rd.rgb,
            face: rd.face,
            meta: rd.meta,
            index,
        }
    }
}

impl Iterator for SyntheticCamera {
    type Item = CameraFrame;
    fn next(&mut self) -> Option<CameraFrame> {
        let f = self.frame(self.index);
        self.index += 1;
        Some(f)
    }
}

/// A sample sheet: rows = domains, columns = live / print / replay / mask (`cell` px each).
pub fn sample_sheet(seed: u64, cell: u32) -> Result<RgbImage, SynthError> {
    let cfg = SynthConfig {
        seed,
        image_size: cell,
        subjects_per_domain: 4,
        frames_per_video: 8,
        write_depth: false,
        ..SynthConfig::default()
    };
    let gen = Generator::new(cfg)?;
    let nd = gen.cfg.domains.len() as u32;
    let mut sheet = RgbImage::new(cell * 4, cell * nd);
    for d in 0..nd {
        for (c, p) in Presentation::ALL.iter().enumerate() {
            let spec = SampleSpec {
                domain: d as usize,
                subject: (c as u32 + d) % 4,
                presentation: *p,
                video: 0,
                frame: 3,
            };
            let r = gen.render(&spec);
            image::imageops::replace(
                &mut sheet,
                &r.rgb,
                (c as u32 * cell) as i64,
                (d * cell) as i64,
            );
        }
    }
    Ok(sheet)
}

/// A video strip of one domain: rows = live / print / replay / mask, columns = the
/// `frames` frames of one video each (`cell` px each).
pub fn video_strip(
    seed: u64,
    domain: usize,
    frames: u32,
    cell: u32,
) -> Result<RgbImage, SynthError> {
    let cfg = SynthConfig {
        seed,
        image_size: cell,
        subjects_per_domain: 4,
        frames_per_video: frames,
        write_depth: false,
        ..SynthConfig::default()
    };
    let gen = Generator::new(cfg)?;
    if domain >= gen.cfg.domains.len() {
        return Err(SynthError::Config(format!("no domain {domain}")));
    }
    let mut strip = RgbImage::new(cell * frames, cell * 4);
    for (row, p) in Presentation::ALL.iter().enumerate() {
        for frame in 0..frames {
            let spec = SampleSpec {
                domain,
                subject: 1,
                presentation: *p,
                video: 0,
                frame,
            };
            let r = gen.render(&spec);
            image::imageops::replace(
                &mut strip,
                &r.rgb,
                (frame * cell) as i64,
                (row as u32 * cell) as i64,
            );
        }
    }
    Ok(strip)
}

#[cfg(test)]
mod tests;
