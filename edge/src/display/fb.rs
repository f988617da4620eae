//! Linux framebuffer sink (`/dev/fb0`): shows the overlaid frame, scaled to fit the screen
//! with black bars (letterbox), in the screen's own pixel format.
//!
//! [`FbWriter::open`] reads the geometry and pixel format with the `FBIOGET_VSCREENINFO` /
//! `FBIOGET_FSCREENINFO` ioctls; everything after that — format conversion, scaling, the
//! `pwrite` of whole frames — is generic over an [`FbGeometry`] and works on any file
//! ([`FbWriter::with_geometry`]), which is how it is tested here without a framebuffer.
//! Supported: packed true-colour at 32 bpp (XRGB8888, BGRA, … — any 8-bit channel
//! offsets) and 16 bpp (RGB565).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use fas_core::preprocess::RgbImage;

/// One colour channel's place in a pixel value (`struct fb_bitfield`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bitfield {
    pub offset: u32,
    pub length: u32,
}

/// What the writer needs to know about a screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbGeometry {
    /// Visible resolution.
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (≥ `width · bytes per pixel`).
    pub line_length: u32,
    pub bits_per_pixel: u32,
    pub red: Bitfield,
    pub green: Bitfield,
    pub blue: Bitfield,
    /// Alpha, if any; written fully opaque.
    pub transp: Bitfield,
    /// Top-left of the visible area inside the framebuffer memory.
    pub x_offset: u32,
    pub y_offset: u32,
    /// Size of the framebuffer memory, when known (checked against what is written).
    pub mem_len: Option<u64>,
}

impl FbGeometry {
    /// 32 bpp, `0xXXRRGGBB` in a native-endian word (the common `XRGB8888`).
    pub fn xrgb8888(width: u32, height: u32) -> Self {
        Self::packed(width, height, 32, (16, 8), (8, 8), (0, 8), (0, 0))
    }

    /// 16 bpp `RGB565`.
    pub fn rgb565(width: u32, height: u32) -> Self {
        Self::packed(width, height, 16, (11, 5), (5, 6), (0, 5), (0, 0))
    }

    fn packed(
        width: u32,
        height: u32,
        bpp: u32,
        r: (u32, u32),
        g: (u32, u32),
        b: (u32, u32),
        a: (u32, u32),
    ) -> Self {
        let bf = |(offset, length)| Bitfield { offset, length };
        Self {
            width,
            height,
            line_length: width * bpp / 8,
            bits_per_pixel: bpp,
            red: bf(r),
            green: bf(g),
            blue: bf(b),
            transp: bf(a),
            x_offset: 0,
            y_offset: 0,
            mem_len: None,
        }
    }

    pub fn bytes_per_pixel(&self) -> usize {
        (self.bits_per_pixel / 8) as usize
    }

    /// Bytes written per frame (`line_length · height`), starting at [`Self::byte_offset`].
    pub fn frame_len(&self) -> usize {
        self.line_length as usize * self.height as usize
    }

    /// Where the visible rows start in framebuffer memory.
    pub fn byte_offset(&self) -> u64 {
        u64::from(self.y_offset) * u64::from(self.line_length)
    }

