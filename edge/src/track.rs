//! `Frame → Faces`: runs the face detector every few frames and tracks the faces in
//! between with a constant-velocity model.
//!
//! A fresh detection runs when
//! * there is no track (idle: every [`TrackConfig::idle_detect_every`] frames),
//! * the track is [`TrackConfig::detect_every`] frames old,
//! * the predicted motion since the last detection exceeds
//!   [`TrackConfig::max_predicted_shift`] box sides,
//! * the image under a predicted box no longer looks like the face that was detected there
//!   (mean absolute grey difference of a small template above
//!   [`TrackConfig::max_patch_change`]: motion the model did not predict, a new person,
//!   a light change),
//! * a predicted face fails the quality gates ([`TrackConfig::quality`]), or
//! * the caller asked for one ([`Tracker::request_redetect`]).

use std::time::Duration;

use fas_infer::detect::{DetectError, Detection, FaceDetector};

use crate::camera::Frame;
use crate::quality::{self, QualityConfig};

/// Side (px) of the grey template kept per face to check predictions against.
const TEMPLATE_SIDE: usize = 16;

/// Tracker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackConfig {
    /// Detect at least every K frames while a face is tracked (1 = every frame).
    pub detect_every: u32,
    /// Detect every this many frames while no face is tracked.
    pub idle_detect_every: u32,
    /// Faces with a lower detector score are not reported.
    pub min_score: f32,
    /// Re-detect when the prediction has moved a face by more than this many box sides
    /// since its detection.
    pub max_predicted_shift: f32,
    /// Re-detect when the grey template under a predicted box differs from the detected
    /// one by more than this mean absolute difference (0–255).
    pub max_patch_change: f32,
    /// Re-detect when a predicted face fails these gates (`None`: no check).
    pub quality: Option<QualityConfig>,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            detect_every: 5,
            idle_detect_every: 1,
            min_score: 0.6,
            max_predicted_shift: 0.3,
            max_patch_change: 18.0,
            quality: Some(QualityConfig::default()),
        }
    }
}

/// A tracker setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid tracking configuration: track.{field} = {value}: {reason}")]
pub struct TrackConfigError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl TrackConfig {
    /// Checks every field (and the quality gates); the error names the field.
    pub fn validate(&self) -> Result<(), TrackConfigError> {
        let bad = |field, value: String, reason: &str| {
            Err(TrackConfigError {
                field,
                value,
                reason: reason.into(),
            })
        };
        if self.detect_every == 0 {
            return bad("detect_every", "0".into(), "must be at least 1");
        }
        if self.idle_detect_every == 0 {
            return bad("idle_detect_every", "0".into(), "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return bad(
                "min_score",
                self.min_score.to_string(),
                "must lie in [0, 1]",
            );
        }
        if !(self.max_predicted_shift.is_finite() && self.max_predicted_shift > 0.0) {
            return bad(
                "max_predicted_shift",
                self.max_predicted_shift.to_string(),
                "must be a positive number of box sides",
            );
        }
        if !(self.max_patch_change > 0.0 && self.max_patch_change <= 255.0) {
            return bad(
                "max_patch_change",
                self.max_patch_change.to_string(),
                "must lie in (0, 255]",
            );
        }
        if let Some(q) = &self.quality {
            q.validate().map_err(|e| TrackConfigError {
                field: "quality",
                value: format!("quality.{} = {}", e.field, e.value),
                reason: e.reason.into(),
            })?;
        }
        Ok(())
    }
}

/// The faces in one frame: the second pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Faces {
    /// Every face at or above [`TrackConfig::min_score`], best first. More than one is
    /// reported as such; the policy decides what that means.
    pub faces: Vec<Detection>,
    /// `true` when the detector ran on this frame, `false` when the faces are predicted
    /// from the last detection.
    pub detected: bool,
    /// The track id of each face, in the order of `faces`. A face keeps its id while it is
    /// followed (predicted, or re-detected where the last one stood and looking the same);
    /// a face that appears after an empty frame, or whose appearance changed enough to
    /// force a re-detection, gets a new one — so a session can insist that every frame it
    /// judged showed one and the same face.
    pub ids: Vec<u64>,
}

