//! The training data loader: dataset manifest → batches of preprocessed tensors.
//!
//! [`Dataset`] reads a `manifest.jsonl` (ARCHITECTURE.md contract 5); [`Loader`] turns an
//! epoch's index batches (from a sampler, or [`Dataset::epoch_batches`]) into [`Batch`]es
//! on `workers` threads, in the order given. Per sample: decode the face crop (PNG/JPEG)
//! → optional seeded augmentation ([`super::augment`]) → fas-core's `resize_bilinear` to
//! the spec's size → fas-core's `normalize_into` (contract 1: the trainer never converts
//! colour or normalises by itself). Without augmentation a sample's tensor is therefore
//! bit-identical to what the calibrator and the edge compute from the same crop.
//!
//! # Determinism
//! The augmentation of a sample depends only on `(config.seed, epoch, sample index)`
//! ([`sample_seed`]), never on which worker ran it or when, so any worker count gives
//! bit-identical batches. (A sample that appears twice in one epoch is augmented the
//! same way both times.)
//!
//! # Back-pressure and errors
//! At most `queue_depth` batches are prepared ahead of the consumer (in work or ready);
//! the loader pulls the next index batch only when one is consumed, so a slow training
//! step never makes it decode the dataset ahead. File paths are checked lazily, when a
//! sample is loaded ([`Dataset::check_files`] checks them all up front). The first error
//! (missing or undecodable file, bad index, a worker panic) is yielded in its batch's
//! place, after every batch before it, and ends the epoch: the iterator then returns
//! `None`, the workers stop and are joined when the [`Epoch`] is dropped.

use super::augment::{AugmentConfig, AugmentError};
use fas_core::dataset::{Label, Manifest, ManifestError, Query, Sample};
use fas_core::preprocess::{
    normalize_into, resize_bilinear, PreprocessError, PreprocessSpec, RgbImage, SpecError,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tch::{Device, Tensor};

/// Why a dataset or a batch could not be loaded. Every message names the file (or the
/// config field) and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: cannot read the {what} of sample {index} — check that the file exists and is readable (re-run `fas-train prepare`, or fix the manifest's path)")]
    Read {
        path: PathBuf,
        what: &'static str,
        index: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot decode the {what} of sample {index}: {msg} — the file is corrupt or not PNG/JPEG; delete it and re-run `fas-train prepare`")]
    Decode {
        path: PathBuf,
        what: &'static str,
        index: usize,
        msg: String,
    },
    #[error("{manifest}: {count} of {total} files are missing, first: {} — re-run `fas-train prepare`, or fix the paths (relative to the manifest's folder)", first_paths(.missing))]
    MissingFiles {
        manifest: PathBuf,
        count: usize,
        total: usize,
        /// The first few missing paths.
        missing: Vec<PathBuf>,
    },
    #[error("batch {batch}: sample index {index} is out of range, the dataset has {len} samples — build the sampler from this dataset's manifest")]
    Index {
        batch: usize,
        index: usize,
        len: usize,
    },
    #[error(
        "batch {batch} has no sample indices — a sampler must yield at least one index per batch"
    )]
    EmptyBatch { batch: usize },
    #[error("loader.{field} is {value}: {fix}")]
    Config {
        field: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error("loader.{0}")]
    Augment(AugmentError),
    #[error("loader.{0}")]
    Spec(SpecError),
    #[error("{path}: sample {index} cannot be preprocessed")]
    Preprocess {
        path: PathBuf,
        index: usize,
        #[source]
        source: PreprocessError,
    },
    #[error("a loader worker panicked on batch {batch}: {message} — a bug in fas-train; report it with the manifest line of that batch's samples")]
    WorkerPanic { batch: usize, message: String },
    #[error("the loader's worker threads are gone while batch {batch} was pending — a bug in fas-train; report it")]
    WorkersGone { batch: usize },
    #[error("cannot start a loader worker thread: {0} — lower loader.workers")]
    Spawn(std::io::Error),
}

// The inner error is this one's own text (a field path and its fix), not a cause: it is
// part of the message and not a `source()`, so a printed chain says it once.
impl From<AugmentError> for LoadError {
    fn from(e: AugmentError) -> Self {
        LoadError::Augment(e)
    }
}

