//! The pipeline's input types: an owned, tightly packed RGB8 frame and a detected face.

use serde::{Deserialize, Serialize};

use super::PreprocessError;

/// An owned 8-bit RGB image, rows top to bottom, pixels left to right, `R G B` per pixel,
/// no padding: `data.len() == width * height * 3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps packed RGB8 data, checking its length.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, PreprocessError> {
        let img = Self {
            width,
            height,
            data,
        };
        img.check_len()?;
        Ok(img)
    }

    /// An all-black image.
    pub fn black(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
        }
    }

    /// Builds an image by evaluating `f(x, y)` for every pixel.
    pub fn from_fn(width: u32, height: u32, mut f: impl FnMut(u32, u32) -> [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Pixel at `(x, y)`; panics when out of bounds.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x},{y}) out of bounds"
        );
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Errors unless the image is non-empty and `data` has exactly `width*height*3` bytes.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.is_empty() {
            return Err(PreprocessError::EmptyImage {
                width: self.width,
                height: self.height,
            });
        }
        self.check_len()
    }

    fn check_len(&self) -> Result<(), PreprocessError> {
        let expected = self.width as usize * self.height as usize * 3;
        if self.data.len() != expected {
            return Err(PreprocessError::ImageDataLength {
                width: self.width,
                height: self.height,
                expected,
                got: self.data.len(),
            });
        }
        Ok(())
    }
}

impl From<image::RgbImage> for RgbImage {
    fn from(img: image::RgbImage) -> Self {
        let (width, height) = img.dimensions();
        Self {
            width,
            height,
            data: img.into_raw(),
        }
    }
}

impl From<RgbImage> for image::RgbImage {
    fn from(img: RgbImage) -> Self {
        image::RgbImage::from_raw(img.width, img.height, img.data)
            .expect("RgbImage data length must be width*height*3")
    }
}

/// One detected face, in frame pixel coordinates (pixel centres at integer coordinates,
/// as OpenCV's `warpAffine` and common detectors use).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Left eye, right eye, nose tip, left mouth corner, right mouth corner
    /// (left/right as seen in the image).
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence; not used by preprocessing.
    pub score: f32,
}

impl Face {
    /// Errors unless all landmarks are finite.
    pub fn check_landmarks(&self) -> Result<(), PreprocessError> {
        match self
            .landmarks
            .iter()
            .position(|p| !p[0].is_finite() || !p[1].is_finite())
        {
            Some(index) => Err(PreprocessError::NonFiniteLandmarks { index }),
            None => Ok(()),
        }
    }

    /// Errors unless all four box coordinates are finite.
    pub fn check_bbox(&self) -> Result<(), PreprocessError> {
        if self.bbox.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(PreprocessError::NonFiniteBox)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_length() {
        assert!(RgbImage::new(2, 2, vec![0; 12]).is_ok());
        assert!(matches!(
            RgbImage::new(2, 2, vec![0; 11]),
            Err(PreprocessError::ImageDataLength {
                expected: 12,
                got: 11,
                ..
            })
        ));
    }

    #[test]
    fn empty_is_rejected_by_validate() {
        assert!(matches!(
            RgbImage::black(0, 3).validate(),
            Err(PreprocessError::EmptyImage { .. })
        ));
    }

    #[test]
    fn from_fn_and_pixel_agree() {
        let img = RgbImage::from_fn(3, 2, |x, y| [x as u8, y as u8, 7]);
        assert_eq!(img.pixel(2, 1), [2, 1, 7]);
        assert_eq!(img.data.len(), 18);
    }

    #[test]
    fn image_crate_round_trip() {
        let img = RgbImage::from_fn(4, 3, |x, y| [x as u8 * 10, y as u8 * 20, 1]);
        let other: image::RgbImage = img.clone().into();
        assert_eq!(RgbImage::from(other), img);
    }

    #[test]
    fn face_checks() {
        let mut f = Face {
            bbox: [0.0, 0.0, 1.0, 1.0],
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
        };
        assert!(f.check_bbox().is_ok() && f.check_landmarks().is_ok());
        f.landmarks[3][1] = f32::NAN;
        assert_eq!(
            f.check_landmarks(),
            Err(PreprocessError::NonFiniteLandmarks { index: 3 })
        );
        f.bbox[2] = f32::INFINITY;
        assert_eq!(f.check_bbox(), Err(PreprocessError::NonFiniteBox));
    }
}
