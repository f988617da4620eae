//! The `fas-train` subcommands (the binary only parses arguments and calls these).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use fas_core::dataset::{Manifest, Sample, Split};
use fas_core::preprocess::{ColorSpace, CropSpec, Normalize, PreprocessSpec};
use serde::{Deserialize, Serialize};

use crate::cli::{
    EvalArgs, ImportArgs, InputKind, OptimizerName, PrepareArgs, ScheduleName, TasksArgs,
    TrainArgs, TranslateArgs,
};
use crate::data::augment::AugmentConfig;
use crate::data::loader::{Dataset, Loader, LoaderConfig};
use crate::data::protocol::{Protocol, Task, TaskSplit};
use crate::data::sampler::{
    BatchSampler, ClassBalanced, ClassBalancedConfig, DomainLabels, EpochLength, IdentityConfig,
    IdentitySampler, PerDomain, PerDomainConfig,
};
use crate::device;
use crate::eval::{self, EvalReport, Scored};
use crate::prepare::PrepareConfig;
use crate::recipe::dualstage::{DualStage, DualStageConfig};
use crate::recipe::registry::{self, Built, Defaults, Entry, Setup};
use crate::recipe::{Recipe, Sampling};
use crate::train::data::{
    read_scores, score_indices, write_parity, write_scores, DeployedModel, SampledSource,
    SplitValidator,
};
use crate::train::optim::{AdamConfig, Schedule};
use crate::train::run::{self, LoopConfig, RunDir, RunDirExt, TrainSummary};

/// Everything a run was started with (`run.json`); the exporter reads `preprocess` from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub fas_version: String,
    pub recipe: String,
    pub manifest: PathBuf,
    pub protocol: Protocol,
    pub task: Task,
    pub preprocess: PreprocessSpec,
    /// The recipe's model configuration (what its registry entry built, e.g. `BaselineConfig`).
    pub model: serde_json::Value,
    pub training: LoopConfig,
    pub loader: LoaderConfig,
    pub batch_size: usize,
    pub sampler: String,
    pub device: String,
    pub seed: u64,
    pub init_weights: Option<PathBuf>,
    /// libtorch's intra-op CPU threads during the run (`--threads`; absent in run.json
    /// files written before it was recorded).
    #[serde(default)]
    pub torch_threads: Option<usize>,
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    pub protocol: Protocol,
    pub task: String,
    pub training: TrainSummary,
    /// The best model (by source validation) on the task's test split.
    pub test: EvalReport,
    pub samples: SplitCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitCounts {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

pub fn import(a: &ImportArgs) -> Result<()> {
    let imp = crate::import::importer(&a.dataset).with_context(|| {
        format!(
            "--dataset {}: unknown dataset; choose one of {}",
            a.dataset,
            crate::import::DATASETS.join(", ")
        )
    })?;
    let report = imp.import(&a.root)?;
    println!("{}", report.summary());
    for u in report.unknown.iter().take(20) {
        eprintln!("unknown (not imported): {}", u.display());
    }
    if report.unknown.len() > 20 {
        eprintln!("… and {} more unknown files", report.unknown.len() - 20);
    }
    if report.samples.is_empty() {
        bail!(
            "{}: no {} media found — is --root the dataset's top directory?",
            a.root.display(),
            a.dataset
        );
    }
    report
        .manifest()
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "wrote {} ({} sources)",
        a.out.display(),
        report.samples.len()
    );
    Ok(())
}

/// The RetinaFace model: `--detector`, else `$FAS_ASSETS/`, else `./assets/`.
fn detector_model(given: Option<&Path>) -> Result<PathBuf> {
    const FILE: &str = "retinaface_mnet025.onnx";
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--detector {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    fas_core::assets::file(FILE, &[Path::new(fas_core::assets::WORKSPACE_DIR)])
        .context("no RetinaFace model: pass --detector, or fetch the assets")
}

pub fn prepare(a: &PrepareArgs) -> Result<()> {
    let sources = Manifest::load(&a.sources)?;
    let cfg = PrepareConfig {
        stride: a.stride,
        max_frames: (a.max_frames > 0).then_some(a.max_frames),
        crop: CropSpec::Aligned {
            scale: a.crop_scale,
        },
        size: a.size,
        // `--threads 0` (the default) means every core.
        threads: match a.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        },
        depth_prior: a.depth_prior,
        ..PrepareConfig::default()
    };
    let model = detector_model(a.detector.as_deref())?;
    let report = crate::prepare::prepare(&sources, &a.root, &a.out, &cfg, &model)?;
    println!("{}", report.summary());
    Ok(())
}

