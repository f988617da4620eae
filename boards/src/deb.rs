//! The fas-edge Debian package: the binary, a hardened systemd unit, udev rules for the
//! camera, GPIO and framebuffer, the board's default config under `/etc/fas` (a conffile),
//! the audit log under `/var/lib/fas`. Built with `dpkg-deb --root-owner-group`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::profile::Profile;
use crate::stage;

/// The service user (system account, no login, no home of its own beyond the state dir).
pub const USER: &str = "fas-edge";

/// The systemd unit. `Type=notify` + `WatchdogSec`: fas-edge reports ready once the model,
/// detector and camera are up, and pets the watchdog from its frame loop, so a wedged
/// camera or model gets the service restarted (the door stays locked meanwhile).
pub fn systemd_unit() -> String {
    format!(
        r#"[Unit]
Description=fas-edge face-liveness door controller
Documentation=man:fas-edge(1)
After=local-fs.target systemd-udev-settle.service
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStartPre=/usr/bin/fas-edge check-config --config /etc/fas/edge.toml
ExecStart=/usr/bin/fas-edge --config /etc/fas/edge.toml
# However the service ended (crash, kill -9, watchdog, systemctl stop): relay to locked.
ExecStopPost=/usr/bin/fas-edge lock --config /etc/fas/edge.toml
Restart=always
RestartSec=2
WatchdogSec=10
User={USER}
Group={USER}
SupplementaryGroups=video gpio
StateDirectory=fas
StateDirectoryMode=0750
# Only the devices a door needs.
DevicePolicy=closed
DeviceAllow=char-video4linux rw
DeviceAllow=char-gpiochip rw
DeviceAllow=char-fb rw
DeviceAllow=/dev/fb0 rw
# Everything else read-only or gone.
ProtectSystem=strict
ReadWritePaths=/var/lib/fas
# Files it creates (audit log, device state, calibration) are not world-readable.
UMask=0027
PrivateMounts=yes
ProtectProc=invisible
RemoveIPC=yes
IPAddressDeny=any
ProtectHome=yes
PrivateTmp=yes
PrivateNetwork=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
UMask=0027

[Install]
WantedBy=multi-user.target
"#
    )
}

/// udev rules: the camera, the GPIO chips and the framebuffer readable by the service's
/// groups (`video` for cameras and displays, `gpio` for the relay).
pub fn udev_rules() -> &'static str {
    r#"# fas-edge: device access for the door service.
SUBSYSTEM=="video4linux", GROUP="video", MODE="0660"
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"
SUBSYSTEM=="graphics", KERNEL=="fb*", GROUP="video", MODE="0660"
"#
}

fn control(profile: &Profile, version: &str, installed_kib: u64) -> String {
    format!(
        "Package: fas-edge\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: fas developers <fas@example.invalid>\n\
         Installed-Size: {installed_kib}\n\
         Depends: adduser, systemd\n\
         Section: misc\n\
         Priority: optional\n\
         Description: face-liveness door controller ({board})\n \
         fas-edge reads a camera, detects a face, scores its liveness with a signed\n \
         model bundle and opens the door relay only for a live face, failing closed on\n \
         anything unexpected. Profile: {desc}.\n",
        arch = profile.deb_arch,
        board = profile.name,
        desc = profile.description,
    )
}

const POSTINST: &str = r#"#!/bin/sh
set -e
if [ "$1" = configure ]; then
    getent group gpio >/dev/null || addgroup --system gpio
    getent passwd fas-edge >/dev/null || adduser --system --group --no-create-home --home /var/lib/fas fas-edge
    adduser fas-edge video >/dev/null
    adduser fas-edge gpio >/dev/null
    install -d -o fas-edge -g fas-edge -m 0750 /var/lib/fas
    chgrp fas-edge /etc/fas/edge.toml && chmod 0640 /etc/fas/edge.toml
    if command -v udevadm >/dev/null; then udevadm control --reload || true; udevadm trigger || true; fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable fas-edge.service
        # Starts once a bundle is installed (ExecStartPre checks the config).
        if [ -e /etc/fas/model.fasb ]; then systemctl restart fas-edge.service || true; fi
    fi
fi
"#;

const PRERM: &str = r#"#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop fas-edge.service || true
fi
"#;

const POSTRM: &str = r#"#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
# The audit log is evidence: purge keeps /var/lib/fas; remove it by hand if you must.
if [ "$1" = purge ]; then
    deluser --system fas-edge >/dev/null 2>&1 || true
fi
"#;

/// What goes into the package besides the generated files.
pub struct DebInputs<'a> {
    pub edge_binary: &'a Path,
    /// RetinaFace ONNX, installed as /usr/share/fas/retinaface_mnet025.onnx.
    pub detector: Option<&'a Path>,
    /// The face-embedding network (dlib ResNet ONNX), installed as
    /// /usr/share/fas/dlib_face_resnet.onnx, where `access.face_model` looks by default; the
    /// board's config (`[access] mode = "credential+face"`) does not start without it.
    pub face_model: Option<&'a Path>,
    /// Directory holding MTCNN's three ONNX files, installed in /usr/share/fas/.
    pub mtcnn: Option<&'a Path>,
    /// A signed bundle and its trusted keys, when the package should ship a model.
    pub bundle: Option<&'a Path>,
    pub keys: Option<&'a Path>,
    pub version: &'a str,
}

