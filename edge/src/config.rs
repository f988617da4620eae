//! `fas-edge.toml`: the door's configuration, one section per stage.
//!
//! Every field has a default except where a wrong guess would be unsafe (the bundle and its
//! trusted keys). Unknown keys are refused (a typo must not silently fall back to a
//! default), and every error names the file, the key and the fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actuator::ActuatorConfig;
use crate::camera::{BackoffConfig, PixelFormat, V4l2Config};
use crate::display::png::SnapshotConfig;
use crate::policy::PolicyConfig;
use crate::quality::QualityConfig;
use crate::track::TrackConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read it — pass --config with the path of fas-edge.toml")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {msg}")]
    Parse { file: PathBuf, msg: String },
    #[error("{file}: {key}: {problem}")]
    Invalid {
        file: PathBuf,
        key: String,
        problem: String,
    },
}

/// Where the liveness model comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A signed bundle (`*.fasb`).
    pub bundle: Option<PathBuf>,
    /// A `.pub` key or a directory of them; bundles signed by any other key are refused.
    #[serde(default = "defaults::keys")]
    pub trusted_keys: PathBuf,
    /// A bundle threshold by name (`default`, `strict`) — unless a calibration file exists.
    #[serde(default = "defaults::threshold_name")]
    pub threshold: String,
    /// Written by `fas-edge calibrate`; when present its threshold is used.
    #[serde(default = "defaults::calibration")]
    pub calibration: PathBuf,
    /// Accept a bundle marked `demo` (trained on SynthFAS only). Never at a real door.
    #[serde(default)]
    pub allow_demo: bool,
    /// Revoked signing keys and bundles (a missing file revokes nothing).
    #[serde(default = "defaults::revoked")]
    pub revoked: PathBuf,
    /// An operator-signed permit to run this bundle although the device has run a newer
    /// version (`fas-quantize permit-downgrade`).
    #[serde(default)]
    pub downgrade: Option<PathBuf>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            bundle: None,
            trusted_keys: defaults::keys(),
            threshold: defaults::threshold_name(),
            calibration: defaults::calibration(),
            allow_demo: false,
            revoked: defaults::revoked(),
            downgrade: None,
        }
    }
}

/// The device's own files: its signing key (signs calibrations) and its anti-rollback
/// state. Both live in the service's state directory by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSection {
    /// ed25519 secret key, mode 0600 (`device.pub` beside it); made by the first
    /// `fas-edge calibrate`.
    pub key: PathBuf,
    /// The newest bundle version this device has run.
    pub state: PathBuf,
}

impl Default for DeviceSection {
    fn default() -> Self {
        DeviceSection::in_dir(Path::new("/var/lib/fas"))
    }
}