impl From<SpecError> for LoadError {
    fn from(e: SpecError) -> Self {
        LoadError::Spec(e)
    }
}

fn first_paths(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

/// A dataset manifest with its samples' files resolved and domains indexed.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The manifest file (or the folder, for [`Dataset::from_manifest`]): labels errors.
    source: PathBuf,
    root: PathBuf,
    samples: Vec<Sample>,
    domain_names: Vec<String>,
    domain_of: Vec<usize>,
    /// Distinct `(domain, subject)` pairs, sorted: the identities (DLIF's domains).
    identity_names: Vec<(String, String)>,
    identity_of: Vec<usize>,
}

/// How many missing paths [`Dataset::check_files`] lists.
const LIST_MISSING: usize = 5;

impl Dataset {
    /// Reads and validates `manifest.jsonl`; sample paths are relative to its folder.
    /// Files are not opened here (see [`Self::check_files`]).
    pub fn load(manifest_path: impl AsRef<Path>) -> Result<Dataset, LoadError> {
        let path = manifest_path.as_ref();
        let manifest = Manifest::load(path)?;
        let root = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut d = Dataset::from_manifest(manifest, root);
        d.source = path.to_path_buf();
        Ok(d)
    }

    /// A dataset from an in-memory manifest whose relative paths start at `root`.
    pub fn from_manifest(manifest: Manifest, root: impl Into<PathBuf>) -> Dataset {
        let root = root.into();
        let domain_names: Vec<String> = manifest.domains().into_iter().map(String::from).collect();
        let domain_of = manifest
            .samples
            .iter()
            .map(|s| {
                domain_names
                    .binary_search(&s.domain)
                    .expect("every sample's domain is listed")
            })
            .collect();
        // Subject ids are only unique within a dataset: an identity is (domain, subject).
        let key = |s: &Sample| (s.domain.clone(), s.subject.clone());
        let identity_names: Vec<(String, String)> = manifest
            .samples
            .iter()
            .map(key)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let identity_of = manifest
            .samples
            .iter()
            .map(|s| {
                identity_names
                    .binary_search(&key(s))
                    .expect("every sample's identity is listed")
            })
            .collect();
        Dataset {
            source: root.clone(),
            root,
            samples: manifest.samples,
            domain_names,
            domain_of,
            identity_names,
            identity_of,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Panics if `index >= len()`.
    pub fn sample(&self, index: usize) -> &Sample {
        &self.samples[index]
    }

    /// Distinct domain names, sorted; a sample's domain index points into this list.
    pub fn domain_names(&self) -> &[String] {
        &self.domain_names
    }

    /// Index of sample `index`'s domain in [`Self::domain_names`].
    pub fn domain_index(&self, index: usize) -> usize {
        self.domain_of[index]
    }

    /// Distinct `(domain, subject)` pairs, sorted; a sample's identity index points into
    /// this list.
    pub fn identity_names(&self) -> &[(String, String)] {
        &self.identity_names
    }

    /// Index of sample `index`'s identity in [`Self::identity_names`].
    pub fn identity_index(&self, index: usize) -> usize {
        self.identity_of[index]
    }

    /// 1 for live (bona fide), 0 for spoof.
    pub fn label(&self, index: usize) -> i64 {
        match self.samples[index].label {
            Label::Live => 1,
            Label::Spoof => 0,
        }
    }

    /// The face crop of sample `index` (absolute manifest paths are kept as they are).
    pub fn image_path(&self, index: usize) -> PathBuf {
        self.root.join(&self.samples[index].path)
    }

    /// The depth map of sample `index`: `<image stem>_depth.png` beside the image.
    pub fn depth_path(&self, index: usize) -> PathBuf {
        fas_core::synthfas::depth_path(&self.image_path(index))
    }

    /// Indices of the samples a query selects, in manifest order.
    pub fn indices(&self, query: &Query) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| query.matches(&self.samples[i]))
            .collect()
    }

    /// Checks that every image exists (and, with `depth`, every live sample's depth
    /// map); the error counts the missing files and lists the first few.
    pub fn check_files(&self, depth: bool) -> Result<(), LoadError> {
        let mut missing = Vec::new();
        let mut count = 0;
        let mut total = 0;
        for i in 0..self.len() {
            let mut paths = vec![self.image_path(i)];
            if depth && self.samples[i].label == Label::Live {
                paths.push(self.depth_path(i));
            }
            for p in paths {
                total += 1;
                if !p.is_file() {
                    count += 1;
                    if missing.len() < LIST_MISSING {
                        missing.push(p);
                    }
                }
            }
        }
        if count == 0 {
            return Ok(());
        }
        Err(LoadError::MissingFiles {
            manifest: self.source.clone(),
            count,
            total,
            missing,
        })
    }