    pub fn validate(&self) -> Result<(), FbError> {
        let unsupported = |what: String| Err(FbError::Unsupported { what });
        if self.bits_per_pixel != 16 && self.bits_per_pixel != 32 {
            return unsupported(format!(
                "{} bits per pixel (only 16 and 32 are supported)",
                self.bits_per_pixel
            ));
        }
        if self.width == 0 || self.height == 0 {
            return unsupported(format!("a {}x{} screen", self.width, self.height));
        }
        for (name, f) in [
            ("red", self.red),
            ("green", self.green),
            ("blue", self.blue),
        ] {
            if f.length == 0 || f.length > 8 || f.offset + f.length > self.bits_per_pixel {
                return unsupported(format!(
                    "{name} channel at offset {} length {} in a {} bpp pixel",
                    f.offset, f.length, self.bits_per_pixel
                ));
            }
        }
        if self.transp.length > 8 || self.transp.offset + self.transp.length > self.bits_per_pixel {
            return unsupported(format!(
                "alpha channel at offset {} length {}",
                self.transp.offset, self.transp.length
            ));
        }
        let row = u64::from(self.x_offset + self.width) * u64::from(self.bits_per_pixel / 8);
        if u64::from(self.line_length) < row {
            return unsupported(format!(
                "line length {} bytes, shorter than a row of {} pixels",
                self.line_length,
                self.x_offset + self.width
            ));
        }
        if let Some(mem) = self.mem_len {
            let end = self.byte_offset() + self.frame_len() as u64;
            if end > mem {
                return unsupported(format!(
                    "visible area ends at byte {end}, beyond the {mem} bytes of framebuffer memory"
                ));
            }
        }
        Ok(())
    }

    /// The pixel value of an RGB8 colour (alpha, if present, fully opaque).
    pub fn encode(&self, [r, g, b]: [u8; 3]) -> u32 {
        let put = |v: u8, f: Bitfield| {
            if f.length == 0 {
                0
            } else {
                (u32::from(v) >> (8 - f.length)) << f.offset
            }
        };
        let alpha = if self.transp.length == 0 {
            0
        } else {
            ((1u32 << self.transp.length) - 1) << self.transp.offset
        };
        put(r, self.red) | put(g, self.green) | put(b, self.blue) | alpha
    }

    /// The pixel value as it sits in memory (native byte order, as the kernel exposes it).
    fn pixel_bytes(&self, rgb: [u8; 3]) -> [u8; 4] {
        let v = self.encode(rgb);
        match self.bits_per_pixel {
            16 => {
                let b = (v as u16).to_ne_bytes();
                [b[0], b[1], 0, 0]
            }
            _ => v.to_ne_bytes(),
        }
    }
}

/// Where a `src_w × src_h` frame lands on a `dst_w × dst_h` screen, aspect kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letterbox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Letterbox {
    pub fn fit(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Self {
        if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
            return Self {
                x: 0,
                y: 0,
                width: 0,
                height: 0,
            };
        }
        // Compare dst_w/src_w with dst_h/src_h exactly, in integers.
        let (width, height) =
            if u64::from(dst_w) * u64::from(src_h) <= u64::from(dst_h) * u64::from(src_w) {
                let h = (u64::from(src_h) * u64::from(dst_w) / u64::from(src_w)).max(1);
                (dst_w, h as u32)
            } else {
                let w = (u64::from(src_w) * u64::from(dst_h) / u64::from(src_h)).max(1);
                (w as u32, dst_h)
            };
        Self {
            x: (dst_w - width) / 2,
            y: (dst_h - height) / 2,
            width,
            height,
        }
    }
}

