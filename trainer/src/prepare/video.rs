//! Decoding source media into RGB frames: videos through the `ffmpeg` / `ffprobe`
//! binaries (one child process per video, raw RGB24 frames read from its stdout),
//! PNG and JPEG photos through the `image` crate.
//!
//! Frame indices are decoded-frame indices: frame `n` is the `n`-th frame the decoder
//! outputs (0-based), before any sampling, so `stride = 2` keeps frames 0, 2, 4, ….
//! Frames are passed through as decoded (`-fps_mode passthrough`): ffmpeg neither
//! duplicates nor drops frames to reach a constant rate. A rotation recorded in the
//! container (phone videos) is applied, so faces come out upright.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// File extensions (lower case) decoded as videos.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "avi", "mov", "mp4", "m4v", "mkv", "webm", "mpg", "mpeg", "wmv", "flv", "3gp", "mts", "m2ts",
    "ts", "ogv",
];

/// File extensions (lower case) decoded as single photos: PNG and JPEG through the
/// `image` crate, the others through ffmpeg.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// How a source file is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Many frames, decoded by ffmpeg.
    Video,
    /// One frame.
    Image,
}

impl MediaKind {
    /// The kind of `path` from its extension (case-insensitive), `None` when unknown.
    pub fn of(path: &Path) -> Option<MediaKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
            Some(MediaKind::Video)
        } else if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            Some(MediaKind::Image)
        } else {
            None
        }
    }

    /// Whether decoding this file needs the ffmpeg binaries.
    pub fn needs_ffmpeg(path: &Path) -> bool {
        match MediaKind::of(path) {
            Some(MediaKind::Video) => true,
            Some(MediaKind::Image) => !decoded_by_image_crate(path),
            None => false,
        }
    }
}

fn decoded_by_image_crate(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}

const FFMPEG_FIX: &str =
    "install ffmpeg (`cargo xtask setup`, or `apt-get install ffmpeg`) and make sure it is on PATH";

/// Why a source file could not be decoded. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{}: unknown media type {ext:?}: expected a video ({}) or an image ({}); fix the importer or convert the file", path.display(), VIDEO_EXTENSIONS.join(", "), IMAGE_EXTENSIONS.join(", "))]
    UnknownKind { path: PathBuf, ext: String },
    #[error("{}: file not found or unreadable — check the dataset root and the manifest's path", path.display())]
    Missing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot run {tool} — {FFMPEG_FIX}", path.display())]
    Spawn {
        path: PathBuf,
        tool: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{}: {tool} failed ({status}): {stderr}", path.display())]
    Tool {
        path: PathBuf,
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{}: ffprobe finds no decodable video stream{detail} — the file is not a video or is corrupt", path.display())]
    NoVideo { path: PathBuf, detail: String },
    #[error("{}: cannot read frame {frame} from ffmpeg", path.display())]
    Read {
        path: PathBuf,
        frame: u32,
        #[source]
        source: io::Error,
    },
    #[error("{}: frame {frame} is truncated: ffmpeg sent {got} of {expected} bytes ({width}x{height} RGB24){stderr}", path.display())]
    Truncated {
        path: PathBuf,
        frame: u32,
        got: usize,
        expected: usize,
        width: u32,
        height: u32,
        stderr: String,
    },
    #[error("{}: cannot decode image: {detail}", path.display())]
    Image { path: PathBuf, detail: String },
}

/// Checks that `ffmpeg` and `ffprobe` run; the error says how to install them.
pub fn check_ffmpeg() -> Result<(), DecodeError> {
    for tool in ["ffmpeg", "ffprobe"] {
        let out = Command::new(tool)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| DecodeError::Spawn {
                path: PathBuf::from(tool),
                tool,
                source,
            })?;
        if !out.status.success() {
            return Err(DecodeError::Tool {
                path: PathBuf::from(tool),
                tool,
                status: out.status.to_string(),
                stderr: format!("{} — {FFMPEG_FIX}", tail(&out.stderr)),
            });
        }
    }
    Ok(())
}

/// The last lines of a tool's stderr, trimmed, for error messages.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(4);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() {
        "no message".into()
    } else {
        joined
    }
}

/// Size of the frames ffmpeg outputs for a video: the coded size with the container's
/// rotation applied (a ±90° rotation swaps width and height).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Rotation in degrees recorded in the container (0 when none).
    pub rotation: i32,
}

