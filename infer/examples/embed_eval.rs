//! Face verification on the identity-labelled photos of `assets/`: RetinaFace finds the
//! faces, [`align_face`] aligns them, the dlib ResNet embeds them in tract; every pair of
//! faces is scored by cosine similarity. Prints the pair counts, TAR at FAR = 1e-2 and
//! 1e-3 (with the resolution the pair counts allow), the thresholds, and the tract
//! latency of one embedding (one thread).
//!
//! ```text
//! cargo run --release -p fas-infer --example embed_eval -- [--runs N] [--dump DIR]
//! ```
//! `--dump DIR` writes every aligned face (`DIR/NNN.png`) and `DIR/faces.tsv`
//! (index, identity, file), the input of `infer/examples/embed_eval_ort.py`, which embeds
//! the same crops with onnxruntime and times it on the same model.
//!
//! Identities: `obama.jpg`, `obama2.jpg`, `obama3.jpg` are one person (3 genuine pairs);
//! `biden.jpg`, `astronaut.png`, `grace_hopper.jpg`, `tom_hanks.png` (insightface's
//! 112×112 crop aligned to the ArcFace template, whose landmarks are taken as given; the
//! wider dlib chip has black borders there) one person each; every face of `solvay_1927.png` and
//! `friends_t1.jpg` is a different person. Faces narrower than 40 px are left out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fas_infer::detect::{FaceDetector, RetinaFace, RetinaFaceConfig};
use fas_infer::embed::{align_face, similarity, FaceEmbedder};
use image::RgbImage;

enum Kind {
    /// The best-scoring face is `identity`.
    Single(&'static str),
    /// Every face is its own identity, `prefix#k`.
    Group(&'static str),
    /// The file is a 112×112 face of `identity` aligned to the ArcFace template
    /// (insightface's sample): its landmarks are [`ARCFACE_112`].
    Aligned(&'static str),
}

const PHOTOS: &[(&str, Kind)] = &[
    ("obama.jpg", Kind::Single("obama")),
    ("obama2.jpg", Kind::Single("obama")),
    ("obama3.jpg", Kind::Single("obama")),
    ("biden.jpg", Kind::Single("biden")),
    ("astronaut.png", Kind::Single("collins")),
    ("grace_hopper.jpg", Kind::Single("hopper")),
    ("tom_hanks.png", Kind::Aligned("hanks")),
    ("solvay_1927.png", Kind::Group("solvay")),
    ("friends_t1.jpg", Kind::Group("friends")),
];

/// insightface's 112×112 template (left eye, right eye, nose, mouth corners).
const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// Smallest face box width kept, in pixels of the photo.
const MIN_FACE: f32 = 40.0;

struct Face {
    identity: String,
    file: &'static str,
    /// The 5 landmarks in the photo's pixels.
    landmarks: [[f32; 2]; 5],
    aligned: RgbImage,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed_eval: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut runs = 200usize;
    let mut dump: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--dump" => dump = Some(args.next().ok_or("--dump needs a directory")?.into()),
            other => return Err(format!("unknown argument {other}: see the file's header").into()),
        }
    }
    let assets = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    let config = RetinaFaceConfig {
        max_side: 1280,
        score_threshold: 0.8,
        ..RetinaFaceConfig::default()
    };
    let mut detector = RetinaFace::load(assets.join("retinaface_mnet025.onnx"), config)?;
    let embedder = FaceEmbedder::load(assets.join("dlib_face_resnet.onnx"))?;

    let faces = collect_faces(&assets, &mut detector)?;
    let mut embeddings = Vec::with_capacity(faces.len());
    for f in &faces {
        embeddings.push(embedder.embed(&f.aligned)?);
    }

    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            let s = f64::from(similarity(&embeddings[i], &embeddings[j]));
            if faces[i].identity == faces[j].identity {
                println!(
                    "genuine  {:<18} {:<18} {s:.4}",
                    faces[i].file, faces[j].file
                );
                genuine.push(s);
            } else {
                impostor.push((s, i, j));
            }
        }
    }
    let identities = {
        let mut ids: Vec<_> = faces.iter().map(|f| f.identity.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    impostor.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "{} faces, {identities} identities: {} genuine pairs, {} impostor pairs",
        faces.len(),
        genuine.len(),
        impostor.len()
    );
    for (s, i, j) in impostor.iter().take(5) {
        println!(
            "impostor {:<18} {:<18} {s:.4}  ({} / {})",
            faces[*i].file, faces[*j].file, faces[*i].identity, faces[*j].identity
        );
    }
    let imp: Vec<f64> = impostor.iter().map(|p| p.0).collect();
    let gmin = genuine.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "genuine min {gmin:.4}; impostor max {:.4}, mean {:.4}",
        imp.first().copied().unwrap_or(f64::NAN),
        imp.iter().sum::<f64>() / imp.len().max(1) as f64
    );
    println!("all impostor pairs ({}):", imp.len());
    for far in [1e-2, 1e-3] {
        report_far(far, &genuine, &imp);
    }
    // Two faces of one group photo share camera, blur and print damage (Solvay 1927 is a
    // scanned 1927 print with boxes drawn on it): the pairs across photos alone.
    let cross: Vec<f64> = impostor
        .iter()
        .filter(|(_, i, j)| faces[*i].file != faces[*j].file)
        .map(|p| p.0)
        .collect();
    println!(
        "impostor pairs of faces from different photos ({}), max {:.4}:",
        cross.len(),
        cross.first().copied().unwrap_or(f64::NAN)
    );
    for far in [1e-2, 1e-3] {
        report_far(far, &genuine, &cross);
    }

    // Latency: one aligned face, `runs` embeddings after 10 warm-up runs, one thread.
    let probe = &faces[0].aligned;
    for _ in 0..10 {
        embedder.embed(probe)?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        embedder.embed(probe)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "tract embed (1 thread, {} runs): median {:.2} ms, p90 {:.2} ms, min {:.2} ms",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() * 9 / 10],
        ms[0]
    );

    if let Some(dir) = dump {
        std::fs::create_dir_all(&dir)?;
        let mut tsv = String::from("index\tidentity\tfile\tlandmarks\n");
        for (k, f) in faces.iter().enumerate() {
            f.aligned.save(dir.join(format!("{k:03}.png")))?;
            let lm: Vec<String> = f
                .landmarks
                .iter()
                .flatten()
                .map(|v| format!("{v:.3}"))
                .collect();
            tsv.push_str(&format!(
                "{k}\t{}\t{}\t{}\n",
                f.identity,
                f.file,
                lm.join(" ")
            ));
        }
        std::fs::write(dir.join("faces.tsv"), tsv)?;
        let mut emb = String::new();
        for e in &embeddings {
            let row: Vec<String> = e.iter().map(|v| format!("{v:.7}")).collect();
            emb.push_str(&row.join(" "));
            emb.push('\n');
        }
        std::fs::write(dir.join("tract_embeddings.txt"), emb)?;
        println!("wrote {} aligned faces to {}", faces.len(), dir.display());
    }
    Ok(())
}

