//! Batch samplers: which training samples make up each batch of an epoch.
//!
//! Every sampler is built from the manifest's samples and a *pool* of indices into them (usually
//! [`super::protocol::TaskSplit::train`]) and yields batches of those indices. A batch list is a
//! pure function of `(seed, epoch)`: the same sampler gives the same epoch every time, in any
//! order, and different epochs give different batches.
//!
//! Draws go through *passes*: a group (a class, a domain, an identity's live samples, …) is
//! consumed as a fresh random permutation, and when that runs out a new permutation starts. A
//! group smaller than what an epoch asks of it is therefore resampled with replacement across
//! passes, but no sample repeats within one pass, and within one batch a group never repeats a
//! sample unless it is smaller than its share of the batch.
//!
//! | sampler | batch layout | used by |
//! |---|---|---|
//! | [`ClassBalanced`] | `b/2` live, then `b/2` spoof | baseline, most recipes |
//! | [`PerDomain`] | `b` per domain, domain-major | meta-learning, D²AM (pseudo-domains) |
//! | [`IdentitySampler`] | per domain, `k` identities × (`n` live, `n` spoof) | DLIF |
//! | [`MetaSplit`] | meta-train / meta-test domain sets per iteration | meta-learning |

use std::collections::{BTreeMap, BTreeSet};

use fas_core::dataset::{Label, Sample};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A sampler of training batches.
///
/// # Contract
/// * `epoch(e)` depends only on the sampler's configuration, its seed and `e`.
/// * Every index it returns is one of the pool indices the sampler was built from.
/// * Every batch of one sampler has the same length.
pub trait BatchSampler {
    /// The batches of epoch `epoch`, as indices into the manifest's samples.
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>>;
    /// One line for logs and `metrics.json`: the configuration and the pool it draws from.
    fn describe(&self) -> String;
}

/// How many batches an epoch has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpochLength {
    /// Exactly this many batches.
    Batches(usize),
    /// Just enough batches for the largest group the sampler draws from (the majority class,
    /// the largest domain, the domain with most identities) to be drawn once in full.
    Largest,
}

