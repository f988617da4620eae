//! What every registered recipe must do, checked over [`registry::RECIPES`]: build from the
//! arguments at a tiny size, step, checkpoint into a fresh instance that continues exactly
//! like the uninterrupted one, export a deployable that scores like the recipe, and build
//! with each of its `--ablate` switches.

use std::collections::BTreeMap;

use anyhow::Result;
use fas_core::dataset::{Label, Manifest, Sample, Split};
use tch::{Device, Kind, Tensor};

use super::registry::{self, parse_train_args, Built, Entry, Setup};
use super::{Recipe, StepInfo, TrainBatch};
use crate::cli::{InputKind, TrainArgs};
use crate::data::loader::Dataset;
use crate::nn::IrModule;
use crate::train::optim::AdamConfig;
use crate::train::run::BatchSource;

/// Two domains × two subjects × (2 live + 2 spoof), all in the training split.
fn dataset() -> Dataset {
    let samples = (0..16)
        .map(|i| {
            let live = i % 4 < 2;
            Sample {
                v: 1,
                path: format!("{i}.png"),
                label: if live { Label::Live } else { Label::Spoof },
                attack: if live { "none" } else { "print" }.into(),
                domain: format!("d{}", i / 8),
                subject: format!("s{}", i / 4),
                device: "cam".into(),
                split: Split::Train,
                video: format!("v{i}"),
                frame: 0,
            }
        })
        .collect();
    Dataset::from_manifest(Manifest::new(samples), ".")
}

/// The whole dataset as one batch of random images (live ones brighter).
struct Toy {
    batch: TrainBatch,
}

impl Toy {
    fn new(data: &Dataset, channels: i64, size: i64, depth: Option<u32>) -> Toy {
        tch::manual_seed(7);
        let idx: Vec<usize> = (0..data.len()).collect();
        let col = |f: &dyn Fn(usize) -> i64| {
            Tensor::from_slice(&idx.iter().map(|&i| f(i)).collect::<Vec<_>>())
        };
        let labels = col(&|i| data.label(i));
        let lf = labels.to_kind(Kind::Float).view([-1, 1, 1, 1]);
        let n = idx.len() as i64;
        let images = Tensor::randn([n, channels, size, size], (Kind::Float, Device::Cpu)) + &lf;
        let depth = depth.map(|d| {
            Tensor::ones([n, 1, d as i64, d as i64], (Kind::Float, Device::Cpu)) * 0.7 * &lf
        });
        let batch = TrainBatch {
            images,
            labels,
            domains: col(&|i| data.domain_index(i) as i64),
            identities: col(&|i| data.identity_index(i) as i64),
            depth,
            indices: idx,
        };
        Toy { batch }
    }

    fn copy(&self) -> TrainBatch {
        let b = &self.batch;
        TrainBatch {
            images: b.images.shallow_clone(),
            labels: b.labels.shallow_clone(),
            domains: b.domains.shallow_clone(),
            identities: b.identities.shallow_clone(),
            depth: b.depth.as_ref().map(Tensor::shallow_clone),
            indices: b.indices.clone(),
        }
    }
}

