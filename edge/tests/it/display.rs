//! Golden-style checks of the overlay with real pixel assertions, and of what reaches a
//! framebuffer file and a PNG snapshot.

use std::fs;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;

use fas_core::decision::{Decision, Reason, Verdict};
use fas_core::preprocess::{Face, RgbImage};
use fas_edge::display::fb::{render, Bitfield, FbGeometry, FbWriter};
use fas_edge::display::overlay::colors;
use fas_edge::display::{
    draw_overlay, FrameBuffer, OverlayLayout, OverlayState, SnapshotConfig, Snapshots,
};

const GRAY: Rgb888 = Rgb888::new(100, 100, 100);

fn gray(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |_, _| [100, 100, 100])
}

fn face(bbox: [f32; 4]) -> Face {
    let [x1, y1, x2, y2] = bbox;
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    Face {
        bbox,
        landmarks: [
            [cx - 20.0, cy - 20.0],
            [cx + 20.0, cy - 20.0],
            [cx, cy],
            [cx - 15.0, cy + 25.0],
            [cx + 15.0, cy + 25.0],
        ],
        score: 0.99,
    }
}

fn overlaid(frame: &RgbImage, state: &OverlayState) -> FrameBuffer {
    let mut fb = FrameBuffer::from_frame(frame).unwrap();
    draw_overlay(&mut fb, state).unwrap();
    fb
}

fn px(fb: &FrameBuffer, x: i32, y: i32) -> Rgb888 {
    fb.pixel(x, y)
        .unwrap_or_else(|| panic!("({x},{y}) outside"))
}

#[test]
fn banner_colour_per_decision() {
    for (reason, want) in [
        (Reason::AboveThreshold, colors::GRANT),
        (Reason::BelowThreshold, colors::DENY),
        (Reason::CameraLost, colors::DENY),
        (Reason::Timeout, colors::NO_DECISION),
        (Reason::Cooldown, colors::NO_DECISION),
    ] {
        for (w, h) in [(640, 480), (320, 240)] {
            let state = OverlayState {
                verdict: Some(Verdict::from_reason(reason)),
                threshold: 0.7,
                ..Default::default()
            };
            let fb = overlaid(&gray(w, h), &state);
            let l = OverlayLayout::for_size(Size::new(w, h));
            let b = l.banner;
            // Left and right ends of the banner are clear of its centred text.
            for (x, y) in [
                (b.top_left.x + 1, b.top_left.y + 1),
                (b.top_left.x + 5, b.center().y),
                (b.top_left.x + b.size.width as i32 - 3, b.center().y),
                (b.top_left.x + 1, b.top_left.y + b.size.height as i32 - 1),
            ] {
                assert_eq!(px(&fb, x, y), want, "{reason:?} {w}x{h} at ({x},{y})");
            }
            // The text is there: the banner centre row holds ink of another colour.
            let ink = (0..w as i32)
                .filter(|&x| px(&fb, x, b.center().y) != want)
                .count();
            assert!(ink > 10, "{reason:?}: no banner text");
            // Just above the banner is the camera frame.
            assert_eq!(px(&fb, 5, b.top_left.y - 1), GRAY);
        }
    }
    // No verdict, no banner.
    let fb = overlaid(&gray(640, 480), &OverlayState::default());
    let b = OverlayLayout::for_size(Size::new(640, 480)).banner;
    assert_eq!(px(&fb, 5, b.center().y), GRAY);
}

#[test]
fn score_bar_fill_is_proportional() {
    let (w, h) = (640, 480);
    let l = OverlayLayout::for_size(Size::new(w, h));
    let bar = l.bar;
    let y = bar.center().y;
    for (score, threshold, fill) in [
        (0.1, 0.95, colors::DENY),
        (0.33, 0.95, colors::DENY),
        (0.5, 0.95, colors::DENY),
        (0.77, 0.95, colors::DENY),
        (0.9, 0.05, colors::GRANT),
        (1.0, 0.05, colors::GRANT),
    ] {
        let state = OverlayState {
            score: Some(score),
            threshold,
            ..Default::default()
        };
        let fb = overlaid(&gray(w, h), &state);
        let expect = (f64::from(score) * f64::from(bar.size.width)).round() as i32;
        let filled: Vec<i32> = (bar.top_left.x..bar.top_left.x + bar.size.width as i32)
            .filter(|&x| px(&fb, x, y) == fill)
            .collect();
        // The threshold mark (2 px) may sit inside the fill.
        let mark = l.threshold_mark(threshold);
        let hidden = (mark.top_left.x..mark.top_left.x + 2)
            .filter(|&x| x >= bar.top_left.x && x < bar.top_left.x + expect)
            .count() as i32;
        assert_eq!(filled.len() as i32, expect - hidden, "score {score}");
        assert_eq!(filled.first().copied(), Some(bar.top_left.x));
        if expect < bar.size.width as i32 {
            assert_eq!(
                px(&fb, bar.top_left.x + expect - 1, y),
                fill,
                "score {score}"
            );
            assert_eq!(
                px(&fb, bar.top_left.x + expect, y),
                colors::BAR_TRACK,
                "score {score}"
            );
        }
    }
    // No score: only the track and the mark.
    let fb = overlaid(
        &gray(w, h),
        &OverlayState {
            threshold: 0.5,
            ..Default::default()
        },
    );
    assert_eq!(px(&fb, bar.top_left.x + 1, y), colors::BAR_TRACK);
}

