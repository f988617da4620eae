//! `fas-boards check-raspi4b`: boots an SD image on QEMU's Raspberry Pi 4B model and
//! checks that fas-edge is ready with the relay held locked.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use fas_boards::profile::Profile;
use fas_boards::{image_boot, raspi4b};

#[derive(clap::Args)]
pub struct CheckRaspi4bArgs {
    /// The SD image (`fas-boards image --board rpi4 --bundle B --keys K --detector D
    /// --face-model F`).
    #[arg(long)]
    pub image: PathBuf,
    /// The board profile the image was made for (its relay line is read from the GPIO).
    #[arg(long, default_value = "rpi4")]
    pub board: String,
    /// Work directory (kernel, initramfs, patched DTB, SD card copy, serial log).
    #[arg(long, default_value = "target/raspi4b-check")]
    pub work: PathBuf,
    /// Wall-clock limit for the guest, seconds.
    #[arg(long, default_value_t = 240)]
    pub timeout: u64,
}

pub fn run(a: CheckRaspi4bArgs) -> Result<bool> {
    let relay = raspi4b::RelayPin::from_profile(&Profile::load(&a.board)?)?;
    let cache = fas_boards::debian::cache_root();
    let qemu = raspi4b::Qemu::find_or_fetch(&cache)?;
    println!(
        "check-raspi4b: {} ({}); relay BCM GPIO {}",
        qemu.version,
        qemu.program.display(),
        relay.line
    );
    let limit = Duration::from_secs(a.timeout);
    let boot = raspi4b::boot(
        &qemu,
        &a.image,
        &a.work,
        relay,
        limit,
        Duration::from_secs(2),
        |serial| {
            let c = image_boot::BootChain::parse(serial);
            (c.ready && c.camera_waiting) || !c.exits.is_empty()
        },
    )?;
    let chain = image_boot::BootChain::parse(&boot.serial);
    let failures = raspi4b::failures(&boot, &chain, limit);
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1} s"));
    println!(
        "check-raspi4b: root {:?}; fas-edge started after {} (guest clock {}), ready after {}; relay read {} times, last {:?}; ran {:.1} s",
        chain.root_device,
        secs(boot.first_start_s),
        secs(boot.first_start_guest_s),
        secs(boot.ready_s),
        boot.relay.len(),
        boot.relay.last().map(|s| s.state),
        boot.elapsed.as_secs_f64()
    );
    for m in &chain.models {
        println!("check-raspi4b: {m}");
    }
    if failures.is_empty() {
        println!("check-raspi4b: PASS");
        return Ok(true);
    }
    eprintln!("---- serial log ----\n{}", boot.serial);
    for f in failures {
        eprintln!("check-raspi4b: FAIL: {f}");
    }
    Ok(false)
}
