//! Evaluation protocols: which samples of a manifest each task trains, validates and tests on.
//!
//! A [`Protocol`] expands into [`Task`]s over a manifest ([`Protocol::tasks`]); a task turns
//! into index lists ([`Task::apply`] → [`TaskSplit`]). The target of a task (the held-out
//! domain or attack) never reaches `train` or `val`: model selection uses source data only.
//!
//! # Leave-one-domain-out: `ocim`, `limited-source`, `synth-domain`
//! * `ocim`: OULU-NPU (`oulu`, O), CASIA-FASD (`casia`, C), Idiap Replay-Attack (`replay`, I),
//!   MSU-MFSD (`msu`, M); tasks `OCI-M`, `OMI-C`, `OCM-I`, `ICM-O` (sources, dash, target).
//! * `limited-source`: `MI-C` and `MI-O`.
//! * `synth-domain`: every domain of the manifest (SynthFAS: `synth-a` … `synth-d`) held out
//!   in turn; tasks `unseen-<domain>`.
//!
//! Which splits are used is [`ProtocolOptions::domain_splits`]:
//! * [`DomainSplits::Ssdg`] (default) — the data lists of SSDG (CVPR 2020,
//!   `data_label/generate_label.py` and `utils/utils.py::sample_frames` in
//!   taylover-pei/SSDG-CVPR2020), reused by the works that report OCIM tables after it
//!   (D²AM, ANRL, SSAN, …): a source trains on *all* its samples outside the dev split
//!   (train + test), and the target is tested on *all* its samples outside the dev split. This
//!   is the convention the published OCIM numbers use, so ours compare with them.
//! * [`DomainSplits::Official`] — each dataset's own split: sources train on their `train`
//!   split, the target is tested on its `test` split only.
//!
//! Validation never touches the target (SSDG selects its checkpoint on the target test set;
//! we do not). A source with a `dev` split validates on it (OULU-NPU, Replay-Attack,
//! SynthFAS). A source without one (CASIA-FASD, MSU-MFSD) holds out
//! [`ProtocolOptions::val_fraction`] of the subjects of its training pool, chosen by
//! [subject hold-out](#subject-hold-out); those subjects' samples go to `val` and none of them
//! to `train`.
//!
//! # Leave-one-attack-out: `siwm-loao`, `synth-attack`
//! * `siwm-loao`: the 13 SiW-M spoof types, [`SIWM_ATTACKS`], as the importer writes them
//!   (`kind:subtype`); tasks `unseen-<attack>` with `:` written `-` (`unseen-mask-silicone`).
//!   SiW-M has no official split, so subjects are split here (the manifest's `split` field
//!   is ignored), following the leave-one-out protocol of its paper (Liu et al., *Deep Tree
//!   Learning for Zero-shot Face Anti-Spoofing*, CVPR 2019; restated for SiW-Mv2 in
//!   CHELSEA234/Multi-domain-learning-FAS: 80 % of the live data train, 20 % test), made by
//!   subject: [`ProtocolOptions::siwm_test_fraction`] (20 %) of the subjects with live videos
//!   are test subjects, the other 80 % train. `test` = every sample of the held-out attack + the live
//!   samples of the test subjects; `train` = live + the 12 other attacks of the remaining
//!   subjects, less [`ProtocolOptions::siwm_val_fraction`] (10 %) of them, which form `val`
//!   (same data kinds). Test subjects contribute nothing to `train` or `val` (their other
//!   attacks are left out), so the live test faces are unseen identities; the held-out
//!   attack's samples are tested whoever wears them. The subject split is the same for all 13
//!   tasks.
//! * `synth-attack`: every attack type of the manifest (SynthFAS: `print`, `replay`, `mask`)
//!   held out in turn, over all its domains, using the manifest's subject-disjoint splits:
//!   `train` = train split without the held-out attack, `val` = dev split without it,
//!   `test` = the test split's live samples and held-out-attack samples.
//!
//! # Subject hold-out
//! Subjects are ranked by the 64-bit FNV-1a hash of `"<domain>/<subject>"` (ties by name);
//! the first `round(fraction × n)` — at least one, and never all — are held out. A subject's
//! rank depends only on its own id, so the choice is deterministic, independent of sample
//! order and of any seed; adding subjects moves the cut, never the order.

