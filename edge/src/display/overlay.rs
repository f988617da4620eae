//! The door overlay: one routine, [`draw_overlay`], draws the face box and landmarks, the
//! score bar with its threshold mark, the session progress, the decision banner, the FPS
//! and a status line onto any embedded-graphics `DrawTarget<Color = Rgb888>` — the camera
//! frame copy ([`super::FrameBuffer`]), a framebuffer, a test display.
//!
//! Where each part goes is computed by [`OverlayLayout::for_size`], which tests use to
//! find the pixels they check. Screen layout, top to bottom:
//!
//! ```text
//! ┌ status line ─────────────────────── 29.8 fps ┐
//! │                 (face box, landmarks)         │
//! │░░░░░░░░░ GRANT - above threshold ░░░░░░░░░░░░│  banner, only with a decision
//! │ score 0.83  thr 0.70  frames 3/5    ■■■□□     │  info line + progress boxes
//! │ [██████████████████|░░░░░░░░░░░░░]            │  score bar, threshold mark
//! └───────────────────────────────────────────────┘
//! ```
//!
//! Nothing here panics on odd input: zero-size targets, faces partly or wholly outside,
//! non-finite coordinates or scores are drawn as far as they make sense.

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Circle, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, StrokeAlignment,
};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};

use fas_core::decision::{Decision, Reason, Verdict};
use fas_core::preprocess::Face;

/// Colours of the overlay.
pub mod colors {
    use embedded_graphics::pixelcolor::Rgb888;
    pub const GRANT: Rgb888 = Rgb888::new(0, 200, 70);
    pub const DENY: Rgb888 = Rgb888::new(220, 30, 30);
    pub const NO_DECISION: Rgb888 = Rgb888::new(255, 176, 0);
    pub const PANEL: Rgb888 = Rgb888::new(24, 24, 24);
    pub const BAR_TRACK: Rgb888 = Rgb888::new(70, 70, 70);
    pub const THRESHOLD_MARK: Rgb888 = Rgb888::new(255, 255, 255);
    pub const TEXT: Rgb888 = Rgb888::new(255, 255, 255);
    pub const FACE: Rgb888 = Rgb888::new(0, 200, 255);
    pub const LANDMARK: Rgb888 = Rgb888::new(255, 240, 0);
    pub const PROGRESS: Rgb888 = Rgb888::new(0, 200, 255);
}

/// Everything the overlay shows; `None` parts are not drawn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverlayState {
    /// The tracked face (box and the five landmarks), in frame pixels.
    pub face: Option<Face>,
    /// Latest per-frame `p_live`.
    pub score: Option<f32>,
    /// The bar the current session must clear.
    pub threshold: f32,
    /// The last decision, shown as a banner.
    pub verdict: Option<Verdict>,
    /// Good frames collected and frames needed, while a session runs.
    pub progress: Option<(usize, usize)>,
    pub fps: Option<f32>,
    /// e.g. "camera lost - door locked".
    pub status: String,
}

/// Banner colour of a decision.
pub fn decision_color(d: Decision) -> Rgb888 {
    match d {
        Decision::Grant => colors::GRANT,
        Decision::Deny => colors::DENY,
        Decision::NoDecision => colors::NO_DECISION,
    }
}

/// Words for a reason, as shown on the banner.
pub fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::AboveThreshold => "above threshold",
        Reason::BelowThreshold => "below threshold",
        Reason::NoFace => "no face",
        Reason::MultipleFaces => "multiple faces",
        Reason::NotEnoughFrames => "not enough frames",
        Reason::Timeout => "timeout",
        Reason::Cooldown => "cooldown",
        Reason::CameraLost => "camera lost",
        Reason::BadFrame => "bad frame",
        Reason::InferenceError => "inference error",
        Reason::ConfigError => "config error",
        Reason::InternalError => "internal error",
        Reason::LockedOut => "locked out",
        Reason::Verified => "verified",
        Reason::CredentialUnknown => "unknown card",
        Reason::CredentialInvalid => "card not read",
        Reason::FaceMismatch => "face does not match",
        Reason::FaceChanged => "face changed",
    }
}

