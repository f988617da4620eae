//! Scene composition: live faces, masks, and planar print / screen-replay attacks,
//! with per-video motion.

use super::domain::{background, Capture, DomainSpec};
use super::face::{
    annotate, from_pixel, norm3, scale3, shade_head, Expression, Identity, Light, Material,
    Placement,
};
use super::util::{fbm, lerp, lerp3, rng, smoothstep, uni, vnoise, FImage};
use super::Presentation;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::{PI, TAU};

/// Where the face goes in the canvas (before motion).
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub w: usize,
    pub h: usize,
    pub cx: f32,
    pub cy: f32,
    /// Pixels per face half-height.
    pub scale: f32,
}

/// Smooth per-video motion and expression.
#[derive(Debug, Clone)]
pub struct Motion {
    yaw0: f32,
    roll0: f32,
    tx0: f32,
    ty0: f32,
    s0: f32,
    yaw_a: f32,
    roll_a: f32,
    tx_a: f32,
    ty_a: f32,
    s_a: f32,
    omega: f32,
    ph: [f32; 4],
    blink_at: Option<f32>,
    smile0: f32,
    smile_a: f32,
    talk: f32,
}

impl Motion {
    pub fn sample(r: &mut ChaCha8Rng, frames: u32) -> Motion {
        let frames = frames.max(1) as f32;
        Motion {
            yaw0: uni(r, -0.2, 0.2),
            roll0: uni(r, -0.1, 0.1),
            tx0: uni(r, -0.08, 0.08),
            ty0: uni(r, -0.06, 0.06),
            s0: uni(r, 0.92, 1.08),
            yaw_a: uni(r, 0.03, 0.12),
            roll_a: uni(r, 0.01, 0.04),
            tx_a: uni(r, 0.02, 0.06),
            ty_a: uni(r, 0.01, 0.04),
            s_a: uni(r, 0.0, 0.03),
            omega: TAU / uni(r, frames * 0.9, frames * 2.5),
            ph: [
                uni(r, 0.0, TAU),
                uni(r, 0.0, TAU),
                uni(r, 0.0, TAU),
                uni(r, 0.0, TAU),
            ],
            blink_at: (r.random::<f32>() < 0.8).then(|| uni(r, 0.0, frames)),
            smile0: uni(r, 0.0, 0.5),
            smile_a: uni(r, 0.0, 0.3),
            talk: if r.random::<f32>() < 0.4 {
                uni(r, 0.2, 0.6)
            } else {
                0.0
            },
        }
    }

    /// Placement at time `t` (in frames). `planar` = no yaw (print / replay).
    pub fn placement(&self, f: &Frame, t: f32, planar: bool) -> Placement {
        let w = self.omega * t;
        let scale = f.scale * self.s0 * (1.0 + self.s_a * (w + self.ph[3]).sin());
        Placement {
            cx: f.cx + f.scale * (self.tx0 + self.tx_a * (w + self.ph[0]).sin()),
            cy: f.cy + f.scale * (self.ty0 + self.ty_a * (w * 1.3 + self.ph[1]).sin()),
            scale,
            roll: self.roll0 + self.roll_a * (w * 0.8 + self.ph[2]).sin(),
            yaw: if planar {
                0.0
            } else {
                self.yaw0 + self.yaw_a * (w + self.ph[3]).sin()
            },
        }
    }

    pub fn expression(&self, t: f32, live: bool) -> Expression {
        if !live {
            return Expression {
                eye_open: 1.0,
                smile: self.smile0,
                mouth_open: 0.0,
            };
        }
        let eye_open = match self.blink_at {
            Some(b) => smoothstep(0.0, 1.6, (t - b).abs()).max(0.02),
            None => 1.0,
        };
        let w = self.omega * t;
        Expression {
            eye_open,
            smile: (self.smile0 + self.smile_a * (w * 0.7 + self.ph[1]).sin()).clamp(0.0, 1.0),
            mouth_open: (self.talk * (t * 1.9 + self.ph[2]).sin()).max(0.0),
        }
    }
}

/// Everything rendered for one frame, before the camera.
pub struct SceneOut {
    pub radiance: FImage,
    /// Face height per pixel (live only), in face units.
    pub depth: Option<Vec<f32>>,
    pub bbox: [f32; 4],
    pub landmarks: [[f32; 2]; 5],
}

