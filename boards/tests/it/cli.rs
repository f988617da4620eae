//! The `fas-boards` command line's model flags: `--face-model` next to `--detector` on the
//! commands that ship models (`image`, `build --deb`), a bad path refused before any build
//! with the flag and the fix named, and a Jetson overlay made from the command line with
//! the face-embedding network where its config points.

use std::path::Path;
use std::process::{Command, Output};

fn fas_boards(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fas-boards"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_commands_that_take_detector_take_face_model() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["image", "build"] {
        let o = fas_boards(&[cmd, "--help"], dir.path());
        let help = text(&o);
        assert!(o.status.success(), "{help}");
        assert!(
            help.contains("--detector") && help.contains("--face-model <PATH>"),
            "{cmd}: {help}"
        );
    }
}

#[test]
fn a_missing_face_model_is_refused_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let edge = dir.path().join("fas-edge");
    std::fs::write(&edge, b"\x7fELF").unwrap();
    let missing = dir.path().join("nope.onnx");
    for args in [
        vec![
            "image",
            "--board",
            "rpi4",
            "--edge",
            edge.to_str().unwrap(),
            "--face-model",
            missing.to_str().unwrap(),
        ],
        // `build` cross-compiles fas-edge first: the check comes before that.
        vec![
            "build",
            "--board",
            "rpi4",
            "--deb",
            "--face-model",
            missing.to_str().unwrap(),
        ],
    ] {
        let o = fas_boards(&args, dir.path());
        let said = text(&o);
        assert!(!o.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("--face-model")
                && said.contains("nope.onnx")
                && said.contains("dlib_face_resnet.onnx")
                && said.contains("cargo xtask setup"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("Compiling"), "{args:?} built: {said}");
    }
}

#[test]
fn a_jetson_overlay_from_the_command_line_ships_the_face_model_its_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let edge = file("fas-edge", b"\x7fELF edge");
    let det = file("det.onnx", b"retinaface stand-in");
    let face = file("face.onnx", b"dlib resnet stand-in");
    let out = dir.path().join("out");
    let o = fas_boards(
        &[
            "image",
            "--board",
            "jetson-orin-nano",
            "--edge",
            edge.to_str().unwrap(),
            "--detector",
            det.to_str().unwrap(),
            "--face-model",
            face.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let x = Command::new("tar")
        .arg("-xzf")
        .arg(out.join("fas-jetson-orin-nano-overlay.tar.gz"))
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(x.success());
    let cfg: toml::Table = std::fs::read_to_string(root.join("etc/fas/edge.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let at = cfg["access"]["face_model"].as_str().unwrap();
    assert_eq!(at, "/opt/fas/share/dlib_face_resnet.onnx");
    assert_eq!(
        std::fs::read(root.join(at.trim_start_matches('/'))).unwrap(),
        b"dlib resnet stand-in"
    );

    // Without --face-model the overlay is made, and the command says what it lacks.
    let o = fas_boards(
        &[
            "image",
            "--board",
            "jetson-nano",
            "--edge",
            edge.to_str().unwrap(),
            "--detector",
            det.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    assert!(
        said.contains("warning: no --face-model") && !said.contains("no --detector"),
        "{said}"
    );
}