/// Reads the first video stream's size and rotation with `ffprobe`.
pub fn probe(path: &Path) -> Result<VideoInfo, DecodeError> {
    std::fs::metadata(path).map_err(|source| DecodeError::Missing {
        path: path.to_path_buf(),
        source,
    })?;
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=width,height:stream_tags=rotate:stream_side_data=rotation")
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| DecodeError::Spawn {
            path: path.to_path_buf(),
            tool: "ffprobe",
            source,
        })?;
    if !out.status.success() {
        return Err(DecodeError::Tool {
            path: path.to_path_buf(),
            tool: "ffprobe",
            status: out.status.to_string(),
            stderr: tail(&out.stderr),
        });
    }
    parse_probe(&out.stdout).ok_or_else(|| DecodeError::NoVideo {
        path: path.to_path_buf(),
        detail: match tail(&out.stderr).as_str() {
            "no message" => String::new(),
            msg => format!(" ({msg})"),
        },
    })
}

/// Parses ffprobe's JSON (`-show_entries stream=width,height:stream_tags=rotate:
/// stream_side_data=rotation -of json`); `None` without a usable video stream.
pub fn parse_probe(json: &[u8]) -> Option<VideoInfo> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let stream = v.get("streams")?.as_array()?.first()?;
    let dim = |k: &str| {
        stream
            .get(k)?
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .filter(|&d| d > 0)
    };
    let (width, height) = (dim("width")?, dim("height")?);
    // Newer ffmpeg reports a display matrix in side data; older ones a `rotate` tag.
    let side = stream
        .get("side_data_list")
        .and_then(|l| l.as_array())
        .and_then(|l| l.iter().find_map(|d| d.get("rotation")?.as_f64()));
    let tag = stream
        .get("tags")
        .and_then(|t| t.get("rotate"))
        .and_then(|r| r.as_str())
        .and_then(|r| r.trim().parse::<f64>().ok());
    let rotation = side.or(tag).unwrap_or(0.0).round() as i32;
    let quarter_turn = rotation.rem_euclid(180) == 90;
    let (width, height) = if quarter_turn {
        (height, width)
    } else {
        (width, height)
    };
    Some(VideoInfo {
        width,
        height,
        rotation,
    })
}

/// Streams the kept frames of one video from an `ffmpeg` child process.
///
/// Dropping the reader kills the child if it is still running.
pub struct FrameReader {
    path: PathBuf,
    info: VideoInfo,
    stride: u32,
    child: Option<Child>,
    stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    kept: u32,
    finished: bool,
}

impl FrameReader {
    /// Starts decoding `path`, keeping frames `0, stride, 2·stride, …`, at most
    /// `max_frames` of them (`None`: all).
    pub fn open(path: &Path, stride: u32, max_frames: Option<u32>) -> Result<Self, DecodeError> {
        let stride = stride.max(1);
        let info = probe(path)?;
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"]);
        if stride > 1 {
            // `n` counts the frames entering the filter: the decoded frame index.
            cmd.arg("-vf").arg(format!("select=not(mod(n\\,{stride}))"));
        }
        cmd.args(["-fps_mode", "passthrough"]);
        if let Some(max) = max_frames {
            cmd.arg("-frames:v").arg(max.to_string());
        }
        cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| DecodeError::Spawn {
            path: path.to_path_buf(),
            tool: "ffmpeg",
            source,
        })?;
        let stdout = child.stdout.take();
        // stderr is drained on its own thread so a chatty decoder never blocks on it.
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        Ok(FrameReader {
            path: path.to_path_buf(),
            info,
            stride,
            child: Some(child),
            stdout,
            stderr,
            kept: 0,
            finished: false,
        })
    }

    /// Size and rotation of the frames.
    pub fn info(&self) -> VideoInfo {
        self.info
    }

    /// The next kept frame with its decoded-frame index; `Ok(None)` after the last one.
    /// After an error the reader is finished.
    pub fn next_frame(&mut self) -> Result<Option<(u32, RgbImage)>, DecodeError> {
        if self.finished {
            return Ok(None);
        }
        let result = self.read_frame();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    fn read_frame(&mut self) -> Result<Option<(u32, RgbImage)>, DecodeError> {
        let (w, h) = (self.info.width, self.info.height);
        let expected = w as usize * h as usize * 3;
        let index = self.kept.saturating_mul(self.stride);
        let mut buf = vec![0u8; expected];
        let mut got = 0;
        if let Some(out) = self.stdout.as_mut() {
            while got < expected {
                match out.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(DecodeError::Read {
                            path: self.path.clone(),
                            frame: index,
                            source,
                        })
                    }
                }
            }
        }
        if got == expected {
            self.kept += 1;
            let img = RgbImage::from_raw(w, h, buf).expect("buffer holds exactly one frame");
            return Ok(Some((index, img)));
        }
        // End of stream (or a torn frame): the exit status decides.
        let (status, stderr) = self.finish();
        match status {
            Some(s) if !s.success() => Err(DecodeError::Tool {
                path: self.path.clone(),
                tool: "ffmpeg",
                status: s.to_string(),
                stderr,
            }),
            _ if got > 0 => Err(DecodeError::Truncated {
                path: self.path.clone(),
                frame: index,
                got,
                expected,
                width: w,
                height: h,
                stderr: if stderr == "no message" {
                    String::new()
                } else {
                    format!(" ({stderr})")
                },
            }),
            None => Err(DecodeError::Tool {
                path: self.path.clone(),
                tool: "ffmpeg",
                status: "unknown exit status".into(),
                stderr,
            }),
            Some(_) => Ok(None),
        }
    }

    /// Waits for the child; returns its status and the tail of its stderr.
    fn finish(&mut self) -> (Option<std::process::ExitStatus>, String) {
        drop(self.stdout.take());
        let status = self.child.take().and_then(|mut c| c.wait().ok());
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .map(|b| tail(&b))
            .unwrap_or_else(|| "no message".into());
        (status, stderr)
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        drop(self.stdout.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
    }
}

