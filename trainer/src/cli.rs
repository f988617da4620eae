//! Command-line arguments of `fas-train` (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::data::protocol::Protocol;
use crate::device::DeviceChoice;

#[derive(Debug, Parser)]
#[command(
    name = "fas-train",
    version,
    about = "Train, evaluate and prepare data for face anti-spoofing models (tch; CUDA when present, CPU otherwise)",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn a dataset's own directory layout into a source manifest (one line per video/image).
    Import(ImportArgs),
    /// Decode videos, detect and align faces, write face crops and a crop manifest.
    Prepare(PrepareArgs),
    /// List the tasks of a protocol on a manifest.
    Tasks(TasksArgs),
    /// Train a model; writes a run dir (model.json, weights.safetensors, metrics.json, plots).
    Train(Box<TrainArgs>),
    /// Evaluate a run dir on any manifest: frame- and video-level metrics, both thresholds.
    Eval(EvalArgs),
    /// Dual-stage runs: write the feature-swap translation figure (PNG) of a live and a spoof
    /// face from a manifest.
    Translate(TranslateArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// oulu | casia | replay | msu | siwm | celeba
    #[arg(long)]
    pub dataset: String,
    /// The dataset's root directory, as distributed.
    #[arg(long)]
    pub root: PathBuf,
    /// Where to write the source manifest (JSONL).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Source manifest (JSONL, one source media file a line): written by `fas-train import`,
    /// or by hand in the same format (docs/ARCHITECTURE.md, contract 5).
    #[arg(long)]
    pub sources: PathBuf,
    /// Dataset root the source paths are relative to.
    #[arg(long)]
    pub root: PathBuf,
    /// Output directory for crops + manifest.jsonl + prepare.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep every N-th video frame.
    #[arg(long, default_value_t = 5)]
    pub stride: u32,
    /// At most this many kept frames per video (0 = all).
    #[arg(long, default_value_t = 0)]
    pub max_frames: u32,
    /// Crop side in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Context around the aligned face (1.0 tight; 2.7 as deployed FAS models use).
    #[arg(long, default_value_t = 2.7)]
    pub crop_scale: f32,
    /// RetinaFace ONNX model (default: $FAS_ASSETS/<RetinaFace file>).
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also write `<crop>_depth.png` beside every live crop: a coarse, landmark-fitted
    /// face depth prior for depth supervision (`train --depth-weight`) on datasets
    /// without depth maps.
    #[arg(long)]
    pub depth_prior: bool,
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    #[arg(long)]
    pub manifest: PathBuf,
    #[arg(long, value_enum)]
    pub protocol: Protocol,
}

/// An ablation switch (each belongs to one recipe: DLIF, dual-stage, D²AM or ANRL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ablation {
    /// No Style Cross (LISC / IISC).
    NoStyleCross,
    /// No channel-wise style attention.
    NoCwsa,
    /// No identity encoder (and no orthogonality / ambiguity / IISC terms).
    NoV,
    /// Dual-stage: no stage 1, the live encoder trains jointly with the rest.
    SingleStage,
    /// Dual-stage: no triplet loss on the spoof-map features.
    NoTriplet,
    /// Dual-stage: no auxiliary classifier on the map-overlaid image.
    NoAux,
    // D²AM
    /// D²AM: meta-learn over the manifest's real source domains (no clustering).
    TrueDomains,
    /// D²AM: a uniformly random pseudo-domain in 0..K per sample and epoch (no clustering).
    RandomDomains,
    /// D²AM: cluster on all channels of the pre-DRLM features F, not the low-attention
    /// half of F⁻.
    NoSelection,
    /// D²AM: no DRLM entropy loss L_p (λ_p = 0).
    NoEntropy,
    /// D²AM: no MMD regulariser on the meta-learner (λ_m = 0).
    NoMmd,
    // ANRL
    /// ANRL: plain BatchNorm in every normalisation slot (no IN branch, no AFNM gate).
    Bn,
    /// ANRL: InstanceNorm only in every normalisation slot.
    In,
    /// ANRL: no meta-train / meta-test split, one ordinary step per batch (AFNM kept).
    NoMeta,
    /// ANRL: no Inter-Domain Compatible loss.
    NoIdc,
    /// ANRL: no Inter-Class Separable loss.
    NoIcs,
}

/// A DLIF Style Cross level (after ResNet-18's layer1, layer2, layer3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StyleLevel {
    Low,
    Mid,
    High,
}

