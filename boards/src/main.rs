//! `fas-boards`: board profiles, cross builds, packages and images for fas-edge, and the
//! real-device test in a QEMU guest.

//!
//! This file is the command line and the dispatch; each subcommand's body is in `cmd/`.

mod cmd;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use cmd::{build::BuildArgs, check_image::CheckImageArgs, check_raspi4b::CheckRaspi4bArgs};
use cmd::{flash::FlashArgs, image::ImageArgs, testbed::TestbedArgs};

#[derive(Parser)]
#[command(name = "fas-boards", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lists the built-in board profiles.
    List,
    /// Prints a board profile and the fas-edge config it implies.
    Show {
        /// Board name (`fas-boards list`) or the path of a profile .toml.
        board: String,
    },
    /// Cross-compiles fas-edge for a board and stages it with its config, systemd unit and
    /// udev rules; `--deb` also packages it.
    Build(BuildArgs),
    /// Runs the real fas-edge in an aarch64 QEMU guest with a real V4L2 camera (vivid,
    /// fed SynthFAS sessions), a PL061 GPIO relay line and a virtio-gpu framebuffer, and
    /// checks its decisions, the relay, the framebuffer and the audit log.
    Testbed(TestbedArgs),
    /// Makes a board's image: a flashable SD image (`<out>/fas-<board>.img`, boards with
    /// image = "sd") or a rootfs overlay tarball + install.sh (image = "overlay", Jetson).
    Image(ImageArgs),
    /// Boots an SD image under qemu-system-aarch64 `-M virt` (the image as a virtio disk,
    /// kernel, initramfs and cmdline.txt from its own boot partition) and checks that its
    /// init starts fas-edge and that fas-edge, with no camera, either reports ready and
    /// waits for one with the door locked or stops fail-closed and is restarted.
    CheckImage(CheckImageArgs),
    /// Boots an SD image on QEMU's Raspberry Pi 4B model (`-M raspi4b`; bookworm-backports'
    /// QEMU is fetched into the fas cache when the host's lacks it) from its own kernel,
    /// initramfs and device tree (patched for what QEMU's BCM2711 lacks, with /dev/fb0 on
    /// QEMU's framebuffer), and passes only when fas-edge reports ready and waits for the
    /// absent camera with the relay line held locked and never driven open. The image needs
    /// a signed bundle, its keys, the detector and the face-embedding network (`fas-boards
    /// image --bundle --keys --detector --face-model`).
    CheckRaspi4b(CheckRaspi4bArgs),
    /// Builds the static aarch64 (musl, debug) fas-edge and fas-testbed that the guest
    /// test and the SD image use, and prints their directory (`cargo xtask test` runs it
    /// before the tests, which must not run cargo themselves).
    GuestBins,
    /// Writes an image to an SD card or USB drive and reads it back. Refuses mounted,
    /// non-removable, system and too-small disks.
    Flash(FlashArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fas-boards: error: {}", fas_core::report::chain(&*e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    match cli.cmd {
        Cmd::List => cmd::list::list(),
        Cmd::Show { board } => cmd::list::show(&board),
        Cmd::Build(a) => cmd::build::run(a),
        Cmd::Testbed(a) => cmd::testbed::run(a),
        Cmd::GuestBins => cmd::guest_bins::run(),
        Cmd::Image(a) => cmd::image::run(a),
        Cmd::CheckImage(a) => cmd::check_image::run(a),
        Cmd::CheckRaspi4b(a) => cmd::check_raspi4b::run(a),
        Cmd::Flash(a) => cmd::flash::run(a),
    }
}