/// Why a fresh detection ran (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectReason {
    /// No face tracked.
    Idle,
    /// The track reached `detect_every` frames.
    Age,
    /// The predicted shift exceeded `max_predicted_shift`.
    Motion,
    /// The template under a predicted box changed more than `max_patch_change`.
    PatchChange,
    /// A predicted face failed the quality gates.
    Quality,
    /// [`Tracker::request_redetect`].
    Requested,
}

#[derive(Debug, Clone)]
struct Tracked {
    /// Track id (see [`Faces::ids`]).
    id: u64,
    /// As detected.
    det: Detection,
    /// Pixels per second.
    velocity: [f32; 2],
    template: Vec<f32>,
    /// Whether it passed the quality gates when detected.
    passed_quality: bool,
}

#[derive(Debug, Clone)]
struct Track {
    faces: Vec<Tracked>,
    detected_at: Duration,
    /// Frames since the detection.
    age: u32,
}

/// Detector + constant-velocity tracker. See the module docs for when it re-detects.
pub struct Tracker<D> {
    detector: D,
    cfg: TrackConfig,
    track: Option<Track>,
    idle_frames: u32,
    requested: bool,
    last_reason: Option<DetectReason>,
    /// The last track id handed out.
    last_id: u64,
}

impl<D: FaceDetector> Tracker<D> {
    pub fn new(detector: D, cfg: TrackConfig) -> Result<Tracker<D>, TrackConfigError> {
        cfg.validate()?;
        Ok(Tracker {
            detector,
            cfg,
            track: None,
            idle_frames: 0,
            requested: false,
            last_reason: None,
            last_id: 0,
        })
    }

    pub fn config(&self) -> &TrackConfig {
        &self.cfg
    }

    pub fn detector_mut(&mut self) -> &mut D {
        &mut self.detector
    }

    /// Makes the next [`Tracker::update`] run the detector.
    pub fn request_redetect(&mut self) {
        self.requested = true;
    }

    /// Forgets the track (e.g. after the camera was lost).
    pub fn reset(&mut self) {
        self.track = None;
        self.idle_frames = 0;
    }

    /// Why the detector ran on the last frame (`None` when it did not).
    pub fn last_detect_reason(&self) -> Option<DetectReason> {
        self.last_reason
    }

    /// The faces in `frame`. A detector error ends the track (the next frame detects
    /// again) and is returned: the caller treats the frame as having no usable face.
    pub fn update(&mut self, frame: &Frame) -> Result<Faces, DetectError> {
        self.last_reason = None;
        let reason = match self.track.as_mut() {
            _ if std::mem::take(&mut self.requested) => Some(DetectReason::Requested),
            None => {
                let due = self.idle_frames.is_multiple_of(self.cfg.idle_detect_every);
                self.idle_frames += 1;
                due.then_some(DetectReason::Idle)
            }
            Some(track) => {
                track.age += 1;
                if track.age >= self.cfg.detect_every {
                    Some(DetectReason::Age)
                } else {
                    None
                }
            }
        };
        if let Some(reason) = reason {
            return self.detect(frame, reason);
        }
        let Some(track) = self.track.as_ref() else {
            return Ok(Faces {
                faces: Vec::new(),
                detected: false,
                ids: Vec::new(),
            });
        };
        let dt = frame.t.saturating_sub(track.detected_at).as_secs_f32();
        let mut predicted = Vec::with_capacity(track.faces.len());
        let mut redetect = None;
        for f in &track.faces {
            let shift = [f.velocity[0] * dt, f.velocity[1] * dt];
            let side = f.det.width().min(f.det.height()).max(1.0);
            if shift[0].hypot(shift[1]) > self.cfg.max_predicted_shift * side {
                redetect = Some(DetectReason::Motion);
                break;
            }
            let p = shifted(&f.det, shift);
            let change = template(&frame.image, &p.bbox)
                .map(|t| mean_abs_diff(&t, &f.template))
                .unwrap_or(f32::INFINITY);
            if change > self.cfg.max_patch_change {
                redetect = Some(DetectReason::PatchChange);
                break;
            }
            if let (Some(q), true) = (&self.cfg.quality, f.passed_quality) {
                if quality::assess(&frame.image, &p, q).is_err() {
                    redetect = Some(DetectReason::Quality);
                    break;
                }
            }
            predicted.push(p);
        }
        if let Some(reason) = redetect {
            return self.detect(frame, reason);
        }
        Ok(Faces {
            faces: predicted,
            detected: false,
            ids: track.faces.iter().map(|f| f.id).collect(),
        })
    }

