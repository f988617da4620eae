//! Normalisation and NCHW packing — [`preprocess`] is THE entry point every crate calls
//! to turn a frame + face into the model's input.
//!
//! Pipeline: validate → crop (align or box, bilinear, black outside) at the spec's
//! size → per colour group convert the 8-bit crop → `(v / 255 - mean[c]) / std[c]` in
//! f32, channel-major (NCHW, batch 1). Single-threaded and free of floating-point
//! reassociation, so the same input always gives bit-identical output.

use super::align::crop_face;
use super::color::convert;
use super::{Face, PreprocessError, PreprocessSpec, RgbImage};

/// Per channel, the normalised value of each 8-bit level (computed as
/// `(v as f32 / 255.0 - mean) / std`).
fn lut(spec: &PreprocessSpec) -> Vec<[f32; 256]> {
    spec.normalize
        .mean
        .iter()
        .zip(&spec.normalize.std)
        .map(|(&m, &s)| std::array::from_fn(|v| (v as f32 / 255.0 - m) / s))
        .collect()
}

fn check_out(spec: &PreprocessSpec, got: usize, faces: usize) -> Result<(), PreprocessError> {
    let expected = spec.tensor_len() * faces;
    if got != expected {
        return Err(PreprocessError::OutputLength { expected, got });
    }
    Ok(())
}

/// Normalises an already-cropped 8-bit RGB image (`spec.width`×`spec.height`) into
/// `out` (`spec.tensor_len()` floats, CHW).
pub fn normalize_into(
    crop: &RgbImage,
    spec: &PreprocessSpec,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    spec.validate()?;
    crop.validate()?;
    if crop.width != spec.width || crop.height != spec.height {
        return Err(PreprocessError::OutputLength {
            expected: spec.tensor_len(),
            got: spec.channels() * crop.width as usize * crop.height as usize,
        });
    }
    check_out(spec, out.len(), 1)?;
    write_chw(crop, spec, &lut(spec), out);
    Ok(())
}

fn write_chw(crop: &RgbImage, spec: &PreprocessSpec, lut: &[[f32; 256]], out: &mut [f32]) {
    let plane = crop.width as usize * crop.height as usize;
    for (g, &space) in spec.color.iter().enumerate() {
        let conv = convert(crop, space);
        for c in 0..3 {
            let ch = 3 * g + c;
            let table = &lut[ch];
            let dst = &mut out[ch * plane..(ch + 1) * plane];
            for (o, px) in dst.iter_mut().zip(conv.data.chunks_exact(3)) {
                *o = table[px[c] as usize];
            }
        }
    }
}

/// Preprocesses one face into `out` (`spec.tensor_len()` floats, CHW), allocation-light
/// for the edge device.
pub fn preprocess_into(
    frame: &RgbImage,
    face: &Face,
    spec: &PreprocessSpec,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    spec.validate()?;
    check_out(spec, out.len(), 1)?;
    let crop = crop_face(frame, face, spec.crop, spec.width, spec.height)?;
    write_chw(&crop, spec, &lut(spec), out);
    Ok(())
}

/// Preprocesses one face: `3 * spec.color.len() * spec.height * spec.width` floats,
/// NCHW with batch 1.
pub fn preprocess(
    frame: &RgbImage,
    face: &Face,
    spec: &PreprocessSpec,
) -> Result<Vec<f32>, PreprocessError> {
    spec.validate()?;
    let mut out = vec![0.0; spec.tensor_len()];
    preprocess_into(frame, face, spec, &mut out)?;
    Ok(out)
}

/// Preprocesses a batch: NCHW with N = `items.len()`, item `i` at
/// `i * spec.tensor_len()`. Fails on the first bad item.
pub fn preprocess_batch(
    items: &[(&RgbImage, &Face)],
    spec: &PreprocessSpec,
) -> Result<Vec<f32>, PreprocessError> {
    spec.validate()?;
    let n = spec.tensor_len();
    let mut out = vec![0.0; n * items.len()];
    for ((frame, face), dst) in items.iter().zip(out.chunks_exact_mut(n)) {
        preprocess_into(frame, face, spec, dst)?;
    }
    Ok(out)
}