use std::collections::BTreeSet;
use std::fmt;

use fas_core::dataset::{Label, Manifest, Sample, Split, ATTACK_NONE};
use serde::{Deserialize, Serialize};

/// An evaluation protocol (see the module docs for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// O&C&I→M, O&M&I→C, O&C&M→I, I&C&M→O.
    Ocim,
    /// M&I→C and M&I→O.
    LimitedSource,
    /// SiW-M leave-one-attack-type-out, 13 tasks.
    SiwmLoao,
    /// Leave-one-domain-out over the manifest's domains (SynthFAS).
    SynthDomain,
    /// Leave-one-attack-type-out over the manifest's attack types (SynthFAS).
    SynthAttack,
    /// Intra-dataset: one task, `all`, on every domain with the manifest's own splits
    /// (train → train, dev → source validation, test → test). For in-domain baselines and
    /// for a user's own dataset.
    Intra,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::Ocim,
        Protocol::LimitedSource,
        Protocol::SiwmLoao,
        Protocol::SynthDomain,
        Protocol::SynthAttack,
        Protocol::Intra,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ocim => "ocim",
            Protocol::LimitedSource => "limited-source",
            Protocol::SiwmLoao => "siwm-loao",
            Protocol::SynthDomain => "synth-domain",
            Protocol::SynthAttack => "synth-attack",
            Protocol::Intra => "intra",
        }
    }

    /// The tasks of this protocol on `manifest`, with default options.
    pub fn tasks(&self, manifest: &Manifest) -> Result<Vec<Task>, ProtocolError> {
        self.tasks_with(manifest, &ProtocolOptions::default())
    }

    /// The tasks of this protocol on `manifest`. Fails when the manifest lacks a domain or
    /// attack type the protocol needs, naming it and listing what is present.
    pub fn tasks_with(
        &self,
        manifest: &Manifest,
        options: &ProtocolOptions,
    ) -> Result<Vec<Task>, ProtocolError> {
        options.check()?;
        let p = *self;
        match p {
            Protocol::Intra => {
                let domains: Vec<String> =
                    manifest.domains().iter().map(|d| d.to_string()).collect();
                Ok(vec![Task {
                    protocol: p,
                    name: "all".into(),
                    train_domains: domains,
                    train_attacks: spoof_attacks(manifest.samples.iter())
                        .iter()
                        .map(|a| a.to_string())
                        .collect(),
                    target: Target::Domain("all".into()),
                    options: options.clone(),
                }])
            }
            Protocol::Ocim => named_lodo(p, manifest, options, &OCIM_TASKS),
            Protocol::LimitedSource => named_lodo(p, manifest, options, &LIMITED_SOURCE_TASKS),
            Protocol::SynthDomain => {
                let domains = manifest.domains();
                if domains.len() < 2 {
                    return Err(ProtocolError::TooFew {
                        protocol: p,
                        what: "domains",
                        need: 2,
                        present: list(&domains),
                    });
                }
                Ok(domains
                    .iter()
                    .map(|&target| {
                        let sources: Vec<&str> =
                            domains.iter().copied().filter(|&d| d != target).collect();
                        lodo_task(
                            p,
                            manifest,
                            options,
                            format!("unseen-{target}"),
                            &sources,
                            target,
                        )
                    })
                    .collect())
            }
            Protocol::SynthAttack => {
                let attacks = spoof_attacks(manifest.samples.iter());
                if attacks.len() < 2 {
                    return Err(ProtocolError::TooFew {
                        protocol: p,
                        what: "attack types",
                        need: 2,
                        present: list(&attacks),
                    });
                }
                require_live(p, manifest.samples.iter(), "the manifest")?;
                let domains = manifest.domains();
                Ok(attacks
                    .iter()
                    .map(|&a| loao_task(p, options, &domains, &attacks, a))
                    .collect())
            }
            Protocol::SiwmLoao => {
                let domain = siwm_domain(manifest, options)?;
                let in_domain = manifest.samples.iter().filter(|s| s.domain == domain);
                let present = spoof_attacks(in_domain.clone());
                if let Some(extra) = present.iter().find(|a| !SIWM_ATTACKS.contains(*a)) {
                    return Err(ProtocolError::UnknownAttack {
                        protocol: p,
                        attack: extra.to_string(),
                        expected: SIWM_ATTACKS.join(", "),
                    });
                }
                if let Some(missing) = SIWM_ATTACKS.iter().find(|a| !present.contains(*a)) {
                    return Err(ProtocolError::MissingAttack {
                        protocol: p,
                        attack: missing.to_string(),
                        present: list(&present),
                    });
                }
                require_live(p, in_domain, &format!("domain {domain}"))?;
                let domains = [domain.as_str()];
                Ok(SIWM_ATTACKS
                    .iter()
                    .map(|&a| loao_task(p, options, &domains, &SIWM_ATTACKS, a))
                    .collect())
            }
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OCIM dataset codes and the manifest domain each stands for.
pub const OCIM_DOMAINS: [(char, &str); 4] =
    [('O', "oulu"), ('C', "casia"), ('I', "replay"), ('M', "msu")];

/// `(sources, target)` as OCIM codes, in the order the literature tabulates them.
const OCIM_TASKS: [(&str, char); 4] = [("OCI", 'M'), ("OMI", 'C'), ("OCM", 'I'), ("ICM", 'O')];
const LIMITED_SOURCE_TASKS: [(&str, char); 2] = [("MI", 'C'), ("MI", 'O')];

/// The 13 SiW-M spoof types as the importer writes them, in the order of the SiW-M paper's
/// tables: replay, print, five masks, three make-ups, three partial attacks.
pub const SIWM_ATTACKS: [&str; 13] = [
    "replay",
    "print",
    "mask:half",
    "mask:silicone",
    "mask:transparent",
    "mask:paper",
    "mask:mannequin",
    "makeup:obfuscation",
    "makeup:impersonation",
    "makeup:cosmetic",
    "partial:funnyeye",
    "partial:paperglasses",
    "partial:papercut",
];

/// Which splits leave-one-domain-out tasks use (see the module docs).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum DomainSplits {
    /// Sources train on train + test, the target is tested on train + test (SSDG's lists).
    #[default]
    Ssdg,
    /// Sources train on train, the target is tested on test.
    Official,
}

/// Knobs of the protocols; the defaults are the documented protocols.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolOptions {
    pub domain_splits: DomainSplits,
    /// Share of subjects held out for `val` from a source without a dev split.
    pub val_fraction: f64,
    /// Share of SiW-M's live subjects that are test subjects.
    pub siwm_test_fraction: f64,
    /// Share of the remaining SiW-M subjects that form `val`.
    pub siwm_val_fraction: f64,
    /// The manifest domain holding SiW-M; `None` when the manifest has only one domain.
    pub siwm_domain: Option<String>,
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        ProtocolOptions {
            domain_splits: DomainSplits::Ssdg,
            val_fraction: 0.2,
            siwm_test_fraction: 0.2,
            siwm_val_fraction: 0.1,
            siwm_domain: None,
        }
    }
}