/// Decodes a photo: PNG and JPEG with the `image` crate, other image formats as the
/// first frame ffmpeg decodes.
pub fn decode_image(path: &Path) -> Result<RgbImage, DecodeError> {
    if decoded_by_image_crate(path) {
        std::fs::metadata(path).map_err(|source| DecodeError::Missing {
            path: path.to_path_buf(),
            source,
        })?;
        let img = image::open(path).map_err(|e| DecodeError::Image {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        return Ok(img.to_rgb8());
    }
    let mut reader = FrameReader::open(path, 1, Some(1))?;
    match reader.next_frame()? {
        Some((_, img)) => Ok(img),
        None => Err(DecodeError::Image {
            path: path.to_path_buf(),
            detail: "ffmpeg decoded no frame".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension() {
        assert_eq!(MediaKind::of(Path::new("a/b.AVI")), Some(MediaKind::Video));
        assert_eq!(MediaKind::of(Path::new("x.mov")), Some(MediaKind::Video));
        assert_eq!(MediaKind::of(Path::new("x.JPG")), Some(MediaKind::Image));
        assert_eq!(MediaKind::of(Path::new("x.face")), None);
        assert_eq!(MediaKind::of(Path::new("noext")), None);
        assert!(MediaKind::needs_ffmpeg(Path::new("x.mp4")));
        assert!(MediaKind::needs_ffmpeg(Path::new("x.bmp")));
        assert!(!MediaKind::needs_ffmpeg(Path::new("x.png")));
        assert!(!MediaKind::needs_ffmpeg(Path::new("x.txt")));
    }

    #[test]
    fn probe_json_plain() {
        let j = br#"{"programs":[],"streams":[{"width":640,"height":480}]}"#;
        assert_eq!(
            parse_probe(j),
            Some(VideoInfo {
                width: 640,
                height: 480,
                rotation: 0
            })
        );
    }

    #[test]
    fn probe_json_rotation_swaps_quarter_turns() {
        let side = br#"{"streams":[{"width":1920,"height":1080,
            "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}]}"#;
        let info = parse_probe(side).unwrap();
        assert_eq!((info.width, info.height, info.rotation), (1080, 1920, -90));
        let tag = br#"{"streams":[{"width":1920,"height":1080,"tags":{"rotate":"270"}}]}"#;
        let info = parse_probe(tag).unwrap();
        assert_eq!((info.width, info.height), (1080, 1920));
        let half = br#"{"streams":[{"width":1920,"height":1080,"tags":{"rotate":"180"}}]}"#;
        let info = parse_probe(half).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
    }

    #[test]
    fn probe_json_without_video() {
        assert_eq!(parse_probe(br#"{"streams":[]}"#), None);
        assert_eq!(parse_probe(br#"{}"#), None);
        assert_eq!(parse_probe(b"not json"), None);
        assert_eq!(
            parse_probe(br#"{"streams":[{"width":0,"height":480}]}"#),
            None
        );
    }

    #[test]
    fn stderr_tail_keeps_last_lines() {
        assert_eq!(tail(b""), "no message");
        assert_eq!(tail(b"a\n\nb\nc\nd\ne\n"), "b | c | d | e");
    }
}
