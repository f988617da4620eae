//! Command-line arguments of `fas-edge` (raw flags → [`crate::app::Common`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{CalibrateOpts, Common, RunLimits};

#[derive(Debug, Parser)]
#[command(
    name = "fas-edge",
    version,
    about = "Face liveness at the door: camera → face → liveness → fail-closed decision.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the door (the default when no subcommand is given).
    Run(RunArgs),
    /// Fit the decision threshold on this device: guided bona fide (and attack) sessions.
    Calibrate(CalibrateArgs),
    /// Audit-log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check everything start-up checks — config, bundle signature, expiry, revocation,
    /// rollback, calibration signature and range, detector pin, actuator settings —
    /// without opening the door, the camera or the audit log.
    CheckConfig(CommonArgs),
    /// Drive the configured relay (or command) to locked and exit: the unit runs it as
    /// `ExecStopPost=`, so the door locks after a crash, `kill -9` or `systemctl stop`.
    Lock(CommonArgs),
    /// Who may enter: enrol people (face templates and cards), list, remove, move them.
    #[command(subcommand)]
    Enroll(EnrollCommand),
    /// List the cameras this build can open: V4L2 nodes (`--camera /dev/videoN`) and, in
    /// builds with the `nokhwa` feature, desktop cameras (`--camera nokhwa:N`).
    Cameras,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain: finds a removed, inserted or edited line.
    Verify {
        /// The audit log (JSONL).
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Enrol a person: guided head poses in front of the camera (each live and sharp; only
    /// embeddings are stored, encrypted) and their credentials.
    Add(EnrollAddArgs),
    /// Everyone enrolled: id, name, credentials, templates.
    List(CommonArgs),
    /// Remove a person (gone from the store on disk).
    Remove {
        /// The person's id.
        id: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write everyone to FILE (unencrypted JSON, mode 0600) to move them to another board.
    Export {
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Add everyone in an export; refused if it was made with another embedding model.
    Import {
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct EnrollAddArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The person's id (1–64 of A–Z a–z 0–9 . _ -): what audit records name.
    #[arg(long)]
    pub id: String,
    /// A display name (stored encrypted; never in the audit log).
    #[arg(long)]
    pub name: Option<String>,
    /// A card as BITS:FACILITY:CARD, e.g. 26:18:4242 (repeat for several).
    #[arg(long = "credential", value_name = "BITS:FAC:CARD")]
    pub credentials: Vec<crate::access::credential::Credential>,
    /// Enrol the credentials only, no face (for access mode "credential").
    #[arg(long)]
    pub no_face: bool,
    /// How many head poses to take (1–5: straight, left, right, up, down).
    #[arg(long, default_value_t = 5)]
    pub poses: usize,
    /// Do not wait for Enter before each pose.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up a pose after this many frames.
    #[arg(long, default_value_t = 300)]
    pub max_frames_per_pose: u64,
}

impl EnrollAddArgs {
    pub fn opts(&self) -> crate::access::enroll::AddOpts {
        crate::access::enroll::AddOpts {
            id: self.id.clone(),
            name: self.name.clone(),
            credentials: self.credentials.clone(),
            no_face: self.no_face,
            poses: self.poses,
            wait_for_enter: !self.no_wait,
            max_frames_per_pose: self.max_frames_per_pose,
        }
    }
}

#[derive(Debug, Clone, Args, Default)]
pub struct CommonArgs {
    /// fas-edge.toml (defaults apply without one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Camera: /dev/videoN, synthetic[:seed], or nokhwa[:N] for a desktop webcam in
    /// builds with the `nokhwa` feature (overrides camera.device; `fas-edge cameras`
    /// lists them).
    #[arg(long, value_name = "DEV")]
    pub camera: Option<String>,
    /// Read frames from an image folder or a video file instead of a camera.
    #[arg(long, value_name = "PATH", conflicts_with = "camera")]
    pub input: Option<PathBuf>,
    /// Signed model bundle (.fasb) (overrides model.bundle).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Trusted public key (.pub) or a directory of them (overrides model.trusted_keys).
    #[arg(long, value_name = "PATH")]
    pub keys: Option<PathBuf>,
    /// DEVELOPMENT ONLY: load a bundle without checking its signature.
    #[arg(long, value_name = "FILE")]
    pub dev_unsigned_bundle: Option<PathBuf>,
    /// DEVELOPMENT ONLY: a plain ONNX from `fas-quantize export` instead of a bundle.
    #[arg(long, value_name = "FILE")]
    pub dev_unsigned_model: Option<PathBuf>,
    /// Accept a demo model (trained on SynthFAS only).
    #[arg(long)]
    pub allow_demo: bool,
    /// RetinaFace ONNX (overrides detector.model).
    #[arg(long, value_name = "FILE")]
    pub detector: Option<PathBuf>,
    /// Audit log path (overrides audit.path).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Calibration file (overrides model.calibration).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Write overlay snapshots (PNG) of each decision into DIR.
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
    /// Pace synthetic / file input to this frame rate.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Write a status file (fps, camera state, counts, last decision) here, replaced
    /// about once a second (overrides status.path).
    #[arg(long, value_name = "FILE")]
    pub status: Option<PathBuf>,
    /// Events (ready, decision, camera lost/back, stopped) as one JSON object per line
    /// on stdout, for machines.
    #[arg(long)]
    pub json: bool,
    /// Directory of the device's key (device.key) and anti-rollback state (state.json)
    /// (overrides device.key and device.state).
    #[arg(long, value_name = "DIR")]
    pub device_dir: Option<PathBuf>,
}

impl CommonArgs {
    pub fn common(&self) -> Common {
        Common {
            config: self.config.clone(),
            camera: self.camera.clone(),
            input: self.input.clone(),
            bundle: self.bundle.clone(),
            keys: self.keys.clone(),
            dev_unsigned_bundle: self.dev_unsigned_bundle.clone(),
            dev_unsigned_model: self.dev_unsigned_model.clone(),
            allow_demo: self.allow_demo,
            detector: self.detector.clone(),
            audit: self.audit.clone(),
            calibration: self.calibration.clone(),
            snapshots: self.snapshots.clone(),
            fps: self.fps,
            status: self.status.clone(),
            json: self.json,
            device_dir: self.device_dir.clone(),
        }
    }
}

#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Stop after this many frames.
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Stop after this many decisions.
    #[arg(long)]
    pub max_decisions: Option<u64>,
}

impl RunArgs {
    pub fn limits(&self) -> RunLimits {
        RunLimits {
            max_frames: self.max_frames,
            max_decisions: self.max_decisions,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Bona fide sessions to collect.
    #[arg(long, default_value_t = 10)]
    pub bona_fide: usize,
    /// Attack sessions to collect (0: no APCER report).
    #[arg(long, default_value_t = 0)]
    pub attacks: usize,
    /// BPCER to allow on the bona fide sessions (0.05 = 5 %).
    #[arg(long, default_value_t = 0.05)]
    pub target_bpcer: f64,
    /// Where to write calibration.json (default: model.calibration).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Histogram of the session scores with the threshold (PNG).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Do not wait for Enter before each session.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up a session after this many frames.
    #[arg(long, default_value_t = 300)]
    pub max_frames_per_session: u64,
}

impl CalibrateArgs {
    pub fn opts(&self) -> CalibrateOpts {
        CalibrateOpts {
            bona_fide: self.bona_fide,
            attacks: self.attacks,
            target_bpcer: self.target_bpcer,
            out: self.out.clone(),
            report_png: self.report.clone(),
            wait_for_enter: !self.no_wait,
            max_frames_per_session: self.max_frames_per_session,
        }
    }
}
