//! PNG snapshots of the overlaid frame: every Nth frame and/or at each decision, written
//! atomically (a reader never sees half a PNG), with an optional cap on how many files are
//! kept so a long-running door cannot fill its disk.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use serde::{Deserialize, Serialize};

use fas_core::atomic::write_atomic_with;
use fas_core::decision::Verdict;
use fas_core::preprocess::RgbImage;

use crate::status::wire;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: cannot write the PNG snapshot — check the snapshot directory exists, is writable and has free space", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot create the snapshot directory — check that its parent exists and is writable", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: a {width}x{height} frame with {got} bytes cannot be a PNG (needs a non-empty frame of width·height·3 bytes)", path.display())]
    BadFrame {
        path: PathBuf,
        width: u32,
        height: u32,
        got: usize,
    },
}

/// Writes `frame` as an RGB8 PNG at `path`, atomically.
pub fn write_png(path: &Path, frame: &RgbImage) -> Result<(), SnapshotError> {
    if frame.validate().is_err() {
        return Err(SnapshotError::BadFrame {
            path: path.to_path_buf(),
            width: frame.width,
            height: frame.height,
            got: frame.data.len(),
        });
    }
    write_atomic_with(path, |w| {
        PngEncoder::new(w)
            .write_image(
                &frame.data,
                frame.width,
                frame.height,
                ExtendedColorType::Rgb8,
            )
            .map_err(io::Error::other)
    })
    .map_err(|source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// `snapshots = { dir = "/var/lib/fas/snapshots", every_n_frames = 0, on_decision = true, keep = 200 }`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    pub dir: PathBuf,
    /// Write every Nth frame offered to [`Snapshots::frame`]; 0 = never.
    #[serde(default)]
    pub every_n_frames: u64,
    /// Write one at each decision ([`Snapshots::decision`]).
    #[serde(default = "yes")]
    pub on_decision: bool,
    /// Keep at most this many of the files this process wrote (oldest removed); 0 = all.
    #[serde(default)]
    pub keep: usize,
}

fn yes() -> bool {
    true
}

/// The snapshot writer. File names: `frame-<unix ms>-<seq>.png`,
/// `decision-<unix ms>-<seq>-<decision>-<reason>.png`; `seq` counts this process's files.
pub struct Snapshots {
    config: SnapshotConfig,
    frames_seen: u64,
    seq: u64,
    written: VecDeque<PathBuf>,
}

impl Snapshots {
    /// Creates the directory if needed.
    pub fn new(config: SnapshotConfig) -> Result<Self, SnapshotError> {
        fs::create_dir_all(&config.dir).map_err(|source| SnapshotError::Dir {
            path: config.dir.clone(),
            source,
        })?;
        Ok(Self {
            config,
            frames_seen: 0,
            seq: 0,
            written: VecDeque::new(),
        })
    }

    /// Offers a frame; writes it when it is the Nth since the last one written this way.
    pub fn frame(&mut self, frame: &RgbImage) -> Result<Option<PathBuf>, SnapshotError> {
        self.frames_seen += 1;
        // `None` for n = 0 (never).
        if self.frames_seen.checked_rem(self.config.every_n_frames) != Some(0) {
            return Ok(None);
        }
        self.write("frame", "", frame).map(Some)
    }

    /// Writes the frame showing a decision (if `on_decision`).
    pub fn decision(
        &mut self,
        frame: &RgbImage,
        verdict: Verdict,
    ) -> Result<Option<PathBuf>, SnapshotError> {
        if !self.config.on_decision {
            return Ok(None);
        }
        let suffix = format!("-{}-{}", wire(&verdict.decision), wire(&verdict.reason));
        self.write("decision", &suffix, frame).map(Some)
    }

    fn write(
        &mut self,
        kind: &str,
        suffix: &str,
        frame: &RgbImage,
    ) -> Result<PathBuf, SnapshotError> {
        let ms = crate::camera::wall_ms_now();
        let path = self
            .config
            .dir
            .join(format!("{kind}-{ms}-{:06}{suffix}.png", self.seq));
        write_png(&path, frame)?;
        self.seq += 1;
        self.written.push_back(path.clone());
        if self.config.keep > 0 {
            while self.written.len() > self.config.keep {
                if let Some(old) = self.written.pop_front() {
                    // Already gone is fine; anything else would only leak disk space.
                    let _ = fs::remove_file(old);
                }
            }
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::decision::Reason;

    /// A fresh directory, removed when the returned guard drops.
    fn scratch(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("fas-edge-png-{tag}-"))
            .tempdir()
            .unwrap()
    }

    fn pngs(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn round_trips_pixels() {
        let d_dir = scratch("rt");
        let d = d_dir.path();
        let img = RgbImage::from_fn(7, 3, |x, y| [x as u8 * 30, y as u8 * 80, 200]);
        let p = d.join("a.png");
        write_png(&p, &img).unwrap();
        let back = image::open(&p).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (7, 3));
        assert_eq!(back.into_raw(), img.data);
        assert_eq!(pngs(d), ["a.png"], "no temporary file left");
    }

    #[test]
    fn refuses_empty_and_torn_frames() {
        let d_dir = scratch("bad");
        let d = d_dir.path();
        let e = write_png(&d.join("z.png"), &RgbImage::black(0, 0)).unwrap_err();
        assert!(matches!(e, SnapshotError::BadFrame { .. }), "{e}");
        let torn = RgbImage {
            width: 4,
            height: 4,
            data: vec![0; 10],
        };
        assert!(write_png(&d.join("t.png"), &torn).is_err());
        assert!(pngs(d).is_empty());
    }

    #[test]
    fn every_nth_frame_and_each_decision_with_retention() {
        let d_dir = scratch("policy");
        let d = d_dir.path();
        let mut s = Snapshots::new(SnapshotConfig {
            dir: d.to_path_buf(),
            every_n_frames: 3,
            on_decision: true,
            keep: 2,
        })
        .unwrap();
        let img = RgbImage::black(4, 4);
        let written: Vec<bool> = (0..7).map(|_| s.frame(&img).unwrap().is_some()).collect();
        assert_eq!(written, [false, false, true, false, false, true, false]);
        let p = s
            .decision(&img, Verdict::from_reason(Reason::CameraLost))
            .unwrap()
            .unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("decision-") && name.ends_with("-000002-deny-camera_lost.png"),
            "{name}"
        );
        let left = pngs(d);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|n| n.contains("-000001")) && left.contains(&name));

        let mut off = Snapshots::new(SnapshotConfig {
            dir: d.to_path_buf(),
            every_n_frames: 0,
            on_decision: false,
            keep: 0,
        })
        .unwrap();
        assert!(off.frame(&img).unwrap().is_none());
        assert!(off
            .decision(&img, Verdict::from_reason(Reason::AboveThreshold))
            .unwrap()
            .is_none());
    }
}
