//! `--input PATH`: frames from a folder of images (PNG/JPEG, in file-name order) or from a
//! video file decoded by an `ffmpeg` child process to raw RGB24 on a pipe (size, rotation
//! and frame rate probed with `ffprobe`).
//!
//! Frame times are the nominal timeline `index / fps` (the video's frame rate; 30 fps for
//! a folder unless [`FileSource::with_fps`] says otherwise), so a file replays with the
//! timing it was recorded with however fast it is processed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use fas_core::preprocess::RgbImage;

use super::{CaptureError, Frame, FrameCounter, FrameSource};

/// Nominal frame rate of an image folder.
pub const DEFAULT_FOLDER_FPS: f64 = 30.0;

const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// A folder of images or a video file as a [`FrameSource`].
pub struct FileSource {
    path: PathBuf,
    device: String,
    inner: Inner,
    fps: f64,
    counter: FrameCounter,
    done: bool,
}

enum Inner {
    Folder { files: Vec<PathBuf>, next: usize },
    Video(Box<Decoder>),
}

impl FileSource {
    /// Opens `path`: a directory is read as an image folder (`*.png`, `*.jpg`, `*.jpeg`,
    /// any case, sorted by file name; other files ignored), anything else as a video.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let device = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| CaptureError::Open {
            device: device.clone(),
            detail: "no such file or folder (give a folder of PNG/JPEG images or a video file)"
                .into(),
            os: Some(e),
        })?;
        let (inner, fps) = if meta.is_dir() {
            let files = list_images(path)?;
            (Inner::Folder { files, next: 0 }, DEFAULT_FOLDER_FPS)
        } else {
            let d = Decoder::spawn(path)?;
            let fps = d.probe.fps;
            (Inner::Video(Box::new(d)), fps)
        };
        Ok(FileSource {
            path: path.to_path_buf(),
            device,
            inner,
            fps,
            counter: FrameCounter::default(),
            done: false,
        })
    }

    /// Replaces the nominal frame rate of the timeline (must be positive and finite).
    pub fn with_fps(mut self, fps: f64) -> Result<FileSource, CaptureError> {
        if !(fps.is_finite() && fps > 0.0) {
            return Err(CaptureError::Config {
                field: "input.fps",
                value: fps.to_string(),
                reason: "must be a positive number of frames per second".into(),
            });
        }
        self.fps = fps;
        Ok(self)
    }

    /// Frames in the folder (`None` for a video, whose length is known only at its end).
    pub fn image_count(&self) -> Option<usize> {
        match &self.inner {
            Inner::Folder { files, .. } => Some(files.len()),
            Inner::Video(_) => None,
        }
    }

    fn time_of(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.fps)
    }

    fn end(&mut self) -> CaptureError {
        self.done = true;
        CaptureError::EndOfInput {
            device: self.device.clone(),
            frames: self.counter.count(),
        }
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        if self.done {
            return Err(self.end());
        }
        let index = self.counter.count();
        let t = self.time_of(index);
        match &mut self.inner {
            Inner::Folder { files, next } => {
                let Some(file) = files.get(*next).cloned() else {
                    return Err(self.end());
                };
                *next += 1;
                match read_image(&file) {
                    Ok(img) => Ok(self.counter.stamp(img, None, t, Duration::ZERO)),
                    Err(e) => {
                        self.counter.skip();
                        if !self.path.is_dir() {
                            return Err(CaptureError::Lost {
                                device: self.device.clone(),
                                detail: "the folder is gone".into(),
                                os: None,
                            });
                        }
                        Err(CaptureError::corrupt(
                            &self.device,
                            format!("{}: {e}", file.display()),
                        ))
                    }
                }
            }
            Inner::Video(d) => match d.read_frame() {
                Ok(Some(img)) => Ok(self.counter.stamp(img, None, t, Duration::ZERO)),
                Ok(None) => Err(self.end()),
                Err(detail) => {
                    self.done = true;
                    Err(CaptureError::corrupt(&self.device, detail))
                }
            },
        }
    }

    fn describe(&self) -> String {
        match &self.inner {
            Inner::Folder { files, .. } => {
                format!("{} ({} images @{} fps)", self.device, files.len(), self.fps)
            }
            Inner::Video(d) => format!(
                "{} (video {}x{} @{:.3} fps)",
                self.device, d.probe.width, d.probe.height, self.fps
            ),
        }
    }
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let device = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| CaptureError::Open {
        device: device.clone(),
        detail: "cannot list the folder".into(),
        os: Some(e),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| CaptureError::Open {
                device: device.clone(),
                detail: "cannot list the folder".into(),
                os: Some(e),
            })?
            .path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(CaptureError::Open {
            device,
            detail: "the folder holds no .png/.jpg/.jpeg images".into(),
            os: None,
        });
    }
    Ok(files)
}

fn read_image(path: &Path) -> Result<RgbImage, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?
        .into_rgb8();
    if img.width() == 0 || img.height() == 0 {
        return Err("the image has no pixels".into());
    }
    Ok(img.into())
}

/// What `ffprobe` says about a video's first video stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoProbe {
    /// Size of the decoded (display-rotated) frames.
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

