//! Pseudo-domains: the survey, the clustering into pseudo-domains (Eq. 1–3), the
//! random-domains ablation, and the pseudo-domain of every batch row.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::{channel_stats, D2am, DomainSource};
use crate::nn::Forward;
use crate::recipe::{cluster, TrainBatch};
use crate::train::run::BatchSource;

/// One epoch's pseudo-domain assignment and what is needed to assign unseen rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Clustering {
    pub(super) epoch: usize,
    /// `(dataset index, pseudo-domain)`, sorted by index.
    pub(super) assign: Vec<(usize, usize)>,
    /// Domain features from the pre-DRLM maps `F`, all channels (epoch 0), or from `F⁻`.
    pub(super) pre_drlm: bool,
    /// Channels per stage that make up `df`.
    pub(super) channels: Vec<Vec<usize>>,
    /// z-scoring of `df`.
    pub(super) mean: Vec<f64>,
    pub(super) std: Vec<f64>,
    /// `centroids[label][domain]` in z-scored `df` space (label 0 = spoof, 1 = live).
    pub(super) centroids: Vec<Vec<Vec<f64>>>,
}

/// One `[N, C]` tensor as host rows.
type Rows = Vec<Vec<f64>>;
/// Per stage: (channel means, channel stds) of every row, and the DRLM attention.
type StageStats = (Vec<(Rows, Rows)>, Vec<Rows>);

/// Per-sample statistics gathered by the survey.
pub(super) struct Surveyed {
    index: usize,
    label: usize,
    true_domain: usize,
    /// Per stage: channel means and stds of the map clustering uses.
    stats: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per stage: the DRLM attention `a`.
    attention: Vec<Vec<f64>>,
}

fn rows_f64(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let t = t.to_kind(Kind::Double).to_device(Device::Cpu).contiguous();
    let c = t.size()[1] as usize;
    let v = Vec::<f64>::try_from(&t.view([-1]))?;
    Ok(v.chunks(c.max(1)).map(<[f64]>::to_vec).collect())
}

/// The "random domains" ablation: the pseudo-domain of dataset sample `index` in `epoch`,
/// uniform in `0..k` — a pure function of `(seed, epoch, index)`, so resumed runs and the
/// survey agree with the training steps.
pub fn random_domain(seed: u64, epoch: usize, index: usize, k: usize) -> usize {
    use rand::{Rng, SeedableRng};
    let mix = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (epoch as u64)
            .wrapping_add(1)
            .wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0xA24B_AED4_963E_E407);
    rand_chacha::ChaCha8Rng::seed_from_u64(mix).random_range(0..k.max(1))
}

/// The epoch report's NMI with the true domains and the pseudo-domain sizes.
fn report_against_truth(labels: &[usize], truth: &[usize], k: usize) -> Vec<(String, f64)> {
    let mut report = vec![("pseudo_nmi_true".to_string(), cluster::nmi(labels, truth))];
    for d in 0..k {
        let size = labels.iter().filter(|&&l| l == d).count();
        report.push((format!("pseudo_domain_{d}"), size as f64));
    }
    report
}

impl Clustering {
    fn lookup(&self) -> HashMap<usize, usize> {
        self.assign.iter().copied().collect()
    }

    /// `df` of one sample from per-stage stats, z-scored.
    fn df(&self, stats: &[(Vec<f64>, Vec<f64>)]) -> Vec<f64> {
        let mut v = Vec::new();
        for ((mu, sd), ch) in stats.iter().zip(&self.channels) {
            v.extend(ch.iter().map(|&c| mu[c]));
            v.extend(ch.iter().map(|&c| sd[c]));
        }
        v.iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    }
}

impl D2am {
    /// DRLM attention `a` of stage `k` from its input map (Eq. 4), `[N, C]`.
    fn attention(&self, k: usize, f: &Tensor) -> Result<Tensor> {
        let node = &self.names.stages[k].2;
        let w = |s: &str| {
            self.net
                .tensor(&format!("{node}.{s}"))
                .with_context(|| format!("DRLM weight {node}.{s}"))
        };
        let pooled = f.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        Ok(pooled
            .linear(w("fc1.weight")?, Some(w("fc1.bias")?))
            .relu()
            .linear(w("fc2.weight")?, Some(w("fc2.bias")?))
            .sigmoid())
    }

