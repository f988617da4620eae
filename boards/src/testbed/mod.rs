//! The real-device test: fas-edge in an aarch64 QEMU guest with a real V4L2 camera (vivid,
//! its output looped into its capture), a real GPIO relay line (PL061) and a real
//! framebuffer (virtio-gpu). See `shared/EDGE-TESTBED.md` and the README's *Boards* section.
//!
//! - [`plan`]: the sessions shown to the camera, rendered on the host.
//! - [`events`]: what the guest prints on its serial console.
//! - [`verdict`]: reads the serial log back and judges the run.
//! - [`guest`]: kernel packages, initramfs, QEMU.

pub mod events;
pub mod guest;
pub mod plan;
pub mod verdict;
