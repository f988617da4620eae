//! Seeded identities and the procedural head renderer (ellipsoid height field, Lambert +
//! Blinn-Phong shading, painted features).

use super::util::{fbm, lerp3, smoothstep, uni, vnoise};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Everything that makes a subject recognisable. Units: face half-height = 1.
#[derive(Debug, Clone)]
pub struct Identity {
    pub aspect: f32,
    pub jaw: f32,
    pub relief: f32,
    pub skin: [f32; 3],
    pub blush: f32,
    pub texture: f32,
    pub tex_seed: u32,
    pub eye_x: f32,
    pub eye_y: f32,
    pub eye_w: f32,
    pub eye_h: f32,
    pub iris: [f32; 3],
    pub brow_gap: f32,
    pub brow_thick: f32,
    pub brow_arch: f32,
    pub nose_len: f32,
    pub nose_w: f32,
    pub nose_h: f32,
    pub mouth_y: f32,
    pub mouth_w: f32,
    pub lip_h: f32,
    pub lips: [f32; 3],
    pub hair: [f32; 3],
    pub hairline: f32,
    pub hair_volume: f32,
    pub long_hair: bool,
    pub shirt: [f32; 3],
}

impl Identity {
    pub fn sample(r: &mut ChaCha8Rng) -> Identity {
        let tone = r.random::<f32>();
        let light = [0.92, 0.74, 0.62];
        let dark = [0.36, 0.22, 0.15];
        let mut skin = lerp3(light, dark, tone);
        let hue = uni(r, -0.04, 0.04);
        skin[0] += hue;
        skin[2] -= hue * 0.5;
        let hair_palette = [
            [0.05, 0.04, 0.035],
            [0.18, 0.11, 0.06],
            [0.35, 0.22, 0.12],
            [0.62, 0.48, 0.28],
            [0.45, 0.18, 0.08],
            [0.55, 0.55, 0.55],
        ];
        let hair = hair_palette[r.random_range(0..hair_palette.len())];
        let iris_palette = [
            [0.25, 0.14, 0.07],
            [0.12, 0.07, 0.04],
            [0.25, 0.4, 0.55],
            [0.3, 0.38, 0.2],
        ];
        let iris = iris_palette[r.random_range(0..iris_palette.len())];
        let lip_mix = uni(r, 0.25, 0.5);
        let lips = lerp3(skin, [0.65, 0.2, 0.22], lip_mix);
        Identity {
            aspect: uni(r, 0.7, 0.86),
            jaw: uni(r, 0.05, 0.4),
            relief: uni(r, 0.7, 0.95),
            skin,
            blush: uni(r, 0.0, 0.12),
            texture: uni(r, 0.04, 0.1),
            tex_seed: r.random(),
            eye_x: uni(r, 0.3, 0.38),
            eye_y: uni(r, -0.2, -0.08),
            eye_w: uni(r, 0.12, 0.16),
            eye_h: uni(r, 0.05, 0.072),
            iris,
            brow_gap: uni(r, 0.1, 0.17),
            brow_thick: uni(r, 0.025, 0.05),
            brow_arch: uni(r, 0.0, 0.06),
            nose_len: uni(r, 0.22, 0.34),
            nose_w: uni(r, 0.09, 0.14),
            nose_h: uni(r, 0.12, 0.22),
            mouth_y: uni(r, 0.46, 0.58),
            mouth_w: uni(r, 0.17, 0.27),
            lip_h: uni(r, 0.03, 0.055),
            lips,
            hair,
            hairline: uni(r, -0.78, -0.55),
            hair_volume: uni(r, 0.04, 0.2),
            long_hair: r.random::<f32>() < 0.4,
            shirt: [uni(r, 0.1, 0.8), uni(r, 0.1, 0.8), uni(r, 0.1, 0.8)],
        }
    }

    /// Nose tip height in `v` (face coordinates).
    pub fn nose_y(&self) -> f32 {
        self.eye_y + self.nose_len + 0.05
    }
}

