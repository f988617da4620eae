//! Small numeric helpers: seed mixing, lattice value noise, smoothstep, float images.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a good 64-bit mixer for deriving independent sub-seeds.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives a seed from a root seed and a path of integers (domain, subject, ...).
pub fn derive(seed: u64, path: &[u64]) -> u64 {
    path.iter().fold(mix64(seed), |acc, &p| {
        mix64(acc ^ mix64(p.wrapping_add(0x5851_F42D)))
    })
}

pub fn rng(seed: u64, path: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(seed, path))
}

/// Uniform in `[lo, hi)` (or `lo` when the range is empty).
pub fn uni(r: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        lo
    } else {
        r.random_range(lo..hi)
    }
}

/// Approximately standard normal (sum of uniforms; cheap and deterministic).
pub fn gauss(r: &mut ChaCha8Rng) -> f32 {
    let s: f32 = (0..6).map(|_| r.random::<f32>()).sum();
    (s - 3.0) * std::f32::consts::SQRT_2
}

pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

pub fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

pub fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        lerp(a[0], b[0], t),
        lerp(a[1], b[1], t),
        lerp(a[2], b[2], t),
    ]
}

fn hash2(x: i32, y: i32, seed: u32) -> f32 {
    let h = mix64(((x as u32 as u64) << 32 | y as u32 as u64) ^ ((seed as u64) << 17));
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Lattice value noise in `[0, 1]`, smooth (C1) interpolation.
pub fn vnoise(x: f32, y: f32, seed: u32) -> f32 {
    let xi = x.floor();
    let yi = y.floor();
    let (fx, fy) = (x - xi, y - yi);
    let (ix, iy) = (xi as i32, yi as i32);
    let sx = fx * fx * (3.0 - 2.0 * fx);
    let sy = fy * fy * (3.0 - 2.0 * fy);
    let a = hash2(ix, iy, seed);
    let b = hash2(ix + 1, iy, seed);
    let c = hash2(ix, iy + 1, seed);
    let d = hash2(ix + 1, iy + 1, seed);
    lerp(lerp(a, b, sx), lerp(c, d, sx), sy)
}

/// Fractal value noise (`octaves` octaves, gain 0.5), in `[0, 1]`.
pub fn fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * vnoise(x * f, y * f, seed.wrapping_add(o * 7919));
        norm += amp;
        amp *= 0.5;
        f *= 2.03;
    }
    sum / norm
}

/// A linear-light float RGB image, row-major.
#[derive(Clone)]
pub struct FImage {
    pub w: usize,
    pub h: usize,
    pub px: Vec<[f32; 3]>,
}

impl FImage {
    pub fn new(w: usize, h: usize) -> Self {
        FImage {
            w,
            h,
            px: vec![[0.0; 3]; w * h],
        }
    }

    /// Bilinear sample at continuous pixel coordinates (pixel centres at `i + 0.5`), clamped.
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let x = (x - 0.5).clamp(0.0, (self.w - 1) as f32);
        let y = (y - 0.5).clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let p = |xx: usize, yy: usize| self.px[yy * self.w + xx];
        let top = lerp3(p(x0, y0), p(x1, y0), fx);
        let bot = lerp3(p(x0, y1), p(x1, y1), fx);
        lerp3(top, bot, fy)
    }

    /// Separable Gaussian blur (no-op for tiny sigma).
    pub fn blur(&mut self, sigma: f32) {
        if sigma < 0.15 {
            return;
        }
        let r = (sigma * 3.0).ceil() as i32;
        let k: Vec<f32> = (-r..=r)
            .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
            .collect();
        let ks: f32 = k.iter().sum();
        let k: Vec<f32> = k.iter().map(|v| v / ks).collect();
        let (w, h) = (self.w as i32, self.h as i32);
        let mut tmp = vec![[0.0f32; 3]; self.px.len()];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0; 3];
                for (i, kv) in k.iter().enumerate() {
                    let xx = (x + i as i32 - r).clamp(0, w - 1);
                    let p = self.px[(y * w + xx) as usize];
                    for c in 0..3 {
                        acc[c] += kv * p[c];
                    }
                }
                tmp[(y * w + x) as usize] = acc;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0; 3];
                for (i, kv) in k.iter().enumerate() {
                    let yy = (y + i as i32 - r).clamp(0, h - 1);
                    let p = tmp[(yy * w + x) as usize];
                    for c in 0..3 {
                        acc[c] += kv * p[c];
                    }
                }
                self.px[(y * w + x) as usize] = acc;
            }
        }
    }

    /// Resamples to `w`×`h`: box-filtered when shrinking, bilinear when enlarging.
    pub fn resize(&self, w: usize, h: usize) -> FImage {
        let mut out = FImage::new(w, h);
        let sx = self.w as f32 / w as f32;
        let sy = self.h as f32 / h as f32;
        let n = (sx.max(sy).ceil() as i32).max(1);
        for y in 0..h {
            for x in 0..w {
                let cx = (x as f32 + 0.5) * sx;
                let cy = (y as f32 + 0.5) * sy;
                out.px[y * w + x] = if n <= 1 {
                    self.sample(cx, cy)
                } else {
                    let mut acc = [0.0; 3];
                    for j in 0..n {
                        for i in 0..n {
                            let p = self.sample(
                                cx + ((i as f32 + 0.5) / n as f32 - 0.5) * sx,
                                cy + ((j as f32 + 0.5) / n as f32 - 0.5) * sy,
                            );
                            for c in 0..3 {
                                acc[c] += p[c];
                            }
                        }
                    }
                    let d = (n * n) as f32;
                    [acc[0] / d, acc[1] / d, acc[2] / d]
                };
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_are_distinct_and_stable() {
        assert_eq!(derive(1, &[2, 3]), derive(1, &[2, 3]));
        assert_ne!(derive(1, &[2, 3]), derive(1, &[3, 2]));
        assert_ne!(derive(1, &[2, 3]), derive(2, &[2, 3]));
        let mut a = rng(5, &[1]);
        let mut b = rng(5, &[1]);
        assert_eq!(uni(&mut a, 0.0, 1.0), uni(&mut b, 0.0, 1.0));
    }

    #[test]
    fn noise_is_bounded_and_smooth() {
        for i in 0..500 {
            let (x, y) = (i as f32 * 0.37, i as f32 * 0.11);
            let v = fbm(x, y, 3, 4);
            assert!((0.0..=1.0).contains(&v));
            assert!((vnoise(x, y, 9) - vnoise(x + 1e-3, y, 9)).abs() < 0.01);
        }
    }

    #[test]
    fn blur_and_resize_preserve_flat_images() {
        let mut img = FImage::new(20, 12);
        img.px.iter_mut().for_each(|p| *p = [0.25, 0.5, 0.75]);
        img.blur(1.5);
        let small = img.resize(7, 5);
        let big = small.resize(33, 21);
        for p in big.px.iter().chain(img.px.iter()) {
            assert!(
                (p[0] - 0.25).abs() < 1e-4
                    && (p[1] - 0.5).abs() < 1e-4
                    && (p[2] - 0.75).abs() < 1e-4
            );
        }
    }
}