    fn detect(&mut self, frame: &Frame, reason: DetectReason) -> Result<Faces, DetectError> {
        self.last_reason = Some(reason);
        let previous = self.track.take();
        let img: image::RgbImage = frame.image.clone().into();
        let mut found: Vec<Detection> = self
            .detector
            .detect(&img)?
            .into_iter()
            .filter(|d| d.score >= self.cfg.min_score)
            .collect();
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        if found.is_empty() {
            self.idle_frames = 1;
            return Ok(Faces {
                faces: found,
                detected: true,
                ids: Vec::new(),
            });
        }
        // A face whose look changed under its predicted box is not assumed to be the same.
        let may_continue = reason != DetectReason::PatchChange;
        let mut ids = Vec::with_capacity(found.len());
        for d in &found {
            let kept = previous
                .as_ref()
                .filter(|_| may_continue)
                .and_then(|p| continued(p, d))
                .map(|f| f.id)
                .filter(|id| !ids.contains(id));
            ids.push(kept.unwrap_or_else(|| {
                self.last_id += 1;
                self.last_id
            }));
        }
        let faces = found
            .iter()
            .zip(&ids)
            .map(|(d, &id)| Tracked {
                id,
                det: *d,
                velocity: previous
                    .as_ref()
                    .and_then(|p| velocity(p, d, frame.t))
                    .unwrap_or([0.0; 2]),
                template: template(&frame.image, &d.bbox).unwrap_or_default(),
                passed_quality: self
                    .cfg
                    .quality
                    .as_ref()
                    .is_some_and(|q| quality::assess(&frame.image, d, q).is_ok()),
            })
            .collect();
        self.track = Some(Track {
            faces,
            detected_at: frame.t,
            age: 0,
        });
        Ok(Faces {
            faces: found,
            detected: true,
            ids,
        })
    }
}

/// The face of `prev` that `d` continues: the nearest centre, within one box side.
fn continued<'a>(prev: &'a Track, d: &Detection) -> Option<&'a Tracked> {
    let c = d.center();
    let side = d.width().min(d.height());
    prev.faces
        .iter()
        .map(|f| {
            let pc = f.det.center();
            ((c[0] - pc[0]).hypot(c[1] - pc[1]), f)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(dist, _)| *dist <= side)
        .map(|(_, f)| f)
}

/// Velocity (px/s) of `d` relative to the face of `prev` it continues (the nearest centre
/// within one box side), `None` if it continues none or no time passed.
fn velocity(prev: &Track, d: &Detection, t: Duration) -> Option<[f32; 2]> {
    let dt = t.checked_sub(prev.detected_at)?.as_secs_f32();
    if dt <= 0.0 {
        return None;
    }
    let c = d.center();
    let p = continued(prev, d)?.det.center();
    Some([(c[0] - p[0]) / dt, (c[1] - p[1]) / dt])
}

fn shifted(d: &Detection, s: [f32; 2]) -> Detection {
    let mut p = *d;
    p.bbox = [
        d.bbox[0] + s[0],
        d.bbox[1] + s[1],
        d.bbox[2] + s[0],
        d.bbox[3] + s[1],
    ];
    for l in &mut p.landmarks {
        *l = [l[0] + s[0], l[1] + s[1]];
    }
    p
}

