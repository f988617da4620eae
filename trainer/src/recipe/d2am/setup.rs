//! `--recipe d2am`: its registry entry and how it builds itself from the arguments.

use anyhow::{bail, Result};

use super::{D2am, D2amConfig, DomainSource, DEFAULT_LR};
use crate::cli::{Ablation, InputKind, TrainArgs};
use crate::recipe::anrl::setup::depthnet_only;
use crate::recipe::registry::{as_written, Built, Defaults, Entry, Setup};
use crate::train::optim::AdamConfig;

pub const ENTRY: Entry = Entry {
    name: "d2am",
    about: "D²AM (Chen et al., AAAI 2021): DepthNet with domain representation learning \
            modules, pseudo-domains by clustering every epoch (no domain labels), \
            meta-learning with an MMD-regularised meta-learner, depth supervision",
    defaults: || Defaults {
        input: InputKind::RgbHsv,
        size: 256,
        depth_weight: 1.0,
        lr: DEFAULT_LR,
        ..Defaults::BASE
    },
    flags: &["--clusters", "--first-order"],
    ablations: &[
        Ablation::TrueDomains,
        Ablation::RandomDomains,
        Ablation::NoSelection,
        Ablation::NoEntropy,
        Ablation::NoMmd,
    ],
    build,
    canonical_model: as_written,
};

fn build(s: &Setup) -> Result<Built> {
    depthnet_only(s, "d2am")?;
    let model = config(s.args, s.in_channels, s.size, s.depth_weight, s.adam)?;
    let mut r = D2am::new(model.clone(), s.device, s.args.seed)?;
    if let Some(w) = &s.args.init_weights {
        r.load_backbone_weights(w)?;
    }
    let depth_size = (s.depth_weight > 0.0).then(|| r.depth_size()).transpose()?;
    Ok(Built {
        recipe: Box::new(r),
        model: serde_json::to_value(&model)?,
        depth_size,
    })
}

/// Where the pseudo-domains come from: `--ablate true-domains|random-domains`, else
/// clustering.
fn domain_source(a: &TrainArgs) -> Result<DomainSource> {
    let has = |x| a.ablate.contains(&x);
    let domains = match (has(Ablation::TrueDomains), has(Ablation::RandomDomains)) {
        (true, true) => bail!(
            "--ablate true-domains and random-domains both replace the clustering; choose one"
        ),
        (true, false) => DomainSource::True,
        (false, true) => DomainSource::Random,
        (false, false) => DomainSource::Clusters,
    };
    if has(Ablation::NoSelection) && domains != DomainSource::Clusters {
        bail!(
            "--ablate no-selection changes which features are clustered; with true-domains or \
             random-domains nothing is clustered — drop one of them"
        );
    }
    Ok(domains)
}

/// The model configuration from the arguments: the ablation switches (`--ablate
/// true-domains|random-domains|no-selection|no-entropy|no-mmd`) and `--clusters`, refusing
/// combinations that contradict each other.
pub(crate) fn config(
    a: &TrainArgs,
    in_channels: usize,
    size: u32,
    depth_weight: f64,
    adam: AdamConfig,
) -> Result<D2amConfig> {
    let has = |x| a.ablate.contains(&x);
    let domains = domain_source(a)?;
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
        no_selection: has(Ablation::NoSelection),
        no_entropy: has(Ablation::NoEntropy),
        no_mmd: has(Ablation::NoMmd),
        second_order: !a.first_order,
        adam,
        grad_clip: a.clip,
        ..d
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::registry::parse_train_args;

    fn d2am(extra: &[&str]) -> Result<D2amConfig> {
        let mut v = vec!["--recipe", "d2am"];
        v.extend_from_slice(extra);
        config(&parse_train_args(&v), 6, 32, 1.0, AdamConfig::default())
    }

    /// Every D²AM switch sets its own config field and nothing else; `--clusters` is K.
    #[test]
    fn d2am_ablations_and_clusters_map_to_the_config() {
        let base = d2am(&[]).unwrap();
        assert_eq!(base.clusters, 3);
        assert_eq!(base.domains, DomainSource::Clusters);
        assert!(!base.no_selection && !base.no_entropy && !base.no_mmd);
        let one = |flag: &str| d2am(&["--ablate", flag]).unwrap();
        assert_eq!(
            one("true-domains"),
            D2amConfig {
                domains: DomainSource::True,
                ..base.clone()
            }
        );
        assert_eq!(
            one("random-domains"),
            D2amConfig {
                domains: DomainSource::Random,
                ..base.clone()
            }
        );
        let flags = [
            (
                "no-selection",
                D2amConfig {
                    no_selection: true,
                    ..base.clone()
                },
            ),
            (
                "no-entropy",
                D2amConfig {
                    no_entropy: true,
                    ..base.clone()
                },
            ),
            (
                "no-mmd",
                D2amConfig {
                    no_mmd: true,
                    ..base.clone()
                },
            ),
        ];
        for (flag, want) in flags {
            assert_eq!(one(flag), want, "{flag}");
        }
        for k in [2usize, 4, 8] {
            let c = d2am(&["--clusters", &k.to_string()]).unwrap();
            assert_eq!(
                c,
                D2amConfig {
                    clusters: k,
                    ..base.clone()
                }
            );
        }
        let c = d2am(&["--ablate", "random-domains,no-mmd", "--clusters", "2"]).unwrap();
        assert_eq!(
            (c.domains, c.no_mmd, c.clusters),
            (DomainSource::Random, true, 2)
        );
        // The run.json record a results table reads.
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["domains"], "random");
        assert_eq!(v["no_mmd"], true);
        assert_eq!(v["clusters"], 2);
    }

    #[test]
    fn d2am_refuses_contradictory_switches() {
        let err = |extra: &[&str]| format!("{:#}", d2am(extra).unwrap_err());
        for k in ["1", "9"] {
            let e = err(&["--clusters", k]);
            assert!(e.contains("--clusters") && e.contains("2 to 8"), "{e}");
        }
        let e = err(&["--ablate", "true-domains", "--clusters", "4"]);
        assert!(
            e.contains("--clusters") && e.contains("true-domains"),
            "{e}"
        );
        let e = err(&["--ablate", "true-domains,random-domains"]);
        assert!(e.contains("choose one"), "{e}");
        let e = err(&["--ablate", "random-domains,no-selection"]);
        assert!(e.contains("no-selection"), "{e}");
    }
}