    /// Splits `indices` into batches of `batch_size` (0 counts as 1) in the given order,
    /// or shuffled by a permutation that depends only on `(seed, epoch)`. The last batch
    /// may be short.
    pub fn epoch_batches(
        indices: &[usize],
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        epoch: u64,
    ) -> Vec<Vec<usize>> {
        let mut order = indices.to_vec();
        if shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(seed) ^ epoch));
            rng.set_stream(SHUFFLE_STREAM);
            order.shuffle(&mut rng);
        }
        order
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }
}

const SHUFFLE_STREAM: u64 = 0x5348_5546;

/// SplitMix64's output function of `x + golden gamma`: a bijective 64-bit mixer.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The augmentation seed of one sample in one epoch.
pub fn sample_seed(seed: u64, epoch: u64, index: usize) -> u64 {
    mix(mix(mix(seed) ^ epoch) ^ index as u64)
}

/// How batches are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Samples per batch for [`Loader::epoch`] (sampler batches bring their own size).
    pub batch_size: usize,
    /// Decoding threads (at least 1).
    pub workers: usize,
    /// Batches prepared ahead of the consumer, at most (at least 1; `>= workers` keeps
    /// every worker busy).
    pub queue_depth: usize,
    /// [`AugmentConfig::none`] for evaluation.
    #[serde(default = "AugmentConfig::none")]
    pub augment: AugmentConfig,
    /// The model's input: size, colour groups and normalisation.
    pub spec: PreprocessSpec,
    /// Side of the square depth target (e.g. 32); `None` loads no depth.
    #[serde(default)]
    pub depth_size: Option<u32>,
    /// Seeds augmentation and [`Loader::epoch`]'s shuffling.
    #[serde(default)]
    pub seed: u64,
    /// [`Loader::epoch`]: drop a last batch smaller than `batch_size`.
    #[serde(default)]
    pub drop_last: bool,
    /// [`Loader::epoch`]: shuffle the indices each epoch.
    #[serde(default)]
    pub shuffle: bool,
}

/// Largest supported depth target side.
pub const MAX_DEPTH_SIZE: u32 = 1024;

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

impl LoaderConfig {
    /// Training: batches of 32, shuffled, last short batch dropped, default augmentation.
    pub fn train(spec: PreprocessSpec) -> Self {
        let workers = default_workers();
        Self {
            batch_size: 32,
            workers,
            queue_depth: 2 * workers,
            augment: AugmentConfig::default(),
            spec,
            depth_size: None,
            seed: 0,
            drop_last: true,
            shuffle: true,
        }
    }

    /// Evaluation: no augmentation, manifest order, every sample kept.
    pub fn eval(spec: PreprocessSpec) -> Self {
        Self {
            augment: AugmentConfig::none(),
            drop_last: false,
            shuffle: false,
            ..Self::train(spec)
        }
    }

    /// Checks every field; the error names it and the fix.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |field, value: String, fix| Err(LoadError::Config { field, value, fix });
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "use at least 1 sample per batch");
        }
        if self.workers == 0 {
            return bad("workers", "0".into(), "use at least 1 decoding thread");
        }
        if self.queue_depth == 0 {
            return bad(
                "queue_depth",
                "0".into(),
                "prepare at least 1 batch ahead (>= workers keeps all workers busy)",
            );
        }
        if let Some(d) = self.depth_size {
            if d == 0 || d > MAX_DEPTH_SIZE {
                return bad(
                    "depth_size",
                    d.to_string(),
                    "give the depth target side in 1..=1024 (e.g. 32), or null for no depth",
                );
            }
        }
        self.spec.validate()?;
        self.augment.validate()?;
        Ok(())
    }
}