impl BatchSource for Toy {
    fn batches_per_epoch(&self) -> usize {
        1
    }
    fn epoch(
        &self,
        _epoch: usize,
        _skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>> {
        Ok(Box::new(std::iter::once(Ok(self.copy()))))
    }
    fn survey(
        &self,
        _max: usize,
    ) -> Result<Option<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>>> {
        Ok(Some(Box::new(std::iter::once(Ok(self.copy())))))
    }
}

/// The recipe's arguments at a tiny size and width, plus `extra`.
fn args(entry: &Entry, extra: &[&str]) -> TrainArgs {
    let mut v = vec![
        "--recipe",
        entry.name,
        "--size",
        "32",
        "--width",
        "0.125",
        "--batch-size",
        "16",
        "--steps",
        "4",
        "--device",
        "cpu",
    ];
    v.extend_from_slice(extra);
    parse_train_args(&v)
}

/// Builds the recipe as `app::train` does (defaults unless the arguments say otherwise).
fn build(entry: &Entry, a: &TrainArgs, data: &Dataset) -> Result<(Built, i64)> {
    let d = (entry.defaults)();
    let input = a.input.unwrap_or(d.input);
    let in_channels = match input {
        InputKind::Rgb => 3,
        InputKind::RgbHsv => 6,
    };
    let train: Vec<usize> = (0..data.len()).collect();
    let setup = Setup {
        args: a,
        dataset: data,
        train: &train,
        in_channels,
        size: a.size.unwrap_or(d.size),
        depth_weight: a.depth_weight.unwrap_or(d.depth_weight),
        adam: AdamConfig::default(),
        device: Device::Cpu,
    };
    Ok(((entry.build)(&setup)?, in_channels as i64))
}

fn info(step: usize) -> StepInfo {
    StepInfo {
        step,
        epoch: 0,
        lr: 1e-3,
    }
}

/// One epoch start and `steps` steps from `from`; the loss terms of the last.
fn steps(r: &mut dyn Recipe, toy: &Toy, from: usize, n: usize) -> Vec<(String, f64)> {
    if from == 0 {
        r.start_epoch_with_data(0, toy).unwrap();
    }
    let mut last = Vec::new();
    for s in from..from + n {
        last = r.step(&toy.batch, &info(s)).unwrap();
    }
    last
}

fn snapshot(r: &dyn Recipe) -> BTreeMap<String, Tensor> {
    r.state()
        .into_iter()
        .map(|(k, t)| (k, t.detach().copy()))
        .collect()
}

/// The deployable's `p_live` on `images`, through a fresh IR module.
fn deployed_score(r: &dyn Recipe, images: &Tensor) -> Tensor {
    let d = r.deployable().unwrap();
    assert_eq!(d.graph.outputs.len(), 1, "one output, p_live");
    let mut m = IrModule::new(d.graph, Device::Cpu, 9).unwrap();
    let w: BTreeMap<String, Tensor> = d.weights.into_iter().collect();
    m.load_tensors(&w, true).unwrap();
    tch::no_grad(|| m.forward(&[images], false).unwrap().remove(0)).view([-1])
}

fn conforms(entry: &Entry) {
    let name = entry.name;
    let data = dataset();
    let a = args(entry, &[]);
    let (built, channels) = build(entry, &a, &data).unwrap();
    let toy = Toy::new(&data, channels, 32, built.depth_size);
    let mut first = built.recipe;
    steps(first.as_mut(), &toy, 0, 2);
    let saved = snapshot(first.as_ref());
    let mut resumed = build(entry, &a, &data).unwrap().0.recipe;
    resumed.load_state(&saved).unwrap();
    let want = steps(first.as_mut(), &toy, 2, 1);
    let got = steps(resumed.as_mut(), &toy, 2, 1);
    assert_eq!(want, got, "{name}: the resumed step's losses");
    let (sw, sg) = (snapshot(first.as_ref()), snapshot(resumed.as_ref()));
    assert_eq!(sw.keys().collect::<Vec<_>>(), sg.keys().collect::<Vec<_>>());
    for (k, t) in &sw {
        assert!(t.equal(&sg[k]), "{name}: \"{k}\" differs after resuming");
    }
    let score = first.score(&toy.batch.images).unwrap();
    let deployed = deployed_score(first.as_ref(), &toy.batch.images);
    let diff = (deployed - &score).abs().max().double_value(&[]);
    assert!(
        diff < 1e-4,
        "{name}: deployable p_live differs from score() by {diff}"
    );
    for x in entry.ablations {
        let v = clap::ValueEnum::to_possible_value(x).unwrap();
        // ANRL's bn and in exclude each other; every switch alone must build.
        let a = args(entry, &["--ablate", v.get_name()]);
        build(entry, &a, &data)
            .unwrap_or_else(|e| panic!("{name} --ablate {}: {e:#}", v.get_name()));
    }
}

/// Every registered recipe resumes exactly, exports what it scores with, and builds with
/// each of its ablation switches.
#[test]
fn every_registered_recipe_conforms() {
    for entry in registry::RECIPES {
        conforms(entry);
    }
}