impl VideoProbe {
    /// Parses `ffprobe -of default=noprint_wrappers=1` output of
    /// `stream=width,height,r_frame_rate,avg_frame_rate`, stream tags and side data: a
    /// ±90° rotation swaps width and height (ffmpeg rotates on decode).
    pub fn parse(text: &str) -> Result<VideoProbe, String> {
        let mut width = None;
        let mut height = None;
        let mut fps = None;
        let mut avg = None;
        let mut rotation = 0i64;
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            match key {
                "width" => width = value.parse::<u32>().ok(),
                "height" => height = value.parse::<u32>().ok(),
                "r_frame_rate" => fps = parse_rate(value),
                "avg_frame_rate" => avg = parse_rate(value),
                "rotation" | "TAG:rotate" => {
                    rotation = value.parse::<f64>().map_or(0, |r| r.round() as i64)
                }
                _ => {}
            }
        }
        let (Some(mut w), Some(mut h)) = (width, height) else {
            return Err(format!("ffprobe reported no video stream size in {text:?}"));
        };
        if w == 0 || h == 0 {
            return Err(format!("ffprobe reported an empty {w}x{h} video"));
        }
        if rotation.rem_euclid(180) == 90 {
            std::mem::swap(&mut w, &mut h);
        }
        let fps = avg.or(fps).unwrap_or(DEFAULT_FOLDER_FPS);
        Ok(VideoProbe {
            width: w,
            height: h,
            fps,
        })
    }
}

fn parse_rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let r = n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?;
    (r.is_finite() && r > 0.0).then_some(r)
}

fn run_tool(tool: &str, args: &[&std::ffi::OsStr], device: &str) -> Result<String, CaptureError> {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CaptureError::Open {
            device: device.to_string(),
            detail: format!("cannot run {tool} (install ffmpeg: apt-get install ffmpeg)"),
            os: Some(e),
        })?;
    if !out.status.success() {
        return Err(CaptureError::Open {
            device: device.to_string(),
            detail: format!(
                "{tool} cannot read it as a video: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            os: None,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An `ffmpeg` child decoding to raw RGB24 on its stdout.
struct Decoder {
    probe: VideoProbe,
    child: Child,
    stdout: ChildStdout,
    stderr_tail: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
}

/// Bytes of ffmpeg's stderr kept for error messages.
const STDERR_TAIL: usize = 2048;

impl Decoder {
    fn spawn(path: &Path) -> Result<Decoder, CaptureError> {
        let device = path.display().to_string();
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        let probe_text = run_tool(
            "ffprobe",
            &[
                os("-v"),
                os("error"),
                os("-select_streams"),
                os("v:0"),
                os("-show_entries"),
                os("stream=width,height,r_frame_rate,avg_frame_rate:stream_tags=rotate:stream_side_data=rotation"),
                os("-of"),
                os("default=noprint_wrappers=1"),
                path.as_os_str(),
            ],
            &device,
        )?;
        let probe = VideoProbe::parse(&probe_text).map_err(|detail| CaptureError::Open {
            device: device.clone(),
            detail,
            os: None,
        })?;
        let mut child = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CaptureError::Open {
                device: device.clone(),
                detail: "cannot run ffmpeg (install ffmpeg: apt-get install ffmpeg)".into(),
                os: Some(e),
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CaptureError::Open {
                device,
                detail: "ffmpeg started without pipes".into(),
                os: None,
            });
        };
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let stderr_thread = Some(spawn_stderr_reader(stderr, stderr_tail.clone()));
        Ok(Decoder {
            probe,
            child,
            stdout,
            stderr_tail,
            stderr_thread,
        })
    }

    /// The next frame; `Ok(None)` at a clean end, `Err` (with ffmpeg's complaint) on a
    /// failed decode or a truncated frame.
    fn read_frame(&mut self) -> Result<Option<RgbImage>, String> {
        let (w, h) = (self.probe.width, self.probe.height);
        let len = w as usize * h as usize * 3;
        let mut data = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.stdout.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading ffmpeg's output: {e}")),
            }
        }
        if filled == len {
            return Ok(Some(RgbImage {
                width: w,
                height: h,
                data,
            }));
        }
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        let tail = self
            .stderr_tail
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if !status.success() {
            return Err(format!("ffmpeg failed ({status}): {tail}"));
        }
        if filled > 0 {
            return Err(format!(
                "truncated last frame: {filled} of {len} bytes ({w}x{h} RGB24)"
            ));
        }
        Ok(None)
    }
}

fn spawn_stderr_reader(mut stderr: ChildStderr, tail: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut t) = tail.lock() {
                t.push_str(&String::from_utf8_lossy(&buf[..n]));
                if t.len() > STDERR_TAIL {
                    let mut cut = t.len() - STDERR_TAIL;
                    while !t.is_char_boundary(cut) {
                        cut += 1;
                    }
                    t.drain(..cut);
                }
            }
        }
    })
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_parsing() {
        let p = VideoProbe::parse(
            "width=640\nheight=480\nr_frame_rate=30/1\navg_frame_rate=30000/1001\n",
        )
        .unwrap();
        assert_eq!((p.width, p.height), (640, 480));
        assert!((p.fps - 29.97).abs() < 0.01);
        let r = VideoProbe::parse(
            "width=1920\nheight=1080\nr_frame_rate=25/1\navg_frame_rate=0/0\nrotation=-90\n",
        )
        .unwrap();
        assert_eq!((r.width, r.height, r.fps), (1080, 1920, 25.0));
        let t = VideoProbe::parse("width=8\nheight=4\nTAG:rotate=180\n").unwrap();
        assert_eq!((t.width, t.height, t.fps), (8, 4, DEFAULT_FOLDER_FPS));
        assert!(VideoProbe::parse("codec=h264\n").is_err());
        assert!(VideoProbe::parse("width=0\nheight=4\n").is_err());
    }

    #[test]
    fn missing_path_and_empty_folder_fail_to_open() {
        let e = FileSource::open(Path::new("/nonexistent/fas-input"))
            .err()
            .unwrap();
        assert!(
            matches!(e, CaptureError::Open { .. })
                && e.to_string().contains("/nonexistent/fas-input")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let e = FileSource::open(dir.path()).err().unwrap();
        assert!(e.to_string().contains("no .png/.jpg/.jpeg"), "{e}");
    }
}