    /// Per-stage statistics of the clustering map (`F` pre-DRLM, else `F⁻`) and attention.
    fn stage_stats(&self, out: &BTreeMap<String, Tensor>, pre_drlm: bool) -> Result<StageStats> {
        let mut stats = Vec::new();
        let mut att = Vec::new();
        for (k, (f, fp, _)) in self.names.stages.iter().enumerate() {
            let (f, fp) = (out[f].detach(), out[fp].detach());
            let m = if pre_drlm {
                f.shallow_clone()
            } else {
                &f - &fp
            };
            let (mu, sd) = channel_stats(&m);
            stats.push((rows_f64(&mu)?, rows_f64(&sd)?));
            att.push(rows_f64(&self.attention(k, &f)?)?);
        }
        Ok((stats, att))
    }

    /// Runs the network over the survey (eval mode, no gradients).
    pub(super) fn survey(&self, data: &dyn BatchSource, pre_drlm: bool) -> Result<Vec<Surveyed>> {
        let it = data.survey(self.cfg.cluster_samples)?.context(
            "D²AM clusters the training set at every epoch start, but this batch source \
             cannot survey it — use the loop's SampledSource with its training pool",
        )?;
        let wants = self.wants();
        let mut all = Vec::new();
        for b in it {
            let b = b.context("loading the D²AM clustering survey")?;
            let labels = Vec::<i64>::try_from(&b.labels.to_device(Device::Cpu))?;
            let doms = Vec::<i64>::try_from(&b.domains.to_device(Device::Cpu))?;
            let (stats, att) = tch::no_grad(|| -> Result<_> {
                let out = self.net.run(&[&b.images], &Forward::eval(), &wants)?;
                self.stage_stats(&out, pre_drlm)
            })?;
            for (i, &index) in b.indices.iter().enumerate() {
                all.push(Surveyed {
                    index,
                    label: labels[i] as usize,
                    true_domain: doms[i] as usize,
                    stats: stats
                        .iter()
                        .map(|(m, s)| (m[i].clone(), s[i].clone()))
                        .collect(),
                    attention: att.iter().map(|a| a[i].clone()).collect(),
                });
            }
        }
        Ok(all)
    }

    /// Whether epoch `epoch` clusters the statistics of all channels of the pre-DRLM maps
    /// `F`: the first epoch (untrained DRLMs), or every epoch without selection.
    pub(super) fn pre_drlm(&self, epoch: usize) -> bool {
        epoch == 0 || self.cfg.no_selection
    }

    /// `(dataset index, true domain)` of the surveyed samples, without running the network
    /// (the random-domains ablation only reports against them).
    pub(super) fn survey_domains(&self, data: &dyn BatchSource) -> Result<Vec<(usize, usize)>> {
        let it = data.survey(self.cfg.cluster_samples)?.context(
            "D²AM reports its random pseudo-domains against a survey of the training set, \
             but this batch source cannot survey it — use the loop's SampledSource with its \
             training pool",
        )?;
        let mut all = Vec::new();
        for b in it {
            let b = b.context("loading the D²AM survey")?;
            let doms = Vec::<i64>::try_from(&b.domains.to_device(Device::Cpu))?;
            all.extend(
                b.indices
                    .iter()
                    .copied()
                    .zip(doms.iter().map(|&d| d as usize)),
            );
        }
        Ok(all)
    }

    /// The random-domains ablation's epoch: every surveyed sample's [`random_domain`], and
    /// the same report as clustering (NMI with the previous epoch's and the true domains).
    pub(super) fn random_epoch(
        &self,
        epoch: usize,
        s: &[(usize, usize)],
    ) -> (Clustering, Vec<(String, f64)>) {
        let k = self.cfg.clusters;
        let labels: Vec<usize> = s
            .iter()
            .map(|&(i, _)| random_domain(self.seed, epoch, i, k))
            .collect();
        let mut report = Vec::new();
        if epoch > 0 {
            let prev: Vec<usize> = s
                .iter()
                .map(|&(i, _)| random_domain(self.seed, epoch - 1, i, k))
                .collect();
            report.push(("pseudo_nmi_prev".to_string(), cluster::nmi(&prev, &labels)));
        }
        let truth: Vec<usize> = s.iter().map(|&(_, d)| d).collect();
        report.extend(report_against_truth(&labels, &truth, k));
        let mut assign: Vec<(usize, usize)> = s.iter().map(|&(i, _)| i).zip(labels).collect();
        assign.sort();
        let cl = Clustering {
            epoch,
            assign,
            ..Clustering::default()
        };
        (cl, report)
    }

