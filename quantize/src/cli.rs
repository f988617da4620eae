//! Command line. Each subcommand is one [`Command`] variant holding its `clap::Args`
//! struct, and one function `fn name(args) -> anyhow::Result<()>` called from [`run`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use fas_core::bundle::{BundleManifest, Encoding};
use fas_infer::bundle::{Bundle, TrustedKeys};
use fas_quantize::bundle::{self, SecretKey, Signing};

#[derive(Debug, Parser)]
#[command(
    name = "fas-quantize",
    version,
    about = "Export, calibrate and bundle face anti-spoofing models; sign and verify bundles"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export a fas-train run dir to ONNX (liveness.onnx) plus a draft bundle manifest,
    /// checked in tract against the trainer's own outputs (max |Δ| ≤ 1e-4).
    Export(ExportArgs),
    /// int8 post-training quantization of an exported model, calibrated on a dataset
    /// manifest and gated on fp32-vs-int8 drift measured in tract on held-out faces.
    Calibrate(CalibrateArgs),
    /// Generate a signing key pair: NAME.key (secret, mode 0600) and NAME.pub.
    Keygen(KeygenArgs),
    /// Pack a draft manifest and its models into a signed bundle (.fasb).
    Bundle(BundleArgs),
    /// Re-sign an existing bundle with another key (replaces manifest.sig).
    Sign(SignArgs),
    /// Check a bundle's signature against trusted keys, its manifest and its file hashes.
    Verify(VerifyArgs),
    /// Show what a bundle holds (no keys needed; says whether it is signed).
    Inspect(InspectArgs),
    /// Sign a permit for a door to run this (older) bundle although it has run a newer
    /// version (anti-rollback); the door reads it from model.downgrade.
    PermitDowngrade(PermitArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Export(a) => export(a),
        Command::Calibrate(a) => calibrate(a),
        Command::Keygen(a) => keygen(a),
        Command::Bundle(a) => bundle(a),
        Command::Sign(a) => sign(a),
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
        Command::PermitDowngrade(a) => permit_downgrade(a),
    }
}