/// A sampler configuration that cannot work with the given pool. Each message names what is
/// missing and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    #[error("{sampler}: the pool is empty — pass the indices of the training samples (e.g. TaskSplit::train)")]
    EmptyPool { sampler: &'static str },
    #[error("{sampler}: pool index {index} is out of range (the manifest has {len} samples) — build the pool from the same manifest")]
    IndexOutOfRange {
        sampler: &'static str,
        index: usize,
        len: usize,
    },
    #[error("{sampler}: {field} = {value}: {problem}")]
    BadConfig {
        sampler: &'static str,
        field: &'static str,
        value: usize,
        problem: &'static str,
    },
    #[error("{sampler}: {group} has no {class} samples in {scope} — add {class} samples to it, drop it from the sources, or turn class balancing off")]
    MissingClass {
        sampler: &'static str,
        group: String,
        class: &'static str,
        scope: String,
    },
    #[error("per-domain: {got} assigned domain labels for a pool of {pool} samples — give one label per pool index, in pool order")]
    LabelCount { got: usize, pool: usize },
    #[error("per-domain: a batch of {got} indices does not split into {domains} domains × {per_domain} — pass a batch this sampler produced")]
    BatchShape {
        got: usize,
        domains: usize,
        per_domain: usize,
    },
    #[error("identity: domain {domain} has {have} identities with both live and spoof samples in {scope} ({skipped} lack one class); identities_per_domain = {k} needs at least {k} — lower identities_per_domain or add subjects")]
    TooFewIdentities {
        domain: String,
        have: usize,
        skipped: usize,
        k: usize,
        scope: String,
    },
    #[error("meta-split: {domains} domains cannot give {meta_test} meta-test domain(s) and at least one meta-train domain — use between 1 and {max} meta-test domains, or more source domains")]
    MetaSplitSize {
        domains: usize,
        meta_test: usize,
        max: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Shared machinery

/// The per-`(seed, epoch)` random stream; `tag` keeps different sampler kinds independent.
fn epoch_rng(seed: u64, tag: u64, epoch: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.set_stream(epoch);
    r
}

const TAG_CLASS: u64 = 1;
const TAG_DOMAIN: u64 = 2;
const TAG_IDENTITY: u64 = 3;
const TAG_META: u64 = 4;

/// Draws from one group in passes of fresh permutations (see the module docs).
struct Passes<'a> {
    items: &'a [usize],
    order: Vec<usize>,
    pos: usize,
}

impl<'a> Passes<'a> {
    fn new(items: &'a [usize]) -> Self {
        Passes {
            items,
            order: Vec::new(),
            pos: 0,
        }
    }

    /// `n` items; distinct when the group has at least `n`.
    fn take(&mut self, n: usize, rng: &mut ChaCha8Rng, out: &mut Vec<usize>) {
        let start = out.len();
        for _ in 0..n {
            if self.pos == self.order.len() {
                self.order.clear();
                self.order.extend_from_slice(self.items);
                self.order.shuffle(rng);
                if n <= self.items.len() {
                    // Items already taken in this call go to the end of the new pass, so the
                    // rest of this call can be filled without repeats.
                    let taken: BTreeSet<usize> = out[start..].iter().copied().collect();
                    let (mut fresh, seen): (Vec<usize>, Vec<usize>) =
                        self.order.iter().partition(|&&i| !taken.contains(&i));
                    fresh.extend(seen);
                    self.order = fresh;
                }
                self.pos = 0;
            }
            out.push(self.order[self.pos]);
            self.pos += 1;
        }
    }
}

fn check_pool(
    sampler: &'static str,
    samples: &[Sample],
    pool: &[usize],
) -> Result<(), SamplerError> {
    if pool.is_empty() {
        return Err(SamplerError::EmptyPool { sampler });
    }
    if let Some(&index) = pool.iter().find(|&&i| i >= samples.len()) {
        return Err(SamplerError::IndexOutOfRange {
            sampler,
            index,
            len: samples.len(),
        });
    }
    Ok(())
}

/// Where the pool comes from, for messages: `"split train"` or `"the pool (splits dev, train)"`.
fn scope(samples: &[Sample], pool: &[usize]) -> String {
    let splits: BTreeSet<&str> = pool.iter().map(|&i| samples[i].split.as_str()).collect();
    let names: Vec<&str> = splits.into_iter().collect();
    match names.as_slice() {
        [one] => format!("split {one}"),
        many => format!("the pool (splits {})", many.join(", ")),
    }
}

fn class_name(label: Label) -> &'static str {
    label.as_str()
}

fn batches_for(length: EpochLength, largest: usize, per_batch: usize) -> usize {
    match length {
        EpochLength::Batches(n) => n,
        EpochLength::Largest => largest.div_ceil(per_batch),
    }
}