    /// Clusters the survey into pseudo-domains (Eq. 1–3, K-means per class, pairing and
    /// alignment by Kuhn–Munkres). Returns the clustering and the epoch report.
    pub(super) fn cluster(
        &self,
        epoch: usize,
        s: &[Surveyed],
    ) -> Result<(Clustering, Vec<(String, f64)>)> {
        let k = self.cfg.clusters;
        let pre_drlm = self.pre_drlm(epoch);
        let nstages = self.names.stages.len();
        // Channels: all (epoch 0, or no selection), else the C/2 with the lowest mean
        // attention.
        let channels: Vec<Vec<usize>> = (0..nstages)
            .map(|st| {
                let c = s[0].stats[st].0.len();
                if pre_drlm {
                    return (0..c).collect();
                }
                let mut mean_a = vec![0.0; c];
                for x in s {
                    for (m, a) in mean_a.iter_mut().zip(&x.attention[st]) {
                        *m += a / s.len() as f64;
                    }
                }
                let mut order: Vec<usize> = (0..c).collect();
                order.sort_by(|&a, &b| mean_a[a].total_cmp(&mean_a[b]).then(a.cmp(&b)));
                let mut keep: Vec<usize> = order[..(c / 2).max(1)].to_vec();
                keep.sort();
                keep
            })
            .collect();
        let mut cl = Clustering {
            epoch,
            pre_drlm,
            channels,
            ..Clustering::default()
        };
        let raw: Vec<Vec<f64>> = s
            .iter()
            .map(|x| {
                let mut v = Vec::new();
                for ((mu, sd), ch) in x.stats.iter().zip(&cl.channels) {
                    v.extend(ch.iter().map(|&c| mu[c]));
                    v.extend(ch.iter().map(|&c| sd[c]));
                }
                v
            })
            .collect();
        let dim = raw[0].len();
        let n = raw.len() as f64;
        cl.mean = (0..dim)
            .map(|j| raw.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        cl.std = (0..dim)
            .map(|j| {
                let v = raw.iter().map(|r| (r[j] - cl.mean[j]).powi(2)).sum::<f64>() / n;
                if v.sqrt() > 1e-12 {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let df: Vec<Vec<f64>> = raw
            .iter()
            .map(|r| {
                r.iter()
                    .zip(cl.mean.iter().zip(&cl.std))
                    .map(|(x, (m, sd))| (x - m) / sd)
                    .collect()
            })
            .collect();
        // K-means per class (label 0 = spoof, 1 = live).
        let mut per_class = Vec::new();
        for label in [0usize, 1] {
            let idx: Vec<usize> = (0..s.len()).filter(|&i| s[i].label == label).collect();
            let pts: Vec<Vec<f64>> = idx.iter().map(|&i| df[i].clone()).collect();
            let seed = self
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(((epoch as u64) << 1) | label as u64);
            let km =
                cluster::kmeans(&pts, k, self.cfg.kmeans_restarts, seed).with_context(|| {
                    format!(
                        "D²AM clustering of the {} samples",
                        if label == 1 { "live" } else { "spoof" }
                    )
                })?;
            per_class.push((idx, km));
        }
        // Pair spoof clusters with live clusters: live cluster j is domain j.
        let cost: Vec<Vec<f64>> = per_class[1]
            .1
            .centroids
            .iter()
            .map(|l| {
                per_class[0]
                    .1
                    .centroids
                    .iter()
                    .map(|sp| l.iter().zip(sp).map(|(a, b)| (a - b) * (a - b)).sum())
                    .collect()
            })
            .collect();
        let live_to_spoof = cluster::kuhn_munkres(&cost);
        let mut spoof_domain = vec![0; k];
        for (d, &j) in live_to_spoof.iter().enumerate() {
            spoof_domain[j] = d;
        }
        let mut labels = vec![0usize; s.len()];
        for (&i, &c) in per_class[0].0.iter().zip(&per_class[0].1.labels) {
            labels[i] = spoof_domain[c];
        }
        for (&i, &c) in per_class[1].0.iter().zip(&per_class[1].1.labels) {
            labels[i] = c;
        }
        let mut centroids = vec![vec![Vec::new(); k]; 2];
        for (c, cen) in per_class[0].1.centroids.iter().enumerate() {
            centroids[0][spoof_domain[c]] = cen.clone();
        }
        centroids[1] = per_class[1].1.centroids.clone();
        // Align with the previous epoch's ids.
        let mut report = Vec::new();
        let prev: Vec<(usize, usize)> = s
            .iter()
            .zip(&labels)
            .filter_map(|(x, &l)| self.lookup.get(&x.index).map(|&p| (p, l)))
            .collect();
        if !prev.is_empty() {
            let (p, nw): (Vec<usize>, Vec<usize>) = prev.iter().copied().unzip();
            let perm = cluster::align_labels(&p, &nw, k);
            for l in labels.iter_mut() {
                *l = perm[*l];
            }
            for cls in centroids.iter_mut() {
                let old = cls.clone();
                for (d, c) in old.into_iter().enumerate() {
                    cls[perm[d]] = c;
                }
            }
            let nw: Vec<usize> = nw.iter().map(|&l| perm[l]).collect();
            report.push(("pseudo_nmi_prev".to_string(), cluster::nmi(&p, &nw)));
        }
        let truth: Vec<usize> = s.iter().map(|x| x.true_domain).collect();
        report.extend(report_against_truth(&labels, &truth, k));
        let mut assign: Vec<(usize, usize)> = s
            .iter()
            .map(|x| x.index)
            .zip(labels.iter().copied())
            .collect();
        assign.sort();
        cl.assign = assign;
        cl.centroids = centroids;
        Ok((cl, report))
    }

    /// Pseudo-domain of every batch row: the surveyed ones from the map, the rest by the
    /// nearest centroid of their class.
    pub(super) fn batch_domains(
        &self,
        batch: &TrainBatch,
        labels: &[i64],
        out: &BTreeMap<String, Tensor>,
    ) -> Result<Vec<usize>> {
        let n = labels.len();
        if self.cfg.domains == DomainSource::True {
            let doms = Vec::<i64>::try_from(&batch.domains.to_device(Device::Cpu))?;
            return Ok(doms.into_iter().map(|d| d as usize).collect());
        }
        let cl = self.clustering.as_ref().context(
            "D²AM has no pseudo-domains yet — the loop must call start_epoch_with_data first",
        )?;
        if self.cfg.domains == DomainSource::Random {
            if batch.indices.len() != n {
                bail!(
                    "D²AM random domains are drawn per dataset sample, but this batch has {} \
                     indices for {n} rows",
                    batch.indices.len()
                );
            }
            let k = self.cfg.clusters;
            return Ok(batch
                .indices
                .iter()
                .map(|&i| random_domain(self.seed, cl.epoch, i, k))
                .collect());
        }
        let known: Vec<Option<usize>> = (0..n)
            .map(|i| {
                batch
                    .indices
                    .get(i)
                    .and_then(|ix| self.lookup.get(ix))
                    .copied()
            })
            .collect();
        if known.iter().all(Option::is_some) {
            return Ok(known.into_iter().map(|d| d.expect("checked")).collect());
        }
        let (stats, _) = self.stage_stats(out, cl.pre_drlm)?;
        Ok((0..n)
            .map(|i| {
                known[i].unwrap_or_else(|| {
                    let s: Vec<(Vec<f64>, Vec<f64>)> = stats
                        .iter()
                        .map(|(m, sd)| (m[i].clone(), sd[i].clone()))
                        .collect();
                    cluster::nearest(&cl.centroids[labels[i].clamp(0, 1) as usize], &cl.df(&s))
                })
            })
            .collect())
    }

    pub(super) fn set_clustering(&mut self, cl: Clustering) {
        self.lookup = cl.lookup();
        self.clustering = Some(cl);
    }
}