impl ProtocolOptions {
    fn check(&self) -> Result<(), ProtocolError> {
        for (field, value) in [
            ("val_fraction", self.val_fraction),
            ("siwm_test_fraction", self.siwm_test_fraction),
            ("siwm_val_fraction", self.siwm_val_fraction),
        ] {
            if !(value > 0.0 && value < 1.0) {
                return Err(ProtocolError::BadOption { field, value });
            }
        }
        Ok(())
    }
}

/// What a task holds out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Target {
    Domain(String),
    Attack(String),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Domain(n) | Target::Attack(n) => n,
        }
    }
}

/// One train/evaluate task of a protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub protocol: Protocol,
    /// e.g. `"OCI-M"`, `"unseen-synth-a"`, `"unseen-mask-silicone"`; safe in a file name.
    pub name: String,
    /// Domains the task trains on.
    pub train_domains: Vec<String>,
    /// Spoof attack types the task trains on (never `"none"`).
    pub train_attacks: Vec<String>,
    pub target: Target,
    pub options: ProtocolOptions,
}

/// Indices into the manifest's samples, each list ascending. `train` and `val` hold no sample
/// of the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSplit {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// A protocol that cannot run on a manifest, or a bad option. Each message names what is
/// missing, what is present, and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("protocol {protocol}: the manifest has no samples of domain \"{domain}\" ({role}); domains present: {present} — import that dataset (`fas-train import`, then `fas-train prepare`) and merge its manifest, or choose a protocol the manifest covers")]
    MissingDomain {
        protocol: Protocol,
        domain: String,
        role: String,
        present: String,
    },
    #[error("protocol {protocol}: the manifest has no samples of attack \"{attack}\"; attacks present: {present} — re-run the importer, which writes SiW-M attacks as kind:subtype")]
    MissingAttack {
        protocol: Protocol,
        attack: String,
        present: String,
    },
    #[error("protocol {protocol}: attack \"{attack}\" is not a SiW-M spoof type; expected one of: {expected} — fix the importer's attack names")]
    UnknownAttack {
        protocol: Protocol,
        attack: String,
        expected: String,
    },
    #[error("protocol {protocol}: needs at least {need} {what}, the manifest has: {present} — generate or import more")]
    TooFew {
        protocol: Protocol,
        what: &'static str,
        need: usize,
        present: String,
    },
    #[error("protocol {protocol}: {scope} has no live samples — a spoof-only set cannot train or test a detector; import its bona fide videos")]
    NoLive { protocol: Protocol, scope: String },
    #[error("protocol {protocol}: the manifest has several domains ({present}) — set siwm_domain to the one holding SiW-M")]
    AmbiguousDomain { protocol: Protocol, present: String },
    #[error("task {task}: {part} would be empty: {why}")]
    EmptyPart {
        task: String,
        part: &'static str,
        why: String,
    },
    #[error("task {task}: {scope} has {have} subject(s); holding out {purpose} subjects needs at least 2 — add subjects{hint}")]
    TooFewSubjects {
        task: String,
        scope: String,
        have: usize,
        purpose: &'static str,
        hint: &'static str,
    },
    #[error("task {task}: {why} — build tasks with Protocol::tasks instead of editing them")]
    BadTask { task: String, why: String },
    #[error("protocol option {field} = {value}: must lie strictly between 0 and 1")]
    BadOption { field: &'static str, value: f64 },
}

