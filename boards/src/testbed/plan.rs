//! The scenario the guest plays in front of its camera, rendered on the host.
//!
//! Each session is one SynthFAS person with one presentation (bona fide or an attack),
//! taken from the same endless camera the edge's `--camera synthetic` uses, rendered at
//! the guest camera's resolution and stored as raw YUYV frames: the guest only streams
//! bytes (rendering under TCG emulation would cost more than the test itself). Between
//! sessions the feeder shows an empty scene, so every decision belongs to exactly one
//! presentation.

use std::path::Path;

use anyhow::{bail, Context, Result};
use fas_core::synthfas::yuyv::rgb_to_yuyv;
use fas_core::synthfas::{Presentation, SyntheticCamera};
use serde::{Deserialize, Serialize};

/// One presentation in the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedSession {
    pub index: usize,
    pub presentation: Presentation,
    /// The synthetic camera's segment the frames come from.
    pub segment: u64,
    /// Raw YUYV frames, `frames` of them back to back, relative to the plan directory.
    pub file: String,
    pub frames: usize,
    /// How long the feeder shows it (ping-ponging through the frames).
    pub seconds: f32,
    /// Take the camera away this many seconds into the session (and give it back).
    #[serde(default)]
    pub unplug_after_s: Option<f32>,
}

/// `plan.json` in the plan directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    /// Seconds of empty scene before each session.
    pub gap_seconds: f32,
    /// When set, a session (other than one the camera is unplugged in) stays on screen
    /// after its `seconds` until fas-edge has decided on the session's own frames, at most
    /// this many seconds in all: under TCG a frame costs from ~1 s to ~10 s depending on
    /// the host, and a fixed time that fits a fast host leaves a slow one no decision.
    /// Absent in plans written before it existed: fixed `seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_max_seconds: Option<f32>,
    pub sessions: Vec<PlannedSession>,
}

/// What to render.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    pub presentations: Vec<Presentation>,
    pub frames_per_session: usize,
    pub seconds: f32,
    pub gap_seconds: f32,
    /// See [`Plan::hold_max_seconds`].
    pub hold_max_seconds: Option<f32>,
    /// Index (into `presentations`) of a bona fide session during which the camera is
    /// unplugged and plugged back; that presentation is then shown again after the
    /// replug.
    pub unplug_session: Option<usize>,
}

/// Parses `live,print,replay,mask` (any order, repeats allowed).
pub fn parse_presentations(s: &str) -> Result<Vec<Presentation>> {
    s.split(',')
        .map(|p| match p.trim() {
            "live" => Ok(Presentation::Live),
            "print" => Ok(Presentation::Print),
            "replay" => Ok(Presentation::Replay),
            "mask" => Ok(Presentation::Mask),
            other => bail!("unknown presentation `{other}`: use live, print, replay or mask"),
        })
        .collect()
}

/// Finds the first segment at or after `from` whose presentation is `want`.
fn find_segment(cam: &SyntheticCamera, want: Presentation, from: u64) -> Result<u64> {
    let per = u64::from(cam.segment_frames);
    (from..from + 10_000)
        .find(|&seg| cam.frame(seg * per).meta.presentation == want)
        .with_context(|| format!("no {want:?} segment in the synthetic camera's first 10000"))
}

