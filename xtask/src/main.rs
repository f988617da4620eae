//! `cargo xtask` — the README's two commands and the set-up they need.
//!
//! - `cargo xtask test`: installs what the tests need (Debian packages, the PyPI `torch`
//!   wheel that the locked `tch` crate expects into `.venv/`, the assets of
//!   `shared/ASSETS.md` into `assets/`), then runs clippy and every test of the workspace.
//! - `cargo xtask demo`: the main job, on generated data, without hardware.
//! - `cargo xtask setup`: only the installation step (idempotent).

mod apt;
mod assets;
mod bench;
mod demo;
mod env;
mod guest;
mod pyfetch;
mod stages;
mod venv;

use std::process::ExitCode;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  demo                 run the main job on generated data (no hardware needed)
  test [--no-clippy] [--no-setup] [--no-guest] [-- <cargo test args>]
                       install what the tests need, then clippy + all tests, then the
                       real-device test (fas-edge in an aarch64 QEMU guest; skipped with
                       --no-guest or when cargo test args are given)
  guest                the real-device test alone: fas-edge in an aarch64 QEMU guest
  bench-edge [--frames N] [--soak N]
                       the door's per-stage latency and FPS at 640x480 on one core, against
                       the same algorithm in Python + onnxruntime (edge/bench/), and a
                       memory soak; trains the demo bundle first if there is none
  setup                install Debian packages, the torch venv and the assets only
  assets               fetch and verify the assets only
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The same layout as fas_core::report::chain (xtask depends on no fas crate):
            // the message, then each cause on its own line.
            eprintln!("xtask: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let root = env::workspace_root()?;
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => {
            eprint!("{USAGE}");
            bail!("no command given");
        }
    };
    match cmd {
        "setup" => setup(&root).map(|_| ()),
        "assets" => {
            let py = venv::bootstrap_python(&root)?;
            assets::ensure_all(&root, &py).map(|_| ())
        }
        "test" => {
            let mut opts = TestOpts {
                clippy: true,
                setup: true,
                guest: true,
            };
            let mut passthrough = Vec::new();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--no-clippy" => opts.clippy = false,
                    "--no-setup" => opts.setup = false,
                    "--no-guest" => opts.guest = false,
                    "--" => passthrough.extend(it.by_ref().cloned()),
                    other => bail!("unknown option to `test`: {other}\n{USAGE}"),
                }
            }
            let mut stages = stages::Stages::default();
            let r = test(&root, &opts, &passthrough, &mut stages);
            print!("{}", stages.table());
            r
        }
        "demo" => demo::run(&root, rest),
        "guest" => {
            setup(&root)?;
            let tenv = env::TestEnv::new(&root)?;
            let mut stages = stages::Stages::default();
            let r = guest::run(&root, &tenv, &mut stages);
            print!("{}", stages.table());
            r
        }
        "bench-edge" => {
            setup(&root)?;
            let tenv = env::TestEnv::new(&root)?;
            bench::run(&root, &tenv, rest)
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

struct TestOpts {
    clippy: bool,
    setup: bool,
    guest: bool,
}

/// `cargo xtask test`: set-up, the aarch64 guest binaries, clippy, every test, the desktop
/// capture backend's tests, then the real-device test; each a timed stage.
fn test(
    root: &std::path::Path,
    opts: &TestOpts,
    passthrough: &[String],
    stages: &mut stages::Stages,
) -> Result<()> {
    if opts.setup {
        stages.run("set-up (apt, torch venv, assets)", || setup(root))?;
    }
    let mut tenv = env::TestEnv::new(root)?;
    // The static aarch64 fas-edge the SD image tests put in their images (and the guest
    // test boots), built here: tests must not run cargo themselves. fas-boards is built
    // as `cargo test --workspace` builds it (the same features, so the test stage and the
    // guest reuse every artifact; `-p fas-boards` alone unifies features differently and
    // would build the dependency graph a second time).
    let dir = stages.run("workspace build, aarch64 guest binaries", || {
        if passthrough.is_empty() {
            tenv.cargo(&["test", "--workspace", "--no-run", "--quiet"])?;
        } else {
            let a = [
                "build",
                "-p",
                "fas-boards",
                "--bin",
                "fas-boards",
                "--quiet",
            ];
            tenv.cargo(&a)?;
        }
        let bins = tenv.bin_output("fas-boards", &["guest-bins"])?;
        // Its last stdout line is the directory.
        Ok(bins.lines().last().unwrap_or("").trim().to_string())
    })?;
    tenv.set_var("FAS_AARCH64_BIN_DIR", &dir);
    if opts.clippy {
        stages.run("clippy --workspace", || {
            tenv.cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
        })?;
    }
    let mut test_args = vec!["test", "--workspace"];
    test_args.extend(passthrough.iter().map(String::as_str));
    stages.run("cargo test --workspace", || tenv.cargo(&test_args))?;
    if passthrough.is_empty() {
        // The desktop capture backend is a feature; its host tests (and its lints) run
        // here, its capture from a real driver in the guest's trigger phase.
        let nokhwa = ["-p", "fas-edge", "--features", "nokhwa", "--lib"];
        stages.run("fas-edge --features nokhwa", || {
            if opts.clippy {
                let mut a = vec!["clippy"];
                a.extend(nokhwa);
                a.extend(["--", "-D", "warnings"]);
                tenv.cargo(&a)?;
            }
            let mut a = vec!["test"];
            a.extend(nokhwa);
            a.push("camera::desktop");
            tenv.cargo(&a)
        })?;
    }
    if opts.guest && passthrough.is_empty() {
        guest::run(root, &tenv, stages)?;
    }
    Ok(())
}

/// Everything the tests need, each step reporting whether it had to install anything.
pub(crate) fn setup(root: &std::path::Path) -> Result<()> {
    let mut installed = Vec::new();
    if apt::ensure(apt::PACKAGES)? {
        installed.push("Debian packages");
    }
    if venv::ensure_torch(root)? {
        installed.push("torch venv");
    }
    if venv::ensure_test_packages(root)? {
        installed.push("test packages (libosdp)");
    }
    let py = venv::python(root);
    if assets::ensure_all(root, &py)? {
        installed.push("assets");
    }
    if installed.is_empty() {
        println!("xtask: set-up complete, nothing to install");
    } else {
        println!(
            "xtask: set-up complete, installed: {}",
            installed.join(", ")
        );
    }
    Ok(())
}
