//! The training data loader on small generated SynthFAS sets.

use fas_core::dataset::{Label, Manifest};
use fas_core::preprocess::{normalize_into, resize_bilinear, PreprocessSpec, RgbImage};
use fas_core::synthfas::{write_dataset, DomainSpec, ImageFormat, SynthConfig};
use fas_train::data::augment::AugmentConfig;
use fas_train::data::loader::{Batch, Dataset, LoadError, Loader, LoaderConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A temporary folder removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "fas-loader-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two domains given out of name order (so sorted-name domain indices are checked),
/// 2 subjects, live/print/replay/mask, 2 frames: 32 samples of 64×64.
fn synth(tag: &str, format: ImageFormat) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let all = DomainSpec::defaults();
    let pick = |n: &str| all.iter().find(|d| d.name == n).unwrap().clone();
    let cfg = SynthConfig {
        seed: 7,
        domains: vec![pick("synth-c"), pick("synth-a")],
        subjects_per_domain: 2,
        videos_per_presentation: 1,
        frames_per_video: 2,
        image_size: 64,
        format,
        threads: 2,
        ..SynthConfig::default()
    };
    write_dataset(&cfg, &dir.0).unwrap();
    let manifest = dir.0.join("manifest.jsonl");
    (dir, manifest)
}

/// 6 channels (RGB + HSV), non-square so a width/height mix-up shows.
fn spec() -> PreprocessSpec {
    PreprocessSpec {
        width: 40,
        height: 48,
        ..PreprocessSpec::rgb_hsv_256()
    }
}

fn eval_config(workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 5,
        workers,
        queue_depth: 3,
        ..LoaderConfig::eval(spec())
    }
}

/// Runs `f` on another thread and fails the test if it takes longer than 60 s.
fn guarded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("the loader hung for 60 s"),
        Err(RecvTimeoutError::Disconnected) => panic!("the test body panicked (see above)"),
    }
}

fn all_indices(d: &Dataset) -> Vec<usize> {
    (0..d.len()).collect()
}

