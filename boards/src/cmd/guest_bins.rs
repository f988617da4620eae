//! `fas-boards guest-bins`: the static aarch64 fas-edge and fas-testbed of the guest test
//! and the SD image.

use std::path::PathBuf;

use anyhow::Result;
use fas_boards::cross;
use fas_boards::profile::Profile;

use super::workspace_root;

/// Builds them and prints their directory.
pub fn run() -> Result<bool> {
    build().map(|d| {
        println!("{}", d.display());
        true
    })
}

/// The static aarch64 fas-edge + fas-testbed (one build of both, so their features unify
/// the same way every time and neither rebuilds the other).
pub fn build() -> Result<PathBuf> {
    let profile = Profile::load("qemu-virt")?;
    cross::build(
        &workspace_root()?,
        &profile,
        &cross::BuildOptions {
            release: false,
            tune: false,
            packages: &["fas-edge", "fas-testbed"],
            // The trigger phase captures through the desktop backend (nokhwa).
            features: &["fas-edge/nokhwa"],
            target_dir: None,
        },
    )
}