/// One batch, host-side. Rows are in the order of `indices`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Dataset indices of the rows.
    pub indices: Vec<usize>,
    /// `shape` = N×C×H×W floats, as fas-core's `normalize_into` writes them.
    pub images: Vec<f32>,
    /// 1 = live, 0 = spoof.
    pub labels: Vec<i64>,
    /// Index into [`Dataset::domain_names`].
    pub domains: Vec<usize>,
    /// Index into [`Dataset::identity_names`].
    pub identities: Vec<usize>,
    /// `depth_shape` = N×1×d×d in [0, 1]; all zeros for spoof rows.
    pub depth: Option<Vec<f32>>,
    pub shape: [usize; 4],
    pub depth_shape: Option<[usize; 4]>,
}

/// A batch on a device.
#[derive(Debug)]
pub struct BatchTensors {
    /// f32 `[N, C, H, W]`.
    pub images: Tensor,
    /// i64 `[N]`, 1 = live.
    pub labels: Tensor,
    /// i64 `[N]`, domain indices.
    pub domains: Tensor,
    /// i64 `[N]`, identity indices ([`Dataset::identity_names`]).
    pub identities: Tensor,
    /// f32 `[N, 1, d, d]`.
    pub depth: Option<Tensor>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Copies the batch into tensors on `device`.
    pub fn to_tensors(&self, device: Device) -> BatchTensors {
        let dims = |s: [usize; 4]| s.map(|v| v as i64);
        let domains: Vec<i64> = self.domains.iter().map(|&d| d as i64).collect();
        let identities: Vec<i64> = self.identities.iter().map(|&d| d as i64).collect();
        BatchTensors {
            images: Tensor::from_slice(&self.images)
                .view(dims(self.shape))
                .to_device(device),
            labels: Tensor::from_slice(&self.labels).to_device(device),
            domains: Tensor::from_slice(&domains).to_device(device),
            identities: Tensor::from_slice(&identities).to_device(device),
            depth: self
                .depth
                .as_ref()
                .zip(self.depth_shape)
                .map(|(d, s)| Tensor::from_slice(d).view(dims(s)).to_device(device)),
        }
    }
}

/// Turns index batches into [`Batch`]es. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Loader {
    dataset: Arc<Dataset>,
    config: Arc<LoaderConfig>,
}