/// How DLIF combines several Style Cross levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StyleFlow {
    /// One style-crossed copy, crossed at every level (×).
    Cascade,
    /// One style-crossed copy per level (+).
    Parallel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputKind {
    /// 3 channels.
    Rgb,
    /// 6 channels: RGB + HSV (as D²AM and ANRL use).
    RgbHsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossName {
    Bce,
    AmSoftmax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleName {
    Constant,
    Step,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerName {
    Adam,
    Adamw,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Crop manifest (from `fas-train prepare`, or a SynthFAS dataset).
    #[arg(long)]
    pub manifest: PathBuf,
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// Task of the protocol by name (see `fas-train tasks`), e.g. OCI-M.
    #[arg(long)]
    pub task: String,
    /// The training method (`recipe::registry`).
    #[arg(long, default_value = "baseline", value_parser = crate::recipe::registry::value_parser())]
    pub recipe: String,
    /// resnet18 | depthnet | edgenet [default: resnet18; anrl, d2am: depthnet, the only choice;
    /// dlif: resnet18, the only choice; dualstage: its own conv encoders, no choice]
    #[arg(long)]
    pub backbone: Option<String>,
    /// [default: rgb; anrl, d2am: rgb-hsv]
    #[arg(long, value_enum)]
    pub input: Option<InputKind>,
    /// Input side in pixels [default: 224; anrl, d2am, dualstage: 256].
    #[arg(long)]
    pub size: Option<u32>,
    /// Channel-width multiplier of the backbone (dualstage: of its base width 32).
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// [default: bce; dlif: am-softmax, the only choice; dualstage: none, it scores with its
    /// spoof map]
    #[arg(long, value_enum)]
    pub loss: Option<LossName>,
    /// Weight of the depth loss (DepthNet backbone; SynthFAS or user depth maps). 0 = off
    /// [default: 0; anrl, d2am: 1].
    #[arg(long)]
    pub depth_weight: Option<f64>,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Epochs over the training split (ignored when --steps is given).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Total optimisation steps (overrides --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Stop after this many steps whatever --epochs/--steps say (smoke runs); the
    /// schedule still spans the full run.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Learning rate [default: 1e-3; dlif, dualstage: 5e-4; d2am: 1e-4, the paper's β]
    #[arg(long)]
    pub lr: Option<f64>,
    /// [default: adamw; dlif, dualstage: adam]
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerName>,
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// [default: cosine; dlif: step; dualstage: constant]
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleName>,
    /// Step schedule: multiply the rate by --gamma every this many steps
    /// [default: 1000; dlif: 50 epochs].
    #[arg(long)]
    pub step_every: Option<usize>,
    #[arg(long, default_value_t = 0.5)]
    pub gamma: f64,
    /// Ablations, comma-separated (dlif: no-style-cross, no-cwsa, no-v; dualstage:
    /// single-stage, no-triplet, no-aux; d2am: true-domains, random-domains, no-selection,
    /// no-entropy, no-mmd; anrl: bn or in, no-meta, no-idc, no-ics).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub ablate: Vec<Ablation>,
    /// D²AM: K, the number of pseudo-domains, 2 to 8 [default: 3, the paper's].
    #[arg(long)]
    pub clusters: Option<usize>,
    /// anrl, d2am: first-order meta-learning (the inner gradient is a constant) instead of
    /// the papers' second-order meta-gradient through the inner step.
    #[arg(long)]
    pub first_order: bool,
    /// Dual-stage: fraction of the run's steps spent in stage 1 (live autoencoder)
    /// [default: 0.3].
    #[arg(long)]
    pub stage1_fraction: Option<f64>,
    /// DLIF Style Cross levels, comma-separated [default: mid,high].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub style_cross_levels: Vec<StyleLevel>,
    /// DLIF Style Cross flow [default: cascade].
    #[arg(long, value_enum)]
    pub style_cross_flow: Option<StyleFlow>,
    /// Clip the global gradient norm.
    #[arg(long)]
    pub clip: Option<f64>,
    /// Disable mixed precision on CUDA.
    #[arg(long)]
    pub no_amp: bool,
    /// Validate on the source validation split every N steps.
    #[arg(long, default_value_t = 200)]
    pub val_every: usize,
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: usize,
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    /// Augmentation: none | default.
    #[arg(long, default_value = "default")]
    pub augment: String,
    /// Loader worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CPU threads libtorch uses inside one operation (0 = libtorch's default, one per
    /// core). The loader's workers share the cores with them: on 2 cores `--threads 1` ran
    /// a 64 px ResNet-18 training 2.1× faster than the default, a DepthNet one 1.4× slower;
    /// try both. Results change with the thread count (sums split differently, and
    /// training amplifies the last bits), so reproduce a run with its value (`run.json`:
    /// `torch_threads`).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// auto | cpu | cuda | cuda:N
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Initial weights (safetensors, IR names), e.g. user-provided pretrained ones.
    #[arg(long)]
    pub init_weights: Option<PathBuf>,
    /// The run dir to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The recipe-specific flags given on the command line (each recipe's registry entry
    /// names those it takes; `recipe::registry::check_flags` refuses the others).
    pub fn recipe_flags(&self) -> Vec<&'static str> {
        let given = [
            ("--style-cross-levels", !self.style_cross_levels.is_empty()),
            ("--style-cross-flow", self.style_cross_flow.is_some()),
            ("--clusters", self.clusters.is_some()),
            ("--first-order", self.first_order),
            ("--stage1-fraction", self.stage1_fraction.is_some()),
        ];
        given.into_iter().filter(|g| g.1).map(|g| g.0).collect()
    }
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Run dir written by `fas-train train --recipe dualstage` (its last checkpoint is used).
    #[arg(long)]
    pub run: PathBuf,
    /// Manifest to take the faces from.
    #[arg(long)]
    pub manifest: PathBuf,
    /// train | dev | test: the first live and the first spoof sample of this split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// The PNG to write (default: <run>/plots/translation.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run dir written by `fas-train train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Manifest to evaluate on (any: the model need not have seen its domain).
    #[arg(long)]
    pub manifest: PathBuf,
    /// Evaluate this protocol task's test split; without it, --split of the whole manifest.
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    #[arg(long)]
    pub task: Option<String>,
    /// train | dev | test (without --protocol).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Where to write eval.json and the plots (default: <run>/eval-<manifest name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}
