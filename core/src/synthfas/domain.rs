//! Capture domains: each one a *distribution* over illumination, camera and attack styles.

use super::util::{gauss, lerp, uni, FImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Background of the scene (the room the capture happens in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// Plain wall with vignetting.
    Flat,
    /// Vertical two-colour gradient.
    Gradient,
    /// Shelves, windows and posters (axis-aligned blocks).
    Office,
    /// Outdoor foliage and sky (fractal noise).
    Foliage,
}

/// Print attack style.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrintStyle {
    /// Halftone cell size in source pixels.
    pub halftone_pitch: (f32, f32),
    /// 0 = continuous tone, 1 = pure halftone.
    pub halftone_strength: (f32, f32),
    /// Saturation kept by the printer gamut (1 = all).
    pub saturation: (f32, f32),
    /// Paper white / ink black levels.
    pub black: f32,
    pub white: f32,
    pub paper_texture: f32,
    pub sheen: (f32, f32),
    /// Print field size relative to the canvas (> ~1.5 hides the paper edge).
    pub field: (f32, f32),
}

/// Screen replay attack style.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayStyle {
    /// Screen pixel pitch in camera pixels (≈ 1 gives strong moiré).
    pub pixel_pitch: (f32, f32),
    pub grid_strength: (f32, f32),
    /// Display gamma applied on top of the content.
    pub gamma: (f32, f32),
    /// Display white point (multiplier).
    pub white_point: [f32; 3],
    pub brightness: (f32, f32),
    pub glare: (f32, f32),
    /// Screen field size relative to the canvas (< ~1.4 shows the bezel).
    pub field: (f32, f32),
}

/// 3D mask attack style.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaskStyle {
    /// Skin texture kept by the mask (1 = like skin).
    pub texture: (f32, f32),
    pub spec: (f32, f32),
    pub shininess: (f32, f32),
    pub tint: [f32; 3],
    pub tint_mix: (f32, f32),
    pub eye_hole: (f32, f32),
}

/// Label-correlated capture bias inside one domain (a *spurious* cue: it differs between
/// domains, so a model that learns it fails on a held-out domain).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoofBias {
    pub exposure_mul: f32,
    /// Added to the colour temperature (+ = warmer).
    pub warmth: f32,
    pub blur_add: f32,
    pub noise_mul: f32,
}

/// A capture domain (one "dataset").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainSpec {
    pub name: String,
    pub device: String,
    pub exposure: (f32, f32),
    /// Colour temperature of the light: -1 = cool/blue, +1 = warm/tungsten.
    pub warmth: (f32, f32),
    /// Fraction of the cast removed by auto white balance.
    pub awb: f32,
    /// Random per-channel white-balance error (std).
    pub wb_error: f32,
    /// Light elevation spread (0 = frontal) and ambient.
    pub light_spread: f32,
    pub ambient: (f32, f32),
    pub noise: (f32, f32),
    pub blur: (f32, f32),
    /// JPEG quality at capture (100 = no compression).
    pub jpeg_quality: (u8, u8),
    /// Sensor resolution relative to the output (1 = native).
    pub resolution: (f32, f32),
    pub background: Background,
    pub print: PrintStyle,
    pub replay: ReplayStyle,
    pub mask: MaskStyle,
    pub spoof_bias: SpoofBias,
}

