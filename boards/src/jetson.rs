//! Jetson boards keep NVIDIA's L4T system (its kernel, bootloader and CUDA stack are
//! flashed with NVIDIA's SDK Manager), so fas-boards ships an overlay onto it instead of an
//! image: a rootfs tarball (`/opt/fas/bin/fas-edge`, `/etc/fas/edge.toml`, the systemd unit
//! and udev rules of [`crate::deb`], the bundle, keys, detector and face-embedding network)
//! and `install.sh`, which creates the service user, installs, enables the unit, is
//! idempotent, keeps a locally edited config, and undoes itself with `--uninstall`.
//! `DESTDIR=` installs into a staged root (no systemctl, no useradd: the user goes into
//! the staged passwd/group files).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::deb;
use crate::hosttools::{self, TAR};
use crate::image::{EdgeFiles, ImageError};
use crate::profile::{ImageKind, Profile};
use crate::stage;

/// Where the overlay puts fas-edge and its detector.
pub const BIN: &str = "/opt/fas/bin/fas-edge";
pub const DETECTOR: &str = "/opt/fas/share/retinaface_mnet025.onnx";
/// Where the overlay puts the face-embedding network (`access.face_model` in its config).
pub const FACE_MODEL: &str = "/opt/fas/share/dlib_face_resnet.onnx";
/// Where the overlay puts MTCNN's networks (`detector.mtcnn_dir` in its config).
pub const SHARE: &str = "/opt/fas/share";

/// A built overlay.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub tarball: PathBuf,
    pub install_sh: PathBuf,
    /// Paths in the tarball (files only, without the leading `./`).
    pub files: Vec<String>,
}

/// The unit of [`deb::systemd_unit`] with the binary at [`BIN`].
pub fn systemd_unit() -> String {
    deb::systemd_unit().replace("/usr/bin/fas-edge", BIN)
}

/// The board's config with the detector at [`DETECTOR`], MTCNN's networks (used with
/// `detector.kind = "mtcnn"`) in [`SHARE`] and the face-embedding network at
/// [`FACE_MODEL`] (`access.face_model`).
pub fn edge_config(profile: &Profile) -> String {
    let cfg = profile.edge_config().replace(
        "model = \"/usr/share/fas/retinaface_mnet025.onnx\"",
        &format!("model = \"{DETECTOR}\"\nmtcnn_dir = \"{SHARE}\""),
    );
    with_face_model(&cfg, FACE_MODEL)
}

/// `cfg` with `face_model = "<path>"` in its `[access]` table, after the table's `mode`
/// line (else right after its header), replacing a `face_model` the table already sets;
/// unchanged when there is no `[access]` table (fas-edge then loads no face model).
fn with_face_model(cfg: &str, path: &str) -> String {
    let line = format!("face_model = \"{path}\"");
    let mut out: Vec<String> = Vec::new();
    let mut in_access = false;
    let mut header_at = None;
    let mut inserted = false;
    for l in cfg.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            if in_access && !inserted {
                out.insert(header_at.expect("inside [access]") + 1, line.clone());
                inserted = true;
            }
            in_access = t == "[access]";
            if in_access {
                header_at = Some(out.len());
            }
        } else if in_access && key_of(t) == Some("face_model") {
            continue;
        }
        out.push(l.to_string());
        if in_access && !inserted && key_of(t) == Some("mode") {
            out.push(line.clone());
            inserted = true;
        }
    }
    if in_access && !inserted {
        out.insert(header_at.expect("inside [access]") + 1, line);
    }
    let mut s = out.join("\n");
    if cfg.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.starts_with('#')).then_some(k)
}

/// The tarball's file name for a board.
pub fn tarball_name(profile: &Profile) -> String {
    format!("fas-{}-overlay.tar.gz", profile.name)
}

/// `install.sh` for the board's tarball (looked up next to the script).
pub fn install_script(profile: &Profile) -> String {
    INSTALL_SH
        .replace("@BOARD@", &profile.description)
        .replace("@TARBALL@", &tarball_name(profile))
        .replace("@USER@", deb::USER)
        .replace(
            "@MTCNN@",
            &stage::MTCNN_FILES
                .map(|f| format!("opt/fas/share/{f}"))
                .join(" "),
        )
}