/// TAR at the threshold that lets at most `far` of the impostor pairs through
/// (`imp` sorted descending): accepted means `score >= threshold`.
fn report_far(far: f64, genuine: &[f64], imp: &[f64]) {
    let n = imp.len();
    let allowed = (far * n as f64).floor() as usize;
    if n == 0 || genuine.is_empty() {
        println!("FAR {far:e}: no pairs");
        return;
    }
    // Strictly above the (allowed + 1)-th highest impostor score.
    let threshold = next_up(imp[allowed.min(n - 1)]);
    let accepted = genuine.iter().filter(|s| **s >= threshold).count();
    let got_far = imp.iter().filter(|s| **s >= threshold).count() as f64 / n as f64;
    let note = if allowed == 0 {
        format!(
            " (resolution: 1 impostor pair = {:.1e}; this is FAR 0 on {n} pairs)",
            1.0 / n as f64
        )
    } else {
        String::new()
    };
    println!(
        "FAR {far:e}: threshold {threshold:.4}, TAR {accepted}/{} = {:.3}, measured FAR {got_far:.2e}{note}",
        genuine.len(),
        accepted as f64 / genuine.len() as f64
    );
}

fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let next = if x >= 0.0 { bits + 1 } else { bits - 1 };
    f64::from_bits(if x == 0.0 { 1 } else { next })
}

fn collect_faces(
    assets: &Path,
    detector: &mut RetinaFace,
) -> Result<Vec<Face>, Box<dyn std::error::Error>> {
    let mut faces = Vec::new();
    for (file, kind) in PHOTOS {
        let path = assets.join(file);
        let img = image::open(&path)
            .map_err(|e| format!("{}: {e} — run `cargo xtask assets`", path.display()))?
            .to_rgb8();
        match kind {
            Kind::Aligned(id) => {
                if img.dimensions() != (112, 112) {
                    return Err(format!("{file} is not 112x112").into());
                }
                faces.push(Face {
                    identity: id.to_string(),
                    file,
                    landmarks: ARCFACE_112,
                    aligned: align_face(&img, &ARCFACE_112)?,
                });
            }
            Kind::Single(id) => {
                let dets = detector.detect(&img)?;
                let d = dets
                    .first()
                    .ok_or_else(|| format!("{file}: no face found"))?;
                faces.push(Face {
                    identity: id.to_string(),
                    file,
                    landmarks: d.landmarks,
                    aligned: align_face(&img, &d.landmarks)?,
                });
            }
            Kind::Group(prefix) => {
                let dets = detector.detect(&img)?;
                let mut k = 0;
                for d in dets.iter().filter(|d| d.width() >= MIN_FACE) {
                    faces.push(Face {
                        identity: format!("{prefix}#{k}"),
                        file,
                        landmarks: d.landmarks,
                        aligned: align_face(&img, &d.landmarks)?,
                    });
                    k += 1;
                }
                println!(
                    "{file}: {} faces found, {k} at least {MIN_FACE} px wide",
                    dets.len()
                );
            }
        }
    }
    Ok(faces)
}