impl DomainSpec {
    /// The four default domains, designed to differ clearly (see the module docs).
    pub fn defaults() -> Vec<DomainSpec> {
        vec![
            DomainSpec {
                name: "synth-a".into(),
                device: "phone-indoor".into(),
                exposure: (0.85, 1.05),
                warmth: (0.5, 0.9),
                awb: 0.4,
                wb_error: 0.03,
                light_spread: 0.5,
                ambient: (0.25, 0.35),
                noise: (0.01, 0.02),
                blur: (0.4, 0.7),
                jpeg_quality: (75, 90),
                resolution: (0.8, 1.0),
                background: Background::Gradient,
                print: PrintStyle {
                    halftone_pitch: (3.0, 3.8),
                    halftone_strength: (0.5, 0.7),
                    saturation: (0.55, 0.7),
                    black: 0.08,
                    white: 0.85,
                    paper_texture: 0.06,
                    sheen: (0.1, 0.25),
                    field: (1.2, 1.4),
                },
                replay: ReplayStyle {
                    pixel_pitch: (0.9, 1.2),
                    grid_strength: (0.3, 0.45),
                    gamma: (1.15, 1.35),
                    white_point: [0.9, 0.97, 1.12],
                    brightness: (0.8, 0.95),
                    glare: (0.15, 0.3),
                    field: (1.0, 1.2),
                },
                mask: MaskStyle {
                    texture: (0.0, 0.15),
                    spec: (0.35, 0.5),
                    shininess: (30.0, 45.0),
                    tint: [0.85, 0.72, 0.55],
                    tint_mix: (0.3, 0.45),
                    eye_hole: (0.8, 1.0),
                },
                spoof_bias: SpoofBias {
                    exposure_mul: 0.8,
                    warmth: 0.0,
                    blur_add: 0.0,
                    noise_mul: 1.0,
                },
            },
            DomainSpec {
                name: "synth-b".into(),
                device: "webcam-office".into(),
                exposure: (0.75, 0.95),
                warmth: (-0.7, -0.3),
                awb: 0.3,
                wb_error: 0.05,
                light_spread: 0.3,
                ambient: (0.4, 0.5),
                noise: (0.025, 0.04),
                blur: (0.8, 1.2),
                jpeg_quality: (50, 65),
                resolution: (0.5, 0.65),
                background: Background::Office,
                print: PrintStyle {
                    halftone_pitch: (2.0, 2.6),
                    halftone_strength: (0.3, 0.5),
                    saturation: (0.6, 0.8),
                    black: 0.06,
                    white: 0.88,
                    paper_texture: 0.05,
                    sheen: (0.05, 0.15),
                    field: (1.6, 1.9),
                },
                replay: ReplayStyle {
                    pixel_pitch: (0.55, 0.8),
                    grid_strength: (0.3, 0.45),
                    gamma: (0.8, 0.95),
                    white_point: [0.95, 1.0, 1.05],
                    brightness: (0.9, 1.05),
                    glare: (0.3, 0.5),
                    field: (1.6, 1.9),
                },
                mask: MaskStyle {
                    texture: (0.2, 0.35),
                    spec: (0.2, 0.3),
                    shininess: (20.0, 30.0),
                    tint: [0.9, 0.8, 0.7],
                    tint_mix: (0.15, 0.3),
                    eye_hole: (0.6, 0.8),
                },
                spoof_bias: SpoofBias {
                    exposure_mul: 1.0,
                    warmth: 0.35,
                    blur_add: 0.0,
                    noise_mul: 1.0,
                },
            },
            DomainSpec {
                name: "synth-c".into(),
                device: "dslr-studio".into(),
                exposure: (1.0, 1.15),
                warmth: (-0.1, 0.1),
                awb: 0.9,
                wb_error: 0.01,
                light_spread: 0.7,
                ambient: (0.2, 0.3),
                noise: (0.003, 0.008),
                blur: (0.0, 0.3),
                jpeg_quality: (92, 98),
                resolution: (1.0, 1.0),
                background: Background::Flat,
                print: PrintStyle {
                    halftone_pitch: (1.4, 1.8),
                    halftone_strength: (0.05, 0.12),
                    saturation: (0.85, 0.95),
                    black: 0.03,
                    white: 0.93,
                    paper_texture: 0.02,
                    sheen: (0.02, 0.08),
                    field: (1.6, 1.9),
                },
                replay: ReplayStyle {
                    pixel_pitch: (0.3, 0.45),
                    grid_strength: (0.1, 0.2),
                    gamma: (0.95, 1.1),
                    white_point: [0.97, 1.0, 1.03],
                    brightness: (0.95, 1.05),
                    glare: (0.05, 0.15),
                    field: (1.6, 1.9),
                },
                mask: MaskStyle {
                    texture: (0.5, 0.7),
                    spec: (0.15, 0.22),
                    shininess: (15.0, 22.0),
                    tint: [0.92, 0.75, 0.62],
                    tint_mix: (0.05, 0.15),
                    eye_hole: (0.4, 0.6),
                },
                spoof_bias: SpoofBias {
                    exposure_mul: 1.12,
                    warmth: -0.15,
                    blur_add: 0.0,
                    noise_mul: 1.0,
                },
            },
            DomainSpec {
                name: "synth-d".into(),
                device: "outdoor-daylight".into(),
                exposure: (1.05, 1.3),
                warmth: (-0.2, 0.2),
                awb: 0.6,
                wb_error: 0.03,
                light_spread: 1.0,
                ambient: (0.12, 0.2),
                noise: (0.01, 0.02),
                blur: (0.3, 0.6),
                jpeg_quality: (70, 85),
                resolution: (0.7, 0.9),
                background: Background::Foliage,
                print: PrintStyle {
                    halftone_pitch: (2.2, 3.0),
                    halftone_strength: (0.2, 0.35),
                    saturation: (0.65, 0.8),
                    black: 0.05,
                    white: 0.9,
                    paper_texture: 0.04,
                    sheen: (0.3, 0.5),
                    field: (0.95, 1.15),
                },
                replay: ReplayStyle {
                    pixel_pitch: (0.7, 0.95),
                    grid_strength: (0.25, 0.4),
                    gamma: (1.0, 1.2),
                    white_point: [0.92, 0.98, 1.1],
                    brightness: (0.6, 0.8),
                    glare: (0.4, 0.7),
                    field: (1.05, 1.25),
                },
                mask: MaskStyle {
                    texture: (0.1, 0.3),
                    spec: (0.25, 0.4),
                    shininess: (25.0, 40.0),
                    tint: [0.8, 0.68, 0.6],
                    tint_mix: (0.2, 0.35),
                    eye_hole: (0.7, 0.9),
                },
                spoof_bias: SpoofBias {
                    exposure_mul: 1.0,
                    warmth: -0.3,
                    blur_add: 0.5,
                    noise_mul: 1.3,
                },
            },
        ]
    }
}