const INSTALL_SH: &str = r#"#!/bin/sh
# Installs fas-edge on @BOARD@ from @TARBALL@ (next to this script).
#   sudo ./install.sh               install or upgrade; creates the @USER@ user, enables the unit
#   sudo ./install.sh --uninstall   removes the program, unit and rules; keeps /etc/fas and the
#                                   audit log in /var/lib/fas (evidence) and the user
#   DESTDIR=/some/root ./install.sh installs into a staged root: no systemctl, no useradd
#                                   (the user is added to DESTDIR's passwd and group files)
# Running it again is harmless; a locally edited /etc/fas/edge.toml is kept (the shipped one
# is written next to it as edge.toml.dist).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tarball=${FAS_OVERLAY:-$here/@TARBALL@}
D=${DESTDIR:-}
user=@USER@
files="opt/fas/bin/fas-edge etc/systemd/system/fas-edge.service etc/udev/rules.d/60-fas-edge.rules"
wants=etc/systemd/system/multi-user.target.wants/fas-edge.service
share="opt/fas/share/retinaface_mnet025.onnx opt/fas/share/dlib_face_resnet.onnx @MTCNN@"
live() { [ -z "$D" ]; }
say() { echo "install.sh: $*"; }

uninstall() {
    if live && [ -d /run/systemd/system ]; then
        systemctl disable --now fas-edge.service 2>/dev/null || true
    fi
    for f in $files $wants $share; do rm -f "$D/$f"; done
    for d in opt/fas/bin opt/fas/share opt/fas; do rmdir "$D/$d" 2>/dev/null || true; done
    if live; then
        [ -d /run/systemd/system ] && systemctl daemon-reload || true
        command -v udevadm >/dev/null && udevadm control --reload || true
    fi
    say "removed fas-edge; kept $D/etc/fas, $D/var/lib/fas (audit log) and the $user user"
}

add_user() {
    if live; then
        getent group gpio >/dev/null || groupadd --system gpio
        getent passwd "$user" >/dev/null ||
            useradd --system --user-group --no-create-home --home-dir /var/lib/fas \
                --shell /usr/sbin/nologin "$user"
        usermod -a -G video,gpio "$user"
    else
        mkdir -p "$D/etc"
        touch "$D/etc/passwd" "$D/etc/group"
        grep -q "^$user:" "$D/etc/group" || echo "$user:x:996:" >>"$D/etc/group"
        grep -q "^gpio:" "$D/etc/group" || echo "gpio:x:997:$user" >>"$D/etc/group"
        grep -q "^$user:" "$D/etc/passwd" ||
            echo "$user:x:996:996:fas-edge door:/var/lib/fas:/usr/sbin/nologin" >>"$D/etc/passwd"
    fi
}