/// Renders `frame` into `out` (one screen's worth, `geometry.frame_len()` bytes):
/// nearest-neighbour scaled, centred, black around it.
pub fn render(frame: &RgbImage, geometry: &FbGeometry, out: &mut [u8]) -> Result<(), FbError> {
    geometry.validate()?;
    if out.len() != geometry.frame_len() {
        return Err(FbError::BufferSize {
            expected: geometry.frame_len(),
            got: out.len(),
        });
    }
    let bpp = geometry.bytes_per_pixel();
    let black = geometry.pixel_bytes([0, 0, 0]);
    let data_ok = frame.data.len() == frame.width as usize * frame.height as usize * 3;
    let lb = if data_ok {
        Letterbox::fit(frame.width, frame.height, geometry.width, geometry.height)
    } else {
        Letterbox::fit(0, 0, 0, 0)
    };
    // Source column of each destination column inside the letterbox.
    let cols: Vec<usize> = (0..lb.width)
        .map(|dx| {
            let sx = (u64::from(dx) * 2 + 1) * u64::from(frame.width) / (2 * u64::from(lb.width));
            (sx as usize).min(frame.width as usize - 1)
        })
        .collect();
    let line = geometry.line_length as usize;
    let x0 = geometry.x_offset as usize;
    for y in 0..geometry.height {
        let row = &mut out[y as usize * line..(y as usize + 1) * line];
        let visible = &mut row[x0 * bpp..(x0 + geometry.width as usize) * bpp];
        let inside = y >= lb.y && y < lb.y + lb.height;
        for (x, px) in visible.chunks_exact_mut(bpp).enumerate() {
            let x = x as u32;
            let bytes = if inside && x >= lb.x && x < lb.x + lb.width {
                let dy = y - lb.y;
                let sy = ((u64::from(dy) * 2 + 1) * u64::from(frame.height)
                    / (2 * u64::from(lb.height))) as usize;
                let sy = sy.min(frame.height as usize - 1);
                let i = (sy * frame.width as usize + cols[(x - lb.x) as usize]) * 3;
                geometry.pixel_bytes([frame.data[i], frame.data[i + 1], frame.data[i + 2]])
            } else {
                black
            };
            px.copy_from_slice(&bytes[..bpp]);
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum FbError {
    #[error("{}: cannot {action} — check the device exists (is the fbdev/DRM driver loaded?) and that this user is in the `video` group", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("framebuffer: unsupported {what} — set the console to 32 or 16 bpp true colour (e.g. `fbset -depth 32`) or use PNG snapshots instead")]
    Unsupported { what: String },
    #[error("framebuffer: render buffer has {got} bytes, the screen needs {expected}")]
    BufferSize { expected: usize, got: usize },
}

/// Shows frames on a framebuffer device (or any file standing in for one).
pub struct FbWriter {
    file: File,
    path: PathBuf,
    geometry: FbGeometry,
    buf: Vec<u8>,
}

impl FbWriter {
    /// Opens a framebuffer device and reads its geometry with the `FBIOGET_*` ioctls.
    pub fn open(path: &Path) -> Result<Self, FbError> {
        // The fbdev ioctls are Linux's; elsewhere only `with_geometry` can describe one.
        #[cfg(not(target_os = "linux"))]
        return Err(FbError::Unsupported {
            what: format!(
                "{}: the Linux framebuffer on this operating system",
                path.display()
            ),
        });
        #[cfg(target_os = "linux")]
        {
            let io_err = |action: &'static str| {
                move |source: io::Error| FbError::Io {
                    path: path.to_path_buf(),
                    action,
                    source,
                }
            };
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io_err("open it for writing"))?;
            let geometry = ioctl::query(&file)
                .map_err(io_err("read its screen information (FBIOGET_*SCREENINFO)"))??;
            Self::with_geometry(file, path, geometry)
        }
    }

    /// A writer that trusts `geometry` for `file` (tests, or a screen known in advance).
    pub fn with_geometry(file: File, path: &Path, geometry: FbGeometry) -> Result<Self, FbError> {
        geometry.validate()?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            buf: vec![0; geometry.frame_len()],
            geometry,
        })
    }

    pub fn geometry(&self) -> &FbGeometry {
        &self.geometry
    }

    /// Scales `frame` onto the screen and writes it in one `pwrite`.
    pub fn show(&mut self, frame: &RgbImage) -> Result<(), FbError> {
        render(frame, &self.geometry, &mut self.buf)?;
        write_all_at(&self.file, &self.buf, self.geometry.byte_offset()).map_err(|source| {
            FbError::Io {
                path: self.path.clone(),
                action: "write a frame",
                source,
            }
        })
    }
}

/// One positioned write (`pwrite` on Unix).
#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// One positioned write (seek, then write).
#[cfg(not(unix))]
fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}

/// The kernel's screen-information ioctls (`<linux/fb.h>`).
#[cfg(target_os = "linux")]
mod ioctl {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    use super::{Bitfield, FbError, FbGeometry};