/// Concrete capture settings for one video (sampled from a domain).
#[derive(Debug, Clone)]
pub struct Capture {
    pub exposure: f32,
    pub light_color: [f32; 3],
    pub wb: [f32; 3],
    pub light_dir: [f32; 3],
    pub ambient: f32,
    pub noise: f32,
    pub blur: f32,
    pub jpeg_quality: u8,
    pub resolution: f32,
    pub bg: [[f32; 3]; 3],
    pub bg_seed: u32,
}

/// Light colour for a warmth in `[-1, 1]`.
pub fn warmth_color(w: f32) -> [f32; 3] {
    if w >= 0.0 {
        [1.0, lerp(1.0, 0.8, w), lerp(1.0, 0.55, w)]
    } else {
        let w = -w;
        [lerp(1.0, 0.78, w), lerp(1.0, 0.9, w), 1.0]
    }
}

impl Capture {
    pub fn sample(d: &DomainSpec, r: &mut ChaCha8Rng, spoof: bool) -> Capture {
        let mut exposure = uni(r, d.exposure.0, d.exposure.1);
        let mut warmth = uni(r, d.warmth.0, d.warmth.1);
        let mut blur = uni(r, d.blur.0, d.blur.1);
        let mut noise = uni(r, d.noise.0, d.noise.1);
        if spoof {
            exposure *= d.spoof_bias.exposure_mul;
            warmth += d.spoof_bias.warmth;
            blur += d.spoof_bias.blur_add;
            noise *= d.spoof_bias.noise_mul;
        }
        let lc = warmth_color(warmth.clamp(-1.0, 1.0));
        let mut wb = [0.0; 3];
        for c in 0..3 {
            wb[c] = (1.0 / lc[c]).powf(d.awb) * (1.0 + d.wb_error * gauss(r));
        }
        let az = uni(r, -1.0, 1.0) * d.light_spread;
        let el = -0.3 - uni(r, 0.0, 0.5) * d.light_spread;
        let dir = super::face::norm3([az, el, 1.0]);
        let palette = |r: &mut ChaCha8Rng| -> [f32; 3] {
            let base = uni(r, 0.25, 0.75);
            [
                base * uni(r, 0.8, 1.2),
                base * uni(r, 0.8, 1.2),
                base * uni(r, 0.8, 1.2),
            ]
        };
        let bg = [palette(r), palette(r), palette(r)];
        Capture {
            exposure,
            light_color: lc,
            wb,
            light_dir: dir,
            ambient: uni(r, d.ambient.0, d.ambient.1),
            noise,
            blur,
            jpeg_quality: r.random_range(d.jpeg_quality.0..=d.jpeg_quality.1.max(d.jpeg_quality.0)),
            resolution: uni(r, d.resolution.0, d.resolution.1),
            bg,
            bg_seed: r.random(),
        }
    }
}