install_all() {
    [ -f "$tarball" ] || { echo "install.sh: $tarball not found (set FAS_OVERLAY=)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    tar -xzf "$tarball" -C "$tmp" --no-same-owner
    add_user
    for f in $files; do
        install -D -m "$(stat -c %a "$tmp/$f")" "$tmp/$f" "$D/$f"
    done
    for f in $share; do
        [ -f "$tmp/$f" ] && install -D -m 0644 "$tmp/$f" "$D/$f"
    done
    install -d -m 0755 "$D/etc/fas" "$D/etc/fas/keys"
    if [ -f "$D/etc/fas/edge.toml" ] && ! cmp -s "$tmp/etc/fas/edge.toml" "$D/etc/fas/edge.toml"; then
        install -m 0640 "$tmp/etc/fas/edge.toml" "$D/etc/fas/edge.toml.dist"
        say "kept your $D/etc/fas/edge.toml; the shipped one is edge.toml.dist"
    else
        install -m 0640 "$tmp/etc/fas/edge.toml" "$D/etc/fas/edge.toml"
    fi
    [ -f "$tmp/etc/fas/model.fasb" ] && install -m 0644 "$tmp/etc/fas/model.fasb" "$D/etc/fas/model.fasb"
    for k in "$tmp"/etc/fas/keys/*.pub; do
        [ -f "$k" ] && install -m 0644 "$k" "$D/etc/fas/keys/"
    done
    install -d -m 0750 "$D/var/lib/fas"
    if live; then
        chgrp "$user" /etc/fas/edge.toml
        chown "$user:$user" /var/lib/fas
        command -v udevadm >/dev/null && { udevadm control --reload || true; udevadm trigger || true; }
        if [ -d /run/systemd/system ]; then
            systemctl daemon-reload
            systemctl enable fas-edge.service
            if [ -e /etc/fas/model.fasb ]; then systemctl restart fas-edge.service; fi
        fi
    else
        mkdir -p "$D/etc/systemd/system/multi-user.target.wants"
        ln -sfn /etc/systemd/system/fas-edge.service "$D/$wants"
    fi
    say "installed fas-edge into ${D:-/} (unit enabled)"
}

case "${1:-}" in
    --uninstall) uninstall ;;
    "") install_all ;;
    *) echo "usage: $0 [--uninstall]   (DESTDIR=ROOT installs into a staged root)" >&2; exit 2 ;;
esac
"#;

/// Builds `<out>/fas-<board>-overlay.tar.gz` and `<out>/install.sh` for an
/// `image = "overlay"` board.
pub fn build_overlay(profile: &Profile, inputs: &EdgeFiles<'_>, out_dir: &Path) -> Result<Overlay> {
    if profile.image != ImageKind::Overlay {
        return Err(ImageError::WrongKind {
            board: profile.name.clone(),
            kind: profile.image,
        }
        .into());
    }
    hosttools::require(&[TAR])?;
    let root = out_dir.join(format!(".fas-{}-overlay", profile.name));
    let _ = std::fs::remove_dir_all(&root);
    let mut files = vec![
        "opt/fas/bin/fas-edge".to_string(),
        "etc/fas/edge.toml".into(),
        "etc/systemd/system/fas-edge.service".into(),
        "etc/udev/rules.d/60-fas-edge.rules".into(),
    ];
    stage::copy(inputs.edge, &root.join(&files[0]), 0o755)?;
    stage::write(
        &root.join(&files[1]),
        edge_config(profile).as_bytes(),
        0o640,
    )?;
    stage::write(&root.join(&files[2]), systemd_unit().as_bytes(), 0o644)?;
    stage::write(&root.join(&files[3]), deb::udev_rules().as_bytes(), 0o644)?;
    std::fs::create_dir_all(root.join("etc/fas/keys"))?;
    if let Some(b) = inputs.bundle {
        files.push("etc/fas/model.fasb".into());
        stage::copy(b, &root.join("etc/fas/model.fasb"), 0o644)?;
    }
    if let Some(k) = inputs.keys {
        for (name, p) in stage::signer_keys(k)? {
            let rel = format!("etc/fas/keys/{name}");
            stage::copy(&p, &root.join(&rel), 0o644)?;
            files.push(rel);
        }
    }
    if let Some(d) = inputs.detector {
        let rel = DETECTOR.trim_start_matches('/');
        stage::copy(d, &root.join(rel), 0o644)?;
        files.push(rel.to_string());
    }
    if let Some(f) = inputs.face_model {
        let rel = FACE_MODEL.trim_start_matches('/');
        stage::copy(f, &root.join(rel), 0o644)?;
        files.push(rel.to_string());
    }
    if let Some(d) = inputs.mtcnn {
        for (name, p) in stage::mtcnn_files(d)? {
            let rel = format!("{}/{name}", SHARE.trim_start_matches('/'));
            stage::copy(&p, &root.join(&rel), 0o644)?;
            files.push(rel);
        }
    }
    std::fs::create_dir_all(out_dir)?;
    let tarball = out_dir.join(tarball_name(profile));
    let tmp = out_dir.join(format!(".{}.tmp", tarball_name(profile)));
    hosttools::run(
        TAR,
        &[
            "--sort=name".as_ref(),
            "--owner=0".as_ref(),
            "--group=0".as_ref(),
            "--numeric-owner".as_ref(),
            "--mtime=@0".as_ref(),
            "-czf".as_ref(),
            tmp.as_os_str(),
            "-C".as_ref(),
            root.as_os_str(),
            ".".as_ref(),
        ],
    )?;
    std::fs::rename(&tmp, &tarball)?;
    std::fs::remove_dir_all(&root)?;
    let install_sh = out_dir.join("install.sh");
    stage::write(&install_sh, install_script(profile).as_bytes(), 0o755)?;
    files.sort();
    Ok(Overlay {
        tarball,
        install_sh,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn tree(root: &Path) -> Vec<String> {
        let mut v = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if p.is_dir() && !p.is_symlink() {
                    stack.push(p);
                } else {
                    v.push(rel);
                }
            }
        }
        v.sort();
        v
    }

    fn install(sh: &Path, dest: &Path, args: &[&str]) -> String {
        let out = Command::new("sh")
            .arg(sh)
            .args(args)
            .env("DESTDIR", dest)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "install.sh {args:?}: {text}");
        text
    }

    #[test]
    fn the_overlay_installs_into_a_staged_root_idempotently_and_uninstalls() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, keys, bundle, det, face) = (
            dir.path().join("fas-edge"),
            dir.path().join("keys"),
            dir.path().join("m.fasb"),
            dir.path().join("d.onnx"),
            dir.path().join("f.onnx"),
        );
        std::fs::write(&bin, b"\x7fELF edge").unwrap();
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(keys.join("door.pub"), b"ed25519 key").unwrap();
        std::fs::write(keys.join("notes.txt"), b"not a key").unwrap();
        std::fs::write(&bundle, b"FASB").unwrap();
        std::fs::write(&det, b"onnx").unwrap();
        std::fs::write(&face, b"dlib resnet onnx").unwrap();
        let mtcnn = dir.path().join("mtcnn");
        std::fs::create_dir(&mtcnn).unwrap();
        for f in stage::MTCNN_FILES {
            std::fs::write(mtcnn.join(f), f.as_bytes()).unwrap();
        }
        for board in ["jetson-nano", "jetson-orin-nano"] {
            let profile = Profile::load(board).unwrap();
            let out = dir.path().join(board);
            let o = build_overlay(
                &profile,
                &EdgeFiles {
                    edge: &bin,
                    bundle: Some(&bundle),
                    keys: Some(&keys),
                    detector: Some(&det),
                    face_model: Some(&face),
                    mtcnn: Some(&mtcnn),
                },
                &out,
            )
            .unwrap();
            // The tarball lists what the overlay says, owned by root.
            let list = Command::new("tar")
                .arg("-tvzf")
                .arg(&o.tarball)
                .output()
                .unwrap();
            let list = String::from_utf8(list.stdout).unwrap();
            for f in &o.files {
                assert!(list.contains(&format!("./{f}")), "{f} not in\n{list}");
            }
            assert!(list.contains("0/0"), "{list}");
            assert!(!list.contains("notes.txt"));
            assert_eq!(
                o.files,
                [
                    "etc/fas/edge.toml",
                    "etc/fas/keys/door.pub",
                    "etc/fas/model.fasb",
                    "etc/systemd/system/fas-edge.service",
                    "etc/udev/rules.d/60-fas-edge.rules",
                    "opt/fas/bin/fas-edge",
                    "opt/fas/share/dlib_face_resnet.onnx",
                    "opt/fas/share/mtcnn_onet.onnx",
                    "opt/fas/share/mtcnn_pnet.onnx",
                    "opt/fas/share/mtcnn_rnet.onnx",
                    "opt/fas/share/retinaface_mnet025.onnx",
                ]
            );

            let root = dir.path().join(format!("{board}-root"));
            install(&o.install_sh, &root, &[]);
            let first = tree(&root);
            for f in &o.files {
                assert!(first.contains(f), "{f} not installed: {first:?}");
            }
            assert!(first
                .contains(&"etc/systemd/system/multi-user.target.wants/fas-edge.service".into()));
            assert_eq!(
                std::fs::read(root.join("opt/fas/bin/fas-edge")).unwrap(),
                b"\x7fELF edge"
            );
            let unit =
                std::fs::read_to_string(root.join("etc/systemd/system/fas-edge.service")).unwrap();
            assert!(unit.contains("ExecStart=/opt/fas/bin/fas-edge --config /etc/fas/edge.toml"));
            assert!(!unit.contains("/usr/bin/fas-edge"));
            let cfg = std::fs::read_to_string(root.join("etc/fas/edge.toml")).unwrap();
            assert!(
                cfg.contains(DETECTOR)
                    && cfg.contains(&format!("mtcnn_dir = \"{SHARE}\""))
                    && cfg.contains(&format!("line = {}", profile.relay.line))
            );
            // Every model the config names is installed there, as shipped and readable
            // by the service user.
            let table: toml::Table = cfg.parse().unwrap();
            assert_eq!(table["detector"]["model"].as_str(), Some(DETECTOR));
            assert_eq!(table["access"]["mode"].as_str(), Some("credential+face"));
            assert_eq!(table["access"]["face_model"].as_str(), Some(FACE_MODEL));
            assert!(!cfg.contains("/usr/share/fas"), "{cfg}");
            for (from, at) in [(&det, DETECTOR), (&face, FACE_MODEL)] {
                let p = root.join(at.trim_start_matches('/'));
                assert_eq!(
                    fas_core::bundle::sha256_hex(&std::fs::read(&p).unwrap()),
                    fas_core::bundle::sha256_hex(&std::fs::read(from).unwrap()),
                    "{at}"
                );
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o644, "{at}");
            }
            let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
            assert_eq!(passwd.matches("fas-edge:").count(), 1);

            // Again: nothing changes, the user is not added twice.
            install(&o.install_sh, &root, &[]);
            assert_eq!(tree(&root), first);
            assert_eq!(
                std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
                passwd
            );

            // A local edit of the config survives an upgrade.
            std::fs::write(root.join("etc/fas/edge.toml"), format!("{cfg}\n# local\n")).unwrap();
            let said = install(&o.install_sh, &root, &[]);
            assert!(said.contains("kept your"), "{said}");
            assert!(std::fs::read_to_string(root.join("etc/fas/edge.toml"))
                .unwrap()
                .ends_with("# local\n"));
            assert!(root.join("etc/fas/edge.toml.dist").exists());

            // Uninstall removes the program, unit, rules and enable link; keeps the config.
            std::fs::write(root.join("var/lib/fas/audit.jsonl"), b"{}\n").unwrap();
            install(&o.install_sh, &root, &["--uninstall"]);
            let after = tree(&root);
            for gone in [
                "opt/fas/bin/fas-edge",
                "etc/systemd/system/fas-edge.service",
                "etc/udev/rules.d/60-fas-edge.rules",
                "etc/systemd/system/multi-user.target.wants/fas-edge.service",
                "opt/fas/share/retinaface_mnet025.onnx",
                "opt/fas/share/dlib_face_resnet.onnx",
            ] {
                assert!(!after.contains(&gone.to_string()), "{gone} left: {after:?}");
            }
            assert!(!root.join("opt/fas").exists());
            assert!(after.contains(&"etc/fas/edge.toml".into()));
            assert!(after.contains(&"var/lib/fas/audit.jsonl".into()));
            // And an unknown flag is refused.
            let bad = Command::new("sh")
                .arg(&o.install_sh)
                .arg("--purge")
                .env("DESTDIR", &root)
                .status()
                .unwrap();
            assert!(!bad.success());
        }
        // An SD board is not an overlay board.
        let e = build_overlay(
            &Profile::load("rpi4").unwrap(),
            &EdgeFiles {
                edge: &bin,
                bundle: None,
                keys: None,
                detector: None,
                face_model: None,
                mtcnn: None,
            },
            dir.path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("image = \"overlay\""), "{e}");
    }

    #[test]
    fn the_face_model_goes_into_the_access_table_and_only_there() {
        let cfg = "[detector]\nmodel = \"x\"\n\n[access]\n# who\nmode = \"face\"\nface_model = \"/usr/share/fas/old.onnx\"\nface_threshold = 0.6\n\n[access.wiegand]\nchip = \"/dev/gpiochip0\"\nd0 = 5\nd1 = 6\n";
        let out = with_face_model(cfg, FACE_MODEL);
        let t: toml::Table = out.parse().unwrap();
        assert_eq!(t["access"]["face_model"].as_str(), Some(FACE_MODEL));
        assert_eq!(t["access"]["mode"].as_str(), Some("face"));
        assert_eq!(t["access"]["face_threshold"].as_float(), Some(0.6));
        assert!(t["access"]["wiegand"].get("face_model").is_none());
        assert_eq!(out.matches("face_model").count(), 1, "{out}");
        assert!(
            out.contains(&format!("mode = \"face\"\nface_model = \"{FACE_MODEL}\"\n")),
            "{out}"
        );
        // No mode line: right after the header (the last table of the file, too).
        let out = with_face_model("[a]\nx = 1\n[access]\n", FACE_MODEL);
        assert_eq!(
            out,
            format!("[a]\nx = 1\n[access]\nface_model = \"{FACE_MODEL}\"\n")
        );
        // No [access]: no face model is loaded, nothing to point anywhere.
        assert_eq!(with_face_model("[a]\nx = 1\n", FACE_MODEL), "[a]\nx = 1\n");
        // Every Jetson profile's config.
        for board in ["jetson-nano", "jetson-orin-nano"] {
            let t: toml::Table = edge_config(&Profile::load(board).unwrap()).parse().unwrap();
            assert_eq!(
                t["access"]["face_model"].as_str(),
                Some(FACE_MODEL),
                "{board}"
            );
            assert_eq!(t["detector"]["model"].as_str(), Some(DETECTOR), "{board}");
        }
    }
}
