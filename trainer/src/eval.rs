//! Evaluation of scores on any manifest: frame- and video-level metrics with the decision
//! threshold chosen **both** ways, side by side:
//!
//! - `deployable`: threshold at the EER of the *source validation* scores — what a
//!   deployment can actually know;
//! - `oracle`: threshold at the EER of the *target test* scores themselves — what many
//!   papers report as HTER without saying so; comparable with them, not deployable.
//!
//! All numbers come from fas-core's metrics; this module only organises them.

use std::path::Path;

use anyhow::{Context, Result};
use fas_core::dataset::{Label, Sample};
use fas_core::metrics::{self, FrameScore, Report, Roc, Threshold};
use serde::{Deserialize, Serialize};

/// One sample's score (`p_live`).
#[derive(Debug, Clone)]
pub struct Scored<'a> {
    pub sample: &'a Sample,
    pub score: f64,
}

/// Metrics at one level (frames or videos).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    /// Threshold from the source validation set's EER.
    pub val_threshold: f64,
    /// Rates at `val_threshold` (deployable).
    pub deployable: Report,
    /// Rates at the test set's own EER threshold (paper-comparable).
    pub oracle: Report,
}

/// Frame- and video-level results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub frame: LevelReport,
    pub video: LevelReport,
}

fn video_key(s: &Sample) -> String {
    format!("{}/{}", s.domain, s.video)
}

fn frame_columns(xs: &[Scored]) -> (Vec<f64>, Vec<Label>, Vec<String>) {
    (
        xs.iter().map(|x| x.score).collect(),
        xs.iter().map(|x| x.sample.label).collect(),
        xs.iter().map(|x| x.sample.attack.clone()).collect(),
    )
}

fn video_columns(xs: &[Scored]) -> Result<(Vec<f64>, Vec<Label>, Vec<String>)> {
    let frames: Vec<FrameScore> = xs
        .iter()
        .map(|x| FrameScore {
            video: video_key(x.sample),
            label: x.sample.label,
            attack: x.sample.attack.clone(),
            score: x.score,
        })
        .collect();
    Ok(metrics::columns(&metrics::aggregate_videos(&frames)?))
}

type Columns = (Vec<f64>, Vec<Label>, Vec<String>);

fn level(val: &Columns, test: &Columns) -> Result<LevelReport> {
    let val_t = Threshold::at_eer(&val.0, &val.1).context("source validation set")?;
    let test_t = Threshold::at_eer(&test.0, &test.1).context("test set")?;
    Ok(LevelReport {
        val_threshold: val_t.value,
        deployable: Report::compute(&test.0, &test.1, &test.2, val_t.value)?,
        oracle: Report::compute(&test.0, &test.1, &test.2, test_t.value)?,
    })
}

/// Evaluates `test` scores with the threshold chosen on `val` (source validation) and on
/// the test set's own EER, at frame and video level.
pub fn evaluate(val: &[Scored], test: &[Scored]) -> Result<EvalReport> {
    let frame = level(&frame_columns(val), &frame_columns(test)).context("frame level")?;
    let video = level(&video_columns(val)?, &video_columns(test)?).context("video level")?;
    Ok(EvalReport { frame, video })
}

/// Writes `roc.png` and `scores.png` (frame level, both thresholds marked) into `dir`.
pub fn write_plots(dir: &Path, title: &str, test: &[Scored], report: &EvalReport) -> Result<()> {
    let (scores, labels, _) = frame_columns(test);
    let roc = Roc::new(&scores, &labels)?;
    fas_core::plot::roc_png(&dir.join("roc.png"), title, &[("frame level", &roc)])?;
    let live: Vec<f64> = test
        .iter()
        .filter(|x| x.sample.label == Label::Live)
        .map(|x| x.score)
        .collect();
    let spoof: Vec<f64> = test
        .iter()
        .filter(|x| x.sample.label == Label::Spoof)
        .map(|x| x.score)
        .collect();
    fas_core::plot::score_histogram_png(
        &dir.join("scores.png"),
        title,
        &live,
        &spoof,
        &[
            ("source-val EER threshold", report.frame.val_threshold),
            ("test EER threshold (oracle)", report.frame.oracle.threshold),
        ],
        40,
    )?;
    Ok(())
}