/// A `TEMPLATE_SIDE²` grey sampling of the box (nearest pixel; points outside the frame
/// clamp to its border); `None` for an empty frame or a non-finite box.
fn template(img: &fas_core::preprocess::RgbImage, b: &[f32; 4]) -> Option<Vec<f32>> {
    if img.is_empty() || !b.iter().all(|v| v.is_finite()) {
        return None;
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let mut out = Vec::with_capacity(TEMPLATE_SIDE * TEMPLATE_SIDE);
    for j in 0..TEMPLATE_SIDE {
        let fy = (j as f32 + 0.5) / TEMPLATE_SIDE as f32;
        let y = (b[1] + fy * (b[3] - b[1]))
            .round()
            .clamp(0.0, (h - 1) as f32) as usize;
        for i in 0..TEMPLATE_SIDE {
            let fx = (i as f32 + 0.5) / TEMPLATE_SIDE as f32;
            let x = (b[0] + fx * (b[2] - b[0]))
                .round()
                .clamp(0.0, (w - 1) as f32) as usize;
            let k = (y * w + x) * 3;
            let p = &img.data[k..k + 3];
            out.push(0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]));
        }
    }
    Some(out)
}

fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return f32::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::preprocess::RgbImage;

    fn det(x: f32, y: f32, side: f32) -> Detection {
        Detection {
            bbox: [x, y, x + side, y + side],
            landmarks: [[x + side / 2.0, y + side / 2.0]; 5],
            score: 0.9,
        }
    }

    #[test]
    fn velocity_follows_the_nearest_face() {
        let track = Track {
            faces: vec![
                Tracked {
                    id: 1,
                    det: det(0.0, 0.0, 50.0),
                    velocity: [0.0; 2],
                    template: vec![],
                    passed_quality: true,
                },
                Tracked {
                    id: 2,
                    det: det(300.0, 0.0, 50.0),
                    velocity: [0.0; 2],
                    template: vec![],
                    passed_quality: true,
                },
            ],
            detected_at: Duration::from_millis(100),
            age: 0,
        };
        let v = velocity(&track, &det(310.0, 5.0, 50.0), Duration::from_millis(200)).unwrap();
        assert!(
            (v[0] - 100.0).abs() < 1e-3 && (v[1] - 50.0).abs() < 1e-3,
            "{v:?}"
        );
        assert!(velocity(&track, &det(150.0, 0.0, 50.0), Duration::from_millis(200)).is_none());
        assert!(velocity(&track, &det(0.0, 0.0, 50.0), Duration::from_millis(100)).is_none());
    }

    #[test]
    fn shifted_moves_box_and_landmarks() {
        let s = shifted(&det(10.0, 20.0, 30.0), [5.0, -2.0]);
        assert_eq!(s.bbox, [15.0, 18.0, 45.0, 48.0]);
        assert_eq!(s.landmarks[3], [30.0, 33.0]);
    }

    #[test]
    fn template_is_stable_under_its_own_box_and_changes_off_it() {
        let img = RgbImage::from_fn(100, 100, |x, y| [(x * 2) as u8, (y * 2) as u8, 0]);
        let a = template(&img, &[20.0, 20.0, 60.0, 60.0]).unwrap();
        assert_eq!(mean_abs_diff(&a, &a), 0.0);
        let b = template(&img, &[40.0, 20.0, 80.0, 60.0]).unwrap();
        assert!(mean_abs_diff(&a, &b) > 10.0);
        assert!(template(&img, &[f32::NAN, 0.0, 1.0, 1.0]).is_none());
        // Fully outside: clamps, no panic.
        assert!(template(&img, &[-500.0, -500.0, -400.0, -400.0]).is_some());
    }

    #[test]
    fn config_validation_names_the_field() {
        assert!(TrackConfig::default().validate().is_ok());
        let c = TrackConfig {
            detect_every: 0,
            ..TrackConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("track.detect_every"));
        let c = TrackConfig {
            quality: Some(QualityConfig {
                max_roll_deg: -1.0,
                ..QualityConfig::default()
            }),
            ..TrackConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("quality.max_roll_deg"));
    }
}