pub fn tasks(a: &TasksArgs) -> Result<()> {
    let m = Manifest::load(&a.manifest)?;
    for t in a.protocol.tasks(&m)? {
        let split = t.apply(&m)?;
        println!(
            "{:<28} train {:>7}  val {:>6}  test {:>6}   target {}",
            t.name,
            split.train.len(),
            split.val.len(),
            split.test.len(),
            t.target.name()
        );
    }
    Ok(())
}

/// How the images of the manifest at `manifest` were cut out of their frames: the crop of
/// the `fas-train prepare` run that wrote them (`prepare.json` beside the manifest), else
/// prepare's default (aligned, 2.7× context). The deployed model's manifest records this
/// crop, so the edge cuts faces exactly as the training crops were cut; a model trained
/// on `--crop-scale 1.5` crops but deployed with 2.7 would see faces at half the size.
pub fn manifest_crop(manifest: &Path) -> Result<CropSpec> {
    let report = manifest
        .parent()
        .unwrap_or(Path::new("."))
        .join(crate::prepare::REPORT_FILE);
    let text = match std::fs::read_to_string(&report) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PrepareConfig::default().crop)
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", report.display())),
    };
    let r: crate::prepare::PrepareReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a `fas-train prepare` report (it records how the crops beside it were \
             cut); restore it from the prepare run, or move it away to assume prepare's \
             default aligned 2.7× crop",
            report.display()
        )
    })?;
    Ok(r.config.crop)
}

/// The model's input preprocessing for an input kind, size and the crop that cut its
/// training images ([`manifest_crop`]).
pub fn preprocess_spec(input: InputKind, size: u32, crop: CropSpec) -> PreprocessSpec {
    let mut normalize = Normalize::imagenet(1);
    let mut color = vec![ColorSpace::Rgb];
    if input == InputKind::RgbHsv {
        color.push(ColorSpace::Hsv);
        normalize.mean.extend([0.5; 3]);
        normalize.std.extend([0.5; 3]);
    }
    PreprocessSpec {
        crop,
        width: size,
        height: size,
        color,
        normalize,
    }
}

fn find_task(protocol: Protocol, name: &str, m: &Manifest) -> Result<Task> {
    let tasks = protocol.tasks(m)?;
    let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    tasks
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .with_context(|| {
            format!(
                "--task {name}: not a task of protocol {} on this manifest; tasks: {}",
                protocol.as_str(),
                names.join(", ")
            )
        })
}