/// Head pose and placement in a canvas.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// Face centre in pixels.
    pub cx: f32,
    pub cy: f32,
    /// Pixels per face unit (face half-height).
    pub scale: f32,
    /// In-plane rotation (radians).
    pub roll: f32,
    /// Out-of-plane rotation (radians, small).
    pub yaw: f32,
}

/// Time-varying facial state.
#[derive(Debug, Clone, Copy)]
pub struct Expression {
    /// 1 = open, 0 = closed.
    pub eye_open: f32,
    /// 0 = neutral, 1 = smile.
    pub smile: f32,
    /// 0 = closed mouth.
    pub mouth_open: f32,
}

impl Default for Expression {
    fn default() -> Self {
        Expression {
            eye_open: 1.0,
            smile: 0.2,
            mouth_open: 0.0,
        }
    }
}

/// Lighting of the scene in face space (`z` towards the camera, `y` down).
#[derive(Debug, Clone, Copy)]
pub struct Light {
    pub dir: [f32; 3],
    pub color: [f32; 3],
    pub ambient: f32,
    pub intensity: f32,
}

/// Surface material: real skin or a mask.
#[derive(Debug, Clone, Copy)]
pub struct Material {
    pub texture_mul: f32,
    pub spec: f32,
    pub shininess: f32,
    /// Albedo tint mixed into skin colour (mask paint).
    pub tint: [f32; 3],
    pub tint_mix: f32,
    pub blush_mul: f32,
    /// > 0: a mask; eye holes show a dark gap ring of this strength.
    pub eye_hole: f32,
}

impl Material {
    pub const SKIN: Material = Material {
        texture_mul: 1.0,
        spec: 0.12,
        shininess: 12.0,
        tint: [0.0; 3],
        tint_mix: 0.0,
        blush_mul: 1.0,
        eye_hole: 0.0,
    };
}

/// Signed "inside" coverage in `[0, 1]` for an ellipse with anti-aliasing width `aa`.
fn ell(u: f32, v: f32, cu: f32, cv: f32, ru: f32, rv: f32, aa: f32) -> f32 {
    let du = (u - cu) / ru;
    let dv = (v - cv) / rv;
    let d = (du * du + dv * dv).sqrt();
    let rmin = ru.min(rv);
    1.0 - smoothstep(1.0 - aa / rmin, 1.0 + aa / rmin, d)
}

fn gauss2(u: f32, v: f32, cu: f32, cv: f32, su: f32, sv: f32) -> f32 {
    let du = (u - cu) / su;
    let dv = (v - cv) / sv;
    (-(du * du + dv * dv)).exp()
}

/// Face half-width at height `y` (narrowed towards the jaw).
fn half_width(id: &Identity, y: f32) -> f32 {
    id.aspect * (1.0 - id.jaw * y.max(0.0).powi(2))
}

/// Base ellipsoid height (`None` outside the face outline).
fn base_z(id: &Identity, x: f32, y: f32) -> Option<f32> {
    let a = half_width(id, y);
    let q = 1.0 - (x / a).powi(2) - y * y;
    (q > 0.0).then(|| id.relief * q.sqrt())
}

/// Relief details (nose, eye sockets, brow ridge, lips) in texture coordinates.
fn detail_z(id: &Identity, u: f32, v: f32) -> f32 {
    let ny = id.nose_y();
    let nose = id.nose_h
        * gauss2(
            u,
            v,
            0.0,
            ny - id.nose_len * 0.45,
            id.nose_w * 0.75,
            id.nose_len * 0.55,
        );
    let tip = id.nose_h * 0.5 * gauss2(u, v, 0.0, ny - 0.02, id.nose_w * 0.9, 0.06);
    let sockets = -0.06
        * (gauss2(u, v, -id.eye_x, id.eye_y, 0.13, 0.08)
            + gauss2(u, v, id.eye_x, id.eye_y, 0.13, 0.08));
    let brow = 0.03 * gauss2(u, v, 0.0, id.eye_y - id.brow_gap, 0.5, 0.06);
    let lips = 0.03 * gauss2(u, v, 0.0, id.mouth_y, id.mouth_w, 0.07);
    let chin = 0.04 * gauss2(u, v, 0.0, 0.85, 0.22, 0.1);
    nose + tip + sockets + brow + lips + chin
}

