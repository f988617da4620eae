//! Prior (anchor) boxes of RetinaFace, generated for any input size.
//!
//! The priors are not part of the ONNX graph. They follow the reference
//! implementation (biubug6/Pytorch_Retinaface, `layers/functions/prior_box.py`):
//! for each feature level `k` with stride `steps[k]`, a grid of
//! `ceil(H / step) x ceil(W / step)` cells in row-major order, and in each cell one
//! square prior per entry of `min_sizes[k]`.

use std::collections::HashMap;
use std::sync::Arc;

/// Anchor configuration of a RetinaFace variant.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorConfig {
    /// Prior side lengths in input pixels, one list per feature level.
    pub min_sizes: Vec<Vec<f32>>,
    /// Stride of each feature level in input pixels.
    pub steps: Vec<u32>,
    /// Variances `[centre, size]` used to decode regressions.
    pub variance: [f32; 2],
    /// Clip prior boxes to `[0, 1]`.
    pub clip: bool,
}

impl AnchorConfig {
    /// The `cfg_mnet` configuration of RetinaFace mobilenet-0.25.
    pub fn mobilenet025() -> Self {
        AnchorConfig {
            min_sizes: vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]],
            steps: vec![8, 16, 32],
            variance: [0.1, 0.2],
            clip: false,
        }
    }

    /// Number of priors for a `width x height` input.
    pub fn num_priors(&self, width: u32, height: u32) -> usize {
        self.steps
            .iter()
            .zip(&self.min_sizes)
            .map(|(&step, sizes)| {
                let step = step.max(1);
                (height.div_ceil(step) as usize) * (width.div_ceil(step) as usize) * sizes.len()
            })
            .sum()
    }
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self::mobilenet025()
    }
}

/// One prior box, normalised to the input size: centre and size in `[0, 1]` units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

/// Generates the priors for a `width x height` input, in the order of the model's
/// outputs. Returns an empty list for a zero-sized input.
pub fn generate(config: &AnchorConfig, width: u32, height: u32) -> Vec<Prior> {
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let (w, h) = (width as f32, height as f32);
    let mut priors = Vec::with_capacity(config.num_priors(width, height));
    for (&step, sizes) in config.steps.iter().zip(&config.min_sizes) {
        let step = step.max(1);
        let (rows, cols) = (height.div_ceil(step), width.div_ceil(step));
        let s = step as f32;
        for i in 0..rows {
            for j in 0..cols {
                for &m in sizes {
                    let mut p = Prior {
                        cx: (j as f32 + 0.5) * s / w,
                        cy: (i as f32 + 0.5) * s / h,
                        w: m / w,
                        h: m / h,
                    };
                    if config.clip {
                        p.cx = p.cx.clamp(0.0, 1.0);
                        p.cy = p.cy.clamp(0.0, 1.0);
                        p.w = p.w.clamp(0.0, 1.0);
                        p.h = p.h.clamp(0.0, 1.0);
                    }
                    priors.push(p);
                }
            }
        }
    }
    priors
}

/// Priors cached per input size; sizes come and go with the frames, so at most
/// `capacity` sizes are kept (the oldest is dropped first).
#[derive(Debug, Clone)]
pub struct PriorCache {
    config: AnchorConfig,
    capacity: usize,
    entries: HashMap<(u32, u32), Arc<[Prior]>>,
    order: Vec<(u32, u32)>,
}

impl PriorCache {
    /// An empty cache holding at most `capacity` sizes (at least one).
    pub fn new(config: AnchorConfig, capacity: usize) -> Self {
        PriorCache {
            config,
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The anchor configuration the priors are generated from.
    pub fn config(&self) -> &AnchorConfig {
        &self.config
    }

    /// The priors of a `width x height` input, generated on first use.
    pub fn get(&mut self, width: u32, height: u32) -> Arc<[Prior]> {
        let key = (width, height);
        if let Some(p) = self.entries.get(&key) {
            return Arc::clone(p);
        }
        if self.order.len() >= self.capacity {
            let oldest = self.order.remove(0);
            self.entries.remove(&oldest);
        }
        let priors: Arc<[Prior]> = generate(&self.config, width, height).into();
        self.entries.insert(key, Arc::clone(&priors));
        self.order.push(key);
        priors
    }

    /// Number of sizes currently cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no size is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_matches_model_output_512() {
        // onnxruntime gives 10752 priors for the 512x512 astronaut.
        let cfg = AnchorConfig::mobilenet025();
        assert_eq!(cfg.num_priors(512, 512), 10752);
        assert_eq!(generate(&cfg, 512, 512).len(), 10752);
    }

    #[test]
    fn odd_sizes_round_the_grid_up() {
        let cfg = AnchorConfig::mobilenet025();
        // 333x517: levels 42x65, 21x33, 11x17 cells, two priors each.
        let expected = 2 * (42 * 65 + 21 * 33 + 11 * 17);
        assert_eq!(cfg.num_priors(333, 517), expected);
        assert_eq!(generate(&cfg, 333, 517).len(), expected);
    }

    #[test]
    fn first_priors_follow_reference_order() {
        let p = generate(&AnchorConfig::mobilenet025(), 640, 480);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        // cell (0, 0) of level 0: sizes 16 then 32.
        assert!(close(p[0].cx, 4.0 / 640.0) && close(p[0].cy, 4.0 / 480.0));
        assert!(close(p[0].w, 16.0 / 640.0) && close(p[0].h, 16.0 / 480.0));
        assert!(close(p[1].w, 32.0 / 640.0));
        // cell (0, 1) comes next (row-major).
        assert!(close(p[2].cx, 12.0 / 640.0) && close(p[2].cy, 4.0 / 480.0));
        // first prior of level 1 follows all 60x80x2 priors of level 0.
        let q = p[60 * 80 * 2];
        assert!(close(q.cx, 8.0 / 640.0) && close(q.w, 64.0 / 640.0));
    }

    #[test]
    fn centres_lie_inside_the_image() {
        for (w, h) in [(1, 1), (7, 300), (320, 320), (641, 479)] {
            for p in generate(&AnchorConfig::mobilenet025(), w, h) {
                assert!(p.cx > 0.0 && p.cy > 0.0, "{w}x{h}: {p:?}");
                // ceil grids may put the last centre up to half a step past the edge.
                assert!(p.cx < 1.0 + 16.0 / w as f32 && p.cy < 1.0 + 16.0 / h as f32);
            }
        }
    }

    #[test]
    fn zero_size_gives_no_priors() {
        assert!(generate(&AnchorConfig::mobilenet025(), 0, 10).is_empty());
    }

    #[test]
    fn cache_reuses_and_evicts() {
        let mut cache = PriorCache::new(AnchorConfig::mobilenet025(), 2);
        let a = cache.get(64, 64);
        let b = cache.get(64, 64);
        assert!(Arc::ptr_eq(&a, &b));
        cache.get(32, 32);
        cache.get(96, 96);
        assert_eq!(cache.len(), 2);
        let c = cache.get(64, 64);
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a, c);
    }
}