fn workers(n: usize) -> usize {
    if n > 0 {
        return n;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// The dataset (samples resolved against the manifest's folder) and its manifest view for
/// the protocols.
fn load_dataset(path: &Path) -> Result<(Arc<Dataset>, Manifest)> {
    let dataset = Dataset::load(path)?;
    let manifest = Manifest::new(dataset.samples().to_vec());
    Ok((Arc::new(dataset), manifest))
}

/// `fas-train train`: the shared stages around the recipe the registry builds (data and
/// task → recipe → loader and sampler → loop → evaluation of the exported model).
pub fn train(a: &TrainArgs) -> Result<()> {
    let device = device::resolve(a.device)?;
    if a.threads > 0 {
        tch::set_num_threads(i32::try_from(a.threads).context("--threads: too large")?);
    }
    tch::manual_seed(a.seed as i64);
    let (dataset, manifest) = load_dataset(&a.manifest)?;
    let task = find_task(a.protocol, &a.task, &manifest)?;
    // Non-empty train / val / test with both classes where needed: `Task::apply` checks.
    let split = task.apply(&manifest)?;
    let entry = registry::find(&a.recipe)?;
    registry::check_flags(a, entry)?;
    let defaults = (entry.defaults)();
    let (spec, built) = build_recipe(a, entry, &defaults, &dataset, &split.train, device)?;
    let Built {
        mut recipe,
        model,
        depth_size,
    } = built;

    let loader_cfg = loader_config(a, spec.clone(), depth_size)?;
    let loader = Loader::new(dataset.clone(), loader_cfg.clone())?;
    let sampler = sampler(a, &dataset, &split.train, recipe.sampling())?;
    let sampler_desc = sampler.describe();
    let source = SampledSource::new(loader, sampler, device).with_pool(split.train.clone());
    let bpe = run::BatchSource::batches_per_epoch(&source);
    let loop_cfg = loop_config(a, &defaults, bpe);

    let dir = RunDir::create(&a.out)?;
    let config = RunConfig {
        fas_version: env!("CARGO_PKG_VERSION").into(),
        recipe: entry.name.into(),
        manifest: a.manifest.clone(),
        protocol: a.protocol,
        task: task.clone(),
        preprocess: spec.clone(),
        model,
        training: loop_cfg.clone(),
        loader: loader_cfg,
        batch_size: a.batch_size,
        sampler: sampler_desc,
        device: format!("{device:?}"),
        seed: a.seed,
        init_weights: a.init_weights.clone(),
        torch_threads: usize::try_from(tch::get_num_threads()).ok(),
    };
    start_run(a, &dir, &config)?;
    eprintln!(
        "task {} ({}): train {} / source-val {} / test {} samples; {} steps ({} per epoch) on {:?}",
        task.name,
        a.protocol.as_str(),
        split.train.len(),
        split.val.len(),
        split.test.len(),
        loop_cfg.steps,
        bpe,
        device
    );

    let eval_loader = Loader::new(
        dataset.clone(),
        LoaderConfig {
            depth_size: None,
            ..LoaderConfig::eval(spec)
        },
    )?;
    let validator = SplitValidator {
        loader: eval_loader.clone(),
        indices: split.val.clone(),
        batch_size: a.batch_size.max(32),
        device,
    };
    let summary = run::train(
        recipe.as_mut(),
        &source,
        &validator,
        &loop_cfg,
        &dir,
        a.resume,
    )?;
    let run = Finished {
        dir: &dir,
        task: &task,
        split: &split,
        samples: dataset.samples(),
        eval_loader: &eval_loader,
        device,
    };
    run.evaluate(a, summary)
}

/// The recipe `entry` builds from the arguments over its `defaults`, and the preprocessing
/// its input kind and size give.
fn build_recipe(
    a: &TrainArgs,
    entry: &Entry,
    defaults: &Defaults,
    dataset: &Dataset,
    train: &[usize],
    device: tch::Device,
) -> Result<(PreprocessSpec, Built)> {
    let input = a.input.unwrap_or(defaults.input);
    let size = a.size.unwrap_or(defaults.size);
    let spec = preprocess_spec(input, size, manifest_crop(&a.manifest)?);
    let setup = Setup {
        args: a,
        dataset,
        train,
        in_channels: match input {
            InputKind::Rgb => 3,
            InputKind::RgbHsv => 6,
        },
        size,
        depth_weight: a.depth_weight.unwrap_or(defaults.depth_weight),
        adam: AdamConfig {
            weight_decay: a.weight_decay,
            decoupled: a.optimizer.unwrap_or(defaults.optimizer) == OptimizerName::Adamw,
            ..AdamConfig::default()
        },
        device,
    };
    Ok((spec, (entry.build)(&setup)?))
}

/// Refuses to overwrite a run unless resuming it; writes `run.json`, or checks that
/// `--resume` continues the run it records.
fn start_run(a: &TrainArgs, dir: &RunDir, config: &RunConfig) -> Result<()> {
    if !a.resume && dir.checkpoint().exists() {
        bail!(
            "{} already holds a run — continue it with --resume, or choose another --out",
            a.out.display()
        );
    }
    if a.resume {
        return check_same_run(dir, config);
    }
    fas_core::atomic::write_atomic(
        &dir.config(),
        serde_json::to_string_pretty(config)?.as_bytes(),
    )
    .with_context(|| format!("writing {}", dir.config().display()))
}

/// The training loader's configuration.
fn loader_config(
    a: &TrainArgs,
    spec: PreprocessSpec,
    depth_size: Option<u32>,
) -> Result<LoaderConfig> {
    let augment = match a.augment.as_str() {
        "default" => AugmentConfig::default(),
        "none" => AugmentConfig::none(),
        other => bail!("--augment {other}: use default or none"),
    };
    let nworkers = workers(a.workers);
    Ok(LoaderConfig {
        batch_size: a.batch_size,
        workers: nworkers,
        queue_depth: 2 * nworkers,
        augment,
        spec,
        depth_size,
        seed: a.seed,
        drop_last: true,
        shuffle: true,
    })
}

/// The batch sampler the recipe's [`Sampling`] asks for.
fn sampler(
    a: &TrainArgs,
    dataset: &Dataset,
    train: &[usize],
    sampling: Sampling,
) -> Result<Box<dyn BatchSampler>> {
    let samples = dataset.samples();
    Ok(match sampling {
        Sampling::PerDomain => {
            let sources: std::collections::BTreeSet<&str> =
                train.iter().map(|&i| samples[i].domain.as_str()).collect();
            // Half live, half spoof per domain, as close to --batch-size as that allows.
            let per_domain = (a.batch_size / sources.len().max(1) / 2 * 2).max(2);
            let cfg = PerDomainConfig {
                per_domain,
                class_balanced: true,
                length: EpochLength::Largest,
                seed: a.seed,
            };
            Box::new(PerDomain::new(samples, train, DomainLabels::Manifest, cfg)?)
        }
        Sampling::Identity {
            identities,
            per_class,
        } => {
            let cfg = IdentityConfig {
                identities_per_domain: identities,
                samples_per_class: per_class,
                length: EpochLength::Largest,
                seed: a.seed,
            };
            Box::new(IdentitySampler::new(samples, train, cfg).with_context(|| {
                format!(
                    "--recipe dlif draws {identities} identities per source domain × \
                     ({per_class} live + {per_class} spoof) per batch, from --batch-size {} \
                     — lower --batch-size",
                    a.batch_size
                )
            })?)
        }
        Sampling::ClassBalanced => Box::new(ClassBalanced::new(
            samples,
            train,
            ClassBalancedConfig {
                batch_size: a.batch_size,
                length: EpochLength::Largest,
                seed: a.seed,
            },
        )?),
    })
}

/// The loop's configuration: `--steps`/`--epochs` over `bpe` batches per epoch, the
/// recipe's rate and schedule unless given.
fn loop_config(a: &TrainArgs, defaults: &Defaults, bpe: usize) -> LoopConfig {
    let total = a.steps.unwrap_or(a.epochs * bpe).max(1);
    let lr = a.lr.unwrap_or(defaults.lr);
    let step_every = a
        .step_every
        .unwrap_or(defaults.step_every_epochs.map_or(1000, |e| e * bpe));
    let schedule = match a.schedule.unwrap_or(defaults.schedule) {
        ScheduleName::Constant => Schedule::Constant,
        ScheduleName::Step => Schedule::Step {
            every: step_every,
            gamma: a.gamma,
        },
        ScheduleName::Cosine => Schedule::Cosine {
            total,
            min_lr: lr * 0.01,
        },
    };
    LoopConfig {
        steps: a.max_steps.map_or(total, |m| m.min(total)),
        lr,
        schedule,
        val_every: a.val_every,
        checkpoint_every: a.checkpoint_every,
        log_every: a.log_every,
        seed: a.seed,
        progress: !a.quiet,
    }
}

/// A trained run, to evaluate.
struct Finished<'a> {
    dir: &'a RunDir,
    task: &'a Task,
    split: &'a TaskSplit,
    samples: &'a [Sample],
    eval_loader: &'a Loader,
    device: tch::Device,
}

impl Finished<'_> {
    /// Evaluates the exported best model (exactly what quantize/edge get) on the test
    /// split: scores, parity samples, plots, curves and `metrics.json`.
    fn evaluate(&self, a: &TrainArgs, summary: TrainSummary) -> Result<()> {
        let (dir, split, samples) = (self.dir, self.split, self.samples);
        let best = DeployedModel::load(&dir.root, self.device)?;
        let score = |idx: &[usize]| {
            score_indices(
                self.eval_loader,
                idx,
                a.batch_size.max(32),
                self.device,
                &|x| best.score(x),
            )
        };
        let val_scores = score(&split.val)?;
        let test_scores = score(&split.test)?;
        write_parity(
            &dir.parity(),
            self.eval_loader,
            samples,
            &split.val,
            4,
            self.device,
            &best,
        )?;
        let val = self.write_scores(&dir.val_scores(), &split.val, &val_scores)?;
        let test = self.write_scores(&dir.test_scores(), &split.test, &test_scores)?;
        let report = eval::evaluate(&val, &test)?;
        eval::write_plots(&dir.plots(), &self.task.name, &test, &report)?;
        // The curves are a view of the log; failing to draw them must not cost the run its
        // metrics.
        if let Err(e) =
            crate::train::curves::write_curves(&dir.log(), &dir.plots(), &self.task.name)
        {
            eprintln!("warning: no training curves: {e:#}");
        }
        let metrics = RunMetrics {
            protocol: a.protocol,
            task: self.task.name.clone(),
            training: summary,
            test: report.clone(),
            samples: SplitCounts {
                train: split.train.len(),
                val: split.val.len(),
                test: split.test.len(),
            },
        };
        fas_core::atomic::write_atomic(
            &dir.metrics(),
            serde_json::to_string_pretty(&metrics)?.as_bytes(),
        )
        .with_context(|| format!("writing {}", dir.metrics().display()))?;
        println!("{}", report.table());
        println!("run dir: {}", dir.root.display());
        Ok(())
    }

    /// Writes the scores of the samples `indices` to `file` in the run dir.
    fn write_scores(
        &self,
        path: &Path,
        indices: &[usize],
        scores: &[f64],
    ) -> Result<Vec<Scored<'_>>> {
        let rows: Vec<&Sample> = indices.iter().map(|&i| &self.samples[i]).collect();
        write_scores(path, &rows, scores)?;
        Ok(rows
            .into_iter()
            .zip(scores)
            .map(|(s, &score)| Scored { sample: s, score })
            .collect())
    }
}