impl EvalReport {
    /// A plain-text table of both conventions at both levels.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "level  threshold            thr     HTER    ACER    APCER   BPCER   AUC     EER\n",
        );
        for (lvl, r) in [("frame", &self.frame), ("video", &self.video)] {
            for (name, rep) in [
                ("source-val EER", &r.deployable),
                ("test EER (oracle)", &r.oracle),
            ] {
                s += &format!(
                    "{lvl:<6} {name:<20} {:.4}  {:.4}  {:.4}  {:.4}  {:.4}  {:.4}  {:.4}\n",
                    rep.threshold, rep.hter, rep.acer, rep.apcer, rep.bpcer, rep.auc, rep.eer
                );
            }
        }
        // Threshold-free, so one line per level: which attack type ranks above live faces.
        for (lvl, r) in [("frame", &self.frame), ("video", &self.video)] {
            let per: Vec<String> = r
                .deployable
                .auc_per_attack
                .iter()
                .map(|(t, a)| format!("{t} {a:.4}"))
                .collect();
            s += &format!("{lvl:<6} AUC per attack type: {}\n", per.join(", "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::dataset::{Split, DATASET_MANIFEST_VERSION};

    fn sample(label: Label, attack: &str, video: &str) -> Sample {
        Sample {
            v: DATASET_MANIFEST_VERSION,
            path: format!("{video}.png"),
            label,
            attack: attack.into(),
            domain: "synth-a".into(),
            subject: "s1".into(),
            device: "cam".into(),
            split: Split::Test,
            video: video.into(),
            frame: 0,
        }
    }

    #[test]
    fn reports_equal_fas_core_on_the_same_scores() {
        let samples: Vec<Sample> = (0..40usize)
            .map(|i| {
                let live = i.is_multiple_of(2);
                let attack = if live {
                    "none"
                } else if (i / 4) % 2 == 0 {
                    "print"
                } else {
                    "replay"
                };
                sample(
                    if live { Label::Live } else { Label::Spoof },
                    attack,
                    &format!("v{}", i / 4 * 2 + usize::from(live)),
                )
            })
            .collect();
        let score = |i: usize| {
            ((i * 37 % 41) as f64 / 41.0 + if i.is_multiple_of(2) { 0.3 } else { 0.0 }).min(1.0)
        };
        let val: Vec<Scored> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| Scored {
                sample: s,
                score: score(i + 3),
            })
            .collect();
        let test: Vec<Scored> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| Scored {
                sample: s,
                score: score(i),
            })
            .collect();
        let r = evaluate(&val, &test).unwrap();

        let (ts, tl, ta) = frame_columns(&test);
        let (vs, vl, _) = frame_columns(&val);
        let vt = Threshold::at_eer(&vs, &vl).unwrap().value;
        assert_eq!(r.frame.val_threshold, vt);
        assert_eq!(
            r.frame.deployable,
            Report::compute(&ts, &tl, &ta, vt).unwrap()
        );
        let tt = Threshold::at_eer(&ts, &tl).unwrap().value;
        assert_eq!(r.frame.oracle, Report::compute(&ts, &tl, &ta, tt).unwrap());
        assert_eq!(r.frame.oracle.auc, metrics::auc(&ts, &tl).unwrap());
        // Video level averages frames of the same video.
        assert!(r.video.oracle.n_bona_fide + r.video.oracle.n_attack < test.len());
        assert!(r.table().contains("oracle"));
        let per = metrics::auc_per_attack(&ts, &tl, &ta).unwrap();
        assert_eq!(per.keys().collect::<Vec<_>>(), ["print", "replay"]);
        let line = format!(
            "frame  AUC per attack type: print {:.4}, replay {:.4}\n",
            per["print"], per["replay"]
        );
        assert!(r.table().contains(&line), "{}", r.table());
    }

    #[test]
    fn one_class_validation_set_is_an_error_not_nan() {
        let s = sample(Label::Live, "none", "v0");
        let t = sample(Label::Spoof, "print", "v1");
        let val = [Scored {
            sample: &s,
            score: 0.9,
        }];
        let test = [
            Scored {
                sample: &s,
                score: 0.9,
            },
            Scored {
                sample: &t,
                score: 0.1,
            },
        ];
        let e = evaluate(&val, &test).unwrap_err();
        assert!(format!("{e:#}").contains("source validation"), "{e:#}");
    }
}
