//! Capture backends through the `FrameSource` trait: image folders, videos decoded by
//! ffmpeg, the synthetic camera. Needs `ffmpeg`/`ffprobe` on PATH (a missing tool fails
//! the video tests; they never skip).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fas_edge::camera::{CaptureError, FileSource, FrameSource, SyntheticSource};

fn pattern(i: u32, w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + i * 30) as u8, (y * 5) as u8, (i * 50) as u8])
    })
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn folder_in_name_order_with_a_corrupt_file_named() {
    let dir = tempfile::tempdir().unwrap();
    pattern(0, 16, 12).save(dir.path().join("a_0.png")).unwrap();
    pattern(1, 16, 12).save(dir.path().join("c_2.JPG")).unwrap();
    std::fs::write(dir.path().join("b_1.png"), b"not a png at all").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let mut src = FileSource::open(dir.path()).unwrap();
    assert_eq!(src.image_count(), Some(3));
    assert!(src.describe().contains("3 images"), "{}", src.describe());

    let f0 = src.next_frame().unwrap();
    assert_eq!(f0.image.data, pattern(0, 16, 12).into_raw());
    assert_eq!((f0.seq, f0.t, f0.dropped_before), (0, Duration::ZERO, 0));

    let e = src.next_frame().unwrap_err();
    assert!(matches!(e, CaptureError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("b_1.png"), "{e}");

    let f2 = src.next_frame().unwrap();
    assert_eq!(
        (f2.seq, f2.dropped_before),
        (2, 1),
        "the corrupt file counts as dropped"
    );
    assert_eq!((f2.image.width, f2.image.height), (16, 12));
    assert!((f2.t.as_secs_f64() - 2.0 / 30.0).abs() < 1e-9);

    for _ in 0..2 {
        match src.next_frame() {
            Err(CaptureError::EndOfInput { frames, .. }) => assert_eq!(frames, 3),
            other => panic!("expected end of input, got {other:?}"),
        }
    }
}

#[test]
fn folder_timeline_follows_the_configured_rate() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        pattern(i, 4, 4)
            .save(dir.path().join(format!("{i}.png")))
            .unwrap();
    }
    let mut src = FileSource::open(dir.path())
        .unwrap()
        .with_fps(10.0)
        .unwrap();
    src.next_frame().unwrap();
    assert_eq!(src.next_frame().unwrap().t, Duration::from_millis(100));
    assert!(FileSource::open(dir.path()).unwrap().with_fps(0.0).is_err());
}

/// A lossless video (FFV1) decodes to exactly the frames it was made from.
#[test]
fn video_decodes_every_frame_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        pattern(i, 32, 24)
            .save(dir.path().join(format!("f{i:02}.png")))
            .unwrap();
    }
    let video = dir.path().join("clip.mkv");
    let pattern_arg = dir.path().join("f%02d.png");
    ffmpeg(&[
        "-framerate",
        "10",
        "-i",
        pattern_arg.to_str().unwrap(),
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "bgr0",
        video.to_str().unwrap(),
    ]);
    let mut src = FileSource::open(&video).unwrap();
    assert!(src.describe().contains("32x24"), "{}", src.describe());
    for i in 0..5 {
        let f = src.next_frame().unwrap();
        assert_eq!(f.seq, u64::from(i));
        assert_eq!(f.image.data, pattern(i, 32, 24).into_raw(), "frame {i}");
        assert!((f.t.as_secs_f64() - f64::from(i) / 10.0).abs() < 1e-9);
    }
    assert!(matches!(
        src.next_frame(),
        Err(CaptureError::EndOfInput { frames: 5, .. })
    ));
}

/// A phone video stored landscape with a 90° display rotation comes out portrait, turned
/// the way a player shows it (rotation 90 = counter-clockwise).
#[test]
fn rotated_video_comes_out_upright() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("one.png");
    let src = pattern(0, 32, 16);
    src.save(&png).unwrap();
    let plain = dir.path().join("plain.mov");
    let rotated = dir.path().join("rotated.mov");
    // Lossless PNG-in-MOV; the rotation is written while remuxing.
    ffmpeg(&[
        "-i",
        png.to_str().unwrap(),
        "-c:v",
        "png",
        "-pix_fmt",
        "rgb24",
        plain.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    let mut src_frames = FileSource::open(&rotated).unwrap();
    let f = src_frames.next_frame().unwrap();
    assert_eq!((f.image.width, f.image.height), (16, 32));
    let want = fas_core::preprocess::RgbImage::from_fn(16, 32, |x, y| src.get_pixel(31 - y, x).0);
    assert_eq!(f.image, want);
}

#[test]
fn a_file_that_is_no_video_fails_to_open_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.mp4");
    std::fs::write(&bogus, b"definitely not a video").unwrap();
    let e = FileSource::open(&bogus).err().expect("must not open");
    assert!(matches!(e, CaptureError::Open { .. }), "{e}");
    assert!(e.to_string().contains("bogus.mp4"), "{e}");
}

#[test]
fn truncated_video_reports_corrupt_then_end() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("long.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=3",
        "-c:v",
        "ffv1",
        video.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&video).unwrap();
    let cut = dir.path().join("cut.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut src = FileSource::open(&cut).unwrap();
    let mut frames = 0;
    let end = loop {
        match src.next_frame() {
            Ok(f) => {
                assert_eq!((f.image.width, f.image.height), (64, 48));
                frames += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(frames > 0 && frames < 30, "{frames} frames");
    // Whether ffmpeg notices the cut or just stops, the source ends and stays ended.
    assert!(
        matches!(
            end,
            CaptureError::EndOfInput { .. } | CaptureError::Corrupt { .. }
        ),
        "{end}"
    );
    assert!(matches!(
        src.next_frame(),
        Err(CaptureError::EndOfInput { .. })
    ));
}

#[test]
fn synthetic_source_as_a_trait_object() {
    let mut src: Box<dyn FrameSource> =
        Box::new(SyntheticSource::from_spec("synthetic:5").unwrap());
    assert!(src.describe().starts_with("synthetic:5"));
    let a = src.next_frame().unwrap();
    let b = src.next_frame().unwrap();
    assert_eq!((a.seq, b.seq), (0, 1));
    assert!(b.t > a.t);
    assert_eq!(a.image.data.len(), 640 * 480 * 3);
}

#[test]
fn synthetic_truth_covers_live_and_attack_segments() {
    let src = SyntheticSource::new(11);
    let n = u64::from(src.segment_frames());
    let labels: std::collections::HashSet<_> = (0..12).map(|s| src.truth_of(s * n).label).collect();
    assert_eq!(labels.len(), 2, "both live and spoof segments within 12");
    // The truth reported after a frame is that frame's.
    let mut src = src.starting_at(3 * n + 1);
    src.next_frame().unwrap();
    let t = src.truth().unwrap();
    assert_eq!((t.index, t.segment), (3 * n + 1, 3));
    assert_eq!(t, &SyntheticSource::new(11).truth_of(3 * n + 1));
}

#[test]
fn missing_input_is_an_open_error() {
    let e = FileSource::open(Path::new("/definitely/not/here.mp4"))
        .err()
        .unwrap();
    assert!(matches!(e, CaptureError::Open { .. }));
}