/// Progress boxes are drawn only up to this many frames (text alone beyond).
pub const MAX_PROGRESS_BOXES: usize = 20;

/// Where each part of the overlay goes on a target of a given size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverlayLayout {
    pub size: Size,
    pub font: &'static MonoFont<'static>,
    /// Top strip: status text on the left, FPS on the right.
    pub status: Rectangle,
    /// Decision banner.
    pub banner: Rectangle,
    /// Dark panel behind the info line and the score bar (to the bottom edge).
    pub panel: Rectangle,
    /// Info line: score, threshold, progress.
    pub info: Rectangle,
    /// Score bar track; the fill grows from its left edge.
    pub bar: Rectangle,
    /// Face box stroke width.
    pub stroke: u32,
    /// Landmark dot diameter.
    pub dot: u32,
}

fn i(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl OverlayLayout {
    pub fn for_size(size: Size) -> Self {
        let (w, h) = (size.width, size.height);
        let font = if w >= 480 && h >= 360 {
            &FONT_10X20
        } else {
            &FONT_6X10
        };
        let line = font.character_size.height + 4;
        let margin = (h / 100).max(2);
        let bar_h = (h / 40).max(4);
        let bar = Rectangle::new(
            Point::new(i(margin), i(h).saturating_sub(i(margin + bar_h))),
            Size::new(w.saturating_sub(2 * margin), bar_h),
        );
        let info = Rectangle::new(
            Point::new(0, bar.top_left.y.saturating_sub(i(margin + line))),
            Size::new(w, line),
        );
        let panel = Rectangle::new(
            info.top_left,
            Size::new(
                w,
                u32::try_from(i(h).saturating_sub(info.top_left.y)).unwrap_or(0),
            ),
        );
        let banner = Rectangle::new(
            Point::new(0, info.top_left.y.saturating_sub(i(2 * line))),
            Size::new(w, 2 * line),
        );
        Self {
            size,
            font,
            status: Rectangle::new(Point::zero(), Size::new(w, line)),
            banner,
            panel,
            info,
            bar,
            stroke: (h / 240).max(2),
            dot: (h / 120).max(3),
        }
    }

    /// Width of the bar fill for `score` (clamped to `[0, 1]`; 0 for a non-finite score).
    pub fn fill_width(&self, score: f32) -> u32 {
        if !score.is_finite() {
            return 0;
        }
        (f64::from(score.clamp(0.0, 1.0)) * f64::from(self.bar.size.width)).round() as u32
    }

    /// The threshold mark: 2 px wide, overhanging the bar above and below.
    pub fn threshold_mark(&self, threshold: f32) -> Rectangle {
        let w = self.bar.size.width;
        let x = self.bar.top_left.x + i(self.fill_width(threshold).min(w.saturating_sub(1)));
        let over = (self.bar.size.height / 2).max(2);
        Rectangle::new(
            Point::new(x - 1, self.bar.top_left.y - i(over)),
            Size::new(2, self.bar.size.height + 2 * over),
        )
    }

    /// Box `k` (0-based) of `n` progress boxes, right-aligned in the info line; `None` when
    /// `n` is 0, above [`MAX_PROGRESS_BOXES`], or the boxes do not fit.
    pub fn progress_box(&self, k: usize, n: usize) -> Option<Rectangle> {
        if n == 0 || n > MAX_PROGRESS_BOXES || k >= n {
            return None;
        }
        let side = self.info.size.height.saturating_sub(6).max(3);
        let gap = 2;
        let total = n as u32 * (side + gap);
        let right = self.info.top_left.x + i(self.info.size.width) - i(side);
        // Keep clear of the text: the boxes get at most the right third.
        if total > self.info.size.width / 3 {
            return None;
        }
        let x0 = right - i(total);
        Some(Rectangle::new(
            Point::new(x0 + i(k as u32 * (side + gap)), self.info.top_left.y + 3),
            Size::new(side, side),
        ))
    }

    fn max_chars(&self) -> usize {
        (self.size.width / self.font.character_size.width.max(1)) as usize
    }
}

/// Replaces what the ASCII fonts cannot show and cuts to `max` characters.
fn ascii(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| match c {
            '—' | '–' | '‒' => '-',
            '·' | '•' => '.',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .take(max)
        .collect()
}

/// The face box corner, clamped so shapes far outside stay cheap; `None` if not finite.
fn corner(x: f32, y: f32, size: Size) -> Option<Point> {
    if !(x.is_finite() && y.is_finite()) {
        return None;
    }
    let clamp = |v: f32, max: u32| {
        let pad = 64.0;
        (v.round() as f64).clamp(-pad, f64::from(max) + pad) as i32
    };
    Some(Point::new(clamp(x, size.width), clamp(y, size.height)))
}

/// Draws the overlay described by `state` onto `target`.
pub fn draw_overlay<D>(target: &mut D, state: &OverlayState) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let size = target.bounding_box().size;
    if size.width == 0 || size.height == 0 {
        return Ok(());
    }
    let layout = OverlayLayout::for_size(size);
    let chars = layout.max_chars();
    let text_style = MonoTextStyle::new(layout.font, colors::TEXT);

    // Face box and landmarks first: the panels are drawn over them.
    if let Some(face) = &state.face {
        let color = state
            .verdict
            .map(|v| decision_color(v.decision))
            .unwrap_or(colors::FACE);
        let [x1, y1, x2, y2] = face.bbox;
        if let (Some(a), Some(b)) = (corner(x1, y1, size), corner(x2, y2, size)) {
            let style = PrimitiveStyleBuilder::new()
                .stroke_color(color)
                .stroke_width(layout.stroke)
                .stroke_alignment(StrokeAlignment::Inside)
                .build();
            Rectangle::with_corners(a, b)
                .into_styled(style)
                .draw(target)?;
        }
        for [x, y] in face.landmarks {
            if let Some(c) = corner(x, y, size) {
                Circle::with_center(c, layout.dot)
                    .into_styled(PrimitiveStyle::with_fill(colors::LANDMARK))
                    .draw(target)?;
            }
        }
    }

    // Status strip: status text left, FPS right.
    let has_status = !state.status.is_empty();
    if has_status || state.fps.is_some() {
        target.fill_solid(&layout.status, colors::PANEL)?;
        let top = |r: &Rectangle| Point::new(r.top_left.x + 2, r.top_left.y + 2);
        let fps = state
            .fps
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:.1} fps"))
            .unwrap_or_default();
        if !fps.is_empty() {
            let right = Point::new(
                layout.status.top_left.x + i(layout.status.size.width) - 3,
                layout.status.top_left.y + 2,
            );
            Text::with_text_style(
                &fps,
                right,
                text_style,
                TextStyleBuilder::new()
                    .alignment(Alignment::Right)
                    .baseline(Baseline::Top)
                    .build(),
            )
            .draw(target)?;
        }
        if has_status {
            let room = chars.saturating_sub(fps.len() + 2);
            Text::with_baseline(
                &ascii(&state.status, room),
                top(&layout.status),
                text_style,
                Baseline::Top,
            )
            .draw(target)?;
        }
    }

    // Decision banner.
    if let Some(v) = state.verdict {
        let color = decision_color(v.decision);
        target.fill_solid(&layout.banner, color)?;
        let word = match v.decision {
            Decision::Grant => "GRANT",
            Decision::Deny => "DENY",
            Decision::NoDecision => "NO DECISION",
        };
        let ink = if v.decision == Decision::Deny {
            Rgb888::WHITE
        } else {
            Rgb888::BLACK
        };
        Text::with_text_style(
            &ascii(
                &format!("{word} - {}", reason_text(v.reason)),
                chars.saturating_sub(2),
            ),
            layout.banner.center(),
            MonoTextStyle::new(layout.font, ink),
            TextStyleBuilder::new()
                .alignment(Alignment::Center)
                .baseline(Baseline::Middle)
                .build(),
        )
        .draw(target)?;
    }

    // Bottom panel: info line, progress boxes, score bar with threshold mark.
    target.fill_solid(&layout.panel, colors::PANEL)?;
    let score_text = match state.score {
        Some(s) if s.is_finite() => format!("score {s:.2}"),
        Some(_) => "score ?".to_string(),
        None => "score -".to_string(),
    };
    let mut info = format!("{score_text}  thr {:.2}", state.threshold);
    if let Some((k, n)) = state.progress {
        info.push_str(&format!("  frames {k}/{n}"));
        for b in 0..n.min(MAX_PROGRESS_BOXES) {
            if let Some(r) = layout.progress_box(b, n) {
                let style = if b < k {
                    PrimitiveStyle::with_fill(colors::PROGRESS)
                } else {
                    PrimitiveStyle::with_stroke(colors::PROGRESS, 1)
                };
                r.into_styled(style).draw(target)?;
            }
        }
    }
    Text::with_baseline(
        &ascii(&info, chars.saturating_sub(1)),
        Point::new(layout.info.top_left.x + 2, layout.info.top_left.y + 2),
        text_style,
        Baseline::Top,
    )
    .draw(target)?;

    target.fill_solid(&layout.bar, colors::BAR_TRACK)?;
    if let Some(s) = state.score.filter(|s| s.is_finite()) {
        let fill = if s >= state.threshold {
            colors::GRANT
        } else {
            colors::DENY
        };
        let r = Rectangle::new(
            layout.bar.top_left,
            Size::new(layout.fill_width(s), layout.bar.size.height),
        );
        target.fill_solid(&r, fill)?;
    }
    if state.threshold.is_finite() {
        target.fill_solid(
            &layout.threshold_mark(state.threshold),
            colors::THRESHOLD_MARK,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_stacks_top_to_bottom() {
        for (w, h) in [(640, 480), (320, 240), (1280, 800), (64, 48)] {
            let l = OverlayLayout::for_size(Size::new(w, h));
            assert!(l.status.bottom_right().unwrap().y < l.banner.top_left.y || h < 100);
            assert_eq!(
                l.banner.top_left.y + i(l.banner.size.height),
                l.info.top_left.y
            );
            assert!(l.info.bottom_right().unwrap().y < l.bar.top_left.y);
            assert!(l.bar.bottom_right().unwrap().y < i(h));
            assert_eq!(l.panel.bottom_right().unwrap().y, i(h) - 1);
        }
        assert_eq!(
            OverlayLayout::for_size(Size::new(640, 480))
                .font
                .character_size
                .width,
            10
        );
        assert_eq!(
            OverlayLayout::for_size(Size::new(320, 240))
                .font
                .character_size
                .width,
            6
        );
    }

    #[test]
    fn fill_width_is_proportional_and_clamped() {
        let l = OverlayLayout::for_size(Size::new(212, 100)); // bar 208 px wide
        assert_eq!(l.bar.size.width, 208);
        assert_eq!(l.fill_width(0.5), 104);
        assert_eq!(l.fill_width(0.25), 52);
        assert_eq!(l.fill_width(1.7), 208);
        assert_eq!(l.fill_width(-1.0), 0);
        assert_eq!(l.fill_width(f32::NAN), 0);
    }

    #[test]
    fn text_is_made_ascii_and_cut() {
        assert_eq!(
            ascii("camera lost — door locked", 100),
            "camera lost - door locked"
        );
        assert_eq!(ascii("überfall", 4), "?ber");
    }
}