/// Total surface height at face-plane position `(x, y)` for yaw `yaw`; returns `(z, u)`.
fn surface(id: &Identity, x: f32, y: f32, yaw: f32) -> Option<(f32, f32)> {
    let z0 = base_z(id, x, y)?;
    let u = (x - yaw.sin() * z0) / yaw.cos();
    Some((z0 + detail_z(id, u, y), u))
}

/// Where a texture point `(u, v)` projects in the face plane, given yaw.
pub fn project(id: &Identity, u: f32, v: f32, yaw: f32) -> (f32, f32) {
    let z0 = base_z(id, u, v).unwrap_or(0.0);
    (u * yaw.cos() + z0 * yaw.sin(), v)
}

pub struct HeadSample {
    /// Linear radiance.
    pub rgb: [f32; 3],
    /// Coverage (alpha) of the head at this pixel.
    pub alpha: f32,
    /// Height of the face surface (face region only; 0 elsewhere).
    pub depth: f32,
}

fn shade(n: [f32; 3], light: &Light, mat: &Material, albedo: [f32; 3], spec_mul: f32) -> [f32; 3] {
    let l = light.dir;
    let ndl = (n[0] * l[0] + n[1] * l[1] + n[2] * l[2]).max(0.0);
    let h = [l[0], l[1], l[2] + 1.0];
    let hn = (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]).sqrt();
    let ndh = ((n[0] * h[0] + n[1] * h[1] + n[2] * h[2]) / hn).max(0.0);
    let spec = mat.spec * spec_mul * ndh.powf(mat.shininess) * light.intensity;
    let mut out = [0.0; 3];
    for c in 0..3 {
        out[c] = albedo[c] * light.color[c] * (light.ambient + light.intensity * ndl)
            + spec * light.color[c];
    }
    out
}

