//! Staging files for a package, an image's root or an overlay: parents created, mode set,
//! errors naming the file. One implementation for the .deb, the SD image and the Jetson
//! overlay.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `to` with `mode`; returns the bytes written.
pub fn write(to: &Path, bytes: &[u8], mode: u32) -> Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", to.display()))?;
    Ok(bytes.len() as u64)
}

/// Copies `from` to `to` with `mode`; returns the bytes copied.
pub fn copy(from: &Path, to: &Path, mode: u32) -> Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let n = std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", to.display()))?;
    Ok(n)
}

/// MTCNN's three networks, as fas-edge looks for them in `detector.mtcnn_dir` or
/// `/usr/share/fas` (`detector.kind = "mtcnn"`).
pub use fas_core::MTCNN_FILES;

/// The MTCNN networks in `dir` as `(file name, path)`; an error names the first missing one.
pub fn mtcnn_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    MTCNN_FILES
        .iter()
        .map(|name| {
            let p = dir.join(name);
            if p.is_file() {
                Ok((name.to_string(), p))
            } else {
                anyhow::bail!(
                    "{}: missing; --mtcnn-dir must hold {} (assets/ has them: `cargo xtask setup`)",
                    p.display(),
                    MTCNN_FILES.join(", ")
                )
            }
        })
        .collect()
}

/// The face-embedding network's file name (dlib's ResNet as ONNX, 128 values a face; see
/// `fas_infer::embed`): fas-edge loads it from `access.face_model`, by default
/// `/usr/share/fas/dlib_face_resnet.onnx`, in the access modes that compare faces
/// (`credential+face`, `face`). `cargo xtask setup` puts it in `assets/`.
pub const FACE_MODEL_FILE: &str = "dlib_face_resnet.onnx";

/// Checks that `path`, given with the command-line flag `flag`, is a readable, non-empty
/// file; the error names the flag, the file and where the file comes from (`source`).
pub fn check_model_file(path: &Path, flag: &str, source: &str) -> Result<()> {
    let m = std::fs::metadata(path)
        .with_context(|| format!("{flag} {}: cannot read it; {source}", path.display()))?;
    if !m.is_file() {
        anyhow::bail!("{flag} {}: not a file; {source}", path.display());
    }
    if m.len() == 0 {
        anyhow::bail!("{flag} {}: empty file; {source}", path.display());
    }
    Ok(())
}

/// The signer keys (`*.pub`) in a trusted-keys directory, sorted by name, as
/// `(file name, path)`: what ships to `/etc/fas/keys/`.
pub fn signer_keys(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut keys = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if p.extension().is_some_and(|x| x == "pub") {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: key file name is not UTF-8", p.display()))?
                .to_string();
            keys.push((name, p));
        }
    }
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn mtcnn_files_are_all_three_or_an_error_naming_the_missing_one() {
        let d = tempfile::tempdir().unwrap();
        for f in ["mtcnn_pnet.onnx", "mtcnn_onet.onnx"] {
            write(&d.path().join(f), b"onnx", 0o644).unwrap();
        }
        let e = mtcnn_files(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("mtcnn_rnet.onnx") && e.contains("missing"),
            "{e}"
        );
        write(&d.path().join("mtcnn_rnet.onnx"), b"onnx", 0o644).unwrap();
        let names: Vec<String> = mtcnn_files(d.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, MTCNN_FILES);
    }

    #[test]
    fn staged_files_get_parents_and_modes_and_keys_are_the_pub_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a/b/edge.toml");
        assert_eq!(write(&f, b"x = 1\n", 0o640).unwrap(), 6);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o640);
        let g = d.path().join("c/fas-edge");
        assert_eq!(copy(&f, &g, 0o755).unwrap(), 6);
        assert_eq!(
            (std::fs::read(&g).unwrap(), mode(&g)),
            (b"x = 1\n".to_vec(), 0o755)
        );
        let keys = d.path().join("keys");
        for n in ["b.pub", "a.pub", "a.key", "notes.txt"] {
            write(&keys.join(n), b"k", 0o644).unwrap();
        }
        let got: Vec<String> = signer_keys(&keys)
            .unwrap()
            .into_iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(got, ["a.pub", "b.pub"]);
        let e = copy(&d.path().join("missing"), &g, 0o644).unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
    }

    #[test]
    fn a_model_file_flag_must_name_a_non_empty_file() {
        let d = tempfile::tempdir().unwrap();
        let src = "it is assets/dlib_face_resnet.onnx (`cargo xtask setup`)";
        let e = check_model_file(&d.path().join("nope.onnx"), "--face-model", src)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--face-model") && e.contains("nope.onnx") && e.contains("xtask setup"),
            "{e}"
        );
        let e = check_model_file(d.path(), "--face-model", src)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a file"), "{e}");
        let f = d.path().join("m.onnx");
        write(&f, b"", 0o644).unwrap();
        let e = check_model_file(&f, "--face-model", src)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        write(&f, b"onnx", 0o644).unwrap();
        check_model_file(&f, "--face-model", src).unwrap();
    }
}
