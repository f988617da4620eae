//! Every recipe `fas-train train --recipe` knows, one [`Entry`] each. A recipe's module
//! declares its entry in one place (`recipe/<name>/setup.rs`): its defaults, the
//! recipe-specific flags and `--ablate` switches it takes, and how it builds itself from the
//! arguments; [`RECIPES`] lists the entries. `app::train` only runs the shared stages around
//! the recipe it gets from here.

use anyhow::{bail, Result};
use tch::Device;

use super::Recipe;
use crate::cli::{Ablation, InputKind, OptimizerName, ScheduleName, TrainArgs};
use crate::data::loader::Dataset;
use crate::train::optim::AdamConfig;

/// The registered recipes, in `--help` order.
pub const RECIPES: &[Entry] = &[
    super::baseline::setup::ENTRY,
    super::depthnet::ENTRY,
    super::anrl::setup::ENTRY,
    super::d2am::setup::ENTRY,
    super::dlif::setup::ENTRY,
    super::dualstage::setup::ENTRY,
];

/// A recipe's defaults for the shared flags it does not take from the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    pub input: InputKind,
    pub size: u32,
    pub depth_weight: f64,
    pub optimizer: OptimizerName,
    pub lr: f64,
    pub schedule: ScheduleName,
    /// `--step-every` in epochs (a recipe whose paper halves the rate every so many
    /// epochs); `None`: 1000 steps.
    pub step_every_epochs: Option<usize>,
}

impl Defaults {
    /// The baseline's: RGB at 224 px, no depth, AdamW at 1e-3 on a cosine schedule.
    pub const BASE: Defaults = Defaults {
        input: InputKind::Rgb,
        size: 224,
        depth_weight: 0.0,
        optimizer: OptimizerName::Adamw,
        lr: 1e-3,
        schedule: ScheduleName::Cosine,
        step_every_epochs: None,
    };
}

/// What a recipe builds from: the arguments and what the shared stages resolved from them.
pub struct Setup<'a> {
    pub args: &'a TrainArgs,
    pub dataset: &'a Dataset,
    /// The task's training indices.
    pub train: &'a [usize],
    pub in_channels: usize,
    pub size: u32,
    pub depth_weight: f64,
    pub adam: AdamConfig,
    pub device: Device,
}

impl Setup<'_> {
    pub fn ablated(&self, x: Ablation) -> bool {
        self.args.ablate.contains(&x)
    }
}

/// A built recipe, the model configuration `run.json` records and the side of the depth
/// maps the loader must produce (`None`: no depth supervision).
pub struct Built {
    pub recipe: Box<dyn Recipe>,
    pub model: serde_json::Value,
    pub depth_size: Option<u32>,
}

/// One registered recipe.
pub struct Entry {
    /// `--recipe <name>`, also `run.json`'s `recipe`.
    pub name: &'static str,
    /// One line for `--recipe`'s help.
    pub about: &'static str,
    pub defaults: fn() -> Defaults,
    /// The recipe-specific flags ([`TrainArgs::recipe_flags`]) it takes; the others refuse.
    pub flags: &'static [&'static str],
    /// The `--ablate` switches it takes.
    pub ablations: &'static [Ablation],
    pub build: fn(&Setup) -> Result<Built>,
    /// `run.json`'s model through the recipe's config type, so that `--resume` compares
    /// fields added since (with their defaults) equal to a run.json written without them.
    pub canonical_model: fn(&serde_json::Value) -> Result<serde_json::Value>,
}

/// [`Entry::canonical_model`] of a recipe whose config has not grown fields.
pub fn as_written(m: &serde_json::Value) -> Result<serde_json::Value> {
    Ok(m.clone())
}

/// The names of [`RECIPES`].
pub fn names() -> Vec<&'static str> {
    RECIPES.iter().map(|e| e.name).collect()
}

/// `--recipe`'s values, with each recipe's one line of help.
pub fn value_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        RECIPES
            .iter()
            .map(|e| clap::builder::PossibleValue::new(e.name).help(e.about)),
    )
}

/// The entry named `name`.
pub fn find(name: &str) -> Result<&'static Entry> {
    match RECIPES.iter().find(|e| e.name == name) {
        Some(e) => Ok(e),
        None => bail!(
            "--recipe {name}: no such recipe; choose one of {}",
            names().join(", ")
        ),
    }
}

/// Refuses the recipe-specific flags and `--ablate` switches given that belong to other
/// recipes than `entry`'s.
pub fn check_flags(a: &TrainArgs, entry: &Entry) -> Result<()> {
    for flag in a.recipe_flags() {
        if !entry.flags.contains(&flag) {
            let owners = owners(|e| e.flags.contains(&flag));
            bail!("{flag} is a --recipe {owners} setting; drop it or use --recipe {owners}");
        }
    }
    for &x in &a.ablate {
        if !entry.ablations.contains(&x) {
            let name = clap::ValueEnum::to_possible_value(&x)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            let owners = owners(|e| e.ablations.contains(&x));
            bail!(
                "--ablate {name} is a --recipe {owners} setting; drop it or use --recipe {owners}"
            );
        }
    }
    Ok(())
}

/// The names of the recipes `owns` picks, `a or b`.
fn owners(owns: impl Fn(&Entry) -> bool) -> String {
    let v: Vec<&str> = RECIPES.iter().filter(|e| owns(e)).map(|e| e.name).collect();
    v.join(" or ")
}

/// `fas-train train` arguments from a command line after `--out o` (unit tests).
#[cfg(test)]
pub(crate) fn parse_train_args(args: &[&str]) -> TrainArgs {
    use clap::Parser;
    let mut v = vec![
        "fas-train",
        "train",
        "--manifest",
        "m.jsonl",
        "--protocol",
        "synth-domain",
        "--task",
        "t",
        "--out",
        "o",
    ];
    v.extend_from_slice(args);
    match crate::cli::Cli::try_parse_from(v).unwrap().command {
        crate::cli::Command::Train(a) => *a,
        _ => unreachable!("a train command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_flag_and_switch_has_an_owner() {
        let mut n = names();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), RECIPES.len());
        for x in <Ablation as clap::ValueEnum>::value_variants() {
            assert!(!owners(|e| e.ablations.contains(x)).is_empty(), "{x:?}");
        }
        let all = parse_train_args(&[
            "--style-cross-levels",
            "low",
            "--style-cross-flow",
            "parallel",
            "--clusters",
            "3",
            "--first-order",
            "--stage1-fraction",
            "0.5",
        ]);
        for f in all.recipe_flags() {
            assert!(!owners(|e| e.flags.contains(&f)).is_empty(), "{f}");
        }
        assert_eq!(all.recipe_flags().len(), 5);
    }

    #[test]
    fn another_recipes_flag_is_refused_naming_its_owner() {
        let a = parse_train_args(&["--recipe", "baseline", "--first-order"]);
        let e = check_flags(&a, find("baseline").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--first-order is a --recipe anrl or d2am setting"),
            "{e}"
        );
        let a = parse_train_args(&["--recipe", "anrl", "--ablate", "no-v"]);
        let e = check_flags(&a, find("anrl").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--ablate no-v is a --recipe dlif setting"),
            "{e}"
        );
        let e = find("nope").err().unwrap().to_string();
        assert!(
            e.contains("--recipe nope") && e.contains("dualstage"),
            "{e}"
        );
    }
}
