//! `--camera synthetic[:seed]`: SynthFAS's endless in-memory camera as a [`FrameSource`],
//! with the ground truth of every frame kept on the side ([`SyntheticSource::truth`]) so
//! tests can check the door's decisions against what was really in front of it.

use std::time::{Duration, Instant};

use fas_core::dataset::Label;
use fas_core::synthfas::{CameraFrame, FaceAnnotation, Presentation, SyntheticCamera};

use super::{CaptureError, Frame, FrameCounter, FrameSource};

/// Nominal frame rate of the synthetic timeline.
pub const DEFAULT_FPS: f64 = 30.0;

/// What was really in front of the synthetic camera in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    /// Frame index since the camera started (equals the frame's `seq`).
    pub index: u64,
    /// Segment number: a new person / presentation / placement every
    /// [`SyntheticSource::segment_frames`] frames.
    pub segment: u64,
    pub presentation: Presentation,
    /// `Live` for a bona fide presentation, `Spoof` for print / replay / mask.
    pub label: Label,
    /// The true face box and landmarks.
    pub face: FaceAnnotation,
    pub subject: String,
    pub domain: String,
}

/// SynthFAS frames as a camera. Unpaced by default (frames as fast as they render);
/// frame times follow the nominal timeline `index / fps` either way.
pub struct SyntheticSource {
    cam: SyntheticCamera,
    spec: String,
    next_index: u64,
    fps: f64,
    paced: Option<Instant>,
    counter: FrameCounter,
    truth: Option<Truth>,
}

impl SyntheticSource {
    /// A camera with seed `seed`.
    pub fn new(seed: u64) -> SyntheticSource {
        Self::wrap(SyntheticCamera::new(seed), format!("synthetic:{seed}"))
    }

    /// Parses `synthetic` or `synthetic:SEED`.
    pub fn from_spec(spec: &str) -> Result<SyntheticSource, CaptureError> {
        let cam = SyntheticCamera::from_spec(spec).ok_or_else(|| CaptureError::Config {
            field: "camera",
            value: spec.to_string(),
            reason: "a synthetic camera is `synthetic` or `synthetic:SEED` with an integer seed"
                .into(),
        })?;
        let spec = if spec.contains(':') {
            spec.to_string()
        } else {
            "synthetic:0".to_string()
        };
        Ok(Self::wrap(cam, spec))
    }

    fn wrap(cam: SyntheticCamera, spec: String) -> SyntheticSource {
        SyntheticSource {
            cam,
            spec,
            next_index: 0,
            fps: DEFAULT_FPS,
            paced: None,
            counter: FrameCounter::default(),
            truth: None,
        }
    }

    /// Delivers frames no faster than `fps` (a real-time demo); the timeline uses the
    /// same rate.
    pub fn paced(mut self, fps: f64) -> Result<SyntheticSource, CaptureError> {
        self.fps = checked_fps(fps)?;
        self.paced = Some(Instant::now());
        Ok(self)
    }

    /// Sets the rate of the nominal timeline without pacing.
    pub fn with_fps(mut self, fps: f64) -> Result<SyntheticSource, CaptureError> {
        self.fps = checked_fps(fps)?;
        Ok(self)
    }

    /// Starts the stream at frame `index` instead of 0 (e.g. at a chosen segment); the
    /// skipped frames count as neither delivered nor dropped.
    pub fn starting_at(mut self, index: u64) -> SyntheticSource {
        self.next_index = index;
        self.counter = FrameCounter::starting_at(index);
        self
    }

    /// Frames per segment (one person and presentation).
    pub fn segment_frames(&self) -> u32 {
        self.cam.segment_frames
    }

    /// Ground truth of the last frame delivered (`None` before the first).
    pub fn truth(&self) -> Option<&Truth> {
        self.truth.as_ref()
    }

    /// Ground truth of frame `index` without rendering it into the stream (renders it
    /// once; for tests choosing segments).
    pub fn truth_of(&self, index: u64) -> Truth {
        truth(&self.cam, index)
    }
}

