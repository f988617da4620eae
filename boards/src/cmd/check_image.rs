//! `fas-boards check-image`: boots an SD image under `-M virt` and checks that fas-edge
//! starts (or stops fail-closed and is restarted).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use fas_boards::image_boot;

#[derive(clap::Args)]
pub struct CheckImageArgs {
    /// The SD image (`fas-boards image --board rpi4`).
    #[arg(long)]
    pub image: PathBuf,
    /// Work directory (kernel, initramfs, serial log).
    #[arg(long, default_value = "target/image-check")]
    pub work: PathBuf,
    /// Wall-clock limit for the guest, seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

pub fn run(a: CheckImageArgs) -> Result<bool> {
    let boot = image_boot::boot_virt(
        &a.image,
        &a.work,
        Duration::from_secs(a.timeout),
        |serial| {
            let c = image_boot::BootChain::parse(serial);
            c.starts >= 2 || (c.ready && c.camera_waiting)
        },
    )?;
    let chain = image_boot::BootChain::parse(&boot.serial);
    // Either fas-edge came up and waits for the (absent) camera with the door locked, or a
    // start-up error stopped it fail-closed and the init restarted it.
    let mut failures = if chain.ready && chain.camera_waiting {
        chain.boot_failures()
    } else {
        chain.failures()
    };
    if boot.timed_out {
        failures.insert(0, format!("the guest ran past {} s", a.timeout));
    }
    println!(
        "check-image: root {:?}, fas-edge started {} time(s), exits {:?}, first start after {:.1} s, ran {:.1} s",
        chain.root_device,
        chain.starts,
        chain.exits,
        boot.first_start_s.unwrap_or(f64::NAN),
        boot.elapsed.as_secs_f64()
    );
    for e in &chain.edge_errors {
        println!("check-image: {e}");
    }
    if failures.is_empty() {
        println!("check-image: PASS");
        return Ok(true);
    }
    eprintln!("---- serial log ----\n{}", boot.serial);
    for f in failures {
        eprintln!("check-image: FAIL: {f}");
    }
    Ok(false)
}