/// Renders the plan into `dir` (frames + `plan.json`).
pub fn render(spec: &PlanSpec, dir: &Path) -> Result<Plan> {
    if !spec.width.is_multiple_of(2) || spec.width == 0 || spec.height == 0 {
        bail!(
            "plan: {}x{} is not a YUYV frame size (even width, non-zero)",
            spec.width,
            spec.height
        );
    }
    if spec.frames_per_session == 0 {
        bail!("plan: frames_per_session must be at least 1");
    }
    if let Some(max) = spec.hold_max_seconds {
        if max.is_nan() || max < spec.seconds {
            bail!(
                "plan: the longest hold ({max} s) is shorter than a session ({} s); \
                 give --hold-max at least --seconds, or 0 for no hold",
                spec.seconds
            );
        }
    }
    if let Some(u) = spec.unplug_session {
        if spec.presentations.get(u) != Some(&Presentation::Live) {
            bail!("plan: the unplug session ({u}) must be a live one");
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cam = SyntheticCamera::new(spec.seed);
    cam.width = spec.width;
    cam.height = spec.height;
    let per = u64::from(cam.segment_frames);
    let frames = spec.frames_per_session.min(cam.segment_frames as usize);
    let mut sessions = Vec::new();
    let mut next_seg = 0;
    let mut order: Vec<(Presentation, Option<f32>)> = spec
        .presentations
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let unplug = (spec.unplug_session == Some(i)).then_some(spec.seconds * 0.4);
            (p, unplug)
        })
        .collect();
    if let Some(u) = spec.unplug_session {
        // After the replug the same kind of presentation comes back once more.
        order.insert(u + 1, (spec.presentations[u], None));
    }
    for (index, (presentation, unplug_after_s)) in order.into_iter().enumerate() {
        let segment = find_segment(&cam, presentation, next_seg)?;
        next_seg = segment + 1;
        let file = format!("session-{index:02}.yuyv");
        let mut bytes = Vec::new();
        for t in 0..frames as u64 {
            // Spread the chosen frames over the whole segment's motion.
            let k = t * per / frames as u64;
            let f = cam.frame(segment * per + k);
            bytes.extend(rgb_to_yuyv(
                f.rgb.as_raw(),
                spec.width as usize,
                spec.height as usize,
            ));
        }
        fas_core::atomic::write_atomic(&dir.join(&file), &bytes)
            .with_context(|| format!("writing {}", dir.join(&file).display()))?;
        sessions.push(PlannedSession {
            index,
            presentation,
            segment,
            file,
            frames,
            seconds: spec.seconds,
            unplug_after_s,
        });
    }
    let plan = Plan {
        width: spec.width,
        height: spec.height,
        seed: spec.seed,
        gap_seconds: spec.gap_seconds,
        hold_max_seconds: spec.hold_max_seconds,
        sessions,
    };
    fas_core::atomic::write_atomic(
        &dir.join("plan.json"),
        serde_json::to_string_pretty(&plan)?.as_bytes(),
    )?;
    Ok(plan)
}

/// Reads `plan.json` from a plan directory.
pub fn load(dir: &Path) -> Result<Plan> {
    let p = dir.join("plan.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a test plan", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_asked_presentations_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let spec = PlanSpec {
            width: 160,
            height: 120,
            seed: 3,
            presentations: parse_presentations("live,print,live").unwrap(),
            frames_per_session: 2,
            seconds: 5.0,
            gap_seconds: 1.0,
            hold_max_seconds: Some(30.0),
            unplug_session: Some(2),
        };
        let plan = render(&spec, dir.path()).unwrap();
        let kinds: Vec<_> = plan.sessions.iter().map(|s| s.presentation).collect();
        use Presentation::*;
        // The unplugged live session is followed by a second live one.
        assert_eq!(kinds, vec![Live, Print, Live, Live]);
        assert_eq!(plan.sessions[2].unplug_after_s, Some(2.0));
        let cam = {
            let mut c = SyntheticCamera::new(3);
            c.width = 160;
            c.height = 120;
            c
        };
        for s in &plan.sessions {
            let f = cam.frame(s.segment * u64::from(cam.segment_frames));
            assert_eq!(f.meta.presentation, s.presentation);
            let len = std::fs::metadata(dir.path().join(&s.file)).unwrap().len();
            assert_eq!(len, 160 * 120 * 2 * 2);
        }
        assert_eq!(load(dir.path()).unwrap(), plan);
        assert!(parse_presentations("live,selfie").is_err());
        let bad = PlanSpec {
            unplug_session: Some(1),
            ..spec.clone()
        };
        assert!(render(&bad, dir.path()).is_err());
        let short_hold = PlanSpec {
            hold_max_seconds: Some(4.0),
            ..spec.clone()
        };
        let e = render(&short_hold, dir.path()).unwrap_err().to_string();
        assert!(e.contains("longest hold (4 s)"), "{e}");
        // A plan written before the hold existed still loads, with fixed sessions.
        let mut old: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("plan.json")).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("hold_max_seconds");
        std::fs::write(dir.path().join("plan.json"), old.to_string()).unwrap();
        assert_eq!(load(dir.path()).unwrap().hold_max_seconds, None);
    }
}
