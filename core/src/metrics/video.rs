//! Frame-level to video-level scores: one mean score per video.

use super::error::{MetricsError, Result};
use crate::dataset::Label;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The score of one frame, with the video it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameScore {
    pub video: String,
    pub label: Label,
    /// Attack type (`"none"` for bona fide).
    pub attack: String,
    /// `p_live`: higher = more likely bona fide.
    pub score: f64,
}

/// The mean score of one video's frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoScore {
    pub video: String,
    pub label: Label,
    pub attack: String,
    /// Arithmetic mean of the frame scores (summed in input order).
    pub score: f64,
    /// Number of frames averaged (>= 1).
    pub frames: usize,
}

/// Aggregates frame scores to one mean score per video id, sorted by video id.
/// Every frame of a video must carry the same label and attack type. Errors:
/// [`MetricsError::Empty`], [`MetricsError::NonFiniteScore`] (index into `frames`),
/// [`MetricsError::InconsistentLabel`], [`MetricsError::InconsistentAttack`].
pub fn aggregate_videos(frames: &[FrameScore]) -> Result<Vec<VideoScore>> {
    if frames.is_empty() {
        return Err(MetricsError::Empty);
    }
    let mut videos: BTreeMap<&str, (VideoScore, f64)> = BTreeMap::new();
    for (index, f) in frames.iter().enumerate() {
        if !f.score.is_finite() {
            return Err(MetricsError::NonFiniteScore {
                index,
                value: f.score,
            });
        }
        match videos.get_mut(f.video.as_str()) {
            None => {
                let v = VideoScore {
                    video: f.video.clone(),
                    label: f.label,
                    attack: f.attack.clone(),
                    score: 0.0,
                    frames: 1,
                };
                videos.insert(&f.video, (v, f.score));
            }
            Some((v, sum)) => {
                if v.label != f.label {
                    return Err(MetricsError::InconsistentLabel {
                        video: f.video.clone(),
                    });
                }
                if v.attack != f.attack {
                    return Err(MetricsError::InconsistentAttack {
                        video: f.video.clone(),
                        first: v.attack.clone(),
                        other: f.attack.clone(),
                    });
                }
                v.frames += 1;
                *sum += f.score;
            }
        }
    }
    Ok(videos
        .into_values()
        .map(|(mut v, sum)| {
            v.score = sum / v.frames as f64;
            v
        })
        .collect())
}

/// Splits video scores into the parallel columns the metric functions take:
/// `(scores, labels, attacks)`.
pub fn columns(videos: &[VideoScore]) -> (Vec<f64>, Vec<Label>, Vec<String>) {
    (
        videos.iter().map(|v| v.score).collect(),
        videos.iter().map(|v| v.label).collect(),
        videos.iter().map(|v| v.attack.clone()).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::*;

    fn f(video: &str, label: Label, attack: &str, score: f64) -> FrameScore {
        FrameScore {
            video: video.into(),
            label,
            attack: attack.into(),
            score,
        }
    }

    #[test]
    fn mean_per_video_sorted() {
        let v = aggregate_videos(&[
            f("b", Spoof, "print", 0.2),
            f("a", Live, "none", 0.9),
            f("b", Spoof, "print", 0.4),
            f("a", Live, "none", 0.7),
            f("a", Live, "none", 0.8),
        ])
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].video.as_str(), v[0].frames), ("a", 3));
        assert!((v[0].score - 0.8).abs() < 1e-15);
        assert_eq!(
            (v[1].video.as_str(), v[1].label, v[1].frames),
            ("b", Spoof, 2)
        );
        assert!((v[1].score - 0.3).abs() < 1e-15);
        let (s, l, a) = columns(&v);
        assert_eq!(s.len(), 2);
        assert_eq!(l, vec![Live, Spoof]);
        assert_eq!(a, vec!["none".to_string(), "print".to_string()]);
    }

    #[test]
    fn errors() {
        assert_eq!(aggregate_videos(&[]), Err(MetricsError::Empty));
        assert_eq!(
            aggregate_videos(&[f("a", Live, "none", 0.9), f("a", Spoof, "none", 0.1)]),
            Err(MetricsError::InconsistentLabel { video: "a".into() })
        );
        assert_eq!(
            aggregate_videos(&[f("a", Spoof, "print", 0.9), f("a", Spoof, "replay", 0.1)]),
            Err(MetricsError::InconsistentAttack {
                video: "a".into(),
                first: "print".into(),
                other: "replay".into()
            })
        );
        assert!(matches!(
            aggregate_videos(&[f("a", Live, "none", 0.9), f("b", Live, "none", f64::NAN)]),
            Err(MetricsError::NonFiniteScore { index: 1, .. })
        ));
    }
}