fn collect(loader: &Loader, batches: Vec<Vec<usize>>, epoch: u64) -> Vec<Batch> {
    let loader = loader.clone();
    guarded(move || {
        loader
            .batches(batches, epoch)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn expected_tensor(path: &Path, spec: &PreprocessSpec) -> Vec<f32> {
    let img: RgbImage = image::open(path).unwrap().to_rgb8().into();
    let crop = resize_bilinear(&img, spec.width, spec.height);
    let mut out = vec![0.0; spec.tensor_len()];
    normalize_into(&crop, spec, &mut out).unwrap();
    out
}

#[test]
fn batch_shapes_labels_domains_and_depth() {
    let (_dir, manifest) = synth("shapes", ImageFormat::Png);
    let ds = Dataset::load(&manifest).unwrap();
    assert_eq!(ds.len(), 32);
    assert_eq!(ds.domain_names(), ["synth-a", "synth-c"]);
    ds.check_files(true).unwrap();
    let loader = Loader::new(
        ds.clone(),
        LoaderConfig {
            depth_size: Some(16),
            ..eval_config(2)
        },
    )
    .unwrap();
    let batches = loader.epoch(&all_indices(&ds), 0).unwrap();
    let batches: Vec<Batch> = guarded(move || batches.collect::<Result<_, _>>().unwrap());
    assert_eq!(batches.len(), 7); // 6 × 5 + 1 × 2, drop_last off
    let mut seen: Vec<usize> = Vec::new();
    let (mut live, mut spoof) = (0, 0);
    for b in &batches {
        let n = b.len();
        assert_eq!(b.shape, [n, 6, 48, 40]);
        assert_eq!(b.images.len(), n * 6 * 48 * 40);
        assert_eq!(b.depth_shape, Some([n, 1, 16, 16]));
        let depth = b.depth.as_ref().unwrap();
        assert_eq!(depth.len(), n * 256);
        for (k, &i) in b.indices.iter().enumerate() {
            let s = ds.sample(i);
            assert_eq!(b.labels[k], i64::from(s.label == Label::Live));
            assert_eq!(ds.domain_names()[b.domains[k]], s.domain);
            let d = &depth[k * 256..(k + 1) * 256];
            if s.label == Label::Live {
                live += 1;
                // Known answer: the depth PNG through fas-core's resize, scaled to [0, 1].
                let g = image::open(ds.depth_path(i)).unwrap().to_luma8();
                let grey =
                    RgbImage::from_fn(g.width(), g.height(), |x, y| [g.get_pixel(x, y).0[0]; 3]);
                let want: Vec<f32> = resize_bilinear(&grey, 16, 16)
                    .data
                    .chunks(3)
                    .map(|p| f32::from(p[0]) / 255.0)
                    .collect();
                assert_eq!(bits(d), bits(&want));
                assert_eq!(d[0], 0.0, "corner is background");
                assert!(d[8 * 16 + 8] > 30.0 / 255.0, "centre is face");
            } else {
                spoof += 1;
                assert!(d.iter().all(|&v| v == 0.0));
            }
        }
        seen.extend(&b.indices);
    }
    assert_eq!(seen, all_indices(&ds));
    assert_eq!((live, spoof), (8, 24));
    // Two domains actually occur.
    let doms: std::collections::BTreeSet<usize> =
        batches.iter().flat_map(|b| b.domains.clone()).collect();
    assert_eq!(doms.into_iter().collect::<Vec<_>>(), [0, 1]);

    let t = batches[0].to_tensors(tch::Device::Cpu);
    assert_eq!(t.images.size(), [5, 6, 48, 40]);
    assert_eq!(t.labels.size(), [5]);
    assert_eq!(t.depth.as_ref().unwrap().size(), [5, 1, 16, 16]);
    let back = Vec::<f32>::try_from(t.images.flatten(0, -1)).unwrap();
    assert_eq!(bits(&back), bits(&batches[0].images));
    assert_eq!(Vec::<i64>::try_from(&t.labels).unwrap(), batches[0].labels);
    let doms: Vec<i64> = batches[0].domains.iter().map(|&d| d as i64).collect();
    assert_eq!(Vec::<i64>::try_from(&t.domains).unwrap(), doms);
}

#[test]
fn eval_tensors_are_bit_identical_to_fas_core() {
    for (tag, format) in [
        ("eval-png", ImageFormat::Png),
        ("eval-jpg", ImageFormat::Jpeg),
    ] {
        let (_dir, manifest) = synth(tag, format);
        let ds = Dataset::load(&manifest).unwrap();
        let loader = Loader::new(ds.clone(), eval_config(3)).unwrap();
        let batches = Dataset::epoch_batches(&all_indices(&ds), 5, false, 0, 0);
        let per = spec().tensor_len();
        for b in collect(&loader, batches, 0) {
            for (k, &i) in b.indices.iter().enumerate() {
                let want = expected_tensor(&ds.image_path(i), &spec());
                let got = &b.images[k * per..(k + 1) * per];
                assert_eq!(bits(got), bits(&want), "{tag} sample {i}");
            }
        }
    }
}

#[test]
fn augmented_batches_do_not_depend_on_worker_count() {
    let (_dir, manifest) = synth("determinism", ImageFormat::Png);
    let ds = Dataset::load(&manifest).unwrap();
    let cfg = |workers, queue_depth| LoaderConfig {
        batch_size: 6,
        workers,
        queue_depth,
        augment: AugmentConfig::default(),
        depth_size: Some(8),
        seed: 11,
        shuffle: true,
        drop_last: true,
        ..LoaderConfig::train(spec())
    };
    let run = |workers, depth, epoch| {
        let loader = Loader::new(ds.clone(), cfg(workers, depth)).unwrap();
        let e = loader.epoch(&all_indices(&ds), epoch).unwrap();
        guarded(move || e.collect::<Result<Vec<_>, _>>().unwrap())
    };
    let one = run(1, 1, 3);
    assert_eq!(one.len(), 5); // 32 / 6, short batch dropped
    assert!(one.iter().all(|b| b.len() == 6));
    for (w, q) in [(2, 2), (3, 5), (4, 1)] {
        let other = run(w, q, 3);
        assert_eq!(other.len(), one.len());
        for (a, b) in one.iter().zip(&other) {
            assert_eq!(a.indices, b.indices, "workers {w}");
            assert_eq!(bits(&a.images), bits(&b.images), "workers {w}");
            assert_eq!(
                bits(a.depth.as_ref().unwrap()),
                bits(b.depth.as_ref().unwrap())
            );
        }
    }
    // A worker computes exactly what the calling thread does.
    let loader = Loader::new(ds.clone(), cfg(2, 2)).unwrap();
    let direct = loader.load_batch(&one[1].indices, 3).unwrap();
    assert_eq!(bits(&direct.images), bits(&one[1].images));

    // Augmentation is active and changes with the epoch; the shuffle too.
    let next = run(1, 1, 4);
    assert_ne!(one[0].indices, next[0].indices);
    let idx = one[0].indices.clone();
    let a3 = loader.load_batch(&idx, 3).unwrap();
    let a4 = loader.load_batch(&idx, 4).unwrap();
    assert_ne!(bits(&a3.images), bits(&a4.images));
    let plain = Loader::new(ds.clone(), eval_config(1))
        .unwrap()
        .load_batch(&idx, 3)
        .unwrap();
    assert_ne!(bits(&a3.images), bits(&plain.images));
    // Augmented depth stays zero for spoofs and non-zero for live faces.
    let d = a3.depth.as_ref().unwrap();
    for (k, &l) in a3.labels.iter().enumerate() {
        let row = &d[k * 64..(k + 1) * 64];
        assert_eq!(row.iter().any(|&v| v > 0.0), l == 1, "row {k}");
        assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}

fn with_path(manifest: &Path, index: usize, path: &str) -> Dataset {
    let mut m = Manifest::load(manifest).unwrap();
    m.samples[index].path = path.into();
    Dataset::from_manifest(m, manifest.parent().unwrap())
}

#[test]
fn missing_image_ends_the_epoch_with_an_error_naming_it() {
    let (dir, manifest) = synth("missing", ImageFormat::Png);
    let ds = with_path(&manifest, 7, "synth-a/nobody/missing-f00.png");
    let missing = dir.0.join("synth-a/nobody/missing-f00.png");
    let e = ds.check_files(false).unwrap_err();
    assert!(
        matches!(&e, LoadError::MissingFiles { count: 1, total: 32, missing: m, .. } if m.as_slice() == std::slice::from_ref(&missing)),
        "{e}"
    );
    assert!(e.to_string().contains("missing-f00.png"), "{e}");

    let loader = Loader::new(ds.clone(), eval_config(3)).unwrap();
    let batches = Dataset::epoch_batches(&all_indices(&ds), 4, false, 0, 0);
    let started = Instant::now();
    let out: Vec<Result<Batch, LoadError>> =
        guarded(move || loader.batches(batches, 0).unwrap().collect());
    assert_eq!(out.len(), 2, "batch 0 then the error, then the end");
    assert_eq!(out[0].as_ref().unwrap().indices, [0, 1, 2, 3]);
    let err = out[1].as_ref().unwrap_err();
    match err {
        LoadError::Read {
            path, what, index, ..
        } => {
            assert_eq!(path, &missing);
            assert_eq!((*what, *index), ("image", 7));
        }
        other => panic!("expected a read error, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("sample 7"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn corrupt_image_is_an_error_naming_it() {
    let (dir, manifest) = synth("corrupt", ImageFormat::Png);
    let bad = dir.0.join("corrupt.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n this is not a png").unwrap();
    let ds = with_path(&manifest, 9, bad.to_str().unwrap());
    let loader = Loader::new(ds, eval_config(2)).unwrap();
    // Sample 9 sits in the last batch; everything before it loads.
    let batches = vec![vec![0, 1], vec![2, 3], vec![4, 9, 5], vec![6]];
    let out: Vec<Result<Batch, LoadError>> =
        guarded(move || loader.batches(batches, 0).unwrap().collect());
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[1].is_ok());
    let err = out[2].as_ref().unwrap_err();
    assert!(
        matches!(err, LoadError::Decode { path, index: 9, .. } if path == &bad),
        "{err}"
    );
    assert!(err.to_string().contains("corrupt.png"), "{err}");
}

#[test]
fn missing_depth_map_of_a_live_sample_is_named() {
    let (_dir, manifest) = synth("nodepth", ImageFormat::Png);
    let ds = Dataset::load(&manifest).unwrap();
    let live = (0..ds.len())
        .find(|&i| ds.sample(i).label == Label::Live)
        .unwrap();
    std::fs::remove_file(ds.depth_path(live)).unwrap();
    assert!(ds.check_files(false).is_ok());
    assert!(matches!(
        ds.check_files(true),
        Err(LoadError::MissingFiles { count: 1, .. })
    ));
    let with_depth = Loader::new(
        ds.clone(),
        LoaderConfig {
            depth_size: Some(8),
            ..eval_config(2)
        },
    )
    .unwrap();
    let e = with_depth.load_batch(&[live], 0).unwrap_err();
    assert!(
        matches!(&e, LoadError::Read { what: "depth map", path, .. } if path == &ds.depth_path(live)),
        "{e}"
    );
    assert!(e.to_string().contains("_depth.png"), "{e}");
    // Without depth targets the sample loads.
    let plain = Loader::new(ds, eval_config(2)).unwrap();
    assert!(plain.load_batch(&[live], 0).unwrap().depth.is_none());
}

#[test]
fn slow_consumer_bounds_the_work_ahead() {
    let (_dir, manifest) = synth("bounded", ImageFormat::Png);
    let ds = Dataset::load(&manifest).unwrap();
    let loader = Loader::new(
        ds.clone(),
        LoaderConfig {
            batch_size: 1,
            workers: 2,
            queue_depth: 2,
            ..LoaderConfig::eval(spec())
        },
    )
    .unwrap();
    let n = ds.len();
    guarded(move || {
        let mut e = loader.epoch(&(0..n).collect::<Vec<_>>(), 0).unwrap();
        for consumed in 1..=3 {
            e.next().unwrap().unwrap();
            // A slow training step: the workers would finish the dataset meanwhile if
            // nothing held them back (32 samples of 64 px take far less than this).
            std::thread::sleep(Duration::from_millis(300));
            let started = e.batches_started();
            assert!(
                started <= consumed + 2,
                "{started} started after {consumed}"
            );
            assert!(started >= consumed);
        }
        // Dropping an unfinished epoch returns promptly.
        let t = Instant::now();
        drop(e);
        assert!(t.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn bad_indices_and_empty_batches_are_errors() {
    let (_dir, manifest) = synth("badindex", ImageFormat::Png);
    let ds = Dataset::load(&manifest).unwrap();
    let loader = Loader::new(ds, eval_config(2)).unwrap();
    let l2 = loader.clone();
    let out: Vec<_> = guarded(move || {
        l2.batches(vec![vec![0], vec![3, 999], vec![1]], 0)
            .unwrap()
            .collect()
    });
    assert_eq!(out.len(), 2);
    let e = out[1].as_ref().unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Index {
                batch: 1,
                index: 999,
                len: 32
            }
        ),
        "{e}"
    );
    let out: Vec<_> = guarded(move || loader.batches(vec![vec![]], 0).unwrap().collect());
    assert!(matches!(out[..], [Err(LoadError::EmptyBatch { batch: 0 })]));
}

#[test]
fn epoch_batches_shuffle_and_drop_last() {
    let idx: Vec<usize> = (0..10).collect();
    assert_eq!(
        Dataset::epoch_batches(&idx, 3, false, 5, 0),
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
    );
    let a = Dataset::epoch_batches(&idx, 4, true, 5, 0);
    let mut flat: Vec<usize> = a.concat();
    assert_ne!(flat, idx);
    flat.sort();
    assert_eq!(flat, idx);
    assert_eq!(a, Dataset::epoch_batches(&idx, 4, true, 5, 0));
    assert_ne!(a, Dataset::epoch_batches(&idx, 4, true, 5, 1));
    assert_ne!(a, Dataset::epoch_batches(&idx, 4, true, 6, 0));

    let (_dir, manifest) = synth("droplast", ImageFormat::Png);
    let ds = Dataset::load(&manifest).unwrap();
    let live = ds.indices(&fas_core::dataset::Query {
        label: Some(Label::Live),
        ..Default::default()
    });
    assert_eq!(live.len(), 8);
    let loader = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 3,
            drop_last: true,
            ..eval_config(2)
        },
    )
    .unwrap();
    let e = loader.epoch(&live, 0).unwrap();
    let got: Vec<Batch> = guarded(move || e.collect::<Result<_, _>>().unwrap());
    assert_eq!(
        got.iter().map(|b| b.indices.clone()).collect::<Vec<_>>(),
        vec![live[0..3].to_vec(), live[3..6].to_vec()]
    );
    assert!(got.iter().all(|b| b.labels == [1, 1, 1]));
}

#[test]
fn config_and_manifest_errors_name_the_field_or_file() {
    let e = Dataset::load("/nonexistent/fas/manifest.jsonl").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/fas/manifest.jsonl: cannot open"),
        "{e}"
    );
    let ds = Dataset::from_manifest(Manifest::default(), "/tmp");
    let check = |c: LoaderConfig| {
        Loader::new(ds.clone(), c)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let base = LoaderConfig::eval(spec());
    let e = check(LoaderConfig {
        batch_size: 0,
        ..base.clone()
    });
    assert!(e.starts_with("loader.batch_size is 0"), "{e}");
    let e = check(LoaderConfig {
        workers: 0,
        ..base.clone()
    });
    assert!(e.starts_with("loader.workers is 0"), "{e}");
    let e = check(LoaderConfig {
        queue_depth: 0,
        ..base.clone()
    });
    assert!(e.starts_with("loader.queue_depth is 0"), "{e}");
    let e = check(LoaderConfig {
        depth_size: Some(0),
        ..base.clone()
    });
    assert!(e.starts_with("loader.depth_size is 0"), "{e}");
    let e = check(LoaderConfig {
        augment: AugmentConfig {
            hue: 0.9,
            ..AugmentConfig::default()
        },
        ..base.clone()
    });
    assert!(e.starts_with("loader.augment.hue is 0.9"), "{e}");
    let mut bad_spec = spec();
    bad_spec.normalize.std.pop();
    let e = check(LoaderConfig {
        spec: bad_spec,
        ..base.clone()
    });
    assert!(
        e.starts_with("loader.spec.normalize.std has 5 values"),
        "{e}"
    );

    let j = serde_json::to_string(&LoaderConfig::train(spec())).unwrap();
    let back: LoaderConfig = serde_json::from_str(&j).unwrap();
    assert_eq!(back, LoaderConfig::train(spec()));
}
