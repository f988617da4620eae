//! The Raspberry Pi 4 SD image, end to end: built from Debian's packages (downloaded into
//! the fas cache, like the guest testbed's), its partition table and both file systems
//! read back with the host's own tools, then booted under `qemu-system-aarch64 -M virt`
//! from its own boot partition and root partition, and, as made for the board, on QEMU's
//! Raspberry Pi 4B model (`-M raspi4b`) to fas-edge ready. Skipped, with the reason
//! printed, only when the host lacks the tools (`cargo xtask setup` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fas_boards::hosttools::{self, Tool};
use fas_boards::image::{self, EdgeFiles};
use fas_boards::image_boot::{self, BootChain};
use fas_boards::profile::Profile;
use fas_boards::raspi4b::{self, RelayPin, RelayState};

const DEBUGFS: Tool = Tool {
    program: "debugfs",
    package: "e2fsprogs",
};

/// The two tests share the Debian package cache: on a cold cache they must not unpack the
/// same packages at once.
static CACHE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The static aarch64 fas-edge: `$FAS_AARCH64_BIN_DIR/fas-edge` (`cargo xtask test` builds
/// it with `fas-boards guest-bins` before the tests and sets the variable), else the musl
/// debug build in the target directory. A test must not run cargo itself: `cargo test`
/// holds the build directory's lock while tests run, so a nested build would wait forever.
fn musl_edge() -> PathBuf {
    if let Some(d) = std::env::var_os("FAS_AARCH64_BIN_DIR") {
        return PathBuf::from(d).join("fas-edge");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target_dir.join("aarch64-unknown-linux-musl/debug/fas-edge");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo run -p fas-boards -- guest-bins` (cargo xtask test does)",
        bin.display()
    );
    eprintln!(
        "note: FAS_AARCH64_BIN_DIR is not set; using {} as built (`cargo run -p fas-boards -- guest-bins` rebuilds it)",
        bin.display()
    );
    bin
}

/// `debugfs -R CMD` on an ext4 file system image.
fn debugfs(fs: &Path, cmd: &str) -> String {
    hosttools::run(DEBUGFS, &["-R".as_ref(), cmd.as_ref(), fs.as_os_str()]).unwrap()
}

/// The image's root partition copied out into `<dir>/root.ext4`.
fn root_fs(img: &image::SdImage, dir: &Path) -> PathBuf {
    use std::io::{Read, Seek, SeekFrom};
    let root_fs = dir.join("root.ext4");
    let mut f = std::fs::File::open(&img.path).unwrap();
    f.seek(SeekFrom::Start(img.root.offset_bytes())).unwrap();
    let mut out = std::fs::File::create(&root_fs).unwrap();
    std::io::copy(&mut f.by_ref().take(img.root.len_bytes()), &mut out).unwrap();
    root_fs
}

/// Fails unless `installed` on the root file system `fs` is `from`, byte for byte (sha256
/// of the file read back out with `debugfs dump`), mode 0644.
fn assert_installed(fs: &Path, installed: &str, from: &Path) {
    let out = fs.with_file_name(format!(
        "dumped-{}",
        Path::new(installed).file_name().unwrap().to_str().unwrap()
    ));
    let _ = std::fs::remove_file(&out);
    debugfs(fs, &format!("dump {installed} {}", out.display()));
    let got = std::fs::read(&out)
        .unwrap_or_else(|e| panic!("{installed} is not on the image's root ({e})"));
    let want = std::fs::read(from).unwrap();
    assert_eq!(
        (got.len(), fas_core::bundle::sha256_hex(&got)),
        (want.len(), fas_core::bundle::sha256_hex(&want)),
        "{installed} on the image is not {}",
        from.display()
    );
    let stat = debugfs(fs, &format!("stat {installed}"));
    assert!(stat.contains("Mode:  0644"), "{installed}: {stat}");
    std::fs::remove_file(&out).unwrap();
}

/// An asset from `$FAS_ASSETS`; a missing one fails the test, naming the fix.
fn asset(name: &str) -> PathBuf {
    let assets = std::env::var("FAS_ASSETS").expect("FAS_ASSETS (cargo xtask test sets it)");
    let p = Path::new(&assets).join(name);
    assert!(
        p.is_file(),
        "{} is missing: `cargo xtask setup` fetches it into assets/ (or set FAS_ASSETS)",
        p.display()
    );
    p
}

#[test]
fn rpi4_sd_image_builds_and_boots_its_own_chain_to_fas_edge() {
    let mut tools = hosttools::SD_IMAGE.to_vec();
    tools.extend([hosttools::QEMU_AARCH64, DEBUGFS]);
    if let Err(e) = hosttools::require(&tools) {
        eprintln!("SKIPPED rpi4 SD image test: {e}");
        return;
    }
    let _cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::load("rpi4").unwrap();
    let edge = musl_edge();
    let detector = std::env::var_os("FAS_ASSETS")
        .map(|a| PathBuf::from(a).join("retinaface_mnet025.onnx"))
        .filter(|p| p.exists());
    let face_model = std::env::var_os("FAS_ASSETS")
        .map(|a| PathBuf::from(a).join(fas_boards::stage::FACE_MODEL_FILE))
        .filter(|p| p.exists());
    let mtcnn = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .filter(|a| a.join("mtcnn_onet.onnx").exists());
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let img = image::build_sd(
        &profile,
        &fas_boards::debian::cache_root(),
        &EdgeFiles {
            edge: &edge,
            bundle: None,
            keys: Some(&keys),
            detector: detector.as_deref(),
            face_model: face_model.as_deref(),
            mtcnn: mtcnn.as_deref(),
        },
        dir.path(),
    )
    .unwrap();
    eprintln!(
        "image: {} MiB (boot {} MiB, root {} MiB) in {:.1} s; {} modules",
        img.image_bytes >> 20,
        img.boot.len_bytes() >> 20,
        img.root.len_bytes() >> 20,
        img.elapsed.as_secs_f64(),
        img.modules.len()
    );

    // The partition table, as the host's sfdisk reads it.
    assert_eq!(img.path, dir.path().join("fas-rpi4.img"));
    assert_eq!(std::fs::metadata(&img.path).unwrap().len(), img.image_bytes);
    let dump = Command::new(hosttools::find(hosttools::SFDISK).unwrap())
        .arg("--dump")
        .arg(&img.path)
        .output()
        .unwrap();
    let dump = String::from_utf8(dump.stdout).unwrap();
    assert!(dump.contains("label: dos"), "{dump}");
    assert!(
        dump.contains(&format!(
            "start=        2048, size={:>12}, type=c, bootable",
            img.boot.sectors
        )),
        "{dump}"
    );
    assert!(dump.contains("type=83"), "{dump}");
    assert!(img.root.offset_bytes() == img.boot.offset_bytes() + img.boot.len_bytes());

    // The boot partition holds the firmware, kernel, DTB, initramfs and the two text files.
    let spec = format!("{}@@{}", img.path.display(), img.boot.offset_bytes());
    let listing = hosttools::run(
        Tool {
            program: "mdir",
            package: "mtools",
        },
        &["-b".as_ref(), "-i".as_ref(), spec.as_ref(), "::".as_ref()],
    )
    .unwrap();
    for f in [
        "start4.elf",
        "fixup4.dat",
        "bootcode.bin",
        "vmlinuz",
        "initrd.img",
        "bcm2711-rpi-4-b.dtb",
        "config.txt",
        "cmdline.txt",
    ] {
        assert!(
            listing.contains(&format!("::/{f}")),
            "{f} not in\n{listing}"
        );
    }
    let cfg = dir.path().join("config.txt");
    image::copy_out_of_boot(&img.path, &img.boot, "config.txt", &cfg).unwrap();
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), image::config_txt());
    let dtb = dir.path().join("x.dtb");
    image::copy_out_of_boot(&img.path, &img.boot, image::DTB_FILE, &dtb).unwrap();
    assert_eq!(
        &std::fs::read(&dtb).unwrap()[..4],
        &[0xd0, 0x0d, 0xfe, 0xed],
        "a flattened device tree"
    );

    // The root file system: clean, labelled, with fas-edge and the board's config.
    let root_fs = root_fs(&img, dir.path());
    let fsck = Command::new(
        hosttools::find(Tool {
            program: "e2fsck",
            package: "e2fsprogs",
        })
        .unwrap(),
    )
    .arg("-fn")
    .arg(&root_fs)
    .output()
    .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let edge_toml = debugfs(&root_fs, "cat /etc/fas/edge.toml");
    assert_eq!(edge_toml, profile.edge_config());
    let stat = debugfs(&root_fs, "stat /usr/bin/fas-edge");
    assert!(
        stat.contains(&format!(
            "Size: {}",
            std::fs::metadata(&edge).unwrap().len()
        )),
        "{stat}"
    );
    // The detector and the face-embedding network where the config points.
    if let Some(d) = &detector {
        assert_installed(&root_fs, "/usr/share/fas/retinaface_mnet025.onnx", d);
    }
    if let Some(f) = &face_model {
        assert_installed(&root_fs, "/usr/share/fas/dlib_face_resnet.onnx", f);
    }
    if let Some(m) = &mtcnn {
        // MTCNN's networks beside RetinaFace, where fas-edge looks for them.
        for f in fas_boards::stage::MTCNN_FILES {
            let stat = debugfs(&root_fs, &format!("stat /usr/share/fas/{f}"));
            let size = std::fs::metadata(m.join(f)).unwrap().len();
            assert!(stat.contains(&format!("Size: {size}")), "{f}: {stat}");
        }
    }
    let inittab = debugfs(&root_fs, "cat /etc/inittab");
    assert!(
        inittab.contains("respawn:/usr/sbin/fas-edge-supervise"),
        "{inittab}"
    );
    let label = Command::new(
        hosttools::find(Tool {
            program: "dumpe2fs",
            package: "e2fsprogs",
        })
        .unwrap(),
    )
    .arg("-h")
    .arg(&root_fs)
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&label.stdout)
        .contains(&format!("volume name:   {}", image::ROOT_LABEL)));

    // Boot it: the image's own kernel, initramfs and cmdline; root found by label on the
    // virtio disk; the image's init starts fas-edge, which fails closed (no relay line 17
    // on `virt`: the relay is driven locked before anything else is loaded; no signed
    // bundle, no camera either) and is started again.
    let boot = image_boot::boot_virt(
        &img.path,
        &dir.path().join("boot-check"),
        Duration::from_secs(240),
        |serial| BootChain::parse(serial).starts >= 2,
    )
    .unwrap();
    let chain = BootChain::parse(&boot.serial);
    let mut failures = chain.failures();
    if boot.timed_out {
        failures.insert(0, "the guest ran past 240 s and was killed".into());
    }
    // The image's /etc/fas/edge.toml was read: its relay (the profile's line 17) is the
    // first thing fas-edge touches.
    if !chain.edge_errors.iter().any(|e| e.contains("line 17")) {
        failures.push(format!(
            "fas-edge's error does not name the image's relay (gpiochip0 line 17): {:?}",
            chain.edge_errors
        ));
    }
    if chain.root_device.as_deref() != Some("/dev/vda2") {
        failures.push(format!("root on {:?}, want /dev/vda2", chain.root_device));
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\n---- serial log ----\n{}",
        boot.serial
    );
    eprintln!(
        "virt boot: fas-edge first started after {:.1} s, restarted by {:.1} s; {:?}",
        boot.first_start_s.unwrap(),
        boot.elapsed.as_secs_f64(),
        chain.edge_errors
    );
    // The QEMU snapshot left the image as built.
    assert_eq!(std::fs::metadata(&img.path).unwrap().len(), img.image_bytes);
}

/// A failure unless fas-edge said it loaded the signed test bundle.
fn signed_bundle_missing(chain: &BootChain) -> Option<String> {
    let loaded = chain
        .models
        .iter()
        .any(|m| m.contains("image-test") && m.contains("signer "));
    (!loaded).then(|| {
        format!(
            "fas-edge did not load the signed bundle: {:?}",
            chain.models
        )
    })
}

/// What the boot tests share: the host tools (else `None`, with the skip printed), the
/// package-cache lock, and `profile`'s SD image in a scratch directory holding a signed
/// bundle with a tiny liveness model (it only has to load: no camera reaches it here), the
/// detector and the face-embedding network (the boards' `credential+face` access mode
/// loads it at start), both checked on the image's root, byte for byte.
fn signed_image(
    test: &str,
    tools: &[Tool],
    profile: &Profile,
) -> Option<(
    std::sync::MutexGuard<'static, ()>,
    tempfile::TempDir,
    image::SdImage,
)> {
    use fas_quantize::bundle::fixture::{write_tiny_bundle, TinyModel};
    if let Err(e) = hosttools::require(tools) {
        eprintln!("SKIPPED {test}: {e}");
        return None;
    }
    let cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let detector = asset("retinaface_mnet025.onnx");
    let face_model = asset(fas_boards::stage::FACE_MODEL_FILE);
    let model = TinyModel {
        detector_sha256: vec![fas_core::bundle::sha256_hex(
            &std::fs::read(&detector).unwrap(),
        )],
        ..TinyModel::loads_only("image-test")
    };
    let tiny = write_tiny_bundle(dir.path(), &model).unwrap();
    let img = image::build_sd(
        profile,
        &fas_boards::debian::cache_root(),
        &EdgeFiles {
            edge: &musl_edge(),
            bundle: Some(&tiny.bundle),
            keys: Some(&tiny.keys),
            detector: Some(&detector),
            face_model: Some(&face_model),
            mtcnn: None,
        },
        dir.path(),
    )
    .unwrap();
    let root = root_fs(&img, dir.path());
    assert_installed(&root, "/usr/share/fas/retinaface_mnet025.onnx", &detector);
    assert_installed(&root, "/usr/share/fas/dlib_face_resnet.onnx", &face_model);
    std::fs::remove_file(&root).unwrap();
    Some((cache, dir, img))
}

/// With a signed bundle, a detector and the relay on a line `virt` has, fas-edge in the
/// image gets through model, detector, relay and audit log, reports ready, finds no
/// camera and waits for one with the door locked (a USB camera may enumerate after boot).
#[test]
fn the_image_init_runs_fas_edge_to_ready_waiting_for_the_camera_with_the_door_locked() {
    // The rpi4 profile, wired as `virt` is: its PL061 has 8 lines (the Pi's relay is BCM
    // GPIO 17) and no framebuffer unless a GPU is added.
    let mut profile = Profile::load("rpi4").unwrap();
    profile.relay.line = 0;
    profile.display.kind = "none".into();
    profile.display.device = None;
    let mut tools = hosttools::SD_IMAGE.to_vec();
    tools.extend([hosttools::QEMU_AARCH64, DEBUGFS]);
    let Some((_cache, dir, img)) = signed_image("rpi4 SD image boot test", &tools, &profile) else {
        return;
    };
    let boot = image_boot::boot_virt(
        &img.path,
        &dir.path().join("boot-check"),
        Duration::from_secs(300),
        |serial| {
            let c = BootChain::parse(serial);
            c.ready && c.camera_waiting
        },
    )
    .unwrap();
    let chain = BootChain::parse(&boot.serial);
    let mut failures = chain.boot_failures();
    if boot.timed_out {
        failures.insert(0, "the guest ran past 300 s and was killed".into());
    }
    failures.extend(signed_bundle_missing(&chain));
    // The board's access gate: the face-embedding network the image ships, loaded.
    failures.extend(chain.access_missing("credential+face"));
    if !chain.ready {
        failures.push("fas-edge never reported ready".into());
    }
    if !chain.camera_waiting {
        failures.push("fas-edge did not say it waits for the missing /dev/video0".into());
    }
    if !chain.edge_errors.is_empty() || !chain.exits.is_empty() {
        failures.push(format!(
            "fas-edge stopped (exits {:?}, errors {:?}); with no camera it must wait, locked",
            chain.exits, chain.edge_errors
        ));
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\n---- serial log ----\n{}",
        boot.serial
    );
    eprintln!(
        "virt boot: fas-edge first started after {:.1} s, ready and waiting for the camera by {:.1} s\n{}\n{}",
        boot.first_start_s.unwrap(),
        boot.elapsed.as_secs_f64(),
        chain.models[0],
        chain.access[0],
    );
}

/// The image exactly as made for the board (relay on BCM GPIO 17, display /dev/fb0), with a
/// signed bundle and the detector, on QEMU's Raspberry Pi 4B model: booted from the
/// emulated SD card, fas-edge loads the model, takes line 17 as an output at the locked
/// level, opens /dev/fb0 (a simple-framebuffer on QEMU's framebuffer), reports ready and
/// waits for the absent camera; the line, read from the emulated GPIO block while the
/// guest runs, is never driven open.
#[test]
fn the_rpi4_image_boots_on_raspi4b_to_ready_with_the_relay_held_locked() {
    let t0 = std::time::Instant::now();
    let profile = Profile::load("rpi4").unwrap();
    let mut tools = hosttools::SD_IMAGE.to_vec();
    tools.extend_from_slice(hosttools::RASPI4B_CHECK);
    tools.push(DEBUGFS);
    let Some((_cache, dir, img)) = signed_image("rpi4 image on raspi4b test", &tools, &profile)
    else {
        return;
    };
    let cache = fas_boards::debian::cache_root();
    let qemu = raspi4b::Qemu::find_or_fetch(&cache).unwrap();
    let relay = RelayPin::from_profile(&profile).unwrap();
    assert_eq!(relay.line, 17);
    let limit = Duration::from_secs(180);
    let boot = raspi4b::boot(
        &qemu,
        &img.path,
        &dir.path().join("raspi4b"),
        relay,
        limit,
        Duration::from_secs(2),
        |serial| {
            let c = BootChain::parse(serial);
            (c.ready && c.camera_waiting) || !c.exits.is_empty()
        },
    )
    .unwrap();
    let chain = BootChain::parse(&boot.serial);
    let mut failures = raspi4b::failures(&boot, &chain, limit);
    if chain.root_device.as_deref() != Some("/dev/mmcblk0p2") {
        failures.push(format!(
            "root on {:?}, want the SD card's /dev/mmcblk0p2",
            chain.root_device
        ));
    }
    failures.extend(signed_bundle_missing(&chain));
    failures.extend(chain.access_missing("credential+face"));
    let locked = boot
        .relay
        .iter()
        .filter(|s| s.state == RelayState::Locked)
        .count();
    assert!(
        failures.is_empty(),
        "{failures:#?}\n{qemu:?}\n---- serial log ----\n{}",
        boot.serial
    );
    eprintln!(
        "raspi4b ({}): fas-edge started {:.1} s after QEMU started (guest clock {:.1} s), ready after {:.1} s; \
         line 17 read {} times, held locked in {locked}; test {:.1} s",
        qemu.version,
        boot.first_start_s.unwrap(),
        boot.first_start_guest_s.unwrap_or(f64::NAN),
        boot.ready_s.unwrap(),
        boot.relay.len(),
        t0.elapsed().as_secs_f64()
    );
    // The guest wrote to a copy: the image is as built.
    assert_eq!(std::fs::metadata(&img.path).unwrap().len(), img.image_bytes);
}