#[derive(Debug, Args)]
pub struct PermitArgs {
    /// The bundle the door may run.
    #[arg(long, value_name = "X.fasb")]
    pub bundle: PathBuf,
    /// A key the door trusts for bundles.
    #[arg(long, value_name = "K.key")]
    pub key: PathBuf,
    /// Where to write the permit (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

fn permit_downgrade(a: PermitArgs) -> Result<()> {
    let key = load_secret(&a.key)?;
    let b = Bundle::open(&a.bundle, &TrustedKeys::single(key.public())).with_context(|| {
        format!(
            "{}: a permit is signed only for a bundle this key signed",
            a.bundle.display()
        )
    })?;
    let permit =
        fas_infer::bundle::permit::Permit::downgrade(&b.manifest_sha256, b.manifest.bundle_version)
            .sign(&key);
    let bytes = serde_json::to_vec_pretty(&permit)?;
    fas_core::atomic::write_atomic(&a.out, &bytes)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "wrote {}: a door may run bundle {} (version {}) once it has run newer ones; set model.downgrade to it",
        a.out.display(),
        b.manifest_sha256,
        b.manifest.bundle_version
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The fas-train run dir (model.json, weights.safetensors, run.json, parity.safetensors).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Output dir: writes liveness.onnx and manifest.draft.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

fn export(a: ExportArgs) -> Result<()> {
    let run = fas_quantize::export::ExportSource::load(&a.run)?;
    let ex = fas_quantize::export::export_run(&run)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let onnx = a.out.join(fas_core::bundle::LIVENESS_FILE);
    fas_core::atomic::write_atomic(&onnx, &ex.bytes)
        .with_context(|| format!("writing {}", onnx.display()))?;
    let draft = a.out.join("manifest.draft.json");
    let text = serde_json::to_string_pretty(&ex.draft).expect("serialisable");
    fas_core::atomic::write_atomic(&draft, text.as_bytes())
        .with_context(|| format!("writing {}", draft.display()))?;
    let ops: Vec<String> = ex
        .onnx
        .op_histogram()
        .into_iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect();
    println!(
        "exported {} ({} bytes, opset {}, input {:?}): {}",
        onnx.display(),
        ex.bytes.len(),
        fas_quantize::onnx::proto::OPSET,
        ex.onnx.input_shape,
        ops.join(" ")
    );
    println!(
        "parity vs trainer (tch) on {} validation crops: max |Δ| = {:.2e} (bound {:.0e})",
        ex.parity.samples, ex.parity.max_abs, ex.parity.tolerance
    );
    println!(
        "draft manifest {} (thresholds: {})",
        draft.display(),
        ex.draft
            .thresholds
            .iter()
            .map(|t| format!("{}={:.4} [{}]", t.name, t.value, t.operating_point))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Dir written by `export` (liveness.onnx, manifest.draft.json).
    #[arg(long, value_name = "DIR")]
    pub export: PathBuf,
    /// Dataset manifest of face crops (calibration and held-out samples).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// int8-weight-only (fp32 activations; fastest in tract) or int8-qdq.
    #[arg(long, default_value = "int8-weight-only")]
    pub encoding: String,
    /// Activation ranges (int8-qdq): minmax | percentile-99.99 | entropy | mse.
    #[arg(long, default_value = "percentile-99.99")]
    pub method: String,
    /// Calibration samples (from the train split).
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    /// Held-out samples for the drift gate (from the test split, else dev).
    #[arg(long, default_value_t = 128)]
    pub held_out: usize,
    /// Largest allowed |p_live(int8) − p_live(fp32)|.
    #[arg(long, default_value_t = 0.05)]
    pub max_drift: f64,
    /// Largest allowed AUC drop.
    #[arg(long, default_value_t = 0.005)]
    pub max_auc_drop: f64,
    /// Output dir: liveness.onnx (int8), manifest.draft.json, ranges.json, drift.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

fn calibrate(a: CalibrateArgs) -> Result<()> {
    use fas_core::dataset::Split;
    use fas_quantize::calibrate::manifest::manifest_inputs;
    let onnx_path = a.export.join(fas_core::bundle::LIVENESS_FILE);
    let fp32 =
        std::fs::read(&onnx_path).with_context(|| format!("reading {}", onnx_path.display()))?;
    let draft_path = a.export.join("manifest.draft.json");
    let mut draft: BundleManifest = serde_json::from_slice(
        &std::fs::read(&draft_path).with_context(|| format!("reading {}", draft_path.display()))?,
    )
    .with_context(|| format!("{}: not a bundle manifest draft", draft_path.display()))?;
    let model = fas_quantize::onnx::OnnxModel::from_bytes(&fp32)
        .with_context(|| onnx_path.display().to_string())?;
    let encoding: Encoding = serde_json::from_value(serde_json::Value::String(a.encoding.clone()))
        .ok()
        .filter(|e| matches!(e, Encoding::Int8Qdq | Encoding::Int8WeightOnly))
        .with_context(|| {
            format!(
                "--encoding {}: use int8-weight-only or int8-qdq",
                a.encoding
            )
        })?;
    let method: fas_quantize::calibrate::CalibrationMethod = a
        .method
        .parse()
        .map_err(|e| anyhow::anyhow!("--method {}: {e}", a.method))?;
    let calib: Vec<Vec<f32>> = manifest_inputs(
        &a.manifest,
        &draft.preprocess,
        Some(Split::Train),
        a.samples,
    )?
    .into_iter()
    .map(|(x, _)| x)
    .collect();
    let held_out = manifest_inputs(
        &a.manifest,
        &draft.preprocess,
        Some(Split::Test),
        a.held_out,
    )
    .or_else(|_| manifest_inputs(&a.manifest, &draft.preprocess, Some(Split::Dev), a.held_out))?;
    let cfg = fas_quantize::int8::QuantizeConfig {
        encoding,
        calibration: fas_quantize::calibrate::CalibrationOptions {
            method,
            ..Default::default()
        },
        ..Default::default()
    };
    let q = fas_quantize::int8::quantize(&model, &calib, &cfg)?;
    let bound = fas_quantize::drift::DriftBound {
        max_abs: a.max_drift,
        max_auc_drop: a.max_auc_drop,
        ..Default::default()
    };
    let report =
        fas_quantize::drift::drift(&fp32, &q.onnx_bytes, &model.input_shape, &held_out, &bound)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    draft.quantization = fas_core::bundle::Quantization {
        encoding,
        calibration: q.calibration.clone(),
        drift: Some(report.to_drift()),
    };
    draft.files.clear();
    let w = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = a.out.join(name);
        fas_core::atomic::write_atomic(&p, bytes)
            .with_context(|| format!("writing {}", p.display()))
    };
    w(fas_core::bundle::LIVENESS_FILE, &q.onnx_bytes)?;
    w(
        "manifest.draft.json",
        serde_json::to_string_pretty(&draft)?.as_bytes(),
    )?;
    w(
        "ranges.json",
        serde_json::to_string_pretty(&q.ranges)?.as_bytes(),
    )?;
    w(
        "drift.json",
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    println!(
        "{}: {} bytes ({:.2}× fp32), {} calibration / {} held-out faces",
        a.out.join(fas_core::bundle::LIVENESS_FILE).display(),
        q.onnx_bytes.len(),
        q.onnx_bytes.len() as f64 / fp32.len() as f64,
        calib.len(),
        held_out.len()
    );
    println!(
        "drift: AUC fp32 {:.4} → int8 {:.4}, HTER {:.4} → {:.4} at the fp32 EER threshold, |Δp_live| max {:.4} mean {:.5} (bounds: {} / AUC drop {})",
        report.auc_fp32, report.auc_int8, report.hter_fp32, report.hter_int8, report.max_abs, report.mean_abs, a.max_drift, a.max_auc_drop
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// DIR/NAME: writes DIR/NAME.key and DIR/NAME.pub; never overwrites.
    #[arg(long, value_name = "DIR/NAME")]
    pub out: PathBuf,
}

fn keygen(a: KeygenArgs) -> Result<()> {
    let files = bundle::keygen(&a.out)?;
    println!(
        "key {}: secret {} (keep it private), public {} (install it on devices)",
        files.key_id,
        files.secret.display(),
        files.public.display()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Draft manifest.json (its "files" may be empty or missing; hashes are filled in).
    #[arg(long, value_name = "DRAFT.json")]
    pub manifest: PathBuf,
    /// The liveness model (liveness.onnx in the bundle).
    #[arg(long, value_name = "liveness.onnx")]
    pub model: PathBuf,
    /// An optional face detector (detector.onnx in the bundle).
    #[arg(long, value_name = "det.onnx")]
    pub detector: Option<PathBuf>,
    /// Secret key to sign with.
    #[arg(long, value_name = "K.key", required_unless_present = "unsigned")]
    pub key: Option<PathBuf>,
    /// Write an unsigned bundle; devices load it only with their development flag.
    #[arg(long, conflicts_with = "key")]
    pub unsigned: bool,
    /// The bundle to write (replaced atomically).
    #[arg(long, value_name = "X.fasb")]
    pub out: PathBuf,
    /// Release number (≥ 1, above every release before it): a door refuses a bundle older
    /// than the newest it has run. Writes a format-2 manifest.
    #[arg(long, value_name = "N")]
    pub bundle_version: Option<u64>,
    /// The bundle expires at the start of this UTC day (YYYY-MM-DD) or at this Unix time
    /// (seconds): a door refuses it afterwards.
    #[arg(long, value_name = "DATE")]
    pub not_after: Option<String>,
    /// The most permissive p_live threshold a door may calibrate down to (e.g. the
    /// threshold at APCER 1 % on validation data). Default: the lowest recommended threshold.
    #[arg(long, value_name = "T")]
    pub threshold_floor: Option<f64>,
    /// Pin a face detector the door loads from outside the bundle (its sha256 goes into the
    /// signed manifest; a door refuses any other detector). Repeat for MTCNN's three nets.
    #[arg(long, value_name = "det.onnx")]
    pub pin_detector: Vec<PathBuf>,
}

/// Unix seconds of `YYYY-MM-DD` (00:00 UTC) or of a plain integer.
pub fn parse_not_after(text: &str) -> Result<u64> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    let bad = || anyhow::anyhow!("--not-after {text:?}: not a date (YYYY-MM-DD) or Unix seconds");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=month_days[m as usize - 1]).contains(&d)
    {
        return Err(bad());
    }
    // Days from the civil date (proleptic Gregorian), with March as the first month.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days as u64 * 86_400)
}

/// The trust fields the `bundle` flags set on a draft.
fn apply_trust_flags(draft: &mut BundleManifest, a: &BundleArgs) -> Result<()> {
    let format2 = a.bundle_version.is_some()
        || a.not_after.is_some()
        || a.threshold_floor.is_some()
        || !a.pin_detector.is_empty();
    if format2 {
        draft.format_version = fas_core::bundle::BUNDLE_FORMAT_VERSION;
        draft.bundle_version = draft.bundle_version.max(1);
    }
    if let Some(v) = a.bundle_version {
        draft.bundle_version = v;
    }
    if let Some(t) = &a.not_after {
        let secs = parse_not_after(t)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs <= now {
            bail!("--not-after {t:?}: Unix time {secs} is already past — a door would refuse the bundle at once");
        }
        draft.not_after = Some(secs);
    }
    if let Some(f) = a.threshold_floor {
        draft.threshold_floor = Some(f);
    }
    for p in &a.pin_detector {
        let hash = fas_core::bundle::sha256_hex(&read(p, "detector to pin")?);
        if !draft.detector_sha256.contains(&hash) {
            draft.detector_sha256.push(hash);
        }
    }
    Ok(())
}

fn bundle(a: BundleArgs) -> Result<()> {
    let draft_bytes = read(&a.manifest, "draft manifest")?;
    let mut draft = bundle::parse_draft(&draft_bytes)
        .with_context(|| format!("draft manifest {}", a.manifest.display()))?;
    apply_trust_flags(&mut draft, &a)?;
    if a.bundle_version.is_none() && a.key.is_some() {
        eprintln!(
            "fas-quantize: WARNING: no --bundle-version: the bundle is version {}; a door refuses only bundles older than one it ran, so give every release a higher number",
            draft.bundle_version
        );
    }
    if a.detector.is_none() && draft.detector_sha256.is_empty() && a.key.is_some() {
        eprintln!(
            "fas-quantize: WARNING: the bundle neither carries a detector (--detector) nor pins one (--pin-detector): a door refuses to run it with any face detector"
        );
    }
    let liveness = read(&a.model, "liveness model")?;
    let detector = a
        .detector
        .as_deref()
        .map(|p| read(p, "detector model"))
        .transpose()?;
    let key = a.key.as_deref().map(load_secret).transpose()?;
    let signing = match &key {
        Some(k) => Signing::Key(k),
        None => Signing::Unsigned,
    };
    let b = bundle::write_bundle(&a.out, draft, &liveness, detector.as_deref(), signing)
        .with_context(|| format!("writing bundle {}", a.out.display()))?;
    println!(
        "wrote {}: model \"{}\" ({}), {}, manifest sha256 {}",
        a.out.display(),
        b.manifest.model.name,
        b.manifest.model.recipe,
        match &b.signer {
            Some(id) => format!("signed by key {id}"),
            None => "UNSIGNED (development only)".into(),
        },
        b.manifest_sha256
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle to re-sign in place.
    #[arg(long, value_name = "X.fasb")]
    pub bundle: PathBuf,
    /// Secret key to sign with.
    #[arg(long, value_name = "K.key")]
    pub key: PathBuf,
}

fn sign(a: SignArgs) -> Result<()> {
    let key = load_secret(&a.key)?;
    let b = bundle::sign_bundle(&a.bundle, &key)
        .with_context(|| format!("signing bundle {}", a.bundle.display()))?;
    println!(
        "signed {} with key {}: model \"{}\"",
        a.bundle.display(),
        key.id(),
        b.manifest.model.name
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long, value_name = "X.fasb")]
    pub bundle: PathBuf,
    /// A trusted .pub file, or a directory whose *.pub files are trusted.
    #[arg(long, value_name = "DIR_OR_PUB")]
    pub keys: PathBuf,
}

fn verify(a: VerifyArgs) -> Result<()> {
    let keys = TrustedKeys::load(&a.keys)?;
    let b = Bundle::open(&a.bundle, &keys)?;
    println!(
        "OK {}: model \"{}\" signed by key {}",
        a.bundle.display(),
        b.manifest.model.name,
        b.signer.as_deref().expect("a verified bundle has a signer")
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(long, value_name = "X.fasb")]
    pub bundle: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn inspect(a: InspectArgs) -> Result<()> {
    // Every check but the signature's: there may be no keys here.
    let b = Bundle::open_unverified(&a.bundle)?;
    let size = std::fs::metadata(&a.bundle)
        .with_context(|| format!("bundle {}", a.bundle.display()))?
        .len();
    let files: Vec<serde_json::Value> = b
        .files
        .iter()
        .map(|(name, data)| {
            serde_json::json!({
                "name": name,
                "size": data.len(),
                "sha256": b.manifest.files[name],
            })
        })
        .collect();
    let claimed = b.signature.as_ref().map(|s| s.key_id.clone());
    if a.json {
        let out = serde_json::json!({
            "bundle": a.bundle.display().to_string(),
            "size": size,
            "signed": claimed.is_some(),
            "signature_verified": false,
            "key_id": claimed,
            "manifest_sha256": b.manifest_sha256,
            "files": files,
            "manifest": b.manifest,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print!("{}", summary(&a.bundle, size, &b, claimed.as_deref()));
    Ok(())
}

/// The text `inspect` prints.
// Long but flat: one `line(..)` per row of the printed table, in print order.
fn summary(path: &Path, size: u64, b: &Bundle, claimed_key: Option<&str>) -> String {
    use std::fmt::Write;
    let m: &BundleManifest = &b.manifest;
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<12}{v}");
    };
    line("bundle", format!("{} ({size} bytes)", path.display()));
    line(
        "signed",
        match claimed_key {
            Some(id) => format!(
                "yes, by key {id} (not verified here; `fas-quantize verify --keys` checks it)"
            ),
            None => "NO — loads only with a device's development flag".into(),
        },
    );
    line("manifest", format!("sha256 {}", b.manifest_sha256));
    line(
        "model",
        format!(
            "{} (recipe {}){}",
            m.model.name,
            m.model.recipe,
            if m.model.demo {
                " — DEMO model, not for a real door"
            } else {
                ""
            }
        ),
    );
    line(
        "input",
        format!("{:?} {}", m.input.shape, json_str(&m.input.dtype)),
    );
    line("preprocess", compact(&m.preprocess));
    line(
        "score",
        format!(
            "{} in [{}, {}]",
            json_str(&m.score.semantics),
            m.score.range[0],
            m.score.range[1]
        ),
    );
    let q = &m.quantization;
    line(
        "encoding",
        match &q.calibration {
            Some(c) => format!(
                "{}, calibrated with {} on {} face crops",
                json_str(&q.encoding),
                c.method,
                c.samples
            ),
            None => json_str(&q.encoding),
        },
    );
    line(
        "drift",
        match (&q.drift, q.encoding) {
            (Some(d), _) => format!(
                "max |Δ| {}, mean |Δ| {}, AUC fp32 {} → quantised {}",
                d.max_abs, d.mean_abs, d.auc_fp32, d.auc_int8
            ),
            (None, Encoding::Fp32) => "none (fp32)".into(),
            (None, _) => "not recorded".into(),
        },
    );
    if m.metrics.is_empty() {
        line("metrics", "none recorded".into());
    }
    for (i, x) in m.metrics.iter().enumerate() {
        line(
            if i == 0 { "metrics" } else { "" },
            format!("{} {} = {}", x.protocol, x.metric, x.value),
        );
    }
    for (i, t) in m.thresholds.iter().enumerate() {
        line(
            if i == 0 { "thresholds" } else { "" },
            format!(
                "{} = {} ({}, chosen on {})",
                t.name, t.value, t.operating_point, t.chosen_on
            ),
        );
    }
    for (i, (name, data)) in b.files.iter().enumerate() {
        line(
            if i == 0 { "files" } else { "" },
            format!("{name}  {} bytes  sha256 {}", data.len(), m.files[name]),
        );
    }
    line(
        "version",
        match m.bundle_version {
            0 => "none (format 1: no rollback protection)".into(),
            v => v.to_string(),
        },
    );
    line(
        "expires",
        m.not_after
            .map_or("never".into(), |t| format!("after Unix time {t}")),
    );
    line(
        "floor",
        format!(
            "{}{}",
            m.effective_floor(),
            if m.threshold_floor.is_none() {
                " (the lowest threshold; no threshold_floor set)"
            } else {
                ""
            }
        ),
    );
    for (i, h) in m.detector_sha256.iter().enumerate() {
        line(if i == 0 { "detectors" } else { "" }, format!("sha256 {h}"));
    }
    line("created by", m.created_by.clone());
    s
}

fn json_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

fn compact<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("<{e}>"))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{what} {}", path.display()))?;
    if bytes.is_empty() {
        bail!("{what} {}: is empty", path.display());
    }
    Ok(bytes)
}

fn load_secret(path: &Path) -> Result<SecretKey> {
    Ok(SecretKey::load(path)?)
}