    const FBIOGET_VSCREENINFO: u32 = 0x4600;
    const FBIOGET_FSCREENINFO: u32 = 0x4602;
    const FB_TYPE_PACKED_PIXELS: u32 = 0;
    const FB_VISUAL_TRUECOLOR: u32 = 2;
    const FB_VISUAL_DIRECTCOLOR: u32 = 4;

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub(super) struct FbBitfield {
        pub offset: u32,
        pub length: u32,
        pub msb_right: u32,
    }

    /// `struct fb_var_screeninfo`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub(super) struct FbVarScreeninfo {
        pub xres: u32,
        pub yres: u32,
        pub xres_virtual: u32,
        pub yres_virtual: u32,
        pub xoffset: u32,
        pub yoffset: u32,
        pub bits_per_pixel: u32,
        pub grayscale: u32,
        pub red: FbBitfield,
        pub green: FbBitfield,
        pub blue: FbBitfield,
        pub transp: FbBitfield,
        pub nonstd: u32,
        pub activate: u32,
        pub height: u32,
        pub width: u32,
        pub accel_flags: u32,
        pub pixclock: u32,
        pub left_margin: u32,
        pub right_margin: u32,
        pub upper_margin: u32,
        pub lower_margin: u32,
        pub hsync_len: u32,
        pub vsync_len: u32,
        pub sync: u32,
        pub vmode: u32,
        pub rotate: u32,
        pub colorspace: u32,
        pub reserved: [u32; 4],
    }

    /// `struct fb_fix_screeninfo`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub(super) struct FbFixScreeninfo {
        pub id: [u8; 16],
        pub smem_start: libc::c_ulong,
        pub smem_len: u32,
        pub type_: u32,
        pub type_aux: u32,
        pub visual: u32,
        pub xpanstep: u16,
        pub ypanstep: u16,
        pub ywrapstep: u16,
        pub line_length: u32,
        pub mmio_start: libc::c_ulong,
        pub mmio_len: u32,
        pub accel: u32,
        pub capabilities: u16,
        pub reserved: [u16; 2],
    }

    fn get<T: Default>(file: &File, request: u32) -> io::Result<T> {
        let mut v = T::default();
        // SAFETY: `request` is a FBIOGET_* request whose kernel struct `T` mirrors
        // field for field (#[repr(C)]); the kernel writes at most size_of::<T>() bytes.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, &mut v as *mut T) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    }

    /// Reads the screen information; the inner error is an unsupported format.
    pub(super) fn query(file: &File) -> io::Result<Result<FbGeometry, FbError>> {
        let var: FbVarScreeninfo = get(file, FBIOGET_VSCREENINFO)?;
        let fix: FbFixScreeninfo = get(file, FBIOGET_FSCREENINFO)?;
        Ok(geometry(&var, &fix))
    }

    pub(super) fn geometry(
        var: &FbVarScreeninfo,
        fix: &FbFixScreeninfo,
    ) -> Result<FbGeometry, FbError> {
        let unsupported = |what: String| Err(FbError::Unsupported { what });
        if fix.type_ != FB_TYPE_PACKED_PIXELS {
            return unsupported(format!(
                "framebuffer type {} (need packed pixels)",
                fix.type_
            ));
        }
        if fix.visual != FB_VISUAL_TRUECOLOR && fix.visual != FB_VISUAL_DIRECTCOLOR {
            return unsupported(format!("visual {} (need true colour)", fix.visual));
        }
        if [var.red, var.green, var.blue]
            .iter()
            .any(|f| f.msb_right != 0)
        {
            return unsupported("bit-reversed colour channels (msb_right)".into());
        }
        let bf = |f: FbBitfield| Bitfield {
            offset: f.offset,
            length: f.length,
        };
        let g = FbGeometry {
            width: var.xres,
            height: var.yres,
            line_length: fix.line_length,
            bits_per_pixel: var.bits_per_pixel,
            red: bf(var.red),
            green: bf(var.green),
            blue: bf(var.blue),
            transp: bf(var.transp),
            x_offset: var.xoffset,
            y_offset: var.yoffset,
            mem_len: Some(u64::from(fix.smem_len)),
        };
        g.validate()?;
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    use super::ioctl::*;
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_struct_sizes() {
        assert_eq!(std::mem::size_of::<FbVarScreeninfo>(), 160);
        let fix = if cfg!(target_pointer_width = "64") {
            80
        } else {
            68
        };
        assert_eq!(std::mem::size_of::<FbFixScreeninfo>(), fix);
    }

    #[test]
    fn encodes_known_formats() {
        let x = FbGeometry::xrgb8888(1, 1);
        assert_eq!(x.encode([0x12, 0x34, 0x56]), 0x0012_3456);
        let r = FbGeometry::rgb565(1, 1);
        assert_eq!(r.encode([255, 0, 0]), 0xF800);
        assert_eq!(r.encode([0, 255, 0]), 0x07E0);
        assert_eq!(r.encode([0, 0, 255]), 0x001F);
        assert_eq!(
            r.encode([0x84, 0x82, 0x08]),
            (0x10 << 11) | (0x20 << 5) | 0x01
        );
        // BGRA in memory order on little endian: blue at 24, green 16, red 8, alpha 0.
        let mut bgra = FbGeometry::xrgb8888(1, 1);
        bgra.red.offset = 8;
        bgra.green.offset = 16;
        bgra.blue.offset = 24;
        bgra.transp = Bitfield {
            offset: 0,
            length: 8,
        };
        assert_eq!(bgra.encode([1, 2, 3]), 0x0302_01FF);
    }

    #[test]
    fn letterbox_keeps_aspect() {
        assert_eq!(
            Letterbox::fit(640, 480, 1280, 800),
            Letterbox {
                x: 107,
                y: 0,
                width: 1066,
                height: 800
            }
        );
        assert_eq!(
            Letterbox::fit(640, 480, 800, 480),
            Letterbox {
                x: 80,
                y: 0,
                width: 640,
                height: 480
            }
        );
        assert_eq!(
            Letterbox::fit(100, 100, 200, 50),
            Letterbox {
                x: 75,
                y: 0,
                width: 50,
                height: 50
            }
        );
        assert_eq!(
            Letterbox::fit(400, 100, 200, 200),
            Letterbox {
                x: 0,
                y: 75,
                width: 200,
                height: 50
            }
        );
        assert_eq!(Letterbox::fit(0, 10, 20, 20).width, 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn geometry_from_kernel_structs() {
        let mut var = FbVarScreeninfo {
            xres: 1280,
            yres: 800,
            bits_per_pixel: 32,
            ..Default::default()
        };
        var.red = FbBitfield {
            offset: 16,
            length: 8,
            msb_right: 0,
        };
        var.green = FbBitfield {
            offset: 8,
            length: 8,
            msb_right: 0,
        };
        var.blue = FbBitfield {
            offset: 0,
            length: 8,
            msb_right: 0,
        };
        let fix = FbFixScreeninfo {
            line_length: 5120,
            smem_len: 5120 * 800,
            visual: 2,
            ..Default::default()
        };
        let g = geometry(&var, &fix).unwrap();
        assert_eq!(
            g,
            FbGeometry {
                mem_len: Some(5120 * 800),
                ..FbGeometry::xrgb8888(1280, 800)
            }
        );

        let pseudo = FbFixScreeninfo { visual: 3, ..fix };
        assert!(matches!(
            geometry(&var, &pseudo),
            Err(FbError::Unsupported { .. })
        ));
        let small = FbFixScreeninfo {
            smem_len: 5120 * 799,
            ..fix
        };
        assert!(geometry(&var, &small).is_err());
        var.bits_per_pixel = 24;
        let e = geometry(&var, &fix).unwrap_err().to_string();
        assert!(e.contains("24 bits per pixel"), "{e}");
    }

    #[test]
    fn opening_a_non_framebuffer_names_it() {
        let e = FbWriter::open(Path::new("/dev/null")).err().unwrap();
        let msg = e.to_string();
        assert!(
            msg.contains("/dev/null") && msg.contains("FBIOGET"),
            "{msg}"
        );
    }
}
