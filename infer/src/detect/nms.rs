//! Greedy non-maximum suppression over [`Detection`]s.

use super::Detection;

/// Intersection over union of two `[x1, y1, x2, y2]` boxes; 0 when either is empty.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy NMS: visits the detections by descending score (ties keep input order) and
/// keeps one unless it overlaps an already kept one with IoU > `iou_threshold`.
///
/// Promises: the result is a subset of the input, sorted by descending score, has no
/// pair with IoU > `iou_threshold`, holds at most `top_k` detections, and
/// `nms(nms(x)) == nms(x)`. Detections with a NaN score are dropped.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32, top_k: usize) -> Vec<Detection> {
    detections.retain(|d| !d.score.is_nan());
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len().min(top_k));
    for d in detections {
        if kept.len() >= top_k {
            break;
        }
        if kept.iter().all(|k| iou(&k.bbox, &d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection {
            bbox,
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    #[test]
    fn iou_known_values() {
        let a = [0.0, 0.0, 2.0, 2.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert!((iou(&a, &[1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0; 4], &[0.0; 4]), 0.0);
    }

    #[test]
    fn suppresses_overlaps_keeps_separate() {
        let out = nms(
            vec![
                det([0.0, 0.0, 10.0, 10.0], 0.8),
                det([1.0, 1.0, 11.0, 11.0], 0.9),
                det([50.0, 50.0, 60.0, 60.0], 0.7),
            ],
            0.4,
            10,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        assert_eq!(out[1].score, 0.7);
    }

    #[test]
    fn top_k_and_nan() {
        let out = nms(
            vec![
                det([0.0, 0.0, 1.0, 1.0], f32::NAN),
                det([10.0, 0.0, 11.0, 1.0], 0.5),
                det([20.0, 0.0, 21.0, 1.0], 0.6),
            ],
            0.4,
            1,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 0.6);
    }

    fn arb_det() -> impl Strategy<Value = Detection> {
        (0f32..100.0, 0f32..100.0, 0f32..40.0, 0f32..40.0, 0f32..1.0)
            .prop_map(|(x, y, w, h, s)| det([x, y, x + w, y + h], s))
    }

    proptest! {
        #[test]
        fn nms_properties(dets in prop::collection::vec(arb_det(), 0..40), thr in 0.05f32..0.95, top_k in 1usize..50) {
            let out = nms(dets.clone(), thr, top_k);
            prop_assert!(out.len() <= top_k);
            for d in &out {
                prop_assert!(dets.contains(d));
            }
            for w in out.windows(2) {
                prop_assert!(w[0].score >= w[1].score);
            }
            for (i, a) in out.iter().enumerate() {
                for b in &out[i + 1..] {
                    prop_assert!(iou(&a.bbox, &b.bbox) <= thr);
                }
            }
            prop_assert_eq!(nms(out.clone(), thr, top_k), out);
        }

        #[test]
        fn iou_is_symmetric_and_bounded(a in arb_det(), b in arb_det()) {
            let (x, y) = (iou(&a.bbox, &b.bbox), iou(&b.bbox, &a.bbox));
            prop_assert!((x - y).abs() < 1e-6);
            prop_assert!((0.0..=1.0 + 1e-6).contains(&x));
        }
    }
}