fn scene_light(cap: &Capture) -> Light {
    Light {
        dir: cap.light_dir,
        color: cap.light_color,
        ambient: cap.ambient,
        intensity: 1.0 - cap.ambient * 0.5,
    }
}

fn bg_lit(d: &DomainSpec, cap: &Capture, x: f32, y: f32, f: &Frame) -> [f32; 3] {
    let b = background(d.background, cap, x, y, f.w as f32, f.h as f32);
    let l = cap.ambient + 0.55;
    [
        b[0] * l * cap.light_color[0],
        b[1] * l * cap.light_color[1],
        b[2] * l * cap.light_color[2],
    ]
}

/// Renders a head (live or mask) with the given material into a canvas.
#[allow(clippy::too_many_arguments)]
fn render_head(
    id: &Identity,
    f: &Frame,
    pl: &Placement,
    expr: &Expression,
    light: &Light,
    mat: &Material,
    bg: &dyn Fn(f32, f32) -> [f32; 3],
) -> (FImage, Vec<f32>) {
    let mut img = FImage::new(f.w, f.h);
    let mut depth = vec![0.0f32; f.w * f.h];
    let aa = 1.0 / pl.scale;
    for y in 0..f.h {
        for x in 0..f.w {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let (hx, hy) = from_pixel(pl, px, py);
            let b = bg(px, py);
            let i = y * f.w + x;
            if hx.abs() > 2.5 || hy < -1.6 {
                img.px[i] = b;
                continue;
            }
            let hs = shade_head(id, hx, hy, pl.yaw, expr, light, mat, aa);
            img.px[i] = [
                b[0] * (1.0 - hs.alpha) + hs.rgb[0],
                b[1] * (1.0 - hs.alpha) + hs.rgb[1],
                b[2] * (1.0 - hs.alpha) + hs.rgb[2],
            ];
            depth[i] = hs.depth;
        }
    }
    (img, depth)
}

/// The attacker's source photo of the subject (content in display units `[0, 1]`).
fn source_photo(
    id: &Identity,
    r: &mut ChaCha8Rng,
    size: usize,
    face_scale: f32,
) -> (FImage, [[f32; 2]; 5], [f32; 4]) {
    let f = Frame {
        w: size,
        h: size,
        cx: size as f32 * 0.5,
        cy: size as f32 * 0.5,
        scale: face_scale,
    };
    let pl = Placement {
        cx: f.cx + uni(r, -0.03, 0.03) * face_scale,
        cy: f.cy + uni(r, -0.03, 0.03) * face_scale,
        scale: face_scale,
        roll: uni(r, -0.04, 0.04),
        yaw: uni(r, -0.1, 0.1),
    };
    let light = Light {
        dir: norm3([uni(r, -0.3, 0.3), -0.35, 1.0]),
        color: super::domain::warmth_color(uni(r, -0.2, 0.2)),
        ambient: 0.35,
        intensity: 0.8,
    };
    let expr = Expression {
        eye_open: 1.0,
        smile: uni(r, 0.0, 0.6),
        mouth_open: 0.0,
    };
    let bgc = [uni(r, 0.3, 0.8), uni(r, 0.3, 0.8), uni(r, 0.3, 0.8)];
    let bgc2 = scale3(bgc, uni(r, 0.6, 1.0));
    let hh = size as f32;
    let bg = move |_x: f32, y: f32| lerp3(bgc, bgc2, y / hh);
    let (mut img, _) = render_head(id, &f, &pl, &expr, &light, &Material::SKIN, &bg);
    img.blur(0.5);
    for p in img.px.iter_mut() {
        for c in 0..3 {
            let v = p[c].max(0.0);
            p[c] = (v / (1.0 + 0.2 * v)).powf(1.0 / 2.2).min(1.0);
        }
    }
    let (bb, lm) = annotate(id, &pl, &expr);
    (img, lm, bb)
}

/// Planar sheet (print or screen) pose: affine map sheet ↔ scene.
struct Sheet {
    cx: f32,
    cy: f32,
    cos: f32,
    sin: f32,
    kx: f32,
    ky: f32,
    half: f32,
}