/// `--resume` must continue the same run: the settings that change what is computed must
/// match `run.json`.
fn check_same_run(dir: &RunDir, now: &RunConfig) -> Result<()> {
    let text = std::fs::read_to_string(dir.config())
        .with_context(|| format!("--resume: reading {}", dir.config().display()))?;
    let before: RunConfig = serde_json::from_str(&text)
        .with_context(|| format!("--resume: {} is not a run config", dir.config().display()))?;
    let same = |a: &serde_json::Value, b: &serde_json::Value| a == b;
    // Through the recipe's config type, so fields added since (with their defaults) compare
    // equal to a run.json written without them.
    let model = registry::find(&before.recipe)
        .map(|e| e.canonical_model)
        .unwrap_or(registry::as_written);
    let fields: [(&str, serde_json::Value, serde_json::Value); 6] = [
        (
            "model",
            model(&before.model)
                .with_context(|| format!("--resume: the model in {}", dir.config().display()))?,
            model(&now.model)?,
        ),
        (
            "preprocess",
            serde_json::to_value(&before.preprocess)?,
            serde_json::to_value(&now.preprocess)?,
        ),
        (
            "loader",
            serde_json::to_value(&before.loader)?,
            serde_json::to_value(&now.loader)?,
        ),
        (
            "task",
            serde_json::to_value(&before.task)?,
            serde_json::to_value(&now.task)?,
        ),
        (
            "seed",
            serde_json::to_value(before.seed)?,
            serde_json::to_value(now.seed)?,
        ),
        (
            "schedule",
            serde_json::to_value(before.training.schedule)?,
            serde_json::to_value(now.training.schedule)?,
        ),
    ];
    // Another thread count computes the same thing, rounded differently: allowed, but the
    // continuation is then not bit-identical to an uninterrupted run.
    if let (Some(b), Some(n)) = (before.torch_threads, now.torch_threads) {
        if b != n {
            eprintln!(
                "warning: --resume with {n} libtorch threads, the run started with {b} \
                 ({}): it continues, but not bit-identically; pass --threads {b} for that",
                dir.config().display()
            );
        }
    }
    for (name, b, n) in fields {
        if !same(&b, &n) {
            bail!(
                "--resume: \"{name}\" differs from {} ({b} then, {n} now) — resume with the \
                 original settings, or start a new --out",
                dir.config().display()
            );
        }
    }
    Ok(())
}

