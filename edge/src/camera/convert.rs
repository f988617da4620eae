//! Camera pixel formats → packed RGB8 ([`RgbImage`]).
//!
//! YUV formats are decoded as BT.601 limited range (Y 16–235, Cb/Cr 16–240), which is what
//! UVC webcams and V4L2 capture drivers deliver unless they say otherwise. Every converter
//! checks the buffer length against the geometry before touching a byte and returns
//! [`ConvertError`] on short or undecodable input; none panics on any input.

use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use fas_core::preprocess::RgbImage;

/// The capture pixel formats fas-edge can turn into RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 4:2:2 `Y0 U Y1 V` (V4L2 `YUYV`, also called YUY2).
    Yuyv,
    /// Planar 4:2:0: a Y plane, then one plane of interleaved `U V` at half resolution.
    Nv12,
    /// Packed `R G B` (V4L2 `RGB3`).
    Rgb24,
    /// Packed `B G R` (V4L2 `BGR3`).
    Bgr24,
    /// Motion JPEG: each frame a JPEG (V4L2 `MJPG`; default Huffman tables allowed).
    Mjpeg,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 5] = [
        PixelFormat::Yuyv,
        PixelFormat::Nv12,
        PixelFormat::Rgb24,
        PixelFormat::Bgr24,
        PixelFormat::Mjpeg,
    ];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Rgb24 => *b"RGB3",
            PixelFormat::Bgr24 => *b"BGR3",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }

    /// The format with V4L2 four-character code `code` (`YUY2` is taken for `YUYV`).
    pub fn from_fourcc(code: [u8; 4]) -> Option<PixelFormat> {
        match &code {
            b"YUY2" => Some(PixelFormat::Yuyv),
            _ => PixelFormat::ALL.into_iter().find(|f| f.fourcc() == code),
        }
    }

    /// Whether the frame size is fixed by the geometry (everything but MJPEG).
    pub fn is_raw(self) -> bool {
        self != PixelFormat::Mjpeg
    }

    /// Bytes of one row without padding, the minimum line stride.
    pub fn min_stride(self, width: u32) -> usize {
        let w = width as usize;
        match self {
            PixelFormat::Yuyv => w.div_ceil(2) * 4,
            PixelFormat::Nv12 => w.div_ceil(2) * 2,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => w * 3,
            PixelFormat::Mjpeg => 0,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.fourcc();
        f.write_str(std::str::from_utf8(&code).unwrap_or("????"))
    }
}

/// A format name that is none of [`PixelFormat::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pixel format {0:?}: use one of YUYV (YUY2), NV12, RGB3 (RGB24), BGR3 (BGR24), MJPG (MJPEG)")]
pub struct UnknownPixelFormat(pub String);

impl FromStr for PixelFormat {
    type Err = UnknownPixelFormat;

    /// Accepts the four-character code or the common name, any case:
    /// `YUYV`/`YUY2`, `NV12`, `RGB3`/`RGB24`, `BGR3`/`BGR24`, `MJPG`/`MJPEG`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "YUYV" | "YUY2" => Ok(PixelFormat::Yuyv),
            "NV12" => Ok(PixelFormat::Nv12),
            "RGB3" | "RGB24" => Ok(PixelFormat::Rgb24),
            "BGR3" | "BGR24" => Ok(PixelFormat::Bgr24),
            "MJPG" | "MJPEG" => Ok(PixelFormat::Mjpeg),
            _ => Err(UnknownPixelFormat(s.to_string())),
        }
    }
}

/// Why a buffer could not be turned into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{format} frame of {width}x{height} has no pixels")]
    Empty {
        format: PixelFormat,
        width: u32,
        height: u32,
    },
    #[error(
        "{format} {width}x{height}: line stride {stride} is below the {min} bytes a row needs"
    )]
    Stride {
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: usize,
        min: usize,
    },
    #[error(
        "{format} {width}x{height} (stride {stride}) needs {expected} bytes, the buffer has {got}"
    )]
    Short {
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: usize,
        expected: usize,
        got: usize,
    },
    #[error("{format} {width}x{height}: frame too large to address")]
    TooLarge {
        format: PixelFormat,
        width: u32,
        height: u32,
    },
    #[error("MJPEG frame does not decode as a {width}x{height} JPEG: {detail}")]
    Jpeg {
        width: u32,
        height: u32,
        detail: String,
    },
}