fn truth(cam: &SyntheticCamera, index: u64) -> Truth {
    truth_from(&cam.frame(index), cam.segment_frames)
}

fn truth_from(f: &CameraFrame, segment_frames: u32) -> Truth {
    Truth {
        index: f.index,
        segment: f.index / u64::from(segment_frames),
        presentation: f.meta.presentation,
        label: f.meta.label,
        face: f.face,
        subject: f.meta.subject.clone(),
        domain: f.meta.domain.clone(),
    }
}

fn checked_fps(fps: f64) -> Result<f64, CaptureError> {
    if fps.is_finite() && fps > 0.0 {
        Ok(fps)
    } else {
        Err(CaptureError::Config {
            field: "camera.fps",
            value: fps.to_string(),
            reason: "must be a positive number of frames per second".into(),
        })
    }
}

impl FrameSource for SyntheticSource {
    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        let index = self.next_index;
        self.next_index += 1;
        let t = Duration::from_secs_f64(index as f64 / self.fps);
        if let Some(start) = self.paced {
            let due = start + t;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let f = self.cam.frame(index);
        self.truth = Some(truth_from(&f, self.cam.segment_frames));
        Ok(self
            .counter
            .stamp(f.rgb.into(), Some(index), t, Duration::ZERO))
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}x{} @{} fps{})",
            self.spec,
            self.cam.width,
            self.cam.height,
            self.fps,
            if self.paced.is_some() { ", paced" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_truth() {
        let mut s = SyntheticSource::from_spec("synthetic:7").unwrap();
        assert!(s.truth().is_none());
        let f0 = s.next_frame().unwrap();
        let t0 = s.truth().unwrap().clone();
        assert_eq!((f0.seq, f0.t, f0.dropped_before), (0, Duration::ZERO, 0));
        assert_eq!((f0.image.width, f0.image.height), (640, 480));
        assert_eq!(t0, s.truth_of(0));
        assert_eq!(
            t0.label == Label::Live,
            t0.presentation == Presentation::Live
        );
        let f1 = s.next_frame().unwrap();
        assert_eq!(f1.seq, 1);
        assert!((f1.t.as_secs_f64() - 1.0 / DEFAULT_FPS).abs() < 1e-9);
        let [x0, y0, x1, y1] = s.truth().unwrap().face.bbox;
        assert!(x1 > x0 && y1 > y0);
    }

    #[test]
    fn starting_at_a_segment() {
        let s = SyntheticSource::new(3);
        let n = u64::from(s.segment_frames());
        let mut s = s.starting_at(2 * n);
        let f = s.next_frame().unwrap();
        assert_eq!((f.seq, f.dropped_before), (2 * n, 0));
        assert_eq!(s.truth().unwrap().segment, 2);
        assert_eq!(
            f.image.data,
            fas_core::preprocess::RgbImage::from(SyntheticCamera::new(3).frame(2 * n).rgb).data
        );
    }

    #[test]
    fn bad_specs_and_rates_name_the_field() {
        let e = SyntheticSource::from_spec("synthetic:abc").err().unwrap();
        assert!(e.to_string().contains("camera") && e.to_string().contains("synthetic:abc"));
        let e = SyntheticSource::new(0).paced(0.0).err().unwrap();
        assert!(e.to_string().contains("camera.fps"), "{e}");
        assert_eq!(
            SyntheticSource::from_spec("synthetic")
                .unwrap()
                .describe()
                .split(' ')
                .next(),
            Some("synthetic:0")
        );
    }

    #[test]
    fn pacing_holds_the_rate() {
        let mut s = SyntheticSource::new(1).paced(50.0).unwrap();
        let start = Instant::now();
        for _ in 0..4 {
            s.next_frame().unwrap();
        }
        // Frames 0..3 are due at 0, 20, 40, 60 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(60),
            "{:?}",
            start.elapsed()
        );
    }
}