/// Shades one pixel given its face-plane coordinates (already un-rolled / un-scaled).
/// `aa` is the size of a pixel in face units.
pub fn shade_head(
    id: &Identity,
    x: f32,
    y: f32,
    yaw: f32,
    expr: &Expression,
    light: &Light,
    mat: &Material,
    aa: f32,
) -> HeadSample {
    let mut rgb = [0.0f32; 3];
    let mut alpha = 0.0f32;
    let over = |rgb: &mut [f32; 3], alpha: &mut f32, c: [f32; 3], a: f32| {
        for k in 0..3 {
            rgb[k] = rgb[k] * (1.0 - a) + c[k] * a;
        }
        *alpha = *alpha * (1.0 - a) + a;
    };
    let real_skin = id.skin;
    let dark_light = Light {
        intensity: light.intensity * 0.55,
        ..*light
    };
    // Neck.
    let neck_w = id.aspect * 0.45;
    let neck = (1.0 - smoothstep(neck_w - aa, neck_w + aa, x.abs())) * smoothstep(0.4, 0.45, y);
    if neck > 0.0 {
        let n = norm3([x / neck_w * 0.6, 0.0, 0.8]);
        over(
            &mut rgb,
            &mut alpha,
            shade(n, &dark_light, &Material::SKIN, real_skin, 0.5),
            neck,
        );
    }
    // Shirt / shoulders with a rounded neckline.
    let top = 1.12 + 0.2 * (-(x / (neck_w * 0.9)).powi(2)).exp();
    let reach = 0.75 + ((y - 1.05).max(0.0) * 3.0).sqrt();
    let shoulder =
        smoothstep(top - aa, top + aa, y) * (1.0 - smoothstep(reach - aa, reach + aa, x.abs()));
    if shoulder > 0.0 {
        let n = norm3([x.signum() * 0.5 * smoothstep(0.5, 1.6, x.abs()), -0.5, 0.8]);
        over(
            &mut rgb,
            &mut alpha,
            shade(n, light, &Material::SKIN, id.shirt, 0.2),
            shoulder,
        );
    }
    // Back hair.
    let hv = id.hair_volume;
    let back = ell(x, y, 0.0, -0.12, id.aspect * 1.1 + hv, 1.08 + hv, aa);
    let mut hair_a = back * (1.0 - smoothstep(0.05, 0.1, y));
    if id.long_hair {
        let hw = (id.aspect * 1.12 + hv) * (1.0 - 0.25 * smoothstep(0.2, 1.0, y));
        let bottom = 0.95 - 0.25 * (x / hw).powi(2);
        let sides = (1.0 - smoothstep(hw - aa, hw + aa, x.abs()))
            * (1.0 - smoothstep(bottom - aa, bottom + aa, y))
            * smoothstep(-0.3, -0.2, y);
        hair_a = hair_a.max(sides);
    }
    if hair_a > 0.0 {
        let strand = 0.75 + 0.5 * fbm(x * 40.0 + y * 3.0, y * 6.0, id.tex_seed ^ 77, 2);
        let n = [x * 0.8, y * 0.5 - 0.2, 0.7];
        let nn = norm3(n);
        over(
            &mut rgb,
            &mut alpha,
            shade(
                nn,
                &dark_light,
                &Material {
                    spec: 0.3,
                    shininess: 25.0,
                    ..Material::SKIN
                },
                scale3(id.hair, strand),
                1.0,
            ),
            hair_a,
        );
    }
    // Ears.
    let (exl, _) = project(id, -id.aspect * 0.98, 0.0, yaw);
    let (exr, _) = project(id, id.aspect * 0.98, 0.0, yaw);
    let ear =
        ell(x, y, exl - 0.03, 0.02, 0.1, 0.2, aa).max(ell(x, y, exr + 0.03, 0.02, 0.1, 0.2, aa))
            * (1.0 - hair_a * (id.long_hair as u8 as f32));
    if ear > 0.0 {
        let n = norm3([x.signum() * 0.5, 0.0, 0.8]);
        over(
            &mut rgb,
            &mut alpha,
            shade(n, light, &Material::SKIN, scale3(real_skin, 0.92), 1.0),
            ear,
        );
    }
    // Face.
    let mut depth = 0.0;
    let a = half_width(id, y);
    let r = ((x / a).powi(2) + y * y).sqrt();
    let face_a = 1.0 - smoothstep(1.0 - aa, 1.0 + aa * 0.5, r);
    if face_a > 0.0 {
        let (z, u) = surface(id, x, y, yaw).unwrap_or((0.0, x));
        depth = z;
        let v = y;
        let e = 0.01;
        let zx1 = surface(id, x + e, y, yaw).map(|s| s.0).unwrap_or(0.0);
        let zx0 = surface(id, x - e, y, yaw).map(|s| s.0).unwrap_or(0.0);
        let zy1 = surface(id, x, y + e, yaw).map(|s| s.0).unwrap_or(0.0);
        let zy0 = surface(id, x, y - e, yaw).map(|s| s.0).unwrap_or(0.0);
        let n = norm3([-(zx1 - zx0) / (2.0 * e), -(zy1 - zy0) / (2.0 * e), 1.0]);
        let is_mask = mat.eye_hole > 0.0;
        // Albedo.
        let base_skin = lerp3(real_skin, mat.tint, mat.tint_mix);
        let grain = vnoise(u * 70.0, v * 70.0, id.tex_seed) - 0.5;
        let mottle = fbm(u * 9.0, v * 9.0, id.tex_seed ^ 1234, 3) - 0.5;
        let tex = 1.0 + mat.texture_mul * id.texture * (2.0 * grain + 1.5 * mottle);
        let mut alb = scale3(base_skin, tex);
        let blush = id.blush
            * mat.blush_mul
            * (gauss2(u, v, -0.42, 0.25, 0.18, 0.14) + gauss2(u, v, 0.42, 0.25, 0.18, 0.14));
        alb[0] += blush * 0.5;
        alb[1] -= blush * 0.2;
        let mut spec_mul = 1.0
            + 0.8 * gauss2(u, v, 0.0, -0.55, 0.4, 0.2)
            + 0.8 * gauss2(u, v, 0.0, id.nose_y() - 0.05, 0.06, 0.12);
        // Mouth (a mask's mouth is painted and rigid).
        let (smile, open) = if is_mask {
            (0.15, 0.0)
        } else {
            (expr.smile, expr.mouth_open)
        };
        let mw = id.mouth_w * (1.0 + 0.15 * smile);
        let curve = 0.12 * smile * (u / mw).powi(2);
        let mv = v - id.mouth_y + curve;
        let lip_upper = ell(u, mv, 0.0, -id.lip_h * 0.5, mw, id.lip_h * 0.9, aa);
        let lip_lower = ell(
            u,
            mv,
            0.0,
            id.lip_h * 0.55 + open * 0.04,
            mw * 0.85,
            id.lip_h * 1.1,
            aa,
        );
        let lip = lip_upper.max(lip_lower);
        alb = lerp3(alb, id.lips, lip * 0.85);
        let gap = ell(
            u,
            mv,
            0.0,
            open * 0.02,
            mw * 0.92,
            0.006 + open * 0.05,
            aa * 0.7,
        );
        alb = lerp3(alb, [0.15, 0.04, 0.04], gap * 0.9);
        spec_mul += lip * 0.8;
        // Nostrils.
        let ny = id.nose_y();
        let nost = ell(
            u,
            v,
            -id.nose_w * 0.45,
            ny + 0.01,
            id.nose_w * 0.28,
            0.022,
            aa,
        ) + ell(
            u,
            v,
            id.nose_w * 0.45,
            ny + 0.01,
            id.nose_w * 0.28,
            0.022,
            aa,
        );
        alb = lerp3(alb, scale3(base_skin, 0.25), nost.min(1.0) * 0.8);
        // Brows (painted on a mask too).
        for side in [-1.0f32, 1.0] {
            let bu = u - side * id.eye_x;
            let bv = v - (id.eye_y - id.brow_gap) + id.brow_arch * (1.0 - (bu / 0.16).powi(2));
            let brow =
                ell(bu, bv, 0.0, 0.0, 0.17, id.brow_thick, aa) * smoothstep(-0.2, -0.05, side * u);
            alb = lerp3(alb, scale3(id.hair, 0.8), brow * 0.9);
        }
        // Eyes.
        let mut eye_cov = 0.0f32;
        let mut eye_rgb = [0.0; 3];
        for side in [-1.0f32, 1.0] {
            let cu = side * id.eye_x;
            let eo = expr.eye_open.clamp(0.0, 1.0);
            let eh = id.eye_h * eo.max(0.05);
            let cov = ell(u, v, cu, id.eye_y, id.eye_w, eh, aa);
            if is_mask {
                // Eye hole: dark rim where the mask is cut out.
                let hole = ell(u, v, cu, id.eye_y, id.eye_w * 1.25, id.eye_h * 1.5, aa);
                let rim = (hole - cov).max(0.0);
                alb = lerp3(alb, scale3(real_skin, 0.3), rim * mat.eye_hole);
            }
            if cov > 0.0 {
                let mut c = [0.85, 0.83, 0.8];
                let iris_r = id.eye_h * 0.95;
                let ir = ell(u, v, cu + 0.01 * side * 0.0, id.eye_y, iris_r, iris_r, aa);
                c = lerp3(c, id.iris, ir);
                let pu = ell(u, v, cu, id.eye_y, iris_r * 0.45, iris_r * 0.45, aa);
                c = lerp3(c, [0.02, 0.02, 0.02], pu);
                // Catch-light.
                let cl = ell(
                    u,
                    v,
                    cu + iris_r * 0.35,
                    id.eye_y - iris_r * 0.35,
                    iris_r * 0.2,
                    iris_r * 0.2,
                    aa,
                );
                c = lerp3(c, [1.2, 1.2, 1.2], cl * 0.8);
                eye_rgb = c;
                eye_cov = eye_cov.max(cov);
            }
            // Lash line / eyelid crease.
            let lid = ell(
                u,
                v,
                cu,
                id.eye_y - eh * 0.2,
                id.eye_w * 1.05,
                eh * 1.05 + 0.012,
                aa,
            ) - cov;
            alb = lerp3(alb, [0.08, 0.05, 0.04], lid.clamp(0.0, 1.0) * 0.7);
        }
        // Forehead hair fringe.
        let hl = id.hairline + 0.08 * (u * 3.0).sin() * 0.3 + 0.12 * u * u;
        let fringe = 1.0 - smoothstep(hl - aa, hl + aa + 0.02, v);
        let strand = 0.75 + 0.5 * fbm(u * 40.0 + v * 3.0, v * 6.0, id.tex_seed ^ 77, 2);
        let mut col = shade(n, light, mat, alb, spec_mul);
        if eye_cov > 0.0 {
            // Eyes are wet: own (real) material even behind a mask.
            let ec = shade(
                n,
                light,
                &Material {
                    spec: 0.5,
                    shininess: 60.0,
                    ..Material::SKIN
                },
                eye_rgb,
                1.0,
            );
            col = lerp3(col, ec, eye_cov);
        }
        if fringe > 0.0 {
            let hc = shade(
                n,
                &dark_light,
                &Material {
                    spec: 0.3,
                    shininess: 25.0,
                    ..Material::SKIN
                },
                scale3(id.hair, strand),
                1.0,
            );
            col = lerp3(col, hc, fringe);
        }
        // Mask edge: the mask stops at the hairline, the real forehead shows a seam.
        if is_mask {
            let seam = ell(u, v, 0.0, id.hairline + 0.06, 0.6, 0.012, aa) * (1.0 - fringe);
            col = lerp3(col, scale3(col, 0.55), seam);
        }
        over(&mut rgb, &mut alpha, col, face_a);
        depth *= face_a;
    }
    HeadSample { rgb, alpha, depth }
}