impl DeviceSection {
    /// `DIR/device.key` and `DIR/state.json`.
    pub fn in_dir(dir: &Path) -> DeviceSection {
        DeviceSection {
            key: dir.join("device.key"),
            state: dir.join("state.json"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSection {
    /// `/dev/videoN`, `synthetic[:seed]`.
    pub device: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// FourCCs in order of preference: `YUYV`, `MJPG`, `NV12`, `RGB3`, `BGR3`.
    pub formats: Vec<String>,
    pub buffers: u32,
    pub timeout_ms: u64,
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// The device the door accepts, as `fas-edge cameras` prints it (exact matches);
    /// a different device on the node is refused.
    pub expect_driver: Option<String>,
    pub expect_card: Option<String>,
    /// Pin the camera to its USB port (e.g. `usb-0000:01:00.0-1.2`).
    pub expect_bus_info: Option<String>,
    /// Accept virtual video devices (`v4l2loopback`, `vivid`, …): test rigs only.
    pub allow_virtual: bool,
}

impl Default for CameraSection {
    fn default() -> Self {
        let v = V4l2Config::default();
        CameraSection {
            device: v.device.display().to_string(),
            width: v.width,
            height: v.height,
            fps: v.fps,
            formats: v
                .formats
                .iter()
                .map(|f| String::from_utf8_lossy(&f.fourcc()).into_owned())
                .collect(),
            buffers: v.buffers,
            timeout_ms: v.timeout.as_millis() as u64,
            reconnect_initial_ms: 200,
            reconnect_max_ms: 5000,
            expect_driver: None,
            expect_card: None,
            expect_bus_info: None,
            allow_virtual: false,
        }
    }
}

/// Which face detector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// RetinaFace mobilenet-0.25 (one network, any input size).
    #[default]
    Retinaface,
    /// MTCNN (three-network cascade over an image pyramid).
    Mtcnn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSection {
    pub kind: DetectorKind,
    /// RetinaFace ONNX; empty: the bundle's `detector.onnx`, else the packaged model.
    pub model: Option<PathBuf>,
    /// MTCNN: the directory holding `mtcnn_pnet.onnx`, `mtcnn_rnet.onnx`,
    /// `mtcnn_onet.onnx`; empty: `$FAS_ASSETS`, else `/usr/share/fas`.
    pub mtcnn_dir: Option<PathBuf>,
    /// MTCNN: the smallest face searched for, in pixels (its pyramid starts at 12 / this;
    /// a door's faces are large, and each halving of this roughly doubles P-Net's work).
    pub min_face_size: f32,
    /// Faces scoring below this are ignored, with either detector (MTCNN's own stage
    /// thresholds, 0.6 / 0.7 / 0.7, apply first).
    pub score_threshold: f32,
    /// RetinaFace only (MTCNN's cost is set by `min_face_size`):
    /// frames are downscaled so their long side is at most this before detection (the
    /// crop is still cut from the full frame). 320 keeps 640×480 at ≥ 30 FPS with a
    /// p99 frame→score under 50 ms on one core (`cargo xtask bench-edge`: detection is
    /// 12 ms at 320 vs 42 ms at 640); raise it for faces smaller than ~40 px at 640.
    pub max_side: u32,
}

impl Default for DetectorSection {
    fn default() -> Self {
        DetectorSection {
            kind: DetectorKind::Retinaface,
            model: None,
            mtcnn_dir: None,
            min_face_size: 40.0,
            score_threshold: 0.6,
            max_side: 320,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackSection {
    pub detect_every: u32,
    pub idle_detect_every: u32,
    pub max_predicted_shift: f32,
    pub max_patch_change: f32,
}

impl Default for TrackSection {
    fn default() -> Self {
        let t = TrackConfig::default();
        TrackSection {
            detect_every: t.detect_every,
            idle_detect_every: t.idle_detect_every,
            max_predicted_shift: t.max_predicted_shift,
            max_patch_change: t.max_patch_change,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualitySection {
    pub min_eye_distance: f32,
    pub min_box_side: f32,
    pub min_visible_fraction: f32,
    pub max_roll_deg: f32,
    pub max_yaw_deg: f32,
    pub max_pitch_deg: f32,
    pub min_mean_luma: f32,
    pub max_mean_luma: f32,
    pub max_clipped_fraction: f32,
    pub min_sharpness: f32,
}

impl Default for QualitySection {
    fn default() -> Self {
        let q = QualityConfig::default();
        QualitySection {
            min_eye_distance: q.min_eye_distance,
            min_box_side: q.min_box_side,
            min_visible_fraction: q.min_visible_fraction,
            max_roll_deg: q.max_roll_deg,
            max_yaw_deg: q.max_yaw_deg,
            max_pitch_deg: q.max_pitch_deg,
            min_mean_luma: q.min_mean_luma,
            max_mean_luma: q.max_mean_luma,
            max_clipped_fraction: q.max_clipped_fraction,
            min_sharpness: q.min_sharpness,
        }
    }
}

impl QualitySection {
    pub fn to_config(&self) -> QualityConfig {
        QualityConfig {
            min_eye_distance: self.min_eye_distance,
            min_box_side: self.min_box_side,
            min_visible_fraction: self.min_visible_fraction,
            max_roll_deg: self.max_roll_deg,
            max_yaw_deg: self.max_yaw_deg,
            max_pitch_deg: self.max_pitch_deg,
            min_mean_luma: self.min_mean_luma,
            max_mean_luma: self.max_mean_luma,
            max_clipped_fraction: self.max_clipped_fraction,
            min_sharpness: self.min_sharpness,
        }
    }
}

/// Where the overlay goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DisplaySection {
    #[default]
    None,
    /// Linux framebuffer, e.g. `/dev/fb0`.
    Framebuffer { device: PathBuf },
    /// PNG snapshots.
    Png(SnapshotConfig),
}

/// What starts a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerSection {
    /// Sessions start on their own when a face appears (policy mode `continuous`).
    #[default]
    Continuous,
    /// One session per line on standard input.
    Stdin,
    /// One session per connection (or line) on a Unix socket.
    Socket { path: PathBuf },
    /// One session per edge on a GPIO input line (button, badge reader), debounced.
    Gpio(crate::trigger::GpioTrigger),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    pub path: PathBuf,
    /// `every_record` (a granted door is on disk before it opens) or `never`.
    pub fsync: fas_core::audit::FsyncPolicy,
    /// Start a new file when the current one would pass this many MiB (`path` → `path.1`,
    /// the chain continues across files; `fas-edge audit verify` checks them all); 0 never
    /// rotates.
    pub rotate_mib: u64,
    /// Rotated files kept (`path.1` … `path.N`); older ones are deleted.
    pub keep: u32,
    /// Also send every record to this syslog socket (`/dev/log`): a copy off the card.
    pub syslog: Option<PathBuf>,
}

impl Default for AuditSection {
    /// 64 MiB × (8 kept + the current file): at most 576 MiB on the card, about two
    /// million decisions.
    fn default() -> Self {
        AuditSection {
            path: PathBuf::from("/var/lib/fas/audit.jsonl"),
            fsync: fas_core::audit::FsyncPolicy::EveryRecord,
            rotate_mib: 64,
            keep: 8,
            syslog: None,
        }
    }
}

impl AuditSection {
    /// The rotation these settings ask for (`None` when `rotate_mib` = 0).
    pub fn rotation(&self) -> Option<fas_core::audit::Rotation> {
        (self.rotate_mib > 0).then(|| fas_core::audit::Rotation {
            max_bytes: self.rotate_mib.saturating_mul(1 << 20),
            keep: self.keep,
        })
    }
}

/// `[status]`: the status file for monitoring ([`crate::status`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusSection {
    /// Where to write it (a tmpfs such as /run/fas); none when unset.
    pub path: Option<PathBuf>,
    /// Rewrite at most this often (decisions and camera changes are written at once).
    pub every_ms: u64,
}

impl Default for StatusSection {
    fn default() -> Self {
        StatusSection {
            path: None,
            every_ms: 1000,
        }
    }
}

/// The whole file. `policy` is kept as a TOML table because its threshold comes from the
/// calibration or the bundle when the file does not set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    pub model: ModelSection,
    pub camera: CameraSection,
    pub detector: DetectorSection,
    pub track: TrackSection,
    pub quality: QualitySection,
    pub policy: toml::Table,
    pub trigger: TriggerSection,
    pub actuator: Option<ActuatorConfig>,
    pub display: DisplaySection,
    pub audit: AuditSection,
    pub status: StatusSection,
    pub device: DeviceSection,
    /// Who may enter ([`crate::access`]). Required when a relay or command opens a door.
    pub access: Option<crate::access::AccessSection>,
}

/// Only the `[actuator]` section of the config at `path` (for `fas-edge lock`, which must
/// work whatever else in the file is wrong).
pub fn actuator_only(path: &Path) -> Result<Option<ActuatorConfig>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    actuator_only_from_str(&text).map_err(|msg| ConfigError::Parse {
        file: path.to_path_buf(),
        msg,
    })
}

/// [`actuator_only`] of a config's text.
pub fn actuator_only_from_str(text: &str) -> Result<Option<ActuatorConfig>, String> {
    #[derive(Deserialize)]
    struct Only {
        actuator: Option<ActuatorConfig>,
    }
    let only: Only =
        toml::from_str(text).map_err(|e: toml::de::Error| e.to_string().trim_end().to_string())?;
    Ok(only.actuator)
}

mod defaults {
    use std::path::PathBuf;
    pub fn keys() -> PathBuf {
        PathBuf::from("/etc/fas/keys")
    }
    pub fn threshold_name() -> String {
        "default".into()
    }
    pub fn calibration() -> PathBuf {
        PathBuf::from("/var/lib/fas/calibration.json")
    }
    pub fn revoked() -> PathBuf {
        PathBuf::from("/etc/fas/revoked")
    }
}

impl EdgeConfig {
    pub fn load(path: &Path) -> Result<EdgeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        EdgeConfig::parse(&text, path)
    }

    pub fn parse(text: &str, origin: &Path) -> Result<EdgeConfig, ConfigError> {
        let cfg: EdgeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: origin.to_path_buf(),
            msg: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn invalid(origin: &Path, key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: origin.to_path_buf(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Checks every section (the policy with a placeholder threshold).
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.detector.score_threshold) {
            return Err(Self::invalid(
                origin,
                "detector.score_threshold",
                format!("{} must lie in [0, 1]", self.detector.score_threshold),
            ));
        }
        if !(self.detector.min_face_size.is_finite() && self.detector.min_face_size >= 12.0) {
            return Err(Self::invalid(
                origin,
                "detector.min_face_size",
                format!(
                    "{} is below MTCNN's 12-pixel window; use 20–80",
                    self.detector.min_face_size
                ),
            ));
        }
        if self.detector.max_side < 64 {
            return Err(Self::invalid(
                origin,
                "detector.max_side",
                format!(
                    "{} is too small for a face detector; use 320–1280",
                    self.detector.max_side
                ),
            ));
        }
        self.v4l2()
            .map_err(|e| Self::invalid(origin, "camera", e))?;
        self.backoff()
            .validate()
            .map_err(|e| Self::invalid(origin, "camera.reconnect_*", e.to_string()))?;
        self.track_config()
            .validate()
            .map_err(|e| Self::invalid(origin, "track", e.to_string()))?;
        self.quality
            .to_config()
            .validate()
            .map_err(|e| Self::invalid(origin, "quality", e.to_string()))?;
        self.policy_config(0.5)
            .map_err(|e| Self::invalid(origin, "policy", e))?;
        if let TriggerSection::Gpio(g) = &self.trigger {
            g.validate()
                .map_err(|e| Self::invalid(origin, "trigger", e))?;
        }
        if !(100..=3_600_000).contains(&self.status.every_ms) {
            return Err(Self::invalid(
                origin,
                "status.every_ms",
                format!(
                    "{} is not in 100..=3600000 ms; 1000 rewrites the status file once a second",
                    self.status.every_ms
                ),
            ));
        }
        self.validate_access(origin)?;
        if let Some(r) = self.audit.rotation() {
            r.validate().map_err(|_| {
                Self::invalid(
                    origin,
                    "audit.keep",
                    format!(
                        "{} is not in 1..={} (rotated files to keep; or audit.rotate_mib = 0 never rotates)",
                        self.audit.keep,
                        fas_core::audit::rotate::MAX_KEEP
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// `[access]` is checked, and present wherever a door is driven: a relay or a command
    /// with no `[access]` would open for any live face — a stranger's too.
    fn validate_access(&self, origin: &Path) -> Result<(), ConfigError> {
        if let Some(a) = &self.access {
            return a
                .validate()
                .map_err(|(key, problem)| Self::invalid(origin, key, problem));
        }
        let drives = match &self.actuator {
            Some(ActuatorConfig::Gpio(_)) => Some("gpio"),
            Some(ActuatorConfig::Command(_)) => Some("command"),
            Some(ActuatorConfig::None) | None => None,
        };
        match drives {
            Some(kind) => Err(Self::invalid(
                origin,
                "access",
                format!(
                    "missing: actuator.kind = \"{kind}\" opens a door, so say who may enter — add an [access] section with mode = \"credential+face\" (a card and the card holder's live face), \"face\" (an enrolled live face), \"credential\" (a card and any live person) or \"presence\" (any live face, with allow_any_live_face = true)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The policy with `threshold` unless the file sets one.
    pub fn policy_config(&self, threshold: f32) -> Result<PolicyConfig, String> {
        let mut t = self.policy.clone();
        if let Some(fixed) = self.fixed_threshold()? {
            t.insert("threshold".into(), toml::Value::Float(fixed));
        }
        t.entry("threshold")
            .or_insert(toml::Value::Float(threshold as f64));
        let p: PolicyConfig = toml::Value::Table(t)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim_end().to_string())?;
        p.validate().map_err(|e| e.to_string())?;
        Ok(p)
    }

    /// The threshold the file fixes itself (overrides calibration and bundle, never below
    /// the bundle's floor): `threshold = 0.8` or `threshold = 1` alike.
    pub fn fixed_threshold(&self) -> Result<Option<f64>, String> {
        match self.policy.get("threshold") {
            None => Ok(None),
            Some(toml::Value::Float(f)) => Ok(Some(*f)),
            Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(other) => Err(format!(
                "threshold: {other} is not a number (p_live in [0, 1], e.g. 0.8)"
            )),
        }
    }

    pub fn v4l2(&self) -> Result<V4l2Config, String> {
        let c = &self.camera;
        let formats = c
            .formats
            .iter()
            .map(|f| {
                PixelFormat::ALL
                    .into_iter()
                    .find(|p| p.fourcc() == f.as_bytes())
                    .ok_or_else(|| {
                        format!("formats: \"{f}\" is not one of YUYV, MJPG, NV12, RGB3, BGR3")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let v = V4l2Config {
            device: PathBuf::from(&c.device),
            formats,
            width: c.width,
            height: c.height,
            fps: c.fps,
            buffers: c.buffers,
            timeout: Duration::from_millis(c.timeout_ms),
            identity: crate::camera::IdentityRule {
                driver: c.expect_driver.clone(),
                card: c.expect_card.clone(),
                bus_info: c.expect_bus_info.clone(),
                allow_virtual: c.allow_virtual,
            },
        };
        if !c.device.starts_with("synthetic") {
            v.validate().map_err(|e| e.to_string())?;
        }
        Ok(v)
    }

    pub fn backoff(&self) -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(self.camera.reconnect_initial_ms),
            max: Duration::from_millis(self.camera.reconnect_max_ms),
        }
    }

    pub fn track_config(&self) -> TrackConfig {
        TrackConfig {
            detect_every: self.track.detect_every,
            idle_detect_every: self.track.idle_detect_every,
            min_score: self.detector.score_threshold,
            max_predicted_shift: self.track.max_predicted_shift,
            max_patch_change: self.track.max_patch_change,
            quality: Some(self.quality.to_config()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::parse(text, Path::new("fas-edge.toml"))
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, EdgeConfig::default());
        assert_eq!(c.camera.device, "/dev/video0");
        assert!(c.fixed_threshold().unwrap().is_none());
        assert_eq!(c.policy_config(0.7).unwrap().threshold, 0.7);
    }

    #[test]
    fn a_full_file_parses() {
        let c = parse(
            r#"
            [model]
            bundle = "/var/lib/fas/model.fasb"
            trusted_keys = "/etc/fas/keys"
            threshold = "strict"
            [camera]
            device = "/dev/video2"
            width = 1280
            height = 720
            formats = ["MJPG", "YUYV"]
            [policy]
            frames = 7
            aggregate = "median"
            threshold = 0.8
            [trigger]
            kind = "socket"
            path = "/run/fas/trigger.sock"
            [actuator]
            kind = "gpio"
            chip = "/dev/gpiochip0"
            line = 17
            polarity = "active_high"
            [display]
            kind = "framebuffer"
            device = "/dev/fb0"
            [audit]
            path = "/tmp/a.jsonl"
            fsync = "never"
            rotate_mib = 16
            keep = 3
            [status]
            path = "/run/fas/status.json"
            every_ms = 500
            [access]
            mode = "credential+face"
            enrollment = "/var/lib/fas/people.fas"
            "#,
        )
        .unwrap();
        assert_eq!(
            c.access.as_ref().map(|a| a.enrollment.as_path()),
            Some(Path::new("/var/lib/fas/people.fas"))
        );
        assert_eq!(
            (c.status.path.as_deref(), c.status.every_ms),
            (Some(Path::new("/run/fas/status.json")), 500)
        );
        assert_eq!(
            c.audit.rotation(),
            Some(fas_core::audit::Rotation {
                max_bytes: 16 << 20,
                keep: 3
            })
        );
        assert_eq!(c.model.threshold, "strict");
        assert_eq!(c.v4l2().unwrap().formats.len(), 2);
        assert_eq!(c.fixed_threshold(), Ok(Some(0.8)));
        let p = c.policy_config(0.1).unwrap();
        assert_eq!((p.frames, p.threshold), (7, 0.8));
        assert!(matches!(c.trigger, TriggerSection::Socket { .. }));
        assert!(matches!(c.actuator, Some(ActuatorConfig::Gpio(_))));
    }

    #[test]
    fn camera_identity_settings_reach_the_v4l2_config() {
        let c = parse(
            "[camera]\nexpect_driver = \"uvcvideo\"\nexpect_bus_info = \"usb-0000:01:00.0-1.2\"\n",
        )
        .unwrap();
        let rule = c.v4l2().unwrap().identity;
        assert_eq!(rule.driver.as_deref(), Some("uvcvideo"));
        assert_eq!(rule.bus_info.as_deref(), Some("usb-0000:01:00.0-1.2"));
        assert!(!rule.allow_virtual && rule.card.is_none());
        assert!(parse("").unwrap().v4l2().unwrap().identity == Default::default());
    }

    #[test]
    fn an_integer_threshold_is_a_threshold() {
        // `threshold = 1` used to be ignored (not a TOML float): the door then used the
        // calibration's or the bundle's lower threshold instead of the one written here.
        let c = parse("[policy]\nthreshold = 1\nhysteresis = 0\n").unwrap();
        assert_eq!(c.fixed_threshold(), Ok(Some(1.0)));
        assert_eq!(c.policy_config(0.3).unwrap().threshold, 1.0);
        let e = parse("[policy]\nthreshold = \"high\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy") && e.contains("not a number"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = parse("[camera]\nwidht = 640\n").unwrap_err().to_string();
        assert!(e.contains("fas-edge.toml") && e.contains("widht"), "{e}");
        let e = parse("[camera]\nformats = [\"H264\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("camera") && e.contains("H264"), "{e}");
        let e = parse("[policy]\nframes = 0\n").unwrap_err().to_string();
        assert!(e.contains("policy") && e.contains("frames"), "{e}");
        let e = parse("[detector]\nscore_threshold = 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("detector.score_threshold"), "{e}");
        let e = parse("[quality]\nmin_sharpness = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("quality"), "{e}");
        let e = parse("[trigger]\nkind = \"gpio\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trigger") || e.contains("gpio"), "{e}");
        let e = parse("[status]\nevery_ms = 5\n").unwrap_err().to_string();
        assert!(e.contains("status.every_ms"), "{e}");
        let e = parse("[audit]\nkeep = 0\n").unwrap_err().to_string();
        assert!(e.contains("audit.keep"), "{e}");
        // rotate_mib = 0 never rotates, whatever keep says.
        assert_eq!(
            parse("[audit]\nrotate_mib = 0\nkeep = 0\n")
                .unwrap()
                .audit
                .rotation(),
            None
        );
    }

    #[test]
    fn gpio_trigger_section_parses_and_is_checked() {
        let c = parse("[trigger]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\nline = 3\nedge = \"falling\"\nbias = \"pull_up\"\n").unwrap();
        match &c.trigger {
            TriggerSection::Gpio(g) => {
                assert_eq!(
                    (g.line, g.edge, g.bias),
                    (
                        3,
                        crate::trigger::Edge::Falling,
                        crate::trigger::Bias::PullUp
                    )
                );
                assert_eq!(g.debounce_ms, 50);
            }
            other => panic!("{other:?}"),
        }
        let e = parse(
            "[trigger]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\nline = 3\ndebounce_ms = 9000\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("trigger") && e.contains("debounce_ms"), "{e}");
        let e =
            parse("[trigger]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\nline = 3\nlevel = 1\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("level"), "{e}");
    }

    #[test]
    fn detector_kind_selects_mtcnn() {
        let c = parse("[detector]\nkind = \"mtcnn\"\nmtcnn_dir = \"/opt/m\"\nmin_face_size = 30\n")
            .unwrap();
        assert_eq!(c.detector.kind, DetectorKind::Mtcnn);
        assert_eq!(c.detector.min_face_size, 30.0);
        let e = parse("[detector]\nkind = \"mtcnn\"\nmin_face_size = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("detector.min_face_size"), "{e}");
        let e = parse("[detector]\nkind = \"yolo\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retinaface") && e.contains("mtcnn"), "{e}");
    }
}