fn parse_split(s: &str) -> Result<Split> {
    Ok(match s {
        "train" => Split::Train,
        "dev" => Split::Dev,
        "test" => Split::Test,
        o => bail!("--split {o}: use train, dev or test"),
    })
}

/// A run directory's `run.json`.
fn load_run_config(path: &Path) -> Result<RunConfig> {
    serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{}: not a fas-train run config", path.display()))
}

/// `fas-train translate`: the dual-stage feature-swap figure
/// ([`DualStage::translation_grid`]) from a run's last checkpoint.
pub fn translate(a: &TranslateArgs) -> Result<()> {
    let device = device::resolve(a.device)?;
    let cfg_path = RunDir::new(&a.run).config();
    let cfg = load_run_config(&cfg_path)?;
    if cfg.recipe != "dualstage" {
        bail!(
            "{}: a --recipe {} run; translate needs a --recipe dualstage run (its live \
             encoder and synthesis decoder)",
            a.run.display(),
            cfg.recipe
        );
    }
    let model: DualStageConfig = serde_json::from_value(cfg.model.clone()).with_context(|| {
        format!(
            "{}: \"model\" is not a dual-stage config",
            cfg_path.display()
        )
    })?;
    let mut r = DualStage::new(model, device, cfg.seed)?;
    let ckpt = crate::train::checkpoint::CheckpointPaths::in_dir(&a.run.join("checkpoint"), "last");
    let (state, _) = ckpt
        .load()
        .with_context(|| format!("{}: no checkpoint to translate with", a.run.display()))?;
    r.load_state(&state)?;
    let (dataset, _) = load_dataset(&a.manifest)?;
    let split = parse_split(&a.split)?;
    let first = |live: bool| {
        dataset
            .samples()
            .iter()
            .position(|s| s.split == split && (s.label == fas_core::dataset::Label::Live) == live)
            .with_context(|| {
                format!(
                    "{}: no {} sample in split {}",
                    a.manifest.display(),
                    if live { "live" } else { "spoof" },
                    a.split
                )
            })
    };
    let (live, spoof) = (first(true)?, first(false)?);
    let loader = Loader::new(dataset.clone(), LoaderConfig::eval(cfg.preprocess.clone()))?;
    let images = loader
        .load_batch(&[live, spoof], 0)?
        .to_tensors(device)
        .images;
    let grid = r.translation_grid(
        &images.narrow(0, 0, 1),
        &images.narrow(0, 1, 1),
        &cfg.preprocess.normalize,
    )?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.run.join("plots").join("translation.png"));
    let mut png = Vec::new();
    grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    fas_core::atomic::write_atomic(&out, &png)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} (rows: live {}, spoof {}; columns: input, reconstruction, swapped spoof \
         features, spoof map)",
        out.display(),
        dataset.samples()[live].path,
        dataset.samples()[spoof].path
    );
    Ok(())
}

