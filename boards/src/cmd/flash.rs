//! `fas-boards flash`: writes an image to a removable disk and reads it back.

use std::path::PathBuf;

use anyhow::{Context, Result};
use fas_boards::flash;

use super::mib;

#[derive(clap::Args)]
pub struct FlashArgs {
    /// The image to write.
    #[arg(long)]
    pub image: PathBuf,
    /// The whole disk to overwrite (/dev/sdX, /dev/mmcblkN, /dev/disk/by-id/...).
    #[arg(long)]
    pub device: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Let --device be an existing regular file instead of a disk (tests, copies); no
    /// disk checks apply to it.
    #[arg(long)]
    pub allow_file: bool,
}

pub fn run(a: FlashArgs) -> Result<bool> {
    use std::io::Write;
    let image_bytes = std::fs::metadata(&a.image)
        .with_context(|| format!("reading {}", a.image.display()))?
        .len();
    let target = flash::check_target(&a.device, image_bytes, a.allow_file)?;
    match &target {
        flash::Target::Device(d) => {
            println!(
                "fas-boards: will overwrite, with {} ({:.0} MiB):",
                a.image.display(),
                mib(image_bytes)
            );
            print!("{}", d.describe());
        }
        flash::Target::File(f) => println!(
            "fas-boards: will write {} into the file {}",
            a.image.display(),
            f.display()
        ),
    }
    if !a.yes {
        let name = a
            .device
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        print!("Everything on it will be lost. Type `{name}` to continue: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim() != name {
            println!("fas-boards: not confirmed; nothing written");
            return Ok(false);
        }
    }
    let mut last = 0u64;
    let r = flash::write_and_verify(&a.image, &a.device, |stage, done, total| {
        let pct = done * 100 / total.max(1);
        if pct != last || done == total {
            last = pct;
            eprint!(
                "\r{stage}: {pct:3}% ({:.0} of {:.0} MiB)",
                mib(done),
                mib(total)
            );
            if done == total {
                eprintln!();
                last = 101;
            }
        }
    })?;
    println!(
        "fas-boards: wrote {:.0} MiB in {:.1} s, read back in {:.1} s, sha256 {} matches",
        mib(r.bytes),
        r.write.as_secs_f64(),
        r.verify.as_secs_f64(),
        r.sha256
    );
    Ok(true)
}
