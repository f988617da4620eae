//! Face crops → `tch` tensors through fas-core's single preprocessing implementation
//! (ARCHITECTURE.md contract 1): the trainer never crops, resizes or normalises itself.

use fas_core::preprocess::{self, Face, PreprocessError, PreprocessSpec, RgbImage};
use tch::Tensor;

/// One sample as a `[1, C, H, W]` f32 tensor on the CPU.
pub fn sample_tensor(
    frame: &RgbImage,
    face: &Face,
    spec: &PreprocessSpec,
) -> Result<Tensor, PreprocessError> {
    batch_tensor(&[(frame, face)], spec)
}

/// A batch as a `[N, C, H, W]` f32 tensor on the CPU.
pub fn batch_tensor(
    items: &[(&RgbImage, &Face)],
    spec: &PreprocessSpec,
) -> Result<Tensor, PreprocessError> {
    let data = preprocess::preprocess_batch(items, spec)?;
    let shape = [
        items.len() as i64,
        spec.channels() as i64,
        i64::from(spec.height),
        i64::from(spec.width),
    ];
    Ok(Tensor::from_slice(&data).view(shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_holds_exactly_the_preprocessed_values() {
        let frame = RgbImage::from_fn(64, 48, |x, y| [(x * 3) as u8, (y * 5) as u8, 77]);
        let face = Face {
            bbox: [10.0, 8.0, 40.0, 40.0],
            landmarks: [[20.0, 20.0]; 5],
            score: 1.0,
        };
        let spec = PreprocessSpec::minifas_80();
        let t = sample_tensor(&frame, &face, &spec).unwrap();
        assert_eq!(t.size(), vec![1, 3, 80, 80]);
        let want = preprocess::preprocess(&frame, &face, &spec).unwrap();
        let got = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
