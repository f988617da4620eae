//! Where the downloaded model assets live (face detectors, the face-embedding model):
//! `$FAS_ASSETS` first, then the caller's fallbacks — the workspace's `assets/` for the
//! trainer, [`PACKAGED_DIR`] on a board. `cargo xtask setup` downloads them into
//! `assets/`.

use std::path::{Path, PathBuf};

/// The environment variable naming the assets directory.
pub const ENV: &str = "FAS_ASSETS";
/// Where `cargo xtask setup` puts the assets, relative to the workspace root.
pub const WORKSPACE_DIR: &str = "assets";
/// Where the board packages install the detectors.
pub const PACKAGED_DIR: &str = "/usr/share/fas";

/// No directory searched holds all the files asked for.
#[derive(Debug, thiserror::Error)]
#[error("{} not found in {} — run `cargo xtask setup` (it downloads the assets), or set {ENV} to the directory that holds them", files.join(", "), searched_list(searched))]
pub struct AssetsError {
    /// The files asked for.
    pub files: Vec<String>,
    /// The directories looked in, in order.
    pub searched: Vec<PathBuf>,
}

fn searched_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return format!("any directory (${ENV} is unset)");
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first of `$FAS_ASSETS` (when set and not empty) and `fallbacks` that holds all of
/// `files`.
pub fn find(files: &[&str], fallbacks: &[&Path]) -> Result<PathBuf, AssetsError> {
    let env = std::env::var_os(ENV).filter(|v| !v.is_empty());
    find_in(env.map(PathBuf::from), files, fallbacks)
}

/// [`find`] with the value of `$FAS_ASSETS` given.
pub fn find_in(
    env: Option<PathBuf>,
    files: &[&str],
    fallbacks: &[&Path],
) -> Result<PathBuf, AssetsError> {
    let searched: Vec<PathBuf> = env
        .into_iter()
        .chain(fallbacks.iter().map(|p| p.to_path_buf()))
        .collect();
    match searched
        .iter()
        .find(|d| files.iter().all(|f| d.join(f).is_file()))
    {
        Some(d) => Ok(d.clone()),
        None => Err(AssetsError {
            files: files.iter().map(|f| f.to_string()).collect(),
            searched,
        }),
    }
}

/// The path of asset `file` (see [`find`]).
pub fn file(file: &str, fallbacks: &[&Path]) -> Result<PathBuf, AssetsError> {
    find(&[file], fallbacks).map(|d| d.join(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic::tempdir;

    #[test]
    fn the_env_dir_comes_first_then_the_fallbacks_in_order() {
        let t = tempdir("assets");
        let (env, a, b) = (t.join("env"), t.join("a"), t.join("b"));
        for d in [&env, &a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(a.join("det.onnx"), "").unwrap();
        std::fs::write(b.join("det.onnx"), "").unwrap();
        std::fs::write(b.join("other.onnx"), "").unwrap();
        let fb: [&Path; 2] = [&a, &b];
        assert_eq!(find_in(Some(env.clone()), &["det.onnx"], &fb).unwrap(), a);
        // All files in one directory: a holds only one of them.
        assert_eq!(find_in(None, &["det.onnx", "other.onnx"], &fb).unwrap(), b);
        std::fs::write(env.join("det.onnx"), "").unwrap();
        assert_eq!(find_in(Some(env.clone()), &["det.onnx"], &fb).unwrap(), env);
        // A directory named like the file does not count.
        std::fs::create_dir_all(t.join("c/x.onnx")).unwrap();
        assert!(find_in(None, &["x.onnx"], &[&t.join("c")]).is_err());
        std::fs::remove_dir_all(t).unwrap();
    }

    #[test]
    fn the_error_names_files_dirs_env_and_fix() {
        let e = find_in(
            Some(PathBuf::from("/nonexistent/env")),
            &["a.onnx", "b.onnx"],
            &[Path::new("/nonexistent/fallback")],
        )
        .unwrap_err()
        .to_string();
        for want in [
            "a.onnx, b.onnx",
            "/nonexistent/env, /nonexistent/fallback",
            "cargo xtask setup",
            "FAS_ASSETS",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = find_in(None, &["a.onnx"], &[]).unwrap_err().to_string();
        assert!(e.contains("$FAS_ASSETS is unset"), "{e}");
    }
}
