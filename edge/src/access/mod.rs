//! Door access (issue 25): *is this an enrolled person, is the face live, and is it the
//! same person, now?* Liveness ([`crate::policy`]) is one factor; this module adds the
//! others and combines them.
//!
//! - [`credential`]: what a reader delivers, and JSON credential lines for integrations.
//! - [`wiegand`]: the two-wire reader interface, decoded from GPIO edges.
//! - [`store`]: the enrolment store (templates and credentials, encrypted at rest).
//! - [`decide`]: the pure decision over mode × credential × liveness × face.

use std::path::PathBuf;

use fas_core::access::AccessMode;
use serde::{Deserialize, Serialize};

pub mod credential;
pub mod decide;
pub mod enroll;
pub mod gate;
pub mod osdp;
pub mod runtime;
pub mod store;
pub mod wiegand;
pub mod wiegand_gpio;

/// `[access]` in `edge.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    pub mode: AccessMode,
    /// Required with `mode = "presence"`: the site accepts that any live face opens.
    #[serde(default)]
    pub allow_any_live_face: bool,
    /// The enrolment store.
    #[serde(default = "defaults::store")]
    pub enrollment: PathBuf,
    /// The store's key (keep it off the card that holds the store where you can).
    #[serde(default = "defaults::key")]
    pub enrollment_key: PathBuf,
    /// The face-embedding network (modes that compare faces).
    #[serde(default = "defaults::face_model")]
    pub face_model: PathBuf,
    /// Cosine similarity a face needs to match a template; unset: the embedding model's
    /// recommended value for the mode.
    #[serde(default)]
    pub face_threshold: Option<f32>,
    /// A Wiegand reader on two GPIO input lines.
    #[serde(default)]
    pub wiegand: Option<WiegandSection>,
    /// An OSDP reader on a serial (RS-485) device.
    #[serde(default)]
    pub osdp: Option<osdp::OsdpSection>,
}

/// `[access.wiegand]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WiegandSection {
    pub chip: PathBuf,
    /// Line offsets of D0 and D1.
    pub d0: u32,
    pub d1: u32,
    /// See [`wiegand::WiegandTiming`].
    #[serde(default = "defaults::min_pulse_us")]
    pub min_pulse_us: u64,
    #[serde(default = "defaults::max_pulse_us")]
    pub max_pulse_us: u64,
    #[serde(default = "defaults::frame_gap_ms")]
    pub frame_gap_ms: u64,
    /// Frame layouts accepted besides the standard 26- and 34-bit ones.
    #[serde(default)]
    pub layouts: Vec<wiegand::Layout>,
}

impl WiegandSection {
    pub fn timing(&self) -> wiegand::WiegandTiming {
        wiegand::WiegandTiming {
            min_pulse_us: self.min_pulse_us,
            max_pulse_us: self.max_pulse_us,
            frame_gap_ms: self.frame_gap_ms,
        }
    }

    /// Every layout this reader accepts (26, 34, then the configured ones).
    pub fn all_layouts(&self) -> Vec<wiegand::Layout> {
        wiegand::with_standard(&self.layouts)
    }
}

mod defaults {
    use std::path::PathBuf;
    pub fn store() -> PathBuf {
        PathBuf::from("/var/lib/fas/enrollment.fas")
    }
    pub fn key() -> PathBuf {
        PathBuf::from("/var/lib/fas/enrollment.key")
    }
    pub fn face_model() -> PathBuf {
        PathBuf::from("/usr/share/fas/dlib_face_resnet.onnx")
    }
    use super::wiegand::WiegandTiming;
    pub fn min_pulse_us() -> u64 {
        WiegandTiming::default().min_pulse_us
    }
    pub fn max_pulse_us() -> u64 {
        WiegandTiming::default().max_pulse_us
    }
    pub fn frame_gap_ms() -> u64 {
        WiegandTiming::default().frame_gap_ms
    }
}

impl AccessSection {
    /// Checks the section; `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.mode == AccessMode::Presence && !self.allow_any_live_face {
            return Err((
                "access.mode".into(),
                "\"presence\" lets any live face in — a stranger too; set allow_any_live_face = true to accept that, or use \"credential+face\", \"face\" or \"credential\"".into(),
            ));
        }
        if self.mode != AccessMode::Presence && self.allow_any_live_face {
            return Err((
                "access.allow_any_live_face".into(),
                format!(
                    "only means something with mode = \"presence\" (mode is \"{}\"); remove it",
                    self.mode
                ),
            ));
        }
        if let Some(t) = self.face_threshold {
            if !(t.is_finite() && (-1.0..=1.0).contains(&t)) {
                return Err((
                    "access.face_threshold".into(),
                    format!("{t} is not a cosine similarity in [-1, 1]"),
                ));
            }
        }
        if let Some(w) = &self.wiegand {
            if w.d0 == w.d1 {
                return Err((
                    "access.wiegand.d1".into(),
                    format!("D0 and D1 are both line {}; wire them to two lines", w.d0),
                ));
            }
            w.timing()
                .validate()
                .map_err(|e| ("access.wiegand".to_string(), e))?;
            wiegand::validate_extra("access.wiegand.layouts", &w.layouts)?;
            if !self.mode.needs_credential() {
                return Err((
                    "access.wiegand".into(),
                    format!(
                        "a reader is configured but mode \"{}\" reads no credential; use \"credential+face\" or \"credential\"",
                        self.mode
                    ),
                ));
            }
        }
        if let Some(o) = &self.osdp {
            o.validate(self.mode)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AccessSection, String> {
        let s: AccessSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        Ok(s)
    }

    #[test]
    fn sections_parse_and_refuse() {
        let s = parse("mode = \"credential+face\"").unwrap();
        assert_eq!(s.mode, AccessMode::CredentialFace);
        assert_eq!(s.enrollment, PathBuf::from("/var/lib/fas/enrollment.fas"));
        let e = parse("mode = \"presence\"").unwrap_err();
        assert!(e.contains("allow_any_live_face"), "{e}");
        parse("mode = \"presence\"\nallow_any_live_face = true").unwrap();
        let e = parse("mode = \"face\"\nallow_any_live_face = true").unwrap_err();
        assert!(e.starts_with("access.allow_any_live_face"), "{e}");
        assert!(parse("mode = \"anyone\"").is_err());
        let e = parse("mode = \"face\"\nface_threshold = 2.0").unwrap_err();
        assert!(e.starts_with("access.face_threshold"), "{e}");
        let w = "mode = \"credential\"\n[wiegand]\nchip = \"/dev/gpiochip0\"\nd0 = 1\nd1 = 2\nframe_gap_ms = 30";
        let s = parse(w).unwrap();
        assert_eq!(s.wiegand.unwrap().timing().frame_gap_ms, 30);
        let e = parse(&w.replace("d1 = 2", "d1 = 1")).unwrap_err();
        assert!(e.starts_with("access.wiegand.d1"), "{e}");
        let e = parse(&w.replace("credential", "face")).unwrap_err();
        assert!(e.starts_with("access.wiegand:"), "{e}");
        let raw = format!(
            "{w}\n[[wiegand.layouts]]\nbits = 37\nfacility = [1, 16]\ncard = [17, 19]\nparity = \"halves\""
        );
        assert_eq!(parse(&raw).unwrap().wiegand.unwrap().all_layouts().len(), 3);
        let e = parse(&raw.replace("bits = 37", "bits = 26")).unwrap_err();
        assert!(e.contains("layouts[0]"), "{e}");
    }
}
