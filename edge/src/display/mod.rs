//! What the door shows: the overlay drawn onto a copy of the camera frame
//! ([`FrameBuffer`] + [`draw_overlay`]), then sent to a Linux framebuffer ([`fb`]) and/or
//! saved as PNG snapshots ([`png`]).

pub mod fb;
pub mod frame;
pub mod overlay;
pub mod png;

pub use fb::{FbGeometry, FbWriter};
pub use frame::FrameBuffer;
pub use overlay::{draw_overlay, OverlayLayout, OverlayState};
pub use png::{SnapshotConfig, Snapshots};
