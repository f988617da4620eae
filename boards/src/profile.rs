//! Board profiles: one TOML file per board under `boards/profiles/` (built in), or any
//! file given by path. A profile says how to build fas-edge for the board and how the
//! board's door is wired (camera, relay line, display).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The built-in profiles, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("rpi4", include_str!("../profiles/rpi4.toml")),
    ("rpi5", include_str!("../profiles/rpi5.toml")),
    ("jetson-nano", include_str!("../profiles/jetson-nano.toml")),
    (
        "jetson-orin-nano",
        include_str!("../profiles/jetson-orin-nano.toml"),
    ),
    ("x86_64", include_str!("../profiles/x86_64.toml")),
    ("qemu-virt", include_str!("../profiles/qemu-virt.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown board `{0}`: use one of {known} or the path of a profile .toml", known = names().join(", "))]
    Unknown(String),
    #[error("{file}: cannot read it — check the path of the profile .toml")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{file}: {key}: {problem}")]
    Invalid {
        file: String,
        key: &'static str,
        problem: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// A flashable SD card image (FAT boot + ext4 root).
    Sd,
    /// A rootfs overlay tarball + install script for an existing system (Jetson L4T).
    Overlay,
    /// Packages only.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraProfile {
    pub device: String,
    pub formats: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayProfile {
    pub chip: String,
    pub line: u32,
    pub polarity: String,
    pub pulse_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayProfile {
    /// `framebuffer` or `none`.
    pub kind: String,
    #[serde(default)]
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Rust target triple.
    pub target: String,
    /// `-C target-cpu`.
    pub cpu: String,
    /// The oldest glibc the board has (gnu targets only).
    #[serde(default)]
    pub min_glibc: Option<String>,
    pub threads: u32,
    /// `fp32`, `int8-weight-only` or `int8-qdq`.
    pub model_variant: String,
    /// Debian architecture of the package (`arm64`, `amd64`).
    pub deb_arch: String,
    pub image: ImageKind,
    pub camera: CameraProfile,
    pub relay: RelayProfile,
    pub display: DisplayProfile,
}

pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

impl Profile {
    /// A built-in board name, or the path of a profile file.
    pub fn load(board: &str) -> Result<Profile, ProfileError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == board) {
            return Profile::parse(text, &format!("boards/profiles/{board}.toml"));
        }
        let p = Path::new(board);
        if p.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(p).map_err(|source| ProfileError::Io {
                file: p.to_path_buf(),
                source,
            })?;
            return Profile::parse(&text, &p.display().to_string());
        }
        Err(ProfileError::Unknown(board.to_string()))
    }

    pub fn parse(text: &str, file: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            file: file.to_string(),
            msg: e.to_string(),
        })?;
        p.validate(file)?;
        Ok(p)
    }

    fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let bad = |key, problem: String| {
            Err(ProfileError::Invalid {
                file: file.to_string(),
                key,
                problem,
            })
        };
        const TARGETS: [&str; 4] = [
            "aarch64-unknown-linux-gnu",
            "aarch64-unknown-linux-musl",
            "x86_64-unknown-linux-gnu",
            "x86_64-unknown-linux-musl",
        ];
        if !TARGETS.contains(&self.target.as_str()) {
            return bad(
                "target",
                format!("`{}` is not one of {TARGETS:?}", self.target),
            );
        }
        let want_arch = if self.target.starts_with("aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        if self.deb_arch != want_arch {
            return bad(
                "deb_arch",
                format!(
                    "`{}` does not match target {} (use `{want_arch}`)",
                    self.deb_arch, self.target
                ),
            );
        }
        if self.target.ends_with("-gnu") && self.min_glibc.is_none() {
            return bad(
                "min_glibc",
                "a gnu target needs the board's glibc version (or use the musl target)".into(),
            );
        }
        if !["fp32", "int8-weight-only", "int8-qdq"].contains(&self.model_variant.as_str()) {
            return bad(
                "model_variant",
                format!(
                    "`{}`: use fp32, int8-weight-only or int8-qdq",
                    self.model_variant
                ),
            );
        }
        if self.threads == 0 || self.threads > 64 {
            return bad("threads", format!("{} is not in 1..=64", self.threads));
        }
        if self.camera.width == 0 || self.camera.height == 0 || self.camera.fps == 0 {
            return bad("camera", "width, height and fps must be non-zero".into());
        }
        if !self.camera.device.starts_with("/dev/") {
            return bad(
                "camera.device",
                format!("`{}` is not a device path", self.camera.device),
            );
        }
        if !["active_high", "active_low"].contains(&self.relay.polarity.as_str()) {
            return bad(
                "relay.polarity",
                format!("`{}`: use active_high or active_low", self.relay.polarity),
            );
        }
        if !(1..=60_000).contains(&self.relay.pulse_ms) {
            return bad(
                "relay.pulse_ms",
                format!("{} is not in 1..=60000", self.relay.pulse_ms),
            );
        }
        match (self.display.kind.as_str(), &self.display.device) {
            ("none", _) | ("framebuffer", Some(_)) => {}
            ("framebuffer", None) => {
                return bad(
                    "display.device",
                    "a framebuffer display needs its device (/dev/fb0)".into(),
                )
            }
            (k, _) => return bad("display.kind", format!("`{k}`: use framebuffer or none")),
        }
        Ok(())
    }

    /// The board's default `/etc/fas/edge.toml` (fas-edge's config format).
    pub fn edge_config(&self) -> String {
        let formats: Vec<String> = self
            .camera
            .formats
            .iter()
            .map(|f| format!("{f:?}"))
            .collect();
        let display = match (self.display.kind.as_str(), &self.display.device) {
            ("framebuffer", Some(d)) => format!("kind = \"framebuffer\"\ndevice = \"{d}\""),
            _ => "kind = \"none\"".to_string(),
        };
        format!(
            r#"# fas-edge on {desc}.
# Written by `fas-boards` from boards/profiles/{name}.toml; edit and check with
# `fas-edge check-config --config /etc/fas/edge.toml`.

[model]
bundle = "/etc/fas/model.fasb"
trusted_keys = "/etc/fas/keys"
calibration = "/var/lib/fas/calibration.json"

[camera]
device = "{cam}"
width = {w}
height = {h}
fps = {fps}
formats = [{formats}]

[detector]
model = "/usr/share/fas/retinaface_mnet025.onnx"

[actuator]
kind = "gpio"
chip = "{chip}"
line = {line}
polarity = "{pol}"
pulse_ms = {pulse}

[access]
# A card names an enrolled person and the door opens only for that person's live face.
# Enrol with `fas-edge enroll add --id ID --credential 26:FACILITY:CARD`; wire the reader
# to two GPIO inputs under [access.wiegand], or send JSON credential lines to a trigger
# socket. Other modes: "face" (no reader), "credential" (a card and any live person).
mode = "credential+face"

[display]
{display}

[audit]
path = "/var/lib/fas/audit.jsonl"
"#,
            desc = self.description,
            name = self.name,
            cam = self.camera.device,
            w = self.camera.width,
            h = self.camera.height,
            fps = self.camera.fps,
            formats = formats.join(", "),
            chip = self.relay.chip,
            line = self.relay.line,
            pol = self.relay.polarity,
            pulse = self.relay.pulse_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_is_valid_and_named_after_its_file() {
        for (name, text) in BUILTIN {
            let p = Profile::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&p.name, name);
            // Its edge config is valid TOML with the board's wiring.
            let cfg: toml::Table = toml::from_str(&p.edge_config()).unwrap();
            assert_eq!(
                cfg["actuator"]["line"].as_integer(),
                Some(i64::from(p.relay.line))
            );
            assert_eq!(
                cfg["access"]["mode"].as_str(),
                Some("credential+face"),
                "every board's door asks for a card and the card holder's live face"
            );
        }
        assert_eq!(Profile::load("rpi4").unwrap().cpu, "cortex-a72");
    }

    #[test]
    fn bad_profiles_name_the_key_and_the_fix() {
        let rpi4 = BUILTIN[0].1;
        let err = |from: &str, to: &str| {
            Profile::parse(&rpi4.replace(from, to), "x.toml")
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf").contains("target")
        );
        assert!(err("deb_arch = \"arm64\"", "deb_arch = \"amd64\"").contains("deb_arch"));
        assert!(err("min_glibc = \"2.36\"\n", "").contains("min_glibc"));
        assert!(err("polarity = \"active_high\"", "polarity = \"high\"").contains("relay.polarity"));
        assert!(err("threads = 4", "threads = 0").contains("threads"));
        assert!(err("threads = 4", "threads = 4\ncolour = 1").contains("unknown field"));
        assert!(Profile::load("rpi9")
            .unwrap_err()
            .to_string()
            .contains("rpi4, rpi5"));
    }
}