#[test]
fn threshold_mark_sits_at_the_threshold_and_overhangs() {
    let (w, h) = (640, 480);
    let l = OverlayLayout::for_size(Size::new(w, h));
    for threshold in [0.25f32, 0.5, 0.8] {
        let fb = overlaid(
            &gray(w, h),
            &OverlayState {
                score: Some(0.1),
                threshold,
                ..Default::default()
            },
        );
        let x =
            l.bar.top_left.x + (f64::from(threshold) * f64::from(l.bar.size.width)).round() as i32;
        for y in [
            l.bar.top_left.y - 1,
            l.bar.center().y,
            l.bar.top_left.y + l.bar.size.height as i32,
        ] {
            assert_eq!(
                px(&fb, x, y),
                colors::THRESHOLD_MARK,
                "thr {threshold} y {y}"
            );
            assert_eq!(px(&fb, x - 1, y), colors::THRESHOLD_MARK);
        }
        assert_eq!(px(&fb, x + 1, l.bar.center().y), colors::BAR_TRACK);
        assert_eq!(px(&fb, x - 2, l.bar.center().y), colors::BAR_TRACK);
    }
}

#[test]
fn face_box_edges_and_landmarks() {
    let frame = gray(640, 480);
    let f = face([200.0, 100.0, 300.0, 250.0]);
    for (verdict, colour) in [
        (None, colors::FACE),
        (
            Some(Verdict::from_reason(Reason::AboveThreshold)),
            colors::GRANT,
        ),
        (Some(Verdict::from_reason(Reason::BadFrame)), colors::DENY),
    ] {
        let fb = overlaid(
            &frame,
            &OverlayState {
                face: Some(f),
                verdict,
                threshold: 0.5,
                ..Default::default()
            },
        );
        // Stroke 2 px inside the box [200, 300] × [100, 250].
        for (x, y, on) in [
            (199, 175, false),
            (200, 175, true),
            (201, 175, true),
            (202, 175, false),
            (298, 175, false),
            (299, 175, true),
            (300, 175, true),
            (301, 175, false),
            (230, 99, false),
            (230, 100, true),
            (230, 101, true),
            (230, 102, false),
            (230, 249, true),
            (230, 250, true),
            (230, 251, false),
        ] {
            let want = if on { colour } else { GRAY };
            assert_eq!(px(&fb, x, y), want, "{verdict:?} ({x},{y})");
        }
        for [x, y] in f.landmarks {
            assert_eq!(px(&fb, x as i32, y as i32), colors::LANDMARK);
        }
        assert_eq!(px(&fb, 270, 130), GRAY, "box interior untouched");
    }
}

#[test]
fn faces_partly_or_wholly_outside_do_not_panic() {
    let frame = gray(320, 240);
    let partly = overlaid(
        &frame,
        &OverlayState {
            face: Some(face([-40.0, -30.0, 60.0, 80.0])),
            ..Default::default()
        },
    );
    // Right and bottom edges are visible where they fall inside.
    assert_eq!(px(&partly, 60, 50), colors::FACE);
    assert_eq!(px(&partly, 59, 50), colors::FACE);
    assert_eq!(px(&partly, 61, 50), GRAY);
    assert_eq!(px(&partly, 30, 80), colors::FACE);
    assert_eq!(px(&partly, 30, 81), GRAY);
    assert_eq!(px(&partly, 0, 50), GRAY, "left edge is off-frame");

    for bbox in [
        [1000.0, 1000.0, 2000.0, 2000.0],
        [-1e30, -1e30, 1e30, 1e30],
        [f32::NAN, 0.0, 10.0, 10.0],
        [f32::INFINITY, f32::NEG_INFINITY, 5.0, 5.0],
        [300.0, 200.0, 100.0, 50.0], // corners swapped
    ] {
        let mut f = face(bbox);
        f.landmarks[0] = [f32::NAN, 1e20];
        let fb = overlaid(
            &frame,
            &OverlayState {
                face: Some(f),
                ..Default::default()
            },
        );
        if bbox[0] >= 1000.0 {
            let img = fb.image();
            assert!(
                img.data.chunks_exact(3).all(|p| p != [0, 200, 255]),
                "a face far outside leaves no box"
            );
        }
    }
}

