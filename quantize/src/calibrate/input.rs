//! Calibration inputs: face crops from a manifest's images, made by fas-core's one
//! preprocessing implementation with the model's own recorded spec (contract 1).

use fas_core::preprocess::{self, Face, PreprocessError, PreprocessSpec, RgbImage};

/// A reusable calibration batch buffer (`[N, C, H, W]` f32, NCHW).
pub struct CalibrationBatch {
    spec: PreprocessSpec,
    data: Vec<f32>,
    len: usize,
}

impl CalibrationBatch {
    pub fn new(spec: PreprocessSpec) -> Result<Self, fas_core::preprocess::SpecError> {
        spec.validate()?;
        Ok(Self {
            spec,
            data: Vec::new(),
            len: 0,
        })
    }

    /// Appends one face crop.
    pub fn push(&mut self, frame: &RgbImage, face: &Face) -> Result<(), PreprocessError> {
        let n = self.spec.tensor_len();
        let start = self.data.len();
        self.data.resize(start + n, 0.0);
        if let Err(e) =
            preprocess::preprocess_into(frame, face, &self.spec, &mut self.data[start..])
        {
            self.data.truncate(start);
            return Err(e);
        }
        self.len += 1;
        Ok(())
    }

    /// Number of crops in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The batch, NCHW.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.data.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_push_leaves_batch_unchanged() {
        let mut b = CalibrationBatch::new(PreprocessSpec::minifas_80()).unwrap();
        let frame = RgbImage::from_fn(32, 32, |x, y| [x as u8, y as u8, 0]);
        let good = Face {
            bbox: [4.0, 4.0, 28.0, 28.0],
            landmarks: [[16.0, 16.0]; 5],
            score: 1.0,
        };
        b.push(&frame, &good).unwrap();
        let bad = Face {
            bbox: [f32::NAN, 0.0, 1.0, 1.0],
            ..good
        };
        assert!(b.push(&frame, &bad).is_err());
        assert_eq!(b.len(), 1);
        assert_eq!(b.as_slice().len(), 3 * 80 * 80);
        b.clear();
        assert!(b.is_empty());
    }
}