/// Inverse of the normalisation: one 8-bit image per colour group (in that group's
/// space, e.g. H, S, V bytes for HSV), values rounded and clamped. For debugging and
/// visualising what a model sees.
pub fn denormalize(
    tensor: &[f32],
    spec: &PreprocessSpec,
) -> Result<Vec<RgbImage>, PreprocessError> {
    spec.validate()?;
    check_out(spec, tensor.len(), 1)?;
    let plane = spec.width as usize * spec.height as usize;
    let groups = (0..spec.color.len())
        .map(|g| {
            let mut img = RgbImage::black(spec.width, spec.height);
            for c in 0..3 {
                let ch = 3 * g + c;
                let (m, s) = (spec.normalize.mean[ch], spec.normalize.std[ch]);
                for (i, &v) in tensor[ch * plane..(ch + 1) * plane].iter().enumerate() {
                    let level = ((v * s + m) * 255.0).round();
                    img.data[i * 3 + c] = if level.is_nan() {
                        0
                    } else {
                        level.clamp(0.0, 255.0) as u8
                    };
                }
            }
            img
        })
        .collect();
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{ColorSpace, CropSpec, Normalize, SpecError};

    fn spec(color: Vec<ColorSpace>) -> PreprocessSpec {
        let ch = 3 * color.len();
        PreprocessSpec {
            crop: CropSpec::Box { scale: 1.0 },
            width: 4,
            height: 4,
            color,
            normalize: Normalize::uniform(0.0, 1.0, ch),
        }
    }

    fn frame() -> RgbImage {
        RgbImage::from_fn(4, 4, |x, y| [(x * 60) as u8, (y * 80) as u8, 17])
    }

    fn face() -> Face {
        // The whole 4x4 frame at 4x4: an identity crop.
        Face {
            bbox: [0.0, 0.0, 4.0, 4.0],
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
        }
    }

    #[test]
    fn layout_is_chw() {
        let s = spec(vec![ColorSpace::Rgb, ColorSpace::Bgr]);
        let t = preprocess(&frame(), &face(), &s).unwrap();
        assert_eq!(t.len(), 6 * 16);
        // Channel 2 (B) is the constant 17; channel 3 (BGR's B) too.
        assert!(t[32..48].iter().all(|&v| v == 17.0 / 255.0));
        assert_eq!(&t[32..48], &t[48..64]);
        assert_eq!(&t[0..16], &t[80..96]); // R == BGR's R
        assert_eq!(t[1], 60.0 / 255.0); // x = 1, y = 0
        assert_eq!(t[16 + 4], 80.0 / 255.0); // G at x = 0, y = 1
    }

    #[test]
    fn batch_concatenates() {
        let s = spec(vec![ColorSpace::Hsv]);
        let (f, fc) = (frame(), face());
        let one = preprocess(&f, &fc, &s).unwrap();
        let two = preprocess_batch(&[(&f, &fc), (&f, &fc)], &s).unwrap();
        assert_eq!(two, [one.clone(), one].concat());
    }

    #[test]
    fn errors_are_typed() {
        let mut s = spec(vec![ColorSpace::Rgb]);
        s.normalize.std[0] = 0.0;
        assert!(matches!(
            preprocess(&frame(), &face(), &s),
            Err(PreprocessError::Spec(SpecError::ZeroStd { index: 0 }))
        ));
        let s = spec(vec![ColorSpace::Rgb]);
        assert!(matches!(
            preprocess(&RgbImage::black(0, 0), &face(), &s),
            Err(PreprocessError::EmptyImage { .. })
        ));
        let mut out = vec![0.0; 5];
        assert!(matches!(
            preprocess_into(&frame(), &face(), &s, &mut out),
            Err(PreprocessError::OutputLength {
                expected: 48,
                got: 5
            })
        ));
    }

    #[test]
    fn denormalize_inverts() {
        let mut s = spec(vec![ColorSpace::Ycrcb]);
        s.normalize = Normalize::imagenet(1);
        let crop = frame();
        let mut t = vec![0.0; s.tensor_len()];
        normalize_into(&crop, &s, &mut t).unwrap();
        let back = denormalize(&t, &s).unwrap();
        assert_eq!(back[0], convert(&crop, ColorSpace::Ycrcb));
    }
}