/// Background radiance (before lighting) at pixel `(x, y)` of a `w`×`h` canvas.
pub fn background(style: Background, cap: &Capture, x: f32, y: f32, w: f32, h: f32) -> [f32; 3] {
    use super::util::{fbm, lerp3};
    let (u, v) = (x / w, y / h);
    let s = w.max(h) / 128.0;
    match style {
        Background::Flat => {
            let d = ((u - 0.5).powi(2) + (v - 0.45).powi(2)).sqrt();
            let vig = 1.0 - 0.5 * d;
            super::face::scale3(cap.bg[0], vig)
        }
        Background::Gradient => lerp3(cap.bg[0], cap.bg[1], v),
        Background::Office => {
            // Blocks on a grid: a few shelves / windows, chosen by hash.
            let gx = (u * 5.0).floor();
            let gy = (v * 4.0).floor();
            let hsh = super::util::vnoise(gx * 1.7 + 0.5, gy * 2.3 + 0.5, cap.bg_seed);
            let fx = (u * 5.0).fract();
            let fy = (v * 4.0).fract();
            let frame = ((fx < 0.06) || (fy < 0.08)) as u8 as f32;
            let block = if hsh > 0.7 {
                [1.1, 1.1, 1.15] // window
            } else if hsh > 0.45 {
                cap.bg[2]
            } else {
                cap.bg[0]
            };
            lerp3(block, super::face::scale3(cap.bg[1], 0.5), frame * 0.8)
        }
        Background::Foliage => {
            let n = fbm(x / (9.0 * s), y / (9.0 * s), cap.bg_seed, 4);
            let sky = super::util::smoothstep(0.62, 0.7, n) * (1.0 - v);
            let leaf = lerp3([0.08, 0.2, 0.05], [0.35, 0.5, 0.15], n);
            lerp3(leaf, [0.9, 0.95, 1.1], sky)
        }
    }
}

/// Camera pipeline: exposure + white balance → optics blur → sensor resolution →
/// sensor noise → tone curve → JPEG. Returns an 8-bit image of the input size.
pub fn capture(img: &FImage, cap: &Capture, r: &mut ChaCha8Rng) -> image::RgbImage {
    let mut f = img.clone();
    for p in f.px.iter_mut() {
        for c in 0..3 {
            p[c] *= cap.exposure * cap.wb[c];
        }
    }
    f.blur(cap.blur);
    let (w, h) = (f.w, f.h);
    let sw = ((w as f32 * cap.resolution).round() as usize).max(16);
    let sh = ((h as f32 * cap.resolution).round() as usize).max(16);
    let mut s = if sw != w || sh != h {
        f.resize(sw, sh)
    } else {
        f
    };
    for p in s.px.iter_mut() {
        let shot = (p[0] + p[1] + p[2]).max(0.0) / 3.0;
        let sd = cap.noise * (0.5 + shot.sqrt());
        let luma_n = gauss(r) * sd * 0.6;
        for c in 0..3 {
            p[c] += luma_n + gauss(r) * sd * 0.5;
        }
    }
    let s = if sw != w || sh != h {
        s.resize(w, h)
    } else {
        s
    };
    let mut out = image::RgbImage::new(w as u32, h as u32);
    for (i, px) in out.pixels_mut().enumerate() {
        let p = s.px[i];
        for c in 0..3 {
            // Filmic-ish: gamma 1/2.2 with a soft shoulder.
            let v = p[c].max(0.0);
            let v = v / (1.0 + 0.25 * v);
            px.0[c] = (v.powf(1.0 / 2.2) * 1.12 * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    if cap.jpeg_quality < 100 {
        let mut buf = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, cap.jpeg_quality);
        if out.write_with_encoder(enc).is_ok() {
            if let Ok(dec) = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
                return dec.to_rgb8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::util::rng;
    use super::*;

    #[test]
    fn default_domains_are_four_and_distinct() {
        let d = DomainSpec::defaults();
        assert_eq!(d.len(), 4);
        let names: std::collections::HashSet<_> = d.iter().map(|d| d.name.clone()).collect();
        assert_eq!(names.len(), 4);
        let bgs: std::collections::HashSet<_> =
            d.iter().map(|d| format!("{:?}", d.background)).collect();
        assert_eq!(bgs.len(), 4);
        // Serialisable (configs can be stored next to a dataset).
        let js = serde_json::to_string(&d).unwrap();
        let back: Vec<DomainSpec> = serde_json::from_str(&js).unwrap();
        assert_eq!(back[2].name, "synth-c");
    }

    #[test]
    fn spoof_bias_shifts_capture() {
        let d = &DomainSpec::defaults()[0];
        let live = Capture::sample(d, &mut rng(3, &[0]), false);
        let spoof = Capture::sample(d, &mut rng(3, &[0]), true);
        assert!((spoof.exposure / live.exposure - d.spoof_bias.exposure_mul).abs() < 1e-5);
    }

    #[test]
    fn capture_keeps_size_and_is_deterministic() {
        let mut img = FImage::new(40, 30);
        for (i, p) in img.px.iter_mut().enumerate() {
            *p = [(i % 40) as f32 / 40.0, 0.4, 0.2];
        }
        for d in DomainSpec::defaults() {
            let cap = Capture::sample(&d, &mut rng(1, &[2]), false);
            let a = capture(&img, &cap, &mut rng(1, &[3]));
            let b = capture(&img, &cap, &mut rng(1, &[3]));
            assert_eq!((a.width(), a.height()), (40, 30));
            assert_eq!(a.as_raw(), b.as_raw());
        }
    }
}
