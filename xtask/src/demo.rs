//! `cargo xtask demo`: the main job on generated data, without hardware.
//!
//! Today it runs what exists: the SynthFAS generator writes a four-domain dataset with
//! manifest, a sample sheet, and frames of the synthetic camera that `fas-edge --camera
//! synthetic` will watch. When fas-edge lands, the demo runs it on that camera with the
//! demo bundle.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let out = match args {
        [] => root.join("demo-out"),
        [flag, dir] if flag == "--out" => Path::new(dir).to_path_buf(),
        _ => bail!("usage: cargo xtask demo [--out DIR]"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let synth = |args: &[&str]| -> Result<()> {
        let status = Command::new(crate::env::cargo_bin())
            .args([
                "run",
                "--quiet",
                "-p",
                "fas-core",
                "--bin",
                "fas-synth",
                "--",
            ])
            .args(args)
            .current_dir(root)
            .status()
            .context("could not run cargo")?;
        if !status.success() {
            bail!("fas-synth {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let p = |name: &str| out.join(name).display().to_string();
    println!("demo: SynthFAS sample sheet (rows: domains; columns: live, print, replay, mask)");
    synth(&["sheet", "--out", &p("sheet.png")])?;
    println!("demo: a four-domain SynthFAS dataset for leave-one-domain-out protocols");
    synth(&[
        "write",
        "--out",
        &p("synthfas"),
        "--subjects",
        "4",
        "--frames",
        "4",
    ])?;
    println!("demo: frames of the synthetic camera (what `fas-edge --camera synthetic:1` sees)");
    synth(&[
        "camera",
        "--out",
        &p("camera"),
        "--seed",
        "1",
        "--count",
        "4",
        "--start",
        "0",
    ])?;
    println!("demo: done; outputs in {}", out.display());
    Ok(())
}