fn check_length(sampler: &'static str, length: EpochLength) -> Result<(), SamplerError> {
    if length == EpochLength::Batches(0) {
        return Err(SamplerError::BadConfig {
            sampler,
            field: "epoch length",
            value: 0,
            problem: "an epoch needs at least one batch",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ClassBalanced

/// Configuration of [`ClassBalanced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassBalancedConfig {
    /// Batch size; even, at least 2.
    pub batch_size: usize,
    pub length: EpochLength,
    pub seed: u64,
}

/// Half live, half spoof in every batch: `batch_size / 2` live indices, then `batch_size / 2`
/// spoof indices. The minority class is resampled with replacement across passes; with
/// [`EpochLength::Largest`] the majority class is seen exactly once per epoch (its last pass
/// may spill into the next permutation to fill the final batch).
#[derive(Debug, Clone)]
pub struct ClassBalanced {
    live: Vec<usize>,
    spoof: Vec<usize>,
    cfg: ClassBalancedConfig,
    scope: String,
}

impl ClassBalanced {
    pub fn new(
        samples: &[Sample],
        pool: &[usize],
        cfg: ClassBalancedConfig,
    ) -> Result<Self, SamplerError> {
        const NAME: &str = "class-balanced";
        if cfg.batch_size < 2 || cfg.batch_size % 2 == 1 {
            return Err(SamplerError::BadConfig {
                sampler: NAME,
                field: "batch_size",
                value: cfg.batch_size,
                problem: "must be even and at least 2 (half live, half spoof)",
            });
        }
        check_length(NAME, cfg.length)?;
        check_pool(NAME, samples, pool)?;
        let scope = scope(samples, pool);
        let (live, spoof): (Vec<usize>, Vec<usize>) =
            pool.iter().partition(|&&i| samples[i].label == Label::Live);
        for (group, label) in [(&live, Label::Live), (&spoof, Label::Spoof)] {
            if group.is_empty() {
                return Err(SamplerError::MissingClass {
                    sampler: NAME,
                    group: "the pool".into(),
                    class: class_name(label),
                    scope,
                });
            }
        }
        Ok(ClassBalanced {
            live,
            spoof,
            cfg,
            scope,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        batches_for(
            self.cfg.length,
            self.live.len().max(self.spoof.len()),
            self.cfg.batch_size / 2,
        )
    }
}

impl BatchSampler for ClassBalanced {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.cfg.seed, TAG_CLASS, epoch);
        let half = self.cfg.batch_size / 2;
        let mut live = Passes::new(&self.live);
        let mut spoof = Passes::new(&self.spoof);
        (0..self.batches_per_epoch())
            .map(|_| {
                let mut b = Vec::with_capacity(self.cfg.batch_size);
                live.take(half, &mut rng, &mut b);
                spoof.take(half, &mut rng, &mut b);
                b
            })
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "class-balanced: batch {} ({h} live + {h} spoof), {} batches/epoch, pool {} live + {} spoof from {}, seed {}",
            self.cfg.batch_size,
            self.batches_per_epoch(),
            self.live.len(),
            self.spoof.len(),
            self.scope,
            self.cfg.seed,
            h = self.cfg.batch_size / 2,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// PerDomain

/// Where [`PerDomain`] takes each sample's domain from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainLabels {
    /// The sample's `domain` field (its source dataset).
    Manifest,
    /// Pseudo-domain ids, one per pool index in pool order (D²AM re-clusters every epoch and
    /// calls [`PerDomain::reassign`]). Domains are the distinct ids present, in ascending order.
    Assigned(Vec<usize>),
}

/// Configuration of [`PerDomain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerDomainConfig {
    /// Samples per domain in each batch (`b`); even when `class_balanced`.
    pub per_domain: usize,
    /// Each domain's share is half live, half spoof.
    pub class_balanced: bool,
    pub length: EpochLength,
    pub seed: u64,
}

#[derive(Debug, Clone)]
struct DomainGroup {
    name: String,
    /// One list, or `[live, spoof]` when class-balanced.
    parts: Vec<Vec<usize>>,
}

/// `per_domain` samples from every domain in each batch, domain-major: the first `per_domain`
/// indices come from [`PerDomain::domains`]`[0]`, the next from `[1]`, and so on. Within a
/// class-balanced share the live half precedes the spoof half. [`PerDomain::split_batch`]
/// cuts a batch back into its domains.
#[derive(Debug, Clone)]
pub struct PerDomain {
    pool: Vec<usize>,
    groups: Vec<DomainGroup>,
    cfg: PerDomainConfig,
    scope: String,
    labels_from: &'static str,
}

impl PerDomain {
    const NAME: &'static str = "per-domain";

    pub fn new(
        samples: &[Sample],
        pool: &[usize],
        labels: DomainLabels,
        cfg: PerDomainConfig,
    ) -> Result<Self, SamplerError> {
        if cfg.per_domain == 0 || (cfg.class_balanced && cfg.per_domain % 2 == 1) {
            return Err(SamplerError::BadConfig {
                sampler: Self::NAME,
                field: "per_domain",
                value: cfg.per_domain,
                problem: "must be positive, and even when class_balanced (half live, half spoof)",
            });
        }
        check_length(Self::NAME, cfg.length)?;
        check_pool(Self::NAME, samples, pool)?;
        let mut s = PerDomain {
            pool: pool.to_vec(),
            groups: Vec::new(),
            cfg,
            scope: scope(samples, pool),
            labels_from: "",
        };
        s.reassign(samples, labels)?;
        Ok(s)
    }

    /// Regroup the pool by new domain labels (e.g. D²AM's pseudo-domains of this epoch).
    /// `samples` must be the manifest the sampler was built with.
    pub fn reassign(
        &mut self,
        samples: &[Sample],
        labels: DomainLabels,
    ) -> Result<(), SamplerError> {
        let (named, labels_from): (Vec<(String, Vec<usize>)>, _) = match &labels {
            DomainLabels::Manifest => {
                let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
                for &i in &self.pool {
                    by_name.entry(&samples[i].domain).or_default().push(i);
                }
                let named = by_name
                    .into_iter()
                    .map(|(d, v)| (d.to_string(), v))
                    .collect();
                (named, "manifest domains")
            }
            DomainLabels::Assigned(ids) => {
                if ids.len() != self.pool.len() {
                    return Err(SamplerError::LabelCount {
                        got: ids.len(),
                        pool: self.pool.len(),
                    });
                }
                let mut by_id: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
                for (&i, &d) in self.pool.iter().zip(ids) {
                    by_id.entry(d).or_default().push(i);
                }
                let named = by_id
                    .into_iter()
                    .map(|(d, v)| (format!("pseudo-{d}"), v))
                    .collect();
                (named, "assigned pseudo-domains")
            }
        };
        let mut groups = Vec::with_capacity(named.len());
        for (name, members) in named {
            let parts = if self.cfg.class_balanced {
                let (live, spoof): (Vec<usize>, Vec<usize>) = members
                    .iter()
                    .partition(|&&i| samples[i].label == Label::Live);
                for (part, label) in [(&live, Label::Live), (&spoof, Label::Spoof)] {
                    if part.is_empty() {
                        return Err(SamplerError::MissingClass {
                            sampler: Self::NAME,
                            group: format!("domain {name}"),
                            class: class_name(label),
                            scope: self.scope.clone(),
                        });
                    }
                }
                vec![live, spoof]
            } else {
                vec![members]
            };
            groups.push(DomainGroup { name, parts });
        }
        self.groups = groups;
        self.labels_from = labels_from;
        Ok(())
    }

    /// Domain names in batch order (`"pseudo-<id>"` for assigned labels).
    pub fn domains(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    pub fn batch_size(&self) -> usize {
        self.cfg.per_domain * self.groups.len()
    }

    pub fn batches_per_epoch(&self) -> usize {
        let per_part = self.cfg.per_domain / self.parts_per_group();
        let largest = self
            .groups
            .iter()
            .flat_map(|g| g.parts.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        batches_for(self.cfg.length, largest, per_part)
    }

    fn parts_per_group(&self) -> usize {
        if self.cfg.class_balanced {
            2
        } else {
            1
        }
    }

    /// Cut a batch of this sampler into `(domain, indices)` pairs, in domain order.
    pub fn split_batch<'b>(
        &self,
        batch: &'b [usize],
    ) -> Result<Vec<(&str, &'b [usize])>, SamplerError> {
        if batch.len() != self.batch_size() {
            return Err(SamplerError::BatchShape {
                got: batch.len(),
                domains: self.groups.len(),
                per_domain: self.cfg.per_domain,
            });
        }
        Ok(self
            .groups
            .iter()
            .zip(batch.chunks(self.cfg.per_domain))
            .map(|(g, c)| (g.name.as_str(), c))
            .collect())
    }
}

impl BatchSampler for PerDomain {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.cfg.seed, TAG_DOMAIN, epoch);
        let per_part = self.cfg.per_domain / self.parts_per_group();
        let mut streams: Vec<Vec<Passes>> = self
            .groups
            .iter()
            .map(|g| g.parts.iter().map(|p| Passes::new(p)).collect())
            .collect();
        (0..self.batches_per_epoch())
            .map(|_| {
                let mut b = Vec::with_capacity(self.batch_size());
                for group in &mut streams {
                    for part in group {
                        part.take(per_part, &mut rng, &mut b);
                    }
                }
                b
            })
            .collect()
    }

    fn describe(&self) -> String {
        let sizes: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                let n: Vec<String> = g.parts.iter().map(|p| p.len().to_string()).collect();
                format!("{} {}", g.name, n.join("+"))
            })
            .collect();
        format!(
            "per-domain: {} per domain × {} domains ({}){}, {} batches/epoch, pool from {}: {}, seed {}",
            self.cfg.per_domain,
            self.groups.len(),
            self.labels_from,
            if self.cfg.class_balanced {
                ", half live + half spoof each"
            } else {
                ""
            },
            self.batches_per_epoch(),
            self.scope,
            sizes.join(", "),
            self.cfg.seed,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// IdentitySampler

/// Configuration of [`IdentitySampler`]; the default is the DLIF paper's `k = 4`, `n = 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityConfig {
    /// Identities (subjects) per source domain in each batch (`k`).
    pub identities_per_domain: usize,
    /// Live samples, and again spoof samples, per identity in each batch (`n`).
    pub samples_per_class: usize,
    pub length: EpochLength,
    pub seed: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            identities_per_domain: 4,
            samples_per_class: 4,
            length: EpochLength::Largest,
            seed: 0,
        }
    }
}

