//! [`FrameBuffer`]: an embedded-graphics `DrawTarget` over a packed RGB8 image, so the
//! overlay is drawn onto a copy of the camera frame.

use std::convert::Infallible;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

use fas_core::preprocess::{PreprocessError, RgbImage};

/// An RGB888 drawing surface backed by a [`RgbImage`]. Pixels drawn outside it are
/// dropped, so shapes may hang over the edges.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameBuffer {
    image: RgbImage,
}

impl FrameBuffer {
    /// Takes `image` over, checking `data` holds `width·height·3` bytes (a zero-size image
    /// is accepted: drawing on it does nothing).
    pub fn new(image: RgbImage) -> Result<Self, PreprocessError> {
        let image = RgbImage::new(image.width, image.height, image.data)?;
        Ok(Self { image })
    }

    /// A copy of `frame` to draw on, leaving the camera frame untouched.
    pub fn from_frame(frame: &RgbImage) -> Result<Self, PreprocessError> {
        Self::new(frame.clone())
    }

    /// A black surface.
    pub fn black(width: u32, height: u32) -> Self {
        Self {
            image: RgbImage::black(width, height),
        }
    }

    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    pub fn into_image(self) -> RgbImage {
        self.image
    }

    /// The pixel at `(x, y)`, or `None` outside the surface.
    pub fn pixel(&self, x: i32, y: i32) -> Option<Rgb888> {
        let i = self.index(x, y)?;
        let d = &self.image.data[i..i + 3];
        Some(Rgb888::new(d[0], d[1], d[2]))
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        let (x, y) = (u32::try_from(x).ok()?, u32::try_from(y).ok()?);
        (x < self.image.width && y < self.image.height)
            .then(|| (y as usize * self.image.width as usize + x as usize) * 3)
    }
}

impl OriginDimensions for FrameBuffer {
    fn size(&self) -> Size {
        Size::new(self.image.width, self.image.height)
    }
}

impl DrawTarget for FrameBuffer {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if let Some(i) = self.index(p.x, p.y) {
                self.image.data[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        // Clip first: a face box far outside the frame must not cost its full area.
        let area = area.intersection(&self.bounding_box());
        let Some(br) = area.bottom_right() else {
            return Ok(());
        };
        let rgb = [color.r(), color.g(), color.b()];
        let w = self.image.width as usize;
        let (x0, x1) = (area.top_left.x as usize, br.x as usize);
        for y in area.top_left.y as usize..=br.y as usize {
            let row = &mut self.image.data[(y * w + x0) * 3..(y * w + x1 + 1) * 3];
            for px in row.chunks_exact_mut(3) {
                px.copy_from_slice(&rgb);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::primitives::{PrimitiveStyle, StyledDrawable};

    #[test]
    fn draws_onto_a_copy() {
        let frame = RgbImage::from_fn(8, 4, |x, y| [x as u8, y as u8, 7]);
        let mut fb = FrameBuffer::from_frame(&frame).unwrap();
        Rectangle::new(Point::new(2, 1), Size::new(3, 2))
            .draw_styled(&PrimitiveStyle::with_fill(Rgb888::RED), &mut fb)
            .unwrap();
        assert_eq!(fb.pixel(2, 1), Some(Rgb888::RED));
        assert_eq!(fb.pixel(4, 2), Some(Rgb888::RED));
        assert_eq!(fb.pixel(5, 2), Some(Rgb888::new(5, 2, 7)));
        assert_eq!(fb.pixel(1, 1), Some(Rgb888::new(1, 1, 7)));
        assert_eq!(
            frame.pixel(2, 1),
            [2, 1, 7],
            "the camera frame is untouched"
        );
        assert_eq!(fb.pixel(8, 0), None);
        assert_eq!(fb.pixel(-1, 0), None);
    }

    #[test]
    fn clips_shapes_over_the_edges() {
        let mut fb = FrameBuffer::black(5, 5);
        let style = PrimitiveStyle::with_fill(Rgb888::GREEN);
        Rectangle::new(Point::new(-1_000_000, 3), Size::new(2_000_000, 100))
            .draw_styled(&style, &mut fb)
            .unwrap();
        fb.draw_iter([
            Pixel(Point::new(-1, -1), Rgb888::RED),
            Pixel(Point::new(9, 1), Rgb888::RED),
        ])
        .unwrap();
        for y in 0..5 {
            for x in 0..5 {
                let want = if y >= 3 { Rgb888::GREEN } else { Rgb888::BLACK };
                assert_eq!(fb.pixel(x, y), Some(want), "({x},{y})");
            }
        }
    }

    #[test]
    fn rejects_bad_data_length_accepts_empty() {
        assert!(FrameBuffer::new(RgbImage {
            width: 4,
            height: 4,
            data: vec![0; 47],
        })
        .is_err());
        let mut empty = FrameBuffer::black(0, 0);
        Rectangle::new(Point::zero(), Size::new(3, 3))
            .draw_styled(&PrimitiveStyle::with_fill(Rgb888::RED), &mut empty)
            .unwrap();
        assert_eq!(empty.size(), Size::zero());
    }
}