fn dir_size(p: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(p)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            dir_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}

/// Builds `fas-edge_<version>_<arch>.deb` in `out_dir` and returns its path.
pub fn build(profile: &Profile, inputs: &DebInputs<'_>, out_dir: &Path) -> Result<PathBuf> {
    let root = out_dir.join(format!("deb-{}", profile.name));
    let _ = std::fs::remove_dir_all(&root);
    stage::copy(inputs.edge_binary, &root.join("usr/bin/fas-edge"), 0o755)?;
    stage::write(
        &root.join("lib/systemd/system/fas-edge.service"),
        systemd_unit().as_bytes(),
        0o644,
    )?;
    stage::write(
        &root.join("lib/udev/rules.d/60-fas-edge.rules"),
        udev_rules().as_bytes(),
        0o644,
    )?;
    stage::write(
        &root.join("etc/fas/edge.toml"),
        profile.edge_config().as_bytes(),
        0o640,
    )?;
    std::fs::create_dir_all(root.join("etc/fas/keys"))?;
    let mut conffiles = String::from("/etc/fas/edge.toml\n");
    if let Some(d) = inputs.detector {
        stage::copy(
            d,
            &root.join("usr/share/fas/retinaface_mnet025.onnx"),
            0o644,
        )?;
    }
    if let Some(f) = inputs.face_model {
        stage::copy(
            f,
            &root.join("usr/share/fas").join(stage::FACE_MODEL_FILE),
            0o644,
        )?;
    }
    if let Some(d) = inputs.mtcnn {
        for (name, p) in stage::mtcnn_files(d)? {
            stage::copy(&p, &root.join("usr/share/fas").join(name), 0o644)?;
        }
    }
    if let Some(b) = inputs.bundle {
        stage::copy(b, &root.join("etc/fas/model.fasb"), 0o644)?;
        conffiles += "/etc/fas/model.fasb\n";
    }
    if let Some(k) = inputs.keys {
        for (name, p) in stage::signer_keys(k)? {
            let rel = format!("etc/fas/keys/{name}");
            stage::copy(&p, &root.join(&rel), 0o644)?;
            conffiles += &format!("/{rel}\n");
        }
    }
    stage::write(&root.join("usr/share/doc/fas-edge/README.Debian"), format!(
            "fas-edge for {}\n\nConfig: /etc/fas/edge.toml (check with `fas-edge check-config --config /etc/fas/edge.toml`).\nModel: put a signed bundle at /etc/fas/model.fasb and its signer's key in /etc/fas/keys/.\nFaces: the detector and the face-embedding network are in /usr/share/fas; enrol people with `fas-edge enroll add` (no enrolment store: nobody is let in).\nCalibrate on the device: `sudo -u fas-edge fas-edge calibrate --config /etc/fas/edge.toml`.\nAudit log: /var/lib/fas/audit.jsonl (`fas-edge audit verify`).\n",
            profile.description
        )
        .as_bytes(), 0o644)?;
    let kib = dir_size(&root)?.div_ceil(1024);
    stage::write(
        &root.join("DEBIAN/control"),
        control(profile, inputs.version, kib).as_bytes(),
        0o644,
    )?;
    stage::write(&root.join("DEBIAN/conffiles"), conffiles.as_bytes(), 0o644)?;
    stage::write(&root.join("DEBIAN/postinst"), POSTINST.as_bytes(), 0o755)?;
    stage::write(&root.join("DEBIAN/prerm"), PRERM.as_bytes(), 0o755)?;
    stage::write(&root.join("DEBIAN/postrm"), POSTRM.as_bytes(), 0o755)?;
    let deb = out_dir.join(format!(
        "fas-edge_{}_{}.deb",
        inputs.version, profile.deb_arch
    ));
    let tmp = out_dir.join(format!(".fas-edge_{}.deb.tmp", profile.name));
    let out = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group", "-Zxz"])
        .arg(&root)
        .arg(&tmp)
        .output()
        .context("could not run dpkg-deb (Debian's `dpkg`)")?;
    if !out.status.success() {
        bail!(
            "dpkg-deb --build failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(&tmp, &deb)?;
    std::fs::remove_dir_all(&root)?;
    Ok(deb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_package_dpkg_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fas-edge");
        std::fs::write(&bin, b"\x7fELF not really").unwrap();
        let profile = Profile::load("rpi4").unwrap();
        let mtcnn = dir.path().join("mtcnn");
        for f in stage::MTCNN_FILES {
            stage::write(&mtcnn.join(f), b"onnx", 0o644).unwrap();
        }
        // Stand-ins with distinct bytes: what matters here is that each lands where
        // fas-edge looks for it, unchanged and world-readable.
        let detector = dir.path().join("det.onnx");
        std::fs::write(&detector, b"retinaface stand-in").unwrap();
        let face_model = dir.path().join("face.onnx");
        std::fs::write(&face_model, b"dlib resnet stand-in, 128 values").unwrap();
        let deb = build(
            &profile,
            &DebInputs {
                edge_binary: &bin,
                detector: Some(&detector),
                face_model: Some(&face_model),
                mtcnn: Some(&mtcnn),
                bundle: None,
                keys: None,
                version: "0.1.0",
            },
            dir.path(),
        )
        .unwrap();
        assert!(deb.ends_with("fas-edge_0.1.0_arm64.deb"));
        let info = Command::new("dpkg-deb")
            .arg("--info")
            .arg(&deb)
            .output()
            .unwrap();
        let info = String::from_utf8(info.stdout).unwrap();
        assert!(
            info.contains("Package: fas-edge") && info.contains("Architecture: arm64"),
            "{info}"
        );
        let list = Command::new("dpkg-deb")
            .arg("--contents")
            .arg(&deb)
            .output()
            .unwrap();
        let list = String::from_utf8(list.stdout).unwrap();
        for f in [
            "./usr/bin/fas-edge",
            "./lib/systemd/system/fas-edge.service",
            "./lib/udev/rules.d/60-fas-edge.rules",
            "./etc/fas/edge.toml",
            "./usr/share/fas/mtcnn_pnet.onnx",
            "./usr/share/fas/mtcnn_rnet.onnx",
            "./usr/share/fas/mtcnn_onet.onnx",
            "./usr/share/fas/retinaface_mnet025.onnx",
            "./usr/share/fas/dlib_face_resnet.onnx",
        ] {
            assert!(list.contains(f), "{f} missing from\n{list}");
        }
        assert!(list.contains("root/root"), "owned by root: {list}");
        for model in ["retinaface_mnet025.onnx", "dlib_face_resnet.onnx"] {
            let line = list
                .lines()
                .find(|l| l.ends_with(&format!("./usr/share/fas/{model}")))
                .unwrap();
            assert!(line.starts_with("-rw-r--r-- root/root"), "{line}");
        }
        // Unpacked, the models are the files given, byte for byte, where the board's
        // config points: detector.model and access.face_model's default.
        let unpacked = dir.path().join("unpacked");
        let x = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(x.success());
        for (from, installed) in [
            (&detector, "usr/share/fas/retinaface_mnet025.onnx"),
            (&face_model, "usr/share/fas/dlib_face_resnet.onnx"),
        ] {
            assert_eq!(
                fas_core::bundle::sha256_hex(&std::fs::read(unpacked.join(installed)).unwrap()),
                fas_core::bundle::sha256_hex(&std::fs::read(from).unwrap()),
                "{installed}"
            );
        }
        let cfg: toml::Table = std::fs::read_to_string(unpacked.join("etc/fas/edge.toml"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            cfg["detector"]["model"].as_str(),
            Some("/usr/share/fas/retinaface_mnet025.onnx")
        );
        // access.face_model, set or left at fas-edge's default, is where the package
        // installs the network.
        assert_eq!(cfg["access"]["mode"].as_str(), Some("credential+face"));
        assert_eq!(
            cfg["access"]
                .get("face_model")
                .map_or(Some("/usr/share/fas/dlib_face_resnet.onnx"), |v| v.as_str()),
            Some("/usr/share/fas/dlib_face_resnet.onnx")
        );
        let conf = Command::new("dpkg-deb")
            .arg("--field")
            .arg(&deb)
            .arg("Installed-Size")
            .output()
            .unwrap();
        assert!(
            String::from_utf8(conf.stdout)
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
    }

    #[test]
    fn the_unit_is_hardened_and_notifies() {
        let u = systemd_unit();
        for k in [
            "Type=notify",
            "WatchdogSec=",
            "User=fas-edge",
            "DevicePolicy=closed",
            "char-video4linux",
            "char-gpiochip",
            "NoNewPrivileges=yes",
            "PrivateNetwork=yes",
            "Restart=always",
            "ReadWritePaths=/var/lib/fas",
            "ExecStopPost=/usr/bin/fas-edge lock --config /etc/fas/edge.toml",
            "UMask=0027",
            "ProtectProc=invisible",
            "IPAddressDeny=any",
        ] {
            assert!(u.contains(k), "{k}");
        }
        // systemd-analyze, when the host has it, finds nothing to complain about, and
        // rates the sandbox "SAFE" (0.6 with this unit; 1.1 before UMask, PrivateMounts,
        // ProtectProc, RemoveIPC and IPAddressDeny).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fas-edge.service");
        std::fs::write(&p, &u).unwrap();
        if let Ok(out) = Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(&p)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(level) = text
                .lines()
                .find_map(|l| l.split("fas-edge.service: ").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
            {
                assert!(level <= 0.6, "exposure {level}:\n{text}");
            }
        }
        if let Ok(out) = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&p)
            .output()
        {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains("Unknown key") && !err.contains("Unknown section"),
                "{err}"
            );
        }
    }
}
