//! Locations and the environment the workspace's cargo commands run in.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> Result<PathBuf> {
    let manifest = env!("CARGO_MANIFEST_DIR");
    Path::new(manifest)
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest dir has no parent")
}

/// The cargo that runs us (so `cargo +toolchain xtask` keeps its toolchain).
pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Environment for building and testing the whole workspace. libtorch is the venv's torch
/// wheel: torch-sys finds it through `.cargo/config.toml` (`LIBTORCH=.venv/torch`), the
/// binaries that link it through their rpath; `LD_LIBRARY_PATH` is set as well for
/// anything else that loads it.
pub struct TestEnv {
    root: PathBuf,
    vars: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new(root: &Path) -> Result<Self> {
        let venv = root.join(".venv");
        let bin = venv.join("bin");
        if !bin.join("python").exists() {
            bail!(
                "no venv at {}: run `cargo xtask setup` first",
                venv.display()
            );
        }
        let torch_lib = crate::venv::torch_lib_dir(root)?;
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let ld = match std::env::var("LD_LIBRARY_PATH") {
            Ok(old) if !old.is_empty() => format!("{}:{old}", torch_lib.display()),
            _ => torch_lib.display().to_string(),
        };
        let vars = vec![
            ("VIRTUAL_ENV".into(), venv.display().to_string()),
            ("PATH".into(), path),
            ("LD_LIBRARY_PATH".into(), ld),
            (
                "FAS_ASSETS".into(),
                root.join("assets").display().to_string(),
            ),
        ];
        Ok(Self {
            root: root.to_path_buf(),
            vars,
        })
    }

    /// Sets a variable for every command this environment runs.
    pub fn set_var(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.to_string()));
    }

    /// The command for a built workspace binary (`<target>/debug/<name>`) with this
    /// environment, and the binary's path (for errors).
    fn bin_command(&self, name: &str, args: &[&str]) -> (Command, PathBuf) {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target"));
        let bin = dir.join("debug").join(name);
        println!("xtask: $ {name} {}", args.join(" "));
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .current_dir(&self.root)
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        (cmd, bin)
    }

    /// Runs a built binary and returns its stdout (stderr goes to the terminal).
    pub fn bin_output(&self, name: &str, args: &[&str]) -> Result<String> {
        let (mut cmd, bin) = self.bin_command(name, args);
        let out = cmd
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("could not start {}", bin.display()))?;
        if !out.status.success() {
            bail!("`{name} {}` failed ({})", args.join(" "), out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a built binary (`target/debug/<name>`) with this environment.
    pub fn run_bin(&self, name: &str, args: &[&str]) -> Result<()> {
        let (mut cmd, bin) = self.bin_command(name, args);
        let started = std::time::Instant::now();
        let status = cmd
            .status()
            .with_context(|| format!("could not start {}", bin.display()))?;
        if !status.success() {
            bail!("`{name} {}` failed ({status})", args.join(" "));
        }
        // Each step of the demo pipeline is a program run: its time, for the CI log.
        let sub = args.first().copied().unwrap_or_default();
        println!(
            "xtask: {name} {sub}: {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Runs `cargo <args>` in the workspace root with this environment.
    pub fn cargo(&self, args: &[&str]) -> Result<()> {
        let cargo = cargo_bin();
        println!("xtask: $ cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(&self.root)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .status()
            .with_context(|| format!("could not start {cargo}"))?;
        if !status.success() {
            bail!("`cargo {}` failed ({status})", args.join(" "));
        }
        Ok(())
    }
}