#[test]
fn zero_and_tiny_frames_do_not_panic() {
    let state = OverlayState {
        face: Some(face([0.0, 0.0, 5.0, 5.0])),
        score: Some(0.5),
        threshold: 0.7,
        verdict: Some(Verdict::from_reason(Reason::NotEnoughFrames)),
        progress: Some((3, 5)),
        fps: Some(12.5),
        status: "camera lost — door locked".into(),
    };
    for (w, h) in [
        (0, 0),
        (0, 10),
        (10, 0),
        (1, 1),
        (3, 200),
        (200, 3),
        (7, 7),
        (16, 9),
    ] {
        let mut fb = FrameBuffer::black(w, h);
        draw_overlay(&mut fb, &state).unwrap();
        assert_eq!(fb.size(), Size::new(w, h));
    }
}

#[test]
fn progress_boxes_show_k_of_n() {
    let (w, h) = (640, 480);
    let l = OverlayLayout::for_size(Size::new(w, h));
    let fb = overlaid(
        &gray(w, h),
        &OverlayState {
            progress: Some((2, 5)),
            threshold: 0.5,
            ..Default::default()
        },
    );
    for k in 0..5 {
        let r = l.progress_box(k, 5).unwrap();
        let c = r.center();
        let want = if k < 2 {
            colors::PROGRESS
        } else {
            colors::PANEL
        };
        assert_eq!(px(&fb, c.x, c.y), want, "box {k}");
        assert_eq!(
            px(&fb, r.top_left.x, r.top_left.y),
            colors::PROGRESS,
            "outline {k}"
        );
    }
    assert!(l.progress_box(0, 0).is_none() && l.progress_box(0, 500).is_none());
}

#[test]
fn status_and_fps_are_written_and_the_frame_elsewhere_kept() {
    let (w, h) = (640, 480);
    let frame = RgbImage::from_fn(w, h, |x, y| [(x % 256) as u8, (y % 256) as u8, 90]);
    let l = OverlayLayout::for_size(Size::new(w, h));
    let fb = overlaid(
        &frame,
        &OverlayState {
            fps: Some(29.97),
            status: "camera lost — door locked".into(),
            threshold: 0.5,
            ..Default::default()
        },
    );
    let ink = |x0: i32, x1: i32| {
        (x0..x1)
            .flat_map(|x| (0..l.status.size.height as i32).map(move |y| (x, y)))
            .filter(|&(x, y)| px(&fb, x, y) == colors::TEXT)
            .count()
    };
    assert!(ink(0, 200) > 50, "status text on the left");
    assert!(ink(w as i32 - 100, w as i32) > 20, "fps on the right");
    assert!(ink(300, 500) == 0, "nothing between them");
    // Between the status strip and the bottom panel the camera frame shows unchanged.
    for (x, y) in [(10, 100), (320, 240), (639, 300)] {
        assert_eq!(
            px(&fb, x, y),
            Rgb888::new((x % 256) as u8, (y % 256) as u8, 90)
        );
    }
    assert_eq!(frame.pixel(5, 5), [5, 5, 90], "camera frame untouched");
}

/// A fresh directory, removed when the returned guard drops.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("fas-edge-display-{tag}-"))
        .tempdir()
        .unwrap()
}

fn deny_frame() -> (RgbImage, OverlayLayout) {
    let state = OverlayState {
        verdict: Some(Verdict::from_reason(Reason::BelowThreshold)),
        score: Some(0.3),
        threshold: 0.7,
        ..Default::default()
    };
    let fb = overlaid(&gray(320, 240), &state);
    (
        fb.into_image(),
        OverlayLayout::for_size(Size::new(320, 240)),
    )
}