// ---------------------------------------------------------------------------------------------
// Building tasks

fn list<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "(none)".into();
    }
    names
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Distinct spoof attack types, sorted.
fn spoof_attacks<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<&'a str> {
    let set: BTreeSet<&str> = samples
        .filter(|s| s.attack != ATTACK_NONE)
        .map(|s| s.attack.as_str())
        .collect();
    set.into_iter().collect()
}

fn require_live<'a>(
    protocol: Protocol,
    mut samples: impl Iterator<Item = &'a Sample>,
    scope: &str,
) -> Result<(), ProtocolError> {
    if samples.any(|s| s.label == Label::Live) {
        Ok(())
    } else {
        Err(ProtocolError::NoLive {
            protocol,
            scope: scope.into(),
        })
    }
}

fn ocim_domain(code: char) -> &'static str {
    OCIM_DOMAINS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .expect("task tables only use OCIM codes")
}

fn named_lodo(
    p: Protocol,
    manifest: &Manifest,
    options: &ProtocolOptions,
    table: &[(&str, char)],
) -> Result<Vec<Task>, ProtocolError> {
    let present = manifest.domains();
    for &(code, domain) in &OCIM_DOMAINS {
        let used_as: Vec<&str> = table
            .iter()
            .filter_map(|(src, tgt)| {
                if *tgt == code {
                    Some("a target")
                } else if src.contains(code) {
                    Some("a source")
                } else {
                    None
                }
            })
            .collect();
        if !used_as.is_empty() && !present.contains(&domain) {
            let role = if used_as.contains(&"a target") {
                format!("{code}, needed as a target")
            } else {
                format!("{code}, needed as a source")
            };
            return Err(ProtocolError::MissingDomain {
                protocol: p,
                domain: domain.into(),
                role,
                present: list(&present),
            });
        }
    }
    Ok(table
        .iter()
        .map(|(src, tgt)| {
            let sources: Vec<&str> = src.chars().map(ocim_domain).collect();
            lodo_task(
                p,
                manifest,
                options,
                format!("{src}-{tgt}"),
                &sources,
                ocim_domain(*tgt),
            )
        })
        .collect())
}

