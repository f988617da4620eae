//! fas-boards: board profiles, cross builds, packages and flashable images, and the
//! real-device test of fas-edge in a QEMU guest.

pub mod cpio;
pub mod cross;
pub mod deb;
pub mod debian;
pub mod flash;
pub mod hosttools;
pub mod image;
pub mod image_boot;
pub mod jetson;
pub mod mbr;
pub mod profile;
pub mod qmp;
pub mod raspi4b;
pub mod stage;
pub mod testbed;
