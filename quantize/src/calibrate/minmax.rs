//! Min/max calibration: the observed extremes (widened to contain 0). No clipping, so an
//! outlier stretches the grid for every other value.

use super::range::with_zero;

/// The range for a tensor whose values spanned `[min, max]`.
pub fn range(min: f32, max: f32) -> [f32; 2] {
    with_zero(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::histogram::Histogram;

    #[test]
    fn known_data() {
        let xs = [0.5, -0.25, 3.0, 1.0, 2.0];
        let h = Histogram::of(&xs, 16);
        assert_eq!(range(h.min, h.max), [-0.25, 3.0]);
        // Post-ReLU data keeps 0 as its lower end.
        assert_eq!(range(0.5, 4.0), [0.0, 4.0]);
    }
}