/// The geometry of a captured buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the next (of the Y plane for NV12, whose UV plane
    /// uses the same stride); 0 means tightly packed. Ignored for MJPEG.
    pub stride: usize,
}

impl Layout {
    /// A tightly packed layout.
    pub fn packed(format: PixelFormat, width: u32, height: u32) -> Layout {
        Layout {
            format,
            width,
            height,
            stride: 0,
        }
    }

    fn stride(&self) -> usize {
        if self.stride == 0 {
            self.format.min_stride(self.width)
        } else {
            self.stride
        }
    }

    /// The smallest buffer a raw frame of this layout fits in (the last row need not be
    /// padded); `None` for MJPEG. Errors on a zero size or a stride below one row.
    pub fn min_len(&self) -> Result<Option<usize>, ConvertError> {
        let (format, width, height) = (self.format, self.width, self.height);
        if width == 0 || height == 0 {
            return Err(ConvertError::Empty {
                format,
                width,
                height,
            });
        }
        if !format.is_raw() {
            return Ok(None);
        }
        let stride = self.stride();
        let min = format.min_stride(width);
        if stride < min {
            return Err(ConvertError::Stride {
                format,
                width,
                height,
                stride,
                min,
            });
        }
        let too_large = || ConvertError::TooLarge {
            format,
            width,
            height,
        };
        let plane = |rows: usize| -> Result<usize, ConvertError> {
            (rows - 1)
                .checked_mul(stride)
                .and_then(|v| v.checked_add(min))
                .ok_or_else(too_large)
        };
        let h = height as usize;
        let len = match format {
            PixelFormat::Nv12 => stride
                .checked_mul(h)
                .and_then(|y| y.checked_add(plane(h.div_ceil(2)).ok()?))
                .ok_or_else(too_large)?,
            _ => plane(h)?,
        };
        // The RGB output must be addressable too.
        (width as usize)
            .checked_mul(h)
            .and_then(|v| v.checked_mul(3))
            .ok_or_else(too_large)?;
        Ok(Some(len))
    }
}

/// Converts one captured buffer to RGB. `data` may be longer than the frame (drivers hand
/// out whole buffers); it may not be shorter.
pub fn to_rgb(layout: &Layout, data: &[u8]) -> Result<RgbImage, ConvertError> {
    let Some(need) = layout.min_len()? else {
        return mjpeg_to_rgb(layout.width, layout.height, data);
    };
    if data.len() < need {
        return Err(ConvertError::Short {
            format: layout.format,
            width: layout.width,
            height: layout.height,
            stride: layout.stride(),
            expected: need,
            got: data.len(),
        });
    }
    let (w, h, stride) = (
        layout.width as usize,
        layout.height as usize,
        layout.stride(),
    );
    let mut out = vec![0u8; w * h * 3];
    match layout.format {
        PixelFormat::Yuyv => yuyv(data, w, h, stride, &mut out),
        PixelFormat::Nv12 => nv12(data, w, h, stride, &mut out),
        PixelFormat::Rgb24 => packed(data, w, h, stride, false, &mut out),
        PixelFormat::Bgr24 => packed(data, w, h, stride, true, &mut out),
        PixelFormat::Mjpeg => unreachable!("min_len is None for MJPEG"),
    }
    Ok(RgbImage {
        width: layout.width,
        height: layout.height,
        data: out,
    })
}

