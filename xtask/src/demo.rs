//! `cargo xtask demo`: the main job on generated data.

use std::path::Path;

use anyhow::Result;

pub fn run(_root: &Path, _args: &[String]) -> Result<()> {
    anyhow::bail!("demo: filled in below")
}