/// One identity the sampler draws from: a subject of one source domain with both classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub domain: String,
    pub subject: String,
    pub live: Vec<usize>,
    pub spoof: Vec<usize>,
}

/// A subject left out because the pool holds none of its samples of class `missing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedIdentity {
    pub domain: String,
    pub subject: String,
    pub missing: Label,
}

/// A batch with the identity of each sample: `identity[j]` indexes
/// [`IdentitySampler::identities`] and is stable across epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityBatch {
    pub indices: Vec<usize>,
    pub identity: Vec<usize>,
}

/// Identity-aware batches for DLIF (arXiv 2407.08243): per source domain, `k` distinct
/// identities that have both live and spoof samples, and `n` live then `n` spoof samples of
/// each, so a batch holds `domains × k × 2n` samples, domain-major (domains sorted), then
/// identity, then live before spoof. Every eligible identity of a domain is picked once per
/// pass over that domain's identities; an identity with fewer than `n` samples of a class is
/// resampled with replacement. Subjects lacking a class are skipped and listed in
/// [`IdentitySampler::skipped`].
#[derive(Debug, Clone)]
pub struct IdentitySampler {
    identities: Vec<Identity>,
    /// Per domain (sorted): its name and the ids of its identities.
    domains: Vec<(String, Vec<usize>)>,
    skipped: Vec<SkippedIdentity>,
    cfg: IdentityConfig,
    scope: String,
}