/// BT.601 limited-range Y'CbCr → R'G'B', in 8.8 fixed point (the usual integer form of
/// R = 1.164 (Y−16) + 1.596 (V−128), G = 1.164 (Y−16) − 0.392 (U−128) − 0.813 (V−128),
/// B = 1.164 (Y−16) + 2.017 (U−128)); within ±1 of the real-valued formula.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16) + 128;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clip = |x: i32| (x >> 8).clamp(0, 255) as u8;
    [
        clip(c + 409 * e),
        clip(c - 100 * d - 208 * e),
        clip(c + 516 * d),
    ]
}

fn yuyv(data: &[u8], w: usize, h: usize, stride: usize, out: &mut [u8]) {
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
        let src = &data[row * stride..row * stride + w.div_ceil(2) * 4];
        for (x, px) in dst.chunks_exact_mut(3).enumerate() {
            let pair = &src[(x / 2) * 4..(x / 2) * 4 + 4];
            let y = pair[(x % 2) * 2];
            px.copy_from_slice(&yuv_to_rgb(y, pair[1], pair[3]));
        }
    }
}

fn nv12(data: &[u8], w: usize, h: usize, stride: usize, out: &mut [u8]) {
    let uv_plane = &data[stride * h..];
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
        let ys = &data[row * stride..row * stride + w];
        let uv = &uv_plane[(row / 2) * stride..(row / 2) * stride + w.div_ceil(2) * 2];
        for (x, px) in dst.chunks_exact_mut(3).enumerate() {
            let c = (x / 2) * 2;
            px.copy_from_slice(&yuv_to_rgb(ys[x], uv[c], uv[c + 1]));
        }
    }
}

fn packed(data: &[u8], w: usize, h: usize, stride: usize, bgr: bool, out: &mut [u8]) {
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
        let src = &data[row * stride..row * stride + w * 3];
        if bgr {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                d.copy_from_slice(&[s[2], s[1], s[0]]);
            }
        } else {
            dst.copy_from_slice(src);
        }
    }
}

