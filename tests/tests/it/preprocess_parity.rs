//! Contract 1: the trainer, the calibrator and the edge produce bit-identical input
//! tensors for the same frame, face and spec, because all three call fas-core.

use fas_core::preprocess::{self, Face, PreprocessSpec, RgbImage};
use fas_core::synthfas::SyntheticCamera;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn trainer_calibrator_and_edge_make_identical_tensors() {
    let cam = SyntheticCamera::new(7);
    let specs = [
        PreprocessSpec::minifas_80(),
        PreprocessSpec::resnet_rgb_256(),
        PreprocessSpec::rgb_hsv_256(),
    ];
    for index in [0u64, 13, 61] {
        let f = cam.frame(index);
        let frame = RgbImage::from(f.rgb);
        let face = Face::from(f.face);
        for spec in &specs {
            let reference = bits(&preprocess::preprocess(&frame, &face, spec).unwrap());

            let t = fas_train::data::tensor::sample_tensor(&frame, &face, spec).unwrap();
            let trainer = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();

            let mut cal =
                fas_quantize::calibrate::input::CalibrationBatch::new(spec.clone()).unwrap();
            cal.push(&frame, &face).unwrap();

            let mut cropper = fas_edge::crop::FaceCropper::new(spec.clone()).unwrap();
            let edge = cropper.crop(&frame, &face).unwrap().to_vec();

            assert_eq!(
                bits(&trainer),
                reference,
                "trainer, frame {index}, {spec:?}"
            );
            assert_eq!(bits(cal.as_slice()), reference, "calibrator, frame {index}");
            assert_eq!(bits(&edge), reference, "edge, frame {index}");
        }
    }
}