impl Sheet {
    fn to_sheet(&self, px: f32, py: f32) -> (f32, f32) {
        let dx = px - self.cx;
        let dy = py - self.cy;
        let rx = dx * self.cos + dy * self.sin;
        let ry = -dx * self.sin + dy * self.cos;
        (rx / self.kx + self.half, ry / self.ky + self.half)
    }
    fn to_scene(&self, qx: f32, qy: f32) -> (f32, f32) {
        let x = (qx - self.half) * self.kx;
        let y = (qy - self.half) * self.ky;
        (
            self.cx + x * self.cos - y * self.sin,
            self.cy + x * self.sin + y * self.cos,
        )
    }
}

/// Renders one frame of one video.
#[allow(clippy::too_many_arguments)]
pub fn render_scene(
    id: &Identity,
    d: &DomainSpec,
    pres: Presentation,
    video_seed: u64,
    frame: u32,
    frames: u32,
    f: &Frame,
) -> SceneOut {
    let mut vr = rng(video_seed, &[0]);
    let cap = Capture::sample(d, &mut vr, pres != Presentation::Live);
    let motion = Motion::sample(&mut vr, frames);
    let t = frame as f32;
    let light = scene_light(&cap);
    let bg = |x: f32, y: f32| bg_lit(d, &cap, x, y, f);
    match pres {
        Presentation::Live | Presentation::Mask => {
            let live = pres == Presentation::Live;
            let pl = motion.placement(f, t, false);
            let mut expr = motion.expression(t, live);
            let mat = if live {
                Material::SKIN
            } else {
                let m = &d.mask;
                let mut e2 = motion.expression(t, true);
                e2.smile = expr.smile;
                e2.mouth_open = 0.0;
                expr = e2;
                Material {
                    texture_mul: uni(&mut vr, m.texture.0, m.texture.1),
                    spec: uni(&mut vr, m.spec.0, m.spec.1),
                    shininess: uni(&mut vr, m.shininess.0, m.shininess.1),
                    tint: m.tint,
                    tint_mix: uni(&mut vr, m.tint_mix.0, m.tint_mix.1),
                    blush_mul: 0.2,
                    eye_hole: uni(&mut vr, m.eye_hole.0, m.eye_hole.1),
                }
            };
            let (img, depth) = render_head(id, f, &pl, &expr, &light, &mat, &bg);
            let (bbox, landmarks) = annotate(id, &pl, &expr);
            SceneOut {
                radiance: img,
                depth: live.then_some(depth),
                bbox,
                landmarks,
            }
        }
        Presentation::Print | Presentation::Replay => {
            let print = pres == Presentation::Print;
            let field = if print {
                uni(&mut vr, d.print.field.0, d.print.field.1)
            } else {
                uni(&mut vr, d.replay.field.0, d.replay.field.1)
            };
            // Source photo: field × the equivalent crop size, face at the live scale.
            let crop = f.scale / 0.3;
            let size = ((field * crop).round() as usize).clamp(32, 2048);
            let face_scale = f.scale * uni(&mut vr, 0.9, 1.1);
            let (src, src_lm, src_bb) = source_photo(id, &mut vr, size, face_scale);
            let pl = motion.placement(f, t, true);
            let k = pl.scale / f.scale;
            let aniso = uni(&mut vr, -0.05, 0.05);
            let sheet = Sheet {
                cx: pl.cx,
                cy: pl.cy,
                cos: pl.roll.cos(),
                sin: pl.roll.sin(),
                kx: k * (1.0 + aniso),
                ky: k * (1.0 - aniso),
                half: size as f32 * 0.5,
            };
            let mut img = FImage::new(f.w, f.h);
            let sz = size as f32;
            if print {
                let p = &d.print;
                let pitch = uni(&mut vr, p.halftone_pitch.0, p.halftone_pitch.1);
                let hts = uni(&mut vr, p.halftone_strength.0, p.halftone_strength.1);
                let sat = uni(&mut vr, p.saturation.0, p.saturation.1);
                let sheen = uni(&mut vr, p.sheen.0, p.sheen.1);
                let tilt = norm3([uni(&mut vr, -0.3, 0.3), uni(&mut vr, -0.3, 0.3), 1.0]);
                let ndl =
                    (tilt[0] * light.dir[0] + tilt[1] * light.dir[1] + tilt[2] * light.dir[2])
                        .max(0.0);
                let bend = uni(&mut vr, -0.25, 0.25);
                let sh = (uni(&mut vr, 0.1, 0.9) * sz, uni(&mut vr, 0.1, 0.9) * sz);
                let margin = 0.04 * sz;
                let pseed = vr.random::<u32>();
                let angles = [0.26f32, 1.31, 0.0];
                for y in 0..f.h {
                    for x in 0..f.w {
                        let mut acc = [0.0f32; 3];
                        let mut cover = 0.0;
                        for (ox, oy) in
                            [(0.25f32, 0.25f32), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
                        {
                            let (qx, qy) = sheet.to_sheet(x as f32 + ox, y as f32 + oy);
                            if qx < -margin || qy < -margin || qx > sz + margin || qy > sz + margin
                            {
                                continue;
                            }
                            cover += 0.25;
                            let inside = qx >= 0.0 && qy >= 0.0 && qx <= sz && qy <= sz;
                            let mut refl = if inside {
                                let c = src.sample(qx, qy);
                                let l = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2];
                                let mut o = [0.0; 3];
                                for ch in 0..3 {
                                    let v = lerp(l, c[ch], sat).clamp(0.0, 1.0).powf(2.2);
                                    // Halftone: ink coverage as dots on a rotated screen.
                                    let (sa, ca) = angles[ch].sin_cos();
                                    let rx = (qx * ca + qy * sa) / pitch;
                                    let ry = (-qx * sa + qy * ca) / pitch;
                                    let fx = rx - rx.floor() - 0.5;
                                    let fy = ry - ry.floor() - 0.5;
                                    let dist = (fx * fx + fy * fy).sqrt();
                                    let ink = 1.0 - v;
                                    let rho = (ink / PI).sqrt();
                                    let e = 0.5 / pitch;
                                    let dot = 1.0 - smoothstep(rho - e, rho + e, dist);
                                    let ht = 1.0 - dot;
                                    let vv = lerp(v, ht, hts);
                                    o[ch] = p.black + (p.white - p.black) * vv;
                                }
                                o
                            } else {
                                [p.white; 3]
                            };
                            let tex = 1.0
                                + p.paper_texture
                                    * (2.0 * vnoise(qx * 0.9, qy * 0.9, pseed) - 1.0
                                        + fbm(qx * 0.05, qy * 0.05, pseed ^ 9, 2)
                                        - 0.5);
                            refl = scale3(refl, tex);
                            let shade = light.ambient
                                + light.intensity * ndl * (1.0 + bend * (qx / sz - 0.5));
                            let dx = (qx - sh.0) / (0.35 * sz);
                            let dy = (qy - sh.1) / (0.2 * sz);
                            let spec = sheen * (-(dx * dx + dy * dy)).exp();
                            for ch in 0..3 {
                                acc[ch] += 0.25 * (refl[ch] * shade + spec) * light.color[ch];
                            }
                        }
                        let b = bg(x as f32 + 0.5, y as f32 + 0.5);
                        img.px[y * f.w + x] = [
                            acc[0] + b[0] * (1.0 - cover),
                            acc[1] + b[1] * (1.0 - cover),
                            acc[2] + b[2] * (1.0 - cover),
                        ];
                    }
                }
            } else {
                let rp = &d.replay;
                let pitch = uni(&mut vr, rp.pixel_pitch.0, rp.pixel_pitch.1);
                let grid = uni(&mut vr, rp.grid_strength.0, rp.grid_strength.1);
                let gamma = uni(&mut vr, rp.gamma.0, rp.gamma.1);
                let bright = uni(&mut vr, rp.brightness.0, rp.brightness.1);
                let glare = uni(&mut vr, rp.glare.0, rp.glare.1);
                let gpos = (uni(&mut vr, 0.1, 0.9) * sz, uni(&mut vr, 0.1, 0.9) * sz);
                let gang = uni(&mut vr, 0.0, PI);
                let bezel = 0.07 * sz;
                for y in 0..f.h {
                    for x in 0..f.w {
                        let mut acc = [0.0f32; 3];
                        let mut cover = 0.0;
                        for (ox, oy) in
                            [(0.25f32, 0.25f32), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
                        {
                            let (qx, qy) = sheet.to_sheet(x as f32 + ox, y as f32 + oy);
                            if qx < -bezel || qy < -bezel || qx > sz + bezel || qy > sz + bezel {
                                continue;
                            }
                            cover += 0.25;
                            let inside = qx >= 0.0 && qy >= 0.0 && qx <= sz && qy <= sz;
                            let mut o = if inside {
                                let c = src.sample(qx, qy);
                                let sx = qx / pitch;
                                let sub = ((sx - sx.floor()) * 3.0) as usize;
                                let sy = qy / pitch;
                                let row = if sy - sy.floor() < 0.8 { 1.0 } else { 0.25 };
                                let mut o = [0.0; 3];
                                for ch in 0..3 {
                                    let m = if sub == ch { 3.0 } else { 0.0 } * row;
                                    let g = lerp(1.0, m, grid);
                                    o[ch] =
                                        c[ch].powf(2.2 * gamma) * rp.white_point[ch] * bright * g;
                                }
                                o
                            } else {
                                // Bezel: dark glossy plastic, lit by the room.
                                scale3(light.color, 0.025 * (light.ambient + 0.5))
                            };
                            let (ga, gb) = (gang.cos(), gang.sin());
                            let dx = ((qx - gpos.0) * ga + (qy - gpos.1) * gb) / (0.45 * sz);
                            let dy = (-(qx - gpos.0) * gb + (qy - gpos.1) * ga) / (0.15 * sz);
                            let gl = glare * (-(dx * dx + dy * dy)).exp();
                            for ch in 0..3 {
                                o[ch] += (gl + 0.03 * light.ambient) * light.color[ch];
                                acc[ch] += 0.25 * o[ch];
                            }
                        }
                        let b = bg(x as f32 + 0.5, y as f32 + 0.5);
                        img.px[y * f.w + x] = [
                            acc[0] + b[0] * (1.0 - cover),
                            acc[1] + b[1] * (1.0 - cover),
                            acc[2] + b[2] * (1.0 - cover),
                        ];
                    }
                }
            }
            let mut landmarks = [[0.0f32; 2]; 5];
            for (i, p) in src_lm.iter().enumerate() {
                let (x, y) = sheet.to_scene(p[0], p[1]);
                landmarks[i] = [x, y];
            }
            let corners = [
                (src_bb[0], src_bb[1]),
                (src_bb[2], src_bb[1]),
                (src_bb[0], src_bb[3]),
                (src_bb[2], src_bb[3]),
            ];
            let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
            for (qx, qy) in corners {
                let (x, y) = sheet.to_scene(qx, qy);
                bbox = [
                    bbox[0].min(x),
                    bbox[1].min(y),
                    bbox[2].max(x),
                    bbox[3].max(y),
                ];
            }
            SceneOut {
                radiance: img,
                depth: None,
                bbox,
                landmarks,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::rng;
    use super::*;

    #[test]
    fn sheet_maps_round_trip() {
        let s = Sheet {
            cx: 50.0,
            cy: 40.0,
            cos: 0.1f32.cos(),
            sin: 0.1f32.sin(),
            kx: 1.05,
            ky: 0.95,
            half: 64.0,
        };
        let (qx, qy) = s.to_sheet(33.0, 71.0);
        let (x, y) = s.to_scene(qx, qy);
        assert!((x - 33.0).abs() < 1e-3 && (y - 71.0).abs() < 1e-3);
    }

    #[test]
    fn live_blinks_and_attacks_do_not_change_expression() {
        let m = Motion::sample(&mut rng(0, &[1]), 8);
        let mut min_open = 1.0f32;
        for t in 0..80 {
            let e = m.expression(t as f32 * 0.1, false);
            assert_eq!(e.eye_open, 1.0);
            min_open = min_open.min(m.expression(t as f32 * 0.1, true).eye_open);
        }
        if m.blink_at.is_some() {
            assert!(min_open < 0.2);
        }
        let f = Frame {
            w: 64,
            h: 64,
            cx: 32.0,
            cy: 32.0,
            scale: 20.0,
        };
        assert_eq!(m.placement(&f, 3.0, true).yaw, 0.0);
    }

    #[test]
    fn only_live_scenes_carry_depth() {
        let id = Identity::sample(&mut rng(1, &[0]));
        let d = &DomainSpec::defaults()[1];
        let f = Frame {
            w: 64,
            h: 64,
            cx: 32.0,
            cy: 33.0,
            scale: 19.0,
        };
        for p in Presentation::ALL {
            let out = render_scene(&id, d, p, 77, 0, 4, &f);
            assert_eq!(out.depth.is_some(), p == Presentation::Live);
            assert_eq!(out.radiance.px.len(), 64 * 64);
            assert!(out
                .radiance
                .px
                .iter()
                .all(|p| p.iter().all(|v| v.is_finite() && *v >= 0.0)));
        }
    }
}