fn mjpeg_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, ConvertError> {
    let err = |detail: String| ConvertError::Jpeg {
        width,
        height,
        detail,
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(data), image::ImageFormat::Jpeg);
    // A garbage header must not make the decoder allocate for a huge image.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(
        (u64::from(width) * u64::from(height))
            .saturating_mul(4)
            .max(1 << 20),
    );
    reader.limits(limits);
    let img = reader.decode().map_err(|e| err(e.to_string()))?.into_rgb8();
    if img.dimensions() != (width, height) {
        return Err(err(format!("it is {}x{}", img.width(), img.height())));
    }
    Ok(img.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn yuyv_frame(w: usize, h: usize, yuv: [u8; 3]) -> Vec<u8> {
        let [y, u, v] = yuv;
        [y, u, y, v].repeat(w / 2 * h)
    }

    fn nv12_frame(w: usize, h: usize, yuv: [u8; 3]) -> Vec<u8> {
        let [y, u, v] = yuv;
        let mut d = vec![y; w * h];
        d.extend([u, v].repeat(w / 2 * h / 2));
        d
    }

    /// BT.601 limited-range codes of pure colours and the RGB they must give.
    const KNOWN: [([u8; 3], [u8; 3]); 6] = [
        ([16, 128, 128], [0, 0, 0]),
        ([235, 128, 128], [255, 255, 255]),
        ([126, 128, 128], [128, 128, 128]),
        ([81, 90, 240], [255, 0, 0]),
        ([41, 240, 110], [0, 0, 255]),
        // Rounded codes of pure green land one step off in blue.
        ([145, 54, 34], [0, 255, 1]),
    ];

    #[test]
    fn pure_colours_through_yuyv_and_nv12() {
        for (yuv, rgb) in KNOWN {
            let a = to_rgb(
                &Layout::packed(PixelFormat::Yuyv, 4, 2),
                &yuyv_frame(4, 2, yuv),
            )
            .unwrap();
            let b = to_rgb(
                &Layout::packed(PixelFormat::Nv12, 4, 2),
                &nv12_frame(4, 2, yuv),
            )
            .unwrap();
            for img in [a, b] {
                assert_eq!(img.data.len(), 4 * 2 * 3);
                for px in img.data.chunks(3) {
                    assert_eq!(px, rgb, "yuv {yuv:?}");
                }
            }
        }
    }

    #[test]
    fn yuyv_uses_each_pixels_own_luma() {
        let data = [16, 128, 235, 128];
        let img = to_rgb(&Layout::packed(PixelFormat::Yuyv, 2, 1), &data).unwrap();
        assert_eq!(img.data, [0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn nv12_chroma_is_shared_by_2x2_blocks() {
        // 4x2 frame: left block red, right block blue (same luma per block).
        let mut d = vec![81, 81, 41, 41, 81, 81, 41, 41];
        d.extend([90, 240, 240, 110]);
        let img = to_rgb(&Layout::packed(PixelFormat::Nv12, 4, 2), &d).unwrap();
        assert_eq!(img.pixel(1, 1), [255, 0, 0]);
        assert_eq!(img.pixel(2, 0), [0, 0, 255]);
    }

    #[test]
    fn bgr_is_swapped_and_stride_padding_skipped() {
        // 2x2 BGR with 2 bytes of padding per row.
        let d = [1, 2, 3, 4, 5, 6, 0xEE, 0xEE, 7, 8, 9, 10, 11, 12];
        let layout = Layout {
            format: PixelFormat::Bgr24,
            width: 2,
            height: 2,
            stride: 8,
        };
        let img = to_rgb(&layout, &d).unwrap();
        assert_eq!(img.data, [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
        let rgb = to_rgb(
            &Layout {
                format: PixelFormat::Rgb24,
                ..layout
            },
            &d,
        )
        .unwrap();
        assert_eq!(rgb.data, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn odd_sizes_are_handled() {
        // 3x3 YUYV: rows of 2 pairs (8 bytes); NV12 3x3: Y 3 rows of stride 4, UV 2 rows.
        let y = to_rgb(
            &Layout::packed(PixelFormat::Yuyv, 3, 3),
            &[235, 128, 235, 128].repeat(6),
        )
        .unwrap();
        assert_eq!(y.data, vec![255; 27]);
        let layout = Layout {
            format: PixelFormat::Nv12,
            width: 3,
            height: 3,
            stride: 4,
        };
        assert_eq!(layout.min_len().unwrap(), Some(4 * 3 + 4 + 4));
        let n = to_rgb(
            &layout,
            &[16u8; 12]
                .iter()
                .chain(&[128; 8])
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(n.data, vec![0; 27]);
        // Packed NV12 needs an even stride when the width is odd.
        assert!(matches!(
            Layout::packed(PixelFormat::Nv12, 3, 3).min_len(),
            Ok(Some(_))
        ));
        assert!(matches!(
            Layout {
                stride: 3,
                ..layout
            }
            .min_len(),
            Err(ConvertError::Stride { min: 4, .. })
        ));
    }

    #[test]
    fn short_buffers_are_refused_with_sizes() {
        let e = to_rgb(&Layout::packed(PixelFormat::Yuyv, 4, 2), &[0; 15]).unwrap_err();
        assert_eq!(
            e,
            ConvertError::Short {
                format: PixelFormat::Yuyv,
                width: 4,
                height: 2,
                stride: 8,
                expected: 16,
                got: 15
            }
        );
        assert!(e.to_string().contains("needs 16 bytes"), "{e}");
        let e = to_rgb(&Layout::packed(PixelFormat::Nv12, 4, 2), &[0; 11]).unwrap_err();
        assert!(matches!(e, ConvertError::Short { expected: 12, .. }));
        assert!(matches!(
            to_rgb(&Layout::packed(PixelFormat::Rgb24, 0, 2), &[]),
            Err(ConvertError::Empty { .. })
        ));
    }

    #[test]
    fn mjpeg_decodes_a_real_jpeg_and_checks_its_size() {
        let src = image::RgbImage::from_fn(32, 16, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 16) as u8, 128])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&src)
            .unwrap();
        let img = to_rgb(&Layout::packed(PixelFormat::Mjpeg, 32, 16), &jpeg).unwrap();
        assert_eq!((img.width, img.height), (32, 16));
        let err: i32 = img
            .data
            .iter()
            .zip(src.as_raw())
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max()
            .unwrap();
        assert!(err < 24, "max error {err}");
        assert!(matches!(
            to_rgb(&Layout::packed(PixelFormat::Mjpeg, 16, 16), &jpeg),
            Err(ConvertError::Jpeg { .. })
        ));
        assert!(matches!(
            to_rgb(
                &Layout::packed(PixelFormat::Mjpeg, 32, 16),
                &jpeg[..jpeg.len() / 3]
            ),
            Err(ConvertError::Jpeg { .. })
        ));
    }

    #[test]
    fn format_names() {
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_fourcc(f.fourcc()), Some(f));
            assert_eq!(f.to_string().parse::<PixelFormat>(), Ok(f));
        }
        assert_eq!("yuy2".parse(), Ok(PixelFormat::Yuyv));
        assert_eq!("MJPEG".parse(), Ok(PixelFormat::Mjpeg));
        assert_eq!(PixelFormat::from_fourcc(*b"YUY2"), Some(PixelFormat::Yuyv));
        let e = "H264".parse::<PixelFormat>().unwrap_err();
        assert!(e.to_string().contains("H264") && e.to_string().contains("NV12"));
    }

    proptest! {
        #[test]
        fn fixed_point_matches_the_bt601_formula(y in any::<u8>(), u in any::<u8>(), v in any::<u8>()) {
            let (c, d, e) = (f64::from(y) - 16.0, f64::from(u) - 128.0, f64::from(v) - 128.0);
            let r = 1.164 * c + 1.596 * e;
            let g = 1.164 * c - 0.392 * d - 0.813 * e;
            let b = 1.164 * c + 2.017 * d;
            let got = yuv_to_rgb(y, u, v);
            for (k, want) in [r, g, b].into_iter().enumerate() {
                let want = want.round().clamp(0.0, 255.0);
                prop_assert!((f64::from(got[k]) - want).abs() <= 1.0, "{:?} vs {}", got, want);
            }
        }

        #[test]
        fn no_panic_on_arbitrary_bytes(
            fmt in 0usize..5,
            w in 0u32..40,
            h in 0u32..40,
            stride in 0usize..200,
            data in proptest::collection::vec(any::<u8>(), 0..4000),
        ) {
            let layout = Layout { format: PixelFormat::ALL[fmt], width: w, height: h, stride };
            if let Ok(img) = to_rgb(&layout, &data) {
                prop_assert_eq!(img.data.len(), w as usize * h as usize * 3);
                let need = layout.min_len().unwrap();
                prop_assert!(need.is_none_or(|n| data.len() >= n));
            }
        }

        #[test]
        fn exact_length_passes_one_byte_less_fails(
            fmt in 0usize..4,
            w in 1u32..30,
            h in 1u32..30,
            pad in 0usize..8,
        ) {
            let format = PixelFormat::ALL[fmt];
            let layout = Layout { format, width: w, height: h, stride: format.min_stride(w) + pad };
            let need = layout.min_len().unwrap().unwrap();
            prop_assert!(to_rgb(&layout, &vec![7; need]).is_ok());
            let short = to_rgb(&layout, &vec![7; need - 1]);
            let is_short = matches!(short, Err(ConvertError::Short { .. }));
            prop_assert!(is_short);
        }

        #[test]
        fn huge_geometry_is_refused_without_allocating(w in 1u32.., h in 1u32..) {
            for format in PixelFormat::ALL {
                let r = to_rgb(&Layout::packed(format, w, h), &[0xFF, 0xD8, 0xFF, 0, 1, 2, 3]);
                if w as u64 * h as u64 > 3 {
                    prop_assert!(r.is_err());
                }
            }
        }
    }
}
