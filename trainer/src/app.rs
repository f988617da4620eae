//! The `fas-train` subcommands (the binary only parses arguments and calls these).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use fas_core::dataset::{Manifest, Sample, Split};
use fas_core::ir::backbones::BackboneKind;
use fas_core::preprocess::{ColorSpace, CropSpec, Normalize, PreprocessSpec};
use serde::{Deserialize, Serialize};

use crate::cli::{
    DlifAblation, EvalArgs, ImportArgs, InputKind, LossName, OptimizerName, PrepareArgs,
    RecipeName, ScheduleName, StyleFlow, StyleLevel, TasksArgs, TrainArgs, TranslateArgs,
};
use crate::data::augment::AugmentConfig;
use crate::data::loader::{Dataset, Loader, LoaderConfig};
use crate::data::protocol::{Protocol, Task};
use crate::data::sampler::{
    BatchSampler, ClassBalanced, ClassBalancedConfig, DomainLabels, EpochLength, IdentityConfig,
    IdentitySampler, PerDomain, PerDomainConfig,
};
use crate::device;
use crate::eval::{self, EvalReport, Scored};
use crate::prepare::PrepareConfig;
use crate::recipe::anrl::{Anrl, AnrlConfig, AnrlNorm};
use crate::recipe::baseline::{Baseline, BaselineConfig, ClsLoss};
use crate::recipe::d2am::{D2am, D2amConfig, DomainSource};
use crate::recipe::dlif::{Dlif, DlifConfig, Flow, Level};
use crate::recipe::dualstage::{DualStage, DualStageConfig, DEFAULT_STAGE1_FRACTION};
use crate::recipe::losses::AmSoftmax;
use crate::recipe::Recipe;
use crate::train::data::{
    read_scores, score_indices, write_parity, write_scores, DeployedModel, SampledSource,
    SplitValidator, PARITY_FILE,
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
    /// The recipe's model configuration ([`BaselineConfig`], [`AnrlConfig`], [`D2amConfig`]).
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

    let (input, size, depth_weight) = match a.recipe {
        RecipeName::Baseline => (InputKind::Rgb, 224, 0.0),
        RecipeName::Anrl | RecipeName::D2am => (InputKind::RgbHsv, 256, 1.0),
        RecipeName::Dlif => (InputKind::Rgb, 224, 0.0),
        RecipeName::Dualstage => (InputKind::Rgb, 256, 0.0),
    };
    let dlif = a.recipe == RecipeName::Dlif;
    let dualstage = a.recipe == RecipeName::Dualstage;
    if !dlif && (!a.style_cross_levels.is_empty() || a.style_cross_flow.is_some()) {
        bail!("--style-cross-* are DLIF settings; use them with --recipe dlif");
    }
    if let Some(x) = a.ablate.iter().find(|x| x.recipe() != a.recipe) {
        let name = clap::ValueEnum::to_possible_value(x)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let owner = clap::ValueEnum::to_possible_value(&x.recipe())
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        bail!("--ablate {name} is a --recipe {owner} setting; drop it or use --recipe {owner}");
    }
    if a.recipe != RecipeName::D2am && a.clusters.is_some() {
        bail!(
            "--clusters is a --recipe d2am setting (its number of pseudo-domains); drop it or \
             use --recipe d2am"
        );
    }
    if a.first_order && !matches!(a.recipe, RecipeName::Anrl | RecipeName::D2am) {
        bail!("--first-order is a meta-learning setting; use it with --recipe anrl or d2am");
    }
    if a.ablate.contains(&DlifAblation::Bn) && a.ablate.contains(&DlifAblation::In) {
        bail!("--ablate bn and in both replace ANRL's AFNM; give one of them");
    }
    if !dualstage && a.stage1_fraction.is_some() {
        bail!("--stage1-fraction is a dual-stage setting; use it with --recipe dualstage");
    }
    let input = a.input.unwrap_or(input);
    let size = a.size.unwrap_or(size);
    let depth_weight = a.depth_weight.unwrap_or(depth_weight);
    let in_channels = match input {
        InputKind::Rgb => 3,
        InputKind::RgbHsv => 6,
    };
    let adam = AdamConfig {
        weight_decay: a.weight_decay,
        decoupled: a.optimizer.unwrap_or(if dlif || dualstage {
            OptimizerName::Adam
        } else {
            OptimizerName::Adamw
        }) == OptimizerName::Adamw,
        ..AdamConfig::default()
    };
    let spec = preprocess_spec(input, size, manifest_crop(&a.manifest)?);
    let (mut recipe, model, depth_size): (Box<dyn Recipe>, serde_json::Value, Option<u32>) =
        match a.recipe {
            RecipeName::Baseline => {
                let backbone: BackboneKind = a
                    .backbone
                    .as_deref()
                    .unwrap_or("resnet18")
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let model = BaselineConfig {
                    backbone,
                    in_channels,
                    input_size: size as usize,
                    width: a.width,
                    loss: match a.loss.unwrap_or(LossName::Bce) {
                        LossName::Bce => ClsLoss::Bce,
                        LossName::AmSoftmax => ClsLoss::AmSoftmax(AmSoftmax::default()),
                    },
                    depth_weight,
                    adam,
                    grad_clip: a.clip,
                    amp: !a.no_amp,
                };
                let mut r = Baseline::new(model.clone(), device, a.seed)?;
                if let Some(w) = &a.init_weights {
                    r.load_backbone_weights(w)?;
                }
                let depth_size = if depth_weight > 0.0 {
                    let g = r.network().graph();
                    let shapes = g.infer_shapes()?;
                    let d = g.outputs.get(1).context("depth output")?;
                    Some(shapes[d][2] as u32)
                } else {
                    None
                };
                (Box::new(r), serde_json::to_value(&model)?, depth_size)
            }
            RecipeName::Anrl => {
                if let Some(b) = a.backbone.as_deref() {
                    if b.parse::<BackboneKind>().ok() != Some(BackboneKind::DepthNet) {
                        bail!("--recipe anrl uses the DepthNet backbone; drop --backbone {b}");
                    }
                }
                if a.loss.is_some_and(|l| l != LossName::Bce) {
                    bail!("--recipe anrl trains its classifier with bce; drop --loss");
                }
                // The AFNM gate reduction must fit DepthNet's narrowest layer at this width.
                let narrowest = ((64.0 * a.width).round() as usize).max(1);
                let model = AnrlConfig {
                    in_channels,
                    input_size: size as usize,
                    width: a.width,
                    afnm_reduction: AnrlConfig::default().afnm_reduction.min(narrowest),
                    depth_weight,
                    second_order: !a.first_order,
                    norm: if a.ablate.contains(&DlifAblation::Bn) {
                        AnrlNorm::Batch
                    } else if a.ablate.contains(&DlifAblation::In) {
                        AnrlNorm::Instance
                    } else {
                        AnrlNorm::Afnm
                    },
                    no_meta: a.ablate.contains(&DlifAblation::NoMeta),
                    no_idc: a.ablate.contains(&DlifAblation::NoIdc),
                    no_ics: a.ablate.contains(&DlifAblation::NoIcs),
                    adam,
                    grad_clip: a.clip,
                    ..AnrlConfig::default()
                };
                let domains = dataset.domain_names().len();
                let mut r = Anrl::new(model.clone(), domains, device, a.seed)?;
                if let Some(w) = &a.init_weights {
                    r.load_backbone_weights(w)?;
                }
                let depth_size = (depth_weight > 0.0).then(|| r.depth_size()).transpose()?;
                (Box::new(r), serde_json::to_value(&model)?, depth_size)
            }
            RecipeName::D2am => {
                if let Some(b) = a.backbone.as_deref() {
                    if b.parse::<BackboneKind>().ok() != Some(BackboneKind::DepthNet) {
                        bail!("--recipe d2am uses the DepthNet backbone; drop --backbone {b}");
                    }
                }
                if a.loss.is_some_and(|l| l != LossName::Bce) {
                    bail!("--recipe d2am trains its classifier with bce; drop --loss");
                }
                let model = d2am_config(a, in_channels, size, depth_weight, adam)?;
                let mut r = D2am::new(model.clone(), device, a.seed)?;
                if let Some(w) = &a.init_weights {
                    r.load_backbone_weights(w)?;
                }
                let depth_size = (depth_weight > 0.0).then(|| r.depth_size()).transpose()?;
                (Box::new(r), serde_json::to_value(&model)?, depth_size)
            }
            RecipeName::Dlif => {
                if let Some(b) = a.backbone.as_deref() {
                    if b.parse::<BackboneKind>().ok() != Some(BackboneKind::Resnet18) {
                        bail!("--recipe dlif uses ResNet-18 encoders; drop --backbone {b}");
                    }
                }
                if a.loss == Some(LossName::Bce) {
                    bail!(
                    "--recipe dlif trains its classifier with asymmetric AM-softmax; drop --loss"
                );
                }
                if depth_weight > 0.0 {
                    bail!("--recipe dlif has no depth head; drop --depth-weight");
                }
                let d = DlifConfig::default();
                // k identities per source domain × (n live + n spoof), as close to
                // --batch-size as that allows (at least one identity per domain).
                let sources: std::collections::BTreeSet<&str> = split
                    .train
                    .iter()
                    .map(|&i| dataset.samples()[i].domain.as_str())
                    .collect();
                let per_domain = sources.len().max(1) * 2 * d.samples_per_class;
                let mut style_cross = d.style_cross.clone();
                if !a.style_cross_levels.is_empty() {
                    style_cross.levels = a
                        .style_cross_levels
                        .iter()
                        .map(|l| match l {
                            StyleLevel::Low => Level::Low,
                            StyleLevel::Mid => Level::Mid,
                            StyleLevel::High => Level::High,
                        })
                        .collect();
                }
                if let Some(f) = a.style_cross_flow {
                    style_cross.flow = match f {
                        StyleFlow::Cascade => Flow::Cascade,
                        StyleFlow::Parallel => Flow::Parallel,
                    };
                }
                let model = DlifConfig {
                    in_channels,
                    input_size: size as usize,
                    width: a.width,
                    style_cross,
                    no_style_cross: a.ablate.contains(&DlifAblation::NoStyleCross),
                    no_cwsa: a.ablate.contains(&DlifAblation::NoCwsa),
                    no_v: a.ablate.contains(&DlifAblation::NoV),
                    identities_per_domain: (a.batch_size / per_domain).max(1),
                    adam,
                    grad_clip: a.clip,
                    ..d
                };
                let identities: std::collections::BTreeSet<usize> = split
                    .train
                    .iter()
                    .map(|&i| dataset.identity_index(i))
                    .collect();
                let identities: Vec<usize> = identities.into_iter().collect();
                let mut r = Dlif::new(model.clone(), &identities, device, a.seed)?;
                if let Some(w) = &a.init_weights {
                    r.load_backbone_weights(w)?;
                }
                (Box::new(r), serde_json::to_value(&model)?, None)
            }
            RecipeName::Dualstage => {
                let model = dualstage_config(
                    a,
                    &dataset,
                    &split.train,
                    in_channels,
                    size,
                    depth_weight,
                    adam,
                )?;
                let r = DualStage::new(model.clone(), device, a.seed)?;
                (Box::new(r), serde_json::to_value(&model)?, None)
            }
        };

    let augment = match a.augment.as_str() {
        "default" => AugmentConfig::default(),
        "none" => AugmentConfig::none(),
        other => bail!("--augment {other}: use default or none"),
    };
    let nworkers = workers(a.workers);
    let loader_cfg = LoaderConfig {
        batch_size: a.batch_size,
        workers: nworkers,
        queue_depth: 2 * nworkers,
        augment,
        spec: spec.clone(),
        depth_size,
        seed: a.seed,
        drop_last: true,
        shuffle: true,
    };
    let loader = Loader::new(dataset.clone(), loader_cfg.clone())?;
    let sampler: Box<dyn BatchSampler> = match recipe.sampling() {
        crate::recipe::Sampling::PerDomain => {
            let sources: std::collections::BTreeSet<&str> = split
                .train
                .iter()
                .map(|&i| dataset.samples()[i].domain.as_str())
                .collect();
            // Half live, half spoof per domain, as close to --batch-size as that allows.
            let per_domain = (a.batch_size / sources.len().max(1) / 2 * 2).max(2);
            Box::new(PerDomain::new(
                dataset.samples(),
                &split.train,
                DomainLabels::Manifest,
                PerDomainConfig {
                    per_domain,
                    class_balanced: true,
                    length: EpochLength::Largest,
                    seed: a.seed,
                },
            )?)
        }
        crate::recipe::Sampling::Identity {
            identities,
            per_class,
        } => Box::new(
            IdentitySampler::new(
                dataset.samples(),
                &split.train,
                IdentityConfig {
                    identities_per_domain: identities,
                    samples_per_class: per_class,
                    length: EpochLength::Largest,
                    seed: a.seed,
                },
            )
            .with_context(|| {
                format!(
                "--recipe dlif draws {identities} identities per source domain × ({per_class} live \
                 + {per_class} spoof) per batch, from --batch-size {} — lower --batch-size",
                a.batch_size
            )
            })?,
        ),
        crate::recipe::Sampling::ClassBalanced => Box::new(ClassBalanced::new(
            dataset.samples(),
            &split.train,
            ClassBalancedConfig {
                batch_size: a.batch_size,
                length: EpochLength::Largest,
                seed: a.seed,
            },
        )?),
    };
    let sampler_desc = sampler.describe();
    let source = SampledSource::new(loader, sampler, device).with_pool(split.train.clone());
    let bpe = run::BatchSource::batches_per_epoch(&source);
    let total = a.steps.unwrap_or(a.epochs * bpe).max(1);
    let steps = a.max_steps.map_or(total, |m| m.min(total));
    // DLIF's defaults are the paper's: lr 5e-4, halved every 50 epochs.
    let paper = DlifConfig::default();
    let lr = a.lr.unwrap_or(match a.recipe {
        RecipeName::Dlif => paper.lr,
        RecipeName::Dualstage => DualStageConfig::default().lr,
        RecipeName::D2am => crate::recipe::d2am::DEFAULT_LR,
        _ => 1e-3,
    });
    let schedule = a.schedule.unwrap_or(if dlif {
        ScheduleName::Step
    } else if dualstage {
        ScheduleName::Constant
    } else {
        ScheduleName::Cosine
    });
    let step_every = a.step_every.unwrap_or(if dlif {
        paper.lr_halve_every_epochs * bpe
    } else {
        1000
    });
    let schedule = match schedule {
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
    let loop_cfg = LoopConfig {
        steps,
        lr,
        schedule,
        val_every: a.val_every,
        checkpoint_every: a.checkpoint_every,
        log_every: a.log_every,
        seed: a.seed,
        progress: !a.quiet,
    };

    let dir = RunDir::create(&a.out)?;
    if !a.resume && dir.checkpoint().exists() {
        bail!(
            "{} already holds a run — continue it with --resume, or choose another --out",
            a.out.display()
        );
    }
    let config = RunConfig {
        fas_version: env!("CARGO_PKG_VERSION").into(),
        recipe: recipe.name().into(),
        manifest: a.manifest.clone(),
        protocol: a.protocol,
        task: task.clone(),
        preprocess: spec.clone(),
        model,
        training: loop_cfg.clone(),
        loader: loader_cfg.clone(),
        batch_size: a.batch_size,
        sampler: sampler_desc,
        device: format!("{device:?}"),
        seed: a.seed,
        init_weights: a.init_weights.clone(),
        torch_threads: usize::try_from(tch::get_num_threads()).ok(),
    };
    if a.resume {
        check_same_run(&dir, &config)?;
    } else {
        fas_core::atomic::write_atomic(
            &dir.config(),
            serde_json::to_string_pretty(&config)?.as_bytes(),
        )
        .with_context(|| format!("writing {}", dir.config().display()))?;
    }
    eprintln!(
        "task {} ({}): train {} / source-val {} / test {} samples; {} steps ({} per epoch) on {:?}",
        task.name,
        a.protocol.as_str(),
        split.train.len(),
        split.val.len(),
        split.test.len(),
        steps,
        bpe,
        device
    );

    let eval_loader = Loader::new(
        dataset.clone(),
        LoaderConfig {
            depth_size: None,
            ..LoaderConfig::eval(spec.clone())
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

    // Evaluate the exported best model (exactly what quantize/edge get) on the test split.
    let best = DeployedModel::load(&dir.root, device)?;
    let score = |idx: &[usize]| {
        score_indices(&eval_loader, idx, a.batch_size.max(32), device, &|x| {
            best.score(x)
        })
    };
    let val_scores = score(&split.val)?;
    let test_scores = score(&split.test)?;
    let samples = dataset.samples();
    write_parity(
        &dir.root.join(PARITY_FILE),
        &eval_loader,
        samples,
        &split.val,
        4,
        device,
        &best,
    )?;
    let val_samples: Vec<&Sample> = split.val.iter().map(|&i| &samples[i]).collect();
    write_scores(
        &dir.root.join("val_scores.jsonl"),
        &val_samples,
        &val_scores,
    )?;
    let test_samples: Vec<&Sample> = split.test.iter().map(|&i| &samples[i]).collect();
    write_scores(
        &dir.root.join("test_scores.jsonl"),
        &test_samples,
        &test_scores,
    )?;
    let val: Vec<Scored> = val_samples
        .iter()
        .zip(&val_scores)
        .map(|(s, &score)| Scored { sample: s, score })
        .collect();
    let test: Vec<Scored> = test_samples
        .iter()
        .zip(&test_scores)
        .map(|(s, &score)| Scored { sample: s, score })
        .collect();
    let report = eval::evaluate(&val, &test)?;
    eval::write_plots(&dir.plots(), &task.name, &test, &report)?;
    // The curves are a view of the log; failing to draw them must not cost the run its
    // metrics.
    if let Err(e) = crate::train::curves::write_curves(&dir.log(), &dir.plots(), &task.name) {
        eprintln!("warning: no training curves: {e:#}");
    }
    let metrics = RunMetrics {
        protocol: a.protocol,
        task: task.name.clone(),
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

/// The `--recipe dualstage` model configuration from the arguments: refuses what does not
/// apply and turns `--stage1-fraction` into a step count (the same total the loop uses: the
/// class-balanced sampler's epoch length × `--epochs`, or `--steps`).
fn dualstage_config(
    a: &TrainArgs,
    dataset: &Dataset,
    train: &[usize],
    in_channels: usize,
    size: u32,
    depth_weight: f64,
    adam: AdamConfig,
) -> Result<DualStageConfig> {
    if let Some(b) = a.backbone.as_deref() {
        bail!(
            "--recipe dualstage uses its own conv encoders/decoders (--width scales \
             them); drop --backbone {b}"
        );
    }
    if a.loss.is_some() {
        bail!(
            "--recipe dualstage scores with its spoof map (no classifier loss to \
             choose); drop --loss"
        );
    }
    if depth_weight > 0.0 {
        bail!("--recipe dualstage has no depth head; drop --depth-weight");
    }
    if a.init_weights.is_some() {
        bail!("--recipe dualstage has no pretrained backbone to load; drop --init-weights");
    }
    let fraction = a.stage1_fraction.unwrap_or(DEFAULT_STAGE1_FRACTION);
    if !(0.0..1.0).contains(&fraction) {
        bail!("--stage1-fraction {fraction}: must be in [0, 1) (default 0.3)");
    }
    let bpe = ClassBalanced::new(
        dataset.samples(),
        train,
        ClassBalancedConfig {
            batch_size: a.batch_size,
            length: EpochLength::Largest,
            seed: a.seed,
        },
    )?
    .epoch(0)
    .len();
    let total = a.steps.unwrap_or(a.epochs * bpe).max(1);
    let d = DualStageConfig::default();
    let model = DualStageConfig {
        in_channels,
        input_size: size as usize,
        channels: ((d.channels as f32 * a.width).round() as usize).max(1),
        stage1_steps: (fraction * total as f64).round() as usize,
        single_stage: a.ablate.contains(&DlifAblation::SingleStage),
        no_triplet: a.ablate.contains(&DlifAblation::NoTriplet),
        no_aux: a.ablate.contains(&DlifAblation::NoAux),
        adam,
        grad_clip: a.clip,
        ..d
    };
    Ok(model)
}

/// The `--recipe d2am` model configuration from the arguments: the ablation switches
/// (`--ablate true-domains|random-domains|no-selection|no-entropy|no-mmd`) and
/// `--clusters`, refusing combinations that contradict each other.
fn d2am_config(
    a: &TrainArgs,
    in_channels: usize,
    size: u32,
    depth_weight: f64,
    adam: AdamConfig,
) -> Result<D2amConfig> {
    let has = |x| a.ablate.contains(&x);
    let domains = match (
        has(DlifAblation::TrueDomains),
        has(DlifAblation::RandomDomains),
    ) {
        (true, true) => bail!(
            "--ablate true-domains and random-domains both replace the clustering; choose one"
        ),
        (true, false) => DomainSource::True,
        (false, true) => DomainSource::Random,
        (false, false) => DomainSource::Clusters,
    };
    if has(DlifAblation::NoSelection) && domains != DomainSource::Clusters {
        bail!(
            "--ablate no-selection changes which features are clustered; with true-domains or \
             random-domains nothing is clustered — drop one of them"
        );
    }
    let d = D2amConfig::default();
    let clusters = match a.clusters {
        None => d.clusters,
        Some(_) if domains == DomainSource::True => bail!(
            "--clusters sets the number of pseudo-domains; with --ablate true-domains the \
             manifest's source domains are the domains — drop --clusters"
        ),
        Some(k) if (2..=8).contains(&k) => k,
        Some(k) => bail!(
            "--clusters {k}: must be 2 to 8 (one meta-test and at least one meta-train \
             pseudo-domain; the paper uses 3)"
        ),
    };
    Ok(D2amConfig {
        in_channels,
        input_size: size as usize,
        width: a.width,
        depth_weight,
        clusters,
        domains,
        no_selection: has(DlifAblation::NoSelection),
        no_entropy: has(DlifAblation::NoEntropy),
        no_mmd: has(DlifAblation::NoMmd),
        second_order: !a.first_order,
        adam,
        grad_clip: a.clip,
        ..d
    })
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
    let model = |m: &serde_json::Value| -> Result<serde_json::Value> {
        Ok(match before.recipe.as_str() {
            "anrl" => serde_json::to_value(serde_json::from_value::<AnrlConfig>(m.clone())?)?,
            _ => m.clone(),
        })
    };
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
    let cfg_path = a.run.join("run.json");
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
    let cfg_path = a.run.join("run.json");
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
    let val_rows = read_scores(&a.run.join("val_scores.jsonl"))?;
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