pub fn scale3(c: [f32; 3], s: f32) -> [f32; 3] {
    [c[0] * s, c[1] * s, c[2] * s]
}

pub fn norm3(v: [f32; 3]) -> [f32; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-6);
    [v[0] / n, v[1] / n, v[2] / n]
}

/// Face-plane → pixel.
pub fn to_pixel(p: &Placement, x: f32, y: f32) -> (f32, f32) {
    let (s, c) = p.roll.sin_cos();
    (
        p.cx + p.scale * (x * c - y * s),
        p.cy + p.scale * (x * s + y * c),
    )
}

/// Pixel → face-plane.
pub fn from_pixel(p: &Placement, px: f32, py: f32) -> (f32, f32) {
    let (s, c) = p.roll.sin_cos();
    let dx = px - p.cx;
    let dy = py - p.cy;
    ((dx * c + dy * s) / p.scale, (-dx * s + dy * c) / p.scale)
}

/// Face box `[x0, y0, x1, y1]` and 5 landmarks (left eye, right eye, nose, left/right mouth
/// corner; "left" = smaller image x) in pixel coordinates.
pub fn annotate(id: &Identity, p: &Placement, expr: &Expression) -> ([f32; 4], [[f32; 2]; 5]) {
    let mw = id.mouth_w * (1.0 + 0.15 * expr.smile);
    let pts = [
        (-id.eye_x, id.eye_y),
        (id.eye_x, id.eye_y),
        (0.0, id.nose_y()),
        (-mw, id.mouth_y - 0.12 * expr.smile),
        (mw, id.mouth_y - 0.12 * expr.smile),
    ];
    let mut lm = [[0.0f32; 2]; 5];
    for (i, (u, v)) in pts.iter().enumerate() {
        let (x, y) = project(id, *u, *v, p.yaw);
        let (px, py) = to_pixel(p, x, y);
        lm[i] = [px, py];
    }
    let mut bb = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for k in 0..64 {
        let t = k as f32 / 64.0 * std::f32::consts::TAU;
        let y = t.sin();
        // The box spans the face from the hairline to the chin.
        let y = if y < 0.0 {
            y * (-id.hairline).max(0.7)
        } else {
            y
        };
        let x = half_width(id, y) * t.cos();
        let (px, py) = to_pixel(p, x, y);
        bb = [bb[0].min(px), bb[1].min(py), bb[2].max(px), bb[3].max(py)];
    }
    (bb, lm)
}