fn lodo_task(
    protocol: Protocol,
    manifest: &Manifest,
    options: &ProtocolOptions,
    name: String,
    sources: &[&str],
    target: &str,
) -> Task {
    let attacks = spoof_attacks(
        manifest
            .samples
            .iter()
            .filter(|s| sources.contains(&s.domain.as_str())),
    );
    Task {
        protocol,
        name,
        train_domains: sources.iter().map(|s| s.to_string()).collect(),
        train_attacks: attacks.iter().map(|s| s.to_string()).collect(),
        target: Target::Domain(target.into()),
        options: options.clone(),
    }
}

fn loao_task(
    protocol: Protocol,
    options: &ProtocolOptions,
    domains: &[&str],
    attacks: &[&str],
    held_out: &str,
) -> Task {
    Task {
        protocol,
        name: format!("unseen-{}", held_out.replace(':', "-")),
        train_domains: domains.iter().map(|s| s.to_string()).collect(),
        train_attacks: attacks
            .iter()
            .filter(|&&a| a != held_out)
            .map(|s| s.to_string())
            .collect(),
        target: Target::Attack(held_out.into()),
        options: options.clone(),
    }
}

fn siwm_domain(manifest: &Manifest, options: &ProtocolOptions) -> Result<String, ProtocolError> {
    let present = manifest.domains();
    match &options.siwm_domain {
        Some(d) if present.contains(&d.as_str()) => Ok(d.clone()),
        Some(d) => Err(ProtocolError::MissingDomain {
            protocol: Protocol::SiwmLoao,
            domain: d.clone(),
            role: "set as siwm_domain".into(),
            present: list(&present),
        }),
        None => match present.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ProtocolError::TooFew {
                protocol: Protocol::SiwmLoao,
                what: "domain",
                need: 1,
                present: "(none)".into(),
            }),
            _ => Err(ProtocolError::AmbiguousDomain {
                protocol: Protocol::SiwmLoao,
                present: list(&present),
            }),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Applying tasks

impl Task {
    /// The task's train / val / test indices into `manifest.samples`.
    pub fn apply(&self, manifest: &Manifest) -> Result<TaskSplit, ProtocolError> {
        let mut split = match (&self.protocol, &self.target) {
            (
                Protocol::Ocim | Protocol::LimitedSource | Protocol::SynthDomain,
                Target::Domain(t),
            ) => self.apply_lodo(manifest, t)?,
            (Protocol::SynthAttack, Target::Attack(a)) => {
                self.apply_loao_manifest_splits(manifest, a)
            }
            (Protocol::SiwmLoao, Target::Attack(a)) => self.apply_siwm(manifest, a)?,
            (Protocol::Intra, _) => {
                let by = |split: Split| indices(manifest, |s| s.split == split);
                TaskSplit {
                    train: by(Split::Train),
                    val: by(Split::Dev),
                    test: by(Split::Test),
                }
            }
            (p, t) => {
                return Err(ProtocolError::BadTask {
                    task: self.name.clone(),
                    why: format!("protocol {p} cannot hold out {t:?}"),
                })
            }
        };
        for part in [&mut split.train, &mut split.val, &mut split.test] {
            part.sort_unstable();
        }
        self.check_parts(manifest, &split)?;
        Ok(split)
    }

    fn apply_lodo(&self, manifest: &Manifest, target: &str) -> Result<TaskSplit, ProtocolError> {
        let official = self.options.domain_splits == DomainSplits::Official;
        let in_pool = |s: &Sample| {
            if official {
                s.split == Split::Train
            } else {
                s.split != Split::Dev
            }
        };
        let pool_name = if official {
            "split train"
        } else {
            "splits train + test"
        };
        let mut out = TaskSplit::default();
        for source in &self.train_domains {
            let idx = |f: &dyn Fn(&Sample) -> bool| -> Vec<usize> {
                indices(manifest, |s| s.domain == *source && f(s))
            };
            let pool = idx(&in_pool);
            if pool.is_empty() {
                return Err(ProtocolError::EmptyPart {
                    task: self.name.clone(),
                    part: "train",
                    why: format!("source domain {source} has no samples in {pool_name} — check the importer's split field{}", if official { ", or use domain_splits = ssdg" } else { "" }),
                });
            }
            let dev = idx(&|s: &Sample| s.split == Split::Dev);
            if !dev.is_empty() {
                out.train.extend(pool);
                out.val.extend(dev);
                continue;
            }
            let subjects: BTreeSet<&str> = pool
                .iter()
                .map(|&i| manifest.samples[i].subject.as_str())
                .collect();
            let held = hold_out(source, &subjects, self.options.val_fraction).ok_or_else(|| {
                ProtocolError::TooFewSubjects {
                    task: self.name.clone(),
                    scope: format!("source {source} (no dev split; {pool_name})"),
                    have: subjects.len(),
                    purpose: "validation",
                    hint: " or give the source a dev split",
                }
            })?;
            for i in pool {
                if held.contains(manifest.samples[i].subject.as_str()) {
                    out.val.push(i);
                } else {
                    out.train.push(i);
                }
            }
        }
        out.test = indices(manifest, |s| {
            s.domain == target
                && if official {
                    s.split == Split::Test
                } else {
                    s.split != Split::Dev
                }
        });
        if out.test.is_empty() {
            return Err(ProtocolError::EmptyPart {
                task: self.name.clone(),
                part: "test",
                why: format!(
                    "target domain {target} has no samples in {} — check the importer's split field",
                    if official { "split test" } else { "splits train + test" }
                ),
            });
        }
        Ok(out)
    }

    fn apply_loao_manifest_splits(&self, manifest: &Manifest, held_out: &str) -> TaskSplit {
        let mut out = TaskSplit::default();
        for (i, s) in manifest.samples.iter().enumerate() {
            if !self.train_domains.contains(&s.domain) {
                continue;
            }
            let target = s.attack == held_out;
            match s.split {
                Split::Test if target || s.label == Label::Live => out.test.push(i),
                Split::Train if !target => out.train.push(i),
                Split::Dev if !target => out.val.push(i),
                _ => {}
            }
        }
        out
    }

    fn apply_siwm(&self, manifest: &Manifest, held_out: &str) -> Result<TaskSplit, ProtocolError> {
        let domain = self
            .train_domains
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        let in_domain: Vec<usize> = indices(manifest, |s| s.domain == domain);
        let live_subjects: BTreeSet<&str> = in_domain
            .iter()
            .map(|&i| &manifest.samples[i])
            .filter(|s| s.label == Label::Live)
            .map(|s| s.subject.as_str())
            .collect();
        let test_subjects = hold_out(domain, &live_subjects, self.options.siwm_test_fraction)
            .ok_or_else(|| ProtocolError::TooFewSubjects {
                task: self.name.clone(),
                scope: format!("domain {domain} (subjects with live samples)"),
                have: live_subjects.len(),
                purpose: "test",
                hint: "",
            })?;
        let rest: BTreeSet<&str> = in_domain
            .iter()
            .map(|&i| manifest.samples[i].subject.as_str())
            .filter(|s| !test_subjects.contains(s))
            .collect();
        let val_subjects =
            hold_out(domain, &rest, self.options.siwm_val_fraction).ok_or_else(|| {
                ProtocolError::TooFewSubjects {
                    task: self.name.clone(),
                    scope: format!("domain {domain} (subjects outside the test subjects)"),
                    have: rest.len(),
                    purpose: "validation",
                    hint: "",
                }
            })?;
        let mut out = TaskSplit::default();
        for i in in_domain {
            let s = &manifest.samples[i];
            let subject = s.subject.as_str();
            if s.attack == held_out {
                out.test.push(i);
            } else if test_subjects.contains(subject) {
                if s.label == Label::Live {
                    out.test.push(i);
                }
            } else if val_subjects.contains(subject) {
                out.val.push(i);
            } else {
                out.train.push(i);
            }
        }
        Ok(out)
    }

    /// Every part non-empty; train has both classes; test has both classes.
    fn check_parts(&self, manifest: &Manifest, split: &TaskSplit) -> Result<(), ProtocolError> {
        let has =
            |part: &[usize], label: Label| part.iter().any(|&i| manifest.samples[i].label == label);
        for (part, name) in [
            (&split.train, "train"),
            (&split.val, "val"),
            (&split.test, "test"),
        ] {
            if part.is_empty() {
                return Err(ProtocolError::EmptyPart {
                    task: self.name.clone(),
                    part: name,
                    why: "no sample of the manifest falls into it — check the manifest's split and subject fields".into(),
                });
            }
        }
        for (part, name) in [(&split.train, "train"), (&split.test, "test")] {
            for label in [Label::Live, Label::Spoof] {
                if !has(part, label) {
                    return Err(ProtocolError::EmptyPart {
                        task: self.name.clone(),
                        part: name,
                        why: format!(
                            "it has no {} samples (a detector needs both classes) — check the manifest's labels and splits",
                            label.as_str()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// [`Task::apply`] as a free function.
pub fn apply(task: &Task, manifest: &Manifest) -> Result<TaskSplit, ProtocolError> {
    task.apply(manifest)
}

fn indices(manifest: &Manifest, keep: impl Fn(&Sample) -> bool) -> Vec<usize> {
    manifest
        .samples
        .iter()
        .enumerate()
        .filter(|(_, s)| keep(s))
        .map(|(i, _)| i)
        .collect()
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The held-out subjects (see the module docs); `None` with fewer than 2 subjects.
fn hold_out<'a>(
    domain: &str,
    subjects: &BTreeSet<&'a str>,
    fraction: f64,
) -> Option<BTreeSet<&'a str>> {
    let n = subjects.len();
    if n < 2 {
        return None;
    }
    let count = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
    let mut ranked: Vec<(u64, &str)> = subjects
        .iter()
        .map(|&s| (fnv1a(format!("{domain}/{s}").as_bytes()), s))
        .collect();
    ranked.sort_unstable();
    Some(ranked.into_iter().take(count).map(|(_, s)| s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_answers() {
        // Reference values of the 64-bit FNV-1a test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn hold_out_takes_a_rounded_share_and_never_all() {
        let subjects: BTreeSet<&str> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"].into();
        assert_eq!(hold_out("d", &subjects, 0.2).unwrap().len(), 2);
        assert_eq!(hold_out("d", &subjects, 0.01).unwrap().len(), 1);
        assert_eq!(hold_out("d", &subjects, 0.99).unwrap().len(), 9);
        assert!(hold_out("d", &["a"].into(), 0.5).is_none());
    }

    #[test]
    fn hold_out_picks_the_smallest_hashes() {
        // FNV-1a of "x/<s>" computed independently (Python): s1 < s3 < s2 < s5 < s4.
        let a: BTreeSet<&str> = ["s1", "s2", "s3", "s4", "s5"].into();
        assert_eq!(hold_out("x", &a, 0.4).unwrap(), ["s1", "s3"].into());
        assert_eq!(hold_out("x", &a, 0.6).unwrap(), ["s1", "s2", "s3"].into());
    }
}