impl IdentitySampler {
    pub fn new(
        samples: &[Sample],
        pool: &[usize],
        cfg: IdentityConfig,
    ) -> Result<Self, SamplerError> {
        const NAME: &str = "identity";
        for (field, value) in [
            ("identities_per_domain", cfg.identities_per_domain),
            ("samples_per_class", cfg.samples_per_class),
        ] {
            if value == 0 {
                return Err(SamplerError::BadConfig {
                    sampler: NAME,
                    field,
                    value,
                    problem: "must be at least 1",
                });
            }
        }
        check_length(NAME, cfg.length)?;
        check_pool(NAME, samples, pool)?;
        let scope = scope(samples, pool);
        let mut by_subject: BTreeMap<(&str, &str), [Vec<usize>; 2]> = BTreeMap::new();
        for &i in pool {
            let s = &samples[i];
            let slot = by_subject
                .entry((s.domain.as_str(), s.subject.as_str()))
                .or_default();
            slot[usize::from(s.label == Label::Spoof)].push(i);
        }
        let mut identities = Vec::new();
        let mut skipped = Vec::new();
        let mut domains: Vec<(String, Vec<usize>)> = Vec::new();
        let mut skipped_per_domain: BTreeMap<&str, usize> = BTreeMap::new();
        for ((domain, subject), [live, spoof]) in by_subject {
            if domains.last().is_none_or(|(d, _)| d != domain) {
                domains.push((domain.to_string(), Vec::new()));
            }
            let missing = if live.is_empty() {
                Some(Label::Live)
            } else if spoof.is_empty() {
                Some(Label::Spoof)
            } else {
                None
            };
            if let Some(missing) = missing {
                *skipped_per_domain.entry(domain).or_default() += 1;
                skipped.push(SkippedIdentity {
                    domain: domain.into(),
                    subject: subject.into(),
                    missing,
                });
                continue;
            }
            domains
                .last_mut()
                .expect("pushed above")
                .1
                .push(identities.len());
            identities.push(Identity {
                domain: domain.into(),
                subject: subject.into(),
                live,
                spoof,
            });
        }
        for (domain, ids) in &domains {
            if ids.len() < cfg.identities_per_domain {
                return Err(SamplerError::TooFewIdentities {
                    domain: domain.clone(),
                    have: ids.len(),
                    skipped: skipped_per_domain
                        .get(domain.as_str())
                        .copied()
                        .unwrap_or(0),
                    k: cfg.identities_per_domain,
                    scope,
                });
            }
        }
        Ok(IdentitySampler {
            identities,
            domains,
            skipped,
            cfg,
            scope,
        })
    }