#[cfg(test)]
mod tests {
    use super::super::util::rng;
    use super::*;

    #[test]
    fn identities_are_seeded_and_distinct() {
        let a = Identity::sample(&mut rng(1, &[0]));
        let b = Identity::sample(&mut rng(1, &[0]));
        let c = Identity::sample(&mut rng(1, &[1]));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
    }

    #[test]
    fn placement_round_trips() {
        let p = Placement {
            cx: 60.0,
            cy: 70.0,
            scale: 40.0,
            roll: 0.2,
            yaw: 0.1,
        };
        let (px, py) = to_pixel(&p, 0.3, -0.4);
        let (x, y) = from_pixel(&p, px, py);
        assert!((x - 0.3).abs() < 1e-5 && (y + 0.4).abs() < 1e-5);
    }

    #[test]
    fn yaw_turns_the_nose() {
        let id = Identity::sample(&mut rng(2, &[0]));
        let p = Placement {
            cx: 0.0,
            cy: 0.0,
            scale: 1.0,
            roll: 0.0,
            yaw: 0.0,
        };
        let (_, lm0) = annotate(&id, &p, &Expression::default());
        let (_, lm1) = annotate(&id, &Placement { yaw: 0.2, ..p }, &Expression::default());
        // Turning shifts the nose (high on the surface) more than the eyes' midpoint.
        let shift_nose = lm1[2][0] - lm0[2][0];
        let shift_eyes = (lm1[0][0] + lm1[1][0] - lm0[0][0] - lm0[1][0]) / 2.0;
        assert!(shift_nose > shift_eyes && shift_nose > 0.0);
    }

    #[test]
    fn mask_material_removes_skin_texture_variation() {
        let id = Identity::sample(&mut rng(4, &[0]));
        let light = Light {
            dir: [0.0, 0.0, 1.0],
            color: [1.0; 3],
            ambient: 0.3,
            intensity: 0.8,
        };
        let mask = Material {
            texture_mul: 0.0,
            tint: [0.8, 0.7, 0.6],
            tint_mix: 0.3,
            blush_mul: 0.0,
            eye_hole: 1.0,
            ..Material::SKIN
        };
        // High-frequency roughness along a cheek line: mean |difference| of neighbours.
        let var = |m: &Material| {
            let v: Vec<f32> = (0..200)
                .map(|i| {
                    let x = 0.25 + i as f32 * 1e-3;
                    shade_head(&id, x, 0.3, 0.0, &Expression::default(), &light, m, 0.01).rgb[1]
                })
                .collect();
            v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f32>() / v.len() as f32
        };
        assert!(var(&Material::SKIN) > 2.0 * var(&mask));
    }
}
