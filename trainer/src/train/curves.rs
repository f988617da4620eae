//! Training curves from a run's `log.jsonl`: `plots/loss.png` (the total loss per logged
//! step), `plots/validation.png` (source-validation AUC and EER) and, for recipes that
//! re-assign pseudo-domains (D²AM), `plots/pseudo_domains.png`: the NMI of each epoch's
//! assignment against the previous epoch's and against the true source domains, the
//! analysis of D²AM's Fig. 7.
//!
//! A resumed run appends to the log from its checkpoint's step, so a step can occur more
//! than once; the last record of a step wins, as it is the one the final weights descend
//! from. A line that is not JSON (a record cut short by a crash) is skipped and counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fas_core::plot::{lines_png, Line};
use serde_json::Value;

/// Series read from a log: per key, x → y (x = step, or epoch for pseudo-domain records).
#[derive(Debug, Default)]
pub struct Curves {
    pub series: BTreeMap<String, BTreeMap<i64, f64>>,
    /// Lines that were not JSON objects.
    pub skipped: usize,
}

/// One plot: its file, its x axis and the `(log key, legend)` of its lines.
struct PlotSpec {
    file: &'static str,
    /// Plotted against the epoch: the keys come from the log's epoch-start records.
    per_epoch: bool,
    y_desc: &'static str,
    lines: &'static [(&'static str, &'static str)],
}

const PLOTS: [PlotSpec; 3] = [
    PlotSpec {
        file: "loss.png",
        per_epoch: false,
        y_desc: "training loss",
        lines: &[("loss", "total loss")],
    },
    PlotSpec {
        file: "validation.png",
        per_epoch: false,
        y_desc: "source validation",
        lines: &[("val_auc", "AUC"), ("val_eer", "EER")],
    },
    PlotSpec {
        file: "pseudo_domains.png",
        per_epoch: true,
        y_desc: "NMI of pseudo-domain labels",
        lines: &[
            ("pseudo_nmi_prev", "vs previous epoch"),
            ("pseudo_nmi_true", "vs true source domains"),
        ],
    },
];

/// Whether `key` is one of the per-epoch plots' keys (read from epoch-start records).
fn per_epoch_key(key: &str) -> bool {
    PLOTS
        .iter()
        .filter(|p| p.per_epoch)
        .any(|p| p.lines.iter().any(|(k, _)| *k == key))
}

impl Curves {
    pub fn parse(text: &str) -> Curves {
        let mut c = Curves::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(Value::Object(rec)) = serde_json::from_str::<Value>(line) else {
                c.skipped += 1;
                continue;
            };
            let int = |k: &str| rec.get(k).and_then(Value::as_i64);
            let epoch_start = rec.get("epoch_start").and_then(Value::as_bool) == Some(true);
            let Some(x) = (if epoch_start {
                int("epoch")
            } else {
                int("step")
            }) else {
                continue;
            };
            for (k, v) in &rec {
                let Some(y) = v.as_f64() else { continue };
                if epoch_start != per_epoch_key(k) {
                    continue;
                }
                c.series.entry(k.clone()).or_default().insert(x, y);
            }
        }
        c
    }

    fn line(&self, key: &str, name: &str) -> Option<Line> {
        let s = self.series.get(key)?;
        Some(Line {
            name: name.to_string(),
            points: s.iter().map(|(&x, &y)| (x as f64, y)).collect(),
        })
    }
}

/// Writes the curves of `log` into `plots` (see the module documentation) and returns the
/// files written; a plot whose series are absent from the log is not written.
pub fn write_curves(log: &Path, plots: &Path, title: &str) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let curves = Curves::parse(&text);
    if curves.skipped > 0 {
        eprintln!(
            "warning: {}: {} line(s) are not JSON records (cut short by a crash?); the curves skip them",
            log.display(),
            curves.skipped
        );
    }
    let mut written = Vec::new();
    for spec in &PLOTS {
        let lines: Vec<Line> = spec
            .lines
            .iter()
            .filter_map(|(k, name)| curves.line(k, name))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let path = plots.join(spec.file);
        let x_desc = if spec.per_epoch { "epoch" } else { "step" };
        let y_desc = spec.y_desc;
        lines_png(&path, &format!("{title}: {y_desc}"), x_desc, y_desc, &lines)
            .with_context(|| format!("plotting {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"epoch":0,"epoch_start":true,"pseudo_domain_0":155.0,"pseudo_nmi_true":0.1,"step":0}
{"cls":0.68,"epoch":0,"loss":3.6,"step":10}
{"cls":0.66,"epoch":0,"loss":3.4,"step":20}
{"best":true,"step":20,"val_auc":0.8,"val_eer":0.2}
{"epoch":1,"epoch_start":true,"pseudo_nmi_prev":0.4,"pseudo_nmi_true":0.08,"step":39}
{"cls":0.6,"epoch":1,"loss":3.0,"st
{"cls":0.6,"epoch":1,"loss":2.9,"step":20}
{"cls":0.5,"epoch":1,"loss":2.5,"step":40}
"#;

    #[test]
    fn last_record_of_a_step_wins_and_cut_lines_are_skipped() {
        let c = Curves::parse(LOG);
        assert_eq!(c.skipped, 1);
        let loss: Vec<_> = c.series["loss"].iter().map(|(&x, &y)| (x, y)).collect();
        assert_eq!(loss, [(10, 3.6), (20, 2.9), (40, 2.5)]);
        assert_eq!(c.series["val_auc"].len(), 1);
        // Epoch-start records are keyed by epoch, and only their NMI keys are kept.
        let nmi: Vec<_> = c.series["pseudo_nmi_true"]
            .iter()
            .map(|(&x, &y)| (x, y))
            .collect();
        assert_eq!(nmi, [(0, 0.1), (1, 0.08)]);
        assert_eq!(c.series["pseudo_nmi_prev"].len(), 1);
        assert!(!c.series.contains_key("pseudo_domain_0"));
        // A training record's `epoch` is a number like any other: a series keyed by step,
        // not the x of its record.
        assert_eq!(
            c.series["epoch"].keys().copied().collect::<Vec<_>>(),
            [10, 20, 40]
        );
    }

    #[test]
    fn plots_are_written_only_for_series_the_log_has() {
        let dir = std::env::temp_dir().join(format!("fas-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log.jsonl");
        std::fs::write(&log, LOG).unwrap();
        let w = write_curves(&log, &dir, "t").unwrap();
        let names: Vec<_> = w
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["loss.png", "validation.png", "pseudo_domains.png"]);
        assert!(w.iter().all(|p| image::open(p).is_ok()));

        let plain = dir.join("plain.jsonl");
        std::fs::write(
            &plain,
            "{\"loss\":1.0,\"step\":1}\n{\"loss\":0.5,\"step\":2}\n",
        )
        .unwrap();
        let sub = dir.join("plain");
        std::fs::create_dir_all(&sub).unwrap();
        let w = write_curves(&plain, &sub, "t").unwrap();
        assert_eq!(w, [sub.join("loss.png")]);
        assert!(write_curves(&dir.join("missing.jsonl"), &dir, "t")
            .unwrap_err()
            .to_string()
            .contains("missing.jsonl"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