    /// All identities drawn from, sorted by (domain, subject); ids index this slice.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// Subjects left out for lacking a class.
    pub fn skipped(&self) -> &[SkippedIdentity] {
        &self.skipped
    }

    /// Source domains in batch order.
    pub fn domains(&self) -> Vec<&str> {
        self.domains.iter().map(|(d, _)| d.as_str()).collect()
    }

    pub fn batch_size(&self) -> usize {
        self.domains.len() * self.cfg.identities_per_domain * 2 * self.cfg.samples_per_class
    }

    pub fn batches_per_epoch(&self) -> usize {
        let largest = self
            .domains
            .iter()
            .map(|(_, ids)| ids.len())
            .max()
            .unwrap_or(0);
        batches_for(self.cfg.length, largest, self.cfg.identities_per_domain)
    }

    /// The batches of `epoch` with each sample's identity.
    pub fn batches(&self, epoch: u64) -> Vec<IdentityBatch> {
        let mut rng = epoch_rng(self.cfg.seed, TAG_IDENTITY, epoch);
        let (k, n) = (self.cfg.identities_per_domain, self.cfg.samples_per_class);
        let mut pick: Vec<Passes> = self
            .domains
            .iter()
            .map(|(_, ids)| Passes::new(ids))
            .collect();
        let mut draws: Vec<[Passes; 2]> = self
            .identities
            .iter()
            .map(|id| [Passes::new(&id.live), Passes::new(&id.spoof)])
            .collect();
        let mut chosen = Vec::with_capacity(k);
        (0..self.batches_per_epoch())
            .map(|_| {
                let mut b = IdentityBatch {
                    indices: Vec::with_capacity(self.batch_size()),
                    identity: Vec::with_capacity(self.batch_size()),
                };
                for domain in &mut pick {
                    chosen.clear();
                    domain.take(k, &mut rng, &mut chosen);
                    for &id in &chosen {
                        for class in &mut draws[id] {
                            class.take(n, &mut rng, &mut b.indices);
                        }
                        b.identity.extend(std::iter::repeat_n(id, 2 * n));
                    }
                }
                b
            })
            .collect()
    }
}