impl Loader {
    /// Validates the config.
    pub fn new(
        dataset: impl Into<Arc<Dataset>>,
        config: LoaderConfig,
    ) -> Result<Loader, LoadError> {
        config.validate()?;
        Ok(Loader {
            dataset: dataset.into(),
            config: Arc::new(config),
        })
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Loads one batch on the calling thread — exactly what a worker computes for it.
    pub fn load_batch(&self, indices: &[usize], epoch: u64) -> Result<Batch, LoadError> {
        self.make_batch(0, indices, epoch)
    }

    /// Loads the batches on `config.workers` threads and yields them in order.
    /// `batches` is consumed lazily, on the thread that iterates the [`Epoch`].
    pub fn batches<I>(&self, batches: I, epoch: u64) -> Result<Epoch<I::IntoIter>, LoadError>
    where
        I: IntoIterator<Item = Vec<usize>>,
    {
        let this = self.clone();
        let job: JobFn = Arc::new(move |seq, indices| this.make_batch(seq, indices, epoch));
        Epoch::start(
            batches.into_iter(),
            self.config.workers,
            self.config.queue_depth,
            job,
        )
    }

    /// One epoch over `indices` with the config's batch size, shuffling and `drop_last`
    /// ([`Dataset::epoch_batches`] seeded with `config.seed`).
    pub fn epoch(
        &self,
        indices: &[usize],
        epoch: u64,
    ) -> Result<Epoch<std::vec::IntoIter<Vec<usize>>>, LoadError> {
        let c = &self.config;
        let mut b = Dataset::epoch_batches(indices, c.batch_size, c.shuffle, c.seed, epoch);
        if c.drop_last && b.last().is_some_and(|l| l.len() < c.batch_size) {
            b.pop();
        }
        self.batches(b, epoch)
    }

    fn make_batch(&self, seq: usize, indices: &[usize], epoch: u64) -> Result<Batch, LoadError> {
        let d = &self.dataset;
        let c = &self.config;
        if indices.is_empty() {
            return Err(LoadError::EmptyBatch { batch: seq });
        }
        if let Some(&index) = indices.iter().find(|&&i| i >= d.len()) {
            return Err(LoadError::Index {
                batch: seq,
                index,
                len: d.len(),
            });
        }
        let n = indices.len();
        let per_image = c.spec.tensor_len();
        let mut images = vec![0.0; n * per_image];
        let side = c.depth_size.map(|s| s as usize);
        let per_depth = side.map_or(0, |s| s * s);
        let mut depth = side.map(|_| vec![0.0; n * per_depth]);
        for (k, &index) in indices.iter().enumerate() {
            let img = &mut images[k * per_image..(k + 1) * per_image];
            let dep = depth
                .as_mut()
                .map(|v| &mut v[k * per_depth..(k + 1) * per_depth]);
            self.load_sample(index, epoch, img, dep)?;
        }
        Ok(Batch {
            indices: indices.to_vec(),
            images,
            labels: indices.iter().map(|&i| d.label(i)).collect(),
            domains: indices.iter().map(|&i| d.domain_index(i)).collect(),
            identities: indices.iter().map(|&i| d.identity_index(i)).collect(),
            depth,
            shape: [
                n,
                c.spec.channels(),
                c.spec.height as usize,
                c.spec.width as usize,
            ],
            depth_shape: side.map(|s| [n, 1, s, s]),
        })
    }

    fn load_sample(
        &self,
        index: usize,
        epoch: u64,
        image_out: &mut [f32],
        depth_out: Option<&mut [f32]>,
    ) -> Result<(), LoadError> {
        let c = &self.config;
        let path = self.dataset.image_path(index);
        let rgb: RgbImage = decode(&path, "image", index)?.to_rgb8().into();
        let live = self.dataset.sample(index).label == Label::Live;
        let depth = match (&depth_out, live) {
            (Some(_), true) => {
                let p = self.dataset.depth_path(index);
                Some(decode(&p, "depth map", index)?.to_luma8())
            }
            _ => None,
        };
        let (rgb, depth) = if c.augment.is_none() {
            (rgb, depth)
        } else {
            let params = c.augment.sample(sample_seed(c.seed, epoch, index));
            params.apply(&rgb, depth.as_ref())
        };
        let crop = resize_bilinear(&rgb, c.spec.width, c.spec.height);
        normalize_into(&crop, &c.spec, image_out).map_err(|source| LoadError::Preprocess {
            path: path.clone(),
            index,
            source,
        })?;
        if let Some(out) = depth_out {
            match depth {
                None => out.fill(0.0),
                Some(d) => {
                    let side = c.depth_size.expect("depth_out implies depth_size");
                    // Through fas-core's resize (on a grey RGB image) so depth and image
                    // share one resampling convention.
                    let grey = RgbImage {
                        width: d.width(),
                        height: d.height(),
                        data: d.as_raw().iter().flat_map(|&v| [v; 3]).collect(),
                    };
                    let small = resize_bilinear(&grey, side, side);
                    for (o, px) in out.iter_mut().zip(small.data.chunks_exact(3)) {
                        *o = f32::from(px[0]) / 255.0;
                    }
                }
            }
        }
        Ok(())
    }
}

fn decode(path: &Path, what: &'static str, index: usize) -> Result<image::DynamicImage, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        what,
        index,
        source,
    })?;
    image::load_from_memory(&bytes).map_err(|e| LoadError::Decode {
        path: path.to_path_buf(),
        what,
        index,
        msg: e.to_string(),
    })
}

/// Work of one batch: `(batch sequence number, indices)`.
type JobDyn = dyn Fn(usize, &[usize]) -> Result<Batch, LoadError> + Send + Sync;
type JobFn = Arc<JobDyn>;
type Job = (usize, Vec<usize>);
type Done = (usize, Result<Batch, LoadError>);

/// One epoch in progress: an iterator of batches in the order their indices were given.
/// Dropping it stops the workers (after their current batch) and joins them.
pub struct Epoch<B: Iterator<Item = Vec<usize>>> {
    source: B,
    source_done: bool,
    /// Sequence number of the next batch to hand to the workers / to yield.
    next_dispatch: usize,
    next_yield: usize,
    /// Batches dispatched but not yet yielded, at most.
    limit: usize,
    /// The first batch known to fail: nothing after it is dispatched.
    failed_at: Option<usize>,
    jobs: Option<Sender<Job>>,
    results: Receiver<Done>,
    ready: BTreeMap<usize, Result<Batch, LoadError>>,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
    done: bool,
}