pub fn evaluate(a: &EvalArgs) -> Result<()> {
    let device = device::resolve(a.device)?;
    let cfg_path = RunDir::new(&a.run).config();
    let cfg = load_run_config(&cfg_path)?;
    let model = DeployedModel::load(&a.run, device)?;
    let (dataset, manifest) = load_dataset(&a.manifest)?;
    let indices: Vec<usize> = match (a.protocol, &a.task) {
        (Some(p), Some(t)) => find_task(p, t, &manifest)?.apply(&manifest)?.test,
        (None, None) => {
            let split = match a.split.as_str() {
                "train" => Split::Train,
                "dev" => Split::Dev,
                "test" => Split::Test,
                o => bail!("--split {o}: use train, dev or test"),
            };
            (0..manifest.samples.len())
                .filter(|&i| manifest.samples[i].split == split)
                .collect()
        }
        _ => bail!("--protocol and --task go together"),
    };
    if indices.is_empty() {
        bail!(
            "{}: nothing to evaluate in the chosen split",
            a.manifest.display()
        );
    }
    let loader = Loader::new(
        dataset,
        LoaderConfig {
            workers: workers(a.workers),
            ..LoaderConfig::eval(cfg.preprocess.clone())
        },
    )?;
    let scores = score_indices(&loader, &indices, a.batch_size, device, &|x| model.score(x))?;
    let val_rows = read_scores(&RunDir::new(&a.run).val_scores())?;
    let val: Vec<Scored> = val_rows
        .iter()
        .map(|r| Scored {
            sample: &r.sample,
            score: r.score,
        })
        .collect();
    let test: Vec<Scored> = indices
        .iter()
        .zip(&scores)
        .map(|(&i, &score)| Scored {
            sample: &manifest.samples[i],
            score,
        })
        .collect();
    let report = eval::evaluate(&val, &test)?;
    let stem = a
        .manifest
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("manifest");
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.run.join(format!("eval-{stem}")));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    eval::write_plots(&out, stem, &test, &report)?;
    fas_core::atomic::write_atomic(
        &out.join("eval.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    println!("{}", report.table());
    println!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests;