impl BatchSampler for IdentitySampler {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        self.batches(epoch).into_iter().map(|b| b.indices).collect()
    }

    fn describe(&self) -> String {
        let per: Vec<String> = self
            .domains
            .iter()
            .map(|(d, ids)| format!("{d} {}", ids.len()))
            .collect();
        format!(
            "identity (DLIF): {} domains × {} identities × ({n} live + {n} spoof) = batch {}, {} batches/epoch, identities from {}: {} ({} subjects skipped for lacking a class), seed {}",
            self.domains.len(),
            self.cfg.identities_per_domain,
            self.batch_size(),
            self.batches_per_epoch(),
            self.scope,
            per.join(", "),
            self.skipped.len(),
            self.cfg.seed,
            n = self.cfg.samples_per_class,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// MetaSplit

/// The meta-train and meta-test domains of one meta-learning iteration, each sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaSets {
    pub meta_train: Vec<String>,
    pub meta_test: Vec<String>,
}

/// Splits the source domains into meta-train and meta-test sets for each iteration.
///
/// Iterations run in rounds of [`MetaSplit::period`] = `ceil(D / t)` iterations (`D` domains,
/// `t` meta-test domains). Each round draws a fresh permutation of the domains from
/// `(seed, round)` and walks it `t` at a time (wrapping to its start for the last, short
/// step), so every domain is meta-test at least once in every round, and the order differs
/// from round to round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSplit {
    domains: Vec<String>,
    meta_test: usize,
    seed: u64,
}

impl MetaSplit {
    /// Meta-test domains per iteration in most meta-learning FAS recipes.
    pub const DEFAULT_META_TEST: usize = 1;

    /// `domains` are sorted and de-duplicated.
    pub fn new<S: Into<String>>(
        domains: impl IntoIterator<Item = S>,
        meta_test: usize,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        let set: BTreeSet<String> = domains.into_iter().map(Into::into).collect();
        let domains: Vec<String> = set.into_iter().collect();
        if meta_test == 0 || meta_test >= domains.len() {
            return Err(SamplerError::MetaSplitSize {
                domains: domains.len(),
                meta_test,
                max: domains.len().saturating_sub(1),
            });
        }
        Ok(MetaSplit {
            domains,
            meta_test,
            seed,
        })
    }

    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Iterations per round; every domain is meta-test at least once in each round.
    pub fn period(&self) -> u64 {
        self.domains.len().div_ceil(self.meta_test) as u64
    }

    pub fn split(&self, iteration: u64) -> MetaSets {
        let (round, step) = (iteration / self.period(), iteration % self.period());
        let mut order: Vec<usize> = (0..self.domains.len()).collect();
        order.shuffle(&mut epoch_rng(self.seed, TAG_META, round));
        let d = self.domains.len();
        let start = step as usize * self.meta_test;
        let test: BTreeSet<usize> = (0..self.meta_test)
            .map(|j| order[(start + j) % d])
            .collect();
        let (te, tr): (Vec<usize>, Vec<usize>) = (0..d).partition(|i| test.contains(i));
        let names = |v: Vec<usize>| -> Vec<String> {
            v.into_iter().map(|i| self.domains[i].clone()).collect()
        };
        MetaSets {
            meta_train: names(tr),
            meta_test: names(te),
        }
    }
}

#[cfg(test)]
mod tests;