impl<B: Iterator<Item = Vec<usize>>> Epoch<B> {
    fn start(source: B, workers: usize, limit: usize, job: JobFn) -> Result<Self, LoadError> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        // Never blocks: at most `limit` batches are in flight.
        let (done_tx, done_rx) = mpsc::sync_channel::<Done>(limit);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let mut epoch = Epoch {
            source,
            source_done: false,
            next_dispatch: 0,
            next_yield: 0,
            limit,
            failed_at: None,
            jobs: Some(jobs_tx),
            results: done_rx,
            ready: BTreeMap::new(),
            stop: stop.clone(),
            started: started.clone(),
            workers: Vec::with_capacity(workers),
            done: false,
        };
        for k in 0..workers {
            let (rx, tx, stop, started, job) = (
                jobs_rx.clone(),
                done_tx.clone(),
                stop.clone(),
                started.clone(),
                job.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("fas-loader-{k}"))
                .spawn(move || worker(&rx, &tx, &stop, &started, &*job))
                .map_err(LoadError::Spawn)?;
            epoch.workers.push(handle);
        }
        Ok(epoch)
    }

    /// How many batches the workers have started on so far (for monitoring back-pressure:
    /// never more than the batches yielded plus `queue_depth`).
    pub fn batches_started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Ends the epoch: no more results are wanted.
    fn finish(&mut self) {
        self.done = true;
        self.stop.store(true, Ordering::SeqCst);
        self.jobs = None;
        self.ready.clear();
    }

    fn dispatch(&mut self) -> Result<(), LoadError> {
        while !self.source_done
            && self.next_dispatch - self.next_yield < self.limit
            && self.failed_at.is_none()
        {
            let Some(indices) = self.source.next() else {
                self.source_done = true;
                break;
            };
            let sent = self
                .jobs
                .as_ref()
                .is_some_and(|tx| tx.send((self.next_dispatch, indices)).is_ok());
            if !sent {
                return Err(LoadError::WorkersGone {
                    batch: self.next_dispatch,
                });
            }
            self.next_dispatch += 1;
        }
        Ok(())
    }
}

impl<B: Iterator<Item = Vec<usize>>> Iterator for Epoch<B> {
    type Item = Result<Batch, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = self.dispatch() {
            self.finish();
            return Some(Err(e));
        }
        loop {
            if self.next_yield == self.next_dispatch {
                self.finish();
                return None;
            }
            if let Some(r) = self.ready.remove(&self.next_yield) {
                self.next_yield += 1;
                if r.is_err() {
                    self.finish();
                }
                return Some(r);
            }
            match self.results.recv() {
                Ok((seq, r)) => {
                    if r.is_err() {
                        self.failed_at = Some(self.failed_at.map_or(seq, |f| f.min(seq)));
                    }
                    self.ready.insert(seq, r);
                }
                Err(_) => {
                    let batch = self.next_yield;
                    self.finish();
                    return Some(Err(LoadError::WorkersGone { batch }));
                }
            }
        }
    }
}

impl<B: Iterator<Item = Vec<usize>>> std::iter::FusedIterator for Epoch<B> {}

impl<B: Iterator<Item = Vec<usize>>> Drop for Epoch<B> {
    fn drop(&mut self) {
        self.finish();
        // Drop the receiving end first, so no worker can stay blocked on a full channel.
        let (_, closed) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.results, closed));
        for h in self.workers.drain(..) {
            // Workers catch their panics, so join only fails if the runtime is broken.
            let _ = h.join();
        }
    }
}

fn worker(
    jobs: &Mutex<Receiver<Job>>,
    results: &SyncSender<Done>,
    stop: &AtomicBool,
    started: &AtomicUsize,
    job: &JobDyn,
) {
    loop {
        let next = {
            // Nothing panics while holding the lock, but a poisoned lock is still usable.
            let rx = jobs.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok((seq, indices)) = next else { return };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        started.fetch_add(1, Ordering::SeqCst);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(seq, &indices)))
            .unwrap_or_else(|payload| {
                Err(LoadError::WorkerPanic {
                    batch: seq,
                    message: panic_message(payload.as_ref()),
                })
            });
        if results.send((seq, r)).is_err() {
            return;
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests;
