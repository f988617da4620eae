//! `FaceCrop`: the liveness model's input for one detected face, made by fas-core's one
//! preprocessing implementation with the bundle's recorded spec (contract 1), into a
//! buffer reused from frame to frame.

use fas_core::preprocess::{self, Face, PreprocessError, PreprocessSpec, RgbImage, SpecError};

pub struct FaceCropper {
    spec: PreprocessSpec,
    buf: Vec<f32>,
}

impl FaceCropper {
    /// Validates the spec once, so a bad bundle fails at start-up, not at the door.
    pub fn new(spec: PreprocessSpec) -> Result<Self, SpecError> {
        spec.validate()?;
        let buf = vec![0.0; spec.tensor_len()];
        Ok(Self { spec, buf })
    }

    pub fn spec(&self) -> &PreprocessSpec {
        &self.spec
    }

    /// The `[1, C, H, W]` input for `face` in `frame`. On error the previous contents are
    /// not to be used (the caller ends the frame as a bad frame, never as a grant).
    pub fn crop(&mut self, frame: &RgbImage, face: &Face) -> Result<&[f32], PreprocessError> {
        preprocess::preprocess_into(frame, face, &self.spec, &mut self.buf)?;
        Ok(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_spec_is_refused_at_construction() {
        let mut spec = PreprocessSpec::minifas_80();
        spec.normalize.std[0] = 0.0;
        assert!(FaceCropper::new(spec).is_err());
    }

    #[test]
    fn crop_reuses_its_buffer() {
        let mut c = FaceCropper::new(PreprocessSpec::minifas_80()).unwrap();
        let frame = RgbImage::from_fn(40, 40, |x, _| [x as u8; 3]);
        let face = Face {
            bbox: [5.0, 5.0, 35.0, 35.0],
            landmarks: [[20.0, 20.0]; 5],
            score: 0.9,
        };
        let p1 = c.crop(&frame, &face).unwrap().as_ptr();
        let p2 = c.crop(&frame, &face).unwrap().as_ptr();
        assert_eq!(p1, p2);
    }
}
