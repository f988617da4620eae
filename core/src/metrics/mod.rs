//! Presentation attack detection metrics, vocabulary of ISO/IEC 30107-3.
//!
//! Conventions used throughout:
//! * a score is `p_live`: **higher = more likely bona fide**;
//! * a sample is classified bona fide iff `score >= threshold`;
//! * APCER = attacks classified bona fide / attacks (per attack type, worst reported);
//!   BPCER = bona fide classified as attacks / bona fide;
//!   HTER = (pooled APCER + BPCER) / 2; ACER = (worst APCER + BPCER) / 2;
//! * for ROC purposes the positive class is bona fide, so FPR = APCER, TPR = 1 − BPCER.
//!
//! Inputs are parallel slices (`scores`, [`Label`](crate::dataset::Label)s and, where
//! needed, attack type strings). Bad input — empty, one class only, a NaN/inf score,
//! slices of different lengths — gives a typed [`MetricsError`], never a NaN.
//! Video-level metrics: aggregate frames with [`aggregate_videos`], then pass
//! [`columns`] of the result to any metric.

mod attack;
mod eer;
mod error;
mod input;
mod operating_point;
mod report;
mod roc;
mod threshold;
mod video;

pub use attack::{acer, apcer_per_attack, auc_per_attack, AttackApcer};
pub use eer::{eer, Eer};
pub use error::{MetricsError, Result};
pub use input::{validate, ClassCounts};
pub use operating_point::{hter, operating_point, OperatingPoint};
pub use report::{AtTarget, Report, DEFAULT_TARGET_RATES};
pub use roc::{auc, roc_curve, tpr_at_fpr, Roc};
pub use threshold::{bpcer_at_apcer, Threshold};
pub use video::{aggregate_videos, columns, FrameScore, VideoScore};