/// A 320×240 overlaid frame on a 480×300 RGB565 screen with padded rows and a y offset,
/// written to a plain file: letterboxed to 400×300 at x = 40.
#[test]
fn framebuffer_file_rgb565_letterboxed() {
    let d_dir = scratch("fb565");
    let d = d_dir.path();
    let path = d.join("fb0");
    let geometry = FbGeometry {
        line_length: 480 * 2 + 64,
        y_offset: 3,
        ..FbGeometry::rgb565(480, 300)
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut w = FbWriter::with_geometry(file, &path, geometry).unwrap();
    let (frame, l) = deny_frame();
    w.show(&frame).unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len(), (3 + 300) * (480 * 2 + 64));
    let at = |x: usize, y: usize| {
        let i = (3 + y) * (480 * 2 + 64) + x * 2;
        u16::from_ne_bytes([bytes[i], bytes[i + 1]])
    };
    let rgb565 = |c: Rgb888| {
        (u16::from(c.r() >> 3) << 11) | (u16::from(c.g() >> 2) << 5) | u16::from(c.b() >> 3)
    };
    // Scale 1.25: frame (x, y) lands near (40 + 1.25x, 1.25y).
    let to_screen = |x: i32, y: i32| {
        (
            (40.0 + 1.25 * x as f64) as usize,
            (1.25 * y as f64) as usize,
        )
    };
    let (bx, by) = to_screen(l.banner.top_left.x + 8, l.banner.center().y);
    assert_eq!(at(bx, by), rgb565(colors::DENY));
    let (gx, gy) = to_screen(160, 100);
    assert_eq!(at(gx, gy), rgb565(GRAY));
    // Score 0.3: fill at 10 % of the bar, track at 90 %.
    let bar_at = |f: f64| l.bar.top_left.x + (f * f64::from(l.bar.size.width)) as i32;
    let (fx, fy) = to_screen(bar_at(0.1), l.bar.center().y);
    assert_eq!(at(fx, fy), rgb565(colors::DENY));
    let (tx, ty) = to_screen(bar_at(0.9), l.bar.center().y);
    assert_eq!(at(tx, ty), rgb565(colors::BAR_TRACK));
    // Black bars left and right of the picture, nothing written above y_offset.
    for y in [0, 150, 299] {
        assert_eq!(at(0, y), 0);
        assert_eq!(at(39, y), 0);
        assert_eq!(at(440, y), 0);
        assert_eq!(at(479, y), 0);
        assert_ne!(at(40, y), 0);
    }
    assert!(bytes[..3 * (480 * 2 + 64)].iter().all(|&b| b == 0));
}

/// The same frame on a 32 bpp BGRA-style screen with an x offset, rendered in memory.
#[test]
fn framebuffer_bgra_with_x_offset() {
    let mut g = FbGeometry::xrgb8888(320, 240);
    g.red = Bitfield {
        offset: 8,
        length: 8,
    };
    g.green = Bitfield {
        offset: 16,
        length: 8,
    };
    g.blue = Bitfield {
        offset: 24,
        length: 8,
    };
    g.transp = Bitfield {
        offset: 0,
        length: 8,
    };
    g.x_offset = 16;
    g.line_length = (320 + 16) * 4;
    let (frame, l) = deny_frame();
    let mut out = vec![0u8; g.frame_len()];
    render(&frame, &g, &mut out).unwrap();
    let at = |x: usize, y: usize| {
        let i = y * g.line_length as usize + (16 + x) * 4;
        u32::from_ne_bytes(out[i..i + 4].try_into().unwrap())
    };
    let bgra = |c: Rgb888| {
        (u32::from(c.b()) << 24) | (u32::from(c.g()) << 16) | (u32::from(c.r()) << 8) | 0xFF
    };
    // Same size: a 1:1 copy.
    let (bx, by) = (
        l.banner.top_left.x as usize + 3,
        l.banner.center().y as usize,
    );
    assert_eq!(at(bx, by), bgra(colors::DENY));
    assert_eq!(at(100, 100), bgra(GRAY));
    assert!(out[..16 * 4].iter().all(|&b| b == 0), "x offset left alone");
    // A wrong-size buffer and an impossible geometry are refused.
    assert!(render(&frame, &g, &mut out[1..]).is_err());
    g.line_length = 100;
    assert!(render(&frame, &g, &mut vec![0; g.frame_len()]).is_err());
}

#[test]
fn framebuffer_handles_empty_frames() {
    let g = FbGeometry::rgb565(64, 48);
    let mut out = vec![0xAAu8; g.frame_len()];
    render(&RgbImage::black(0, 0), &g, &mut out).unwrap();
    assert!(out.iter().all(|&b| b == 0), "all black");
    let torn = RgbImage {
        width: 10,
        height: 10,
        data: vec![255; 7],
    };
    render(&torn, &g, &mut out).unwrap();
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn decision_snapshot_png_shows_the_banner() {
    let d_dir = scratch("png");
    let d = d_dir.path();
    let mut s = Snapshots::new(SnapshotConfig {
        dir: d.to_path_buf(),
        every_n_frames: 0,
        on_decision: true,
        keep: 0,
    })
    .unwrap();
    let (frame, l) = deny_frame();
    let path = s
        .decision(&frame, Verdict::from_reason(Reason::BelowThreshold))
        .unwrap()
        .unwrap();
    let png = image::open(&path).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (320, 240));
    let p = png.get_pixel(l.banner.top_left.x as u32 + 2, l.banner.center().y as u32);
    assert_eq!(p.0, [colors::DENY.r(), colors::DENY.g(), colors::DENY.b()]);
    assert_eq!(png.into_raw(), frame.data, "lossless");
    assert_eq!(
        Decision::Deny,
        Verdict::from_reason(Reason::BelowThreshold).decision
    );
}
