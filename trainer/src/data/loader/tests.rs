use super::*;
use std::time::{Duration, Instant};

fn fake_batch(seq: usize, indices: &[usize]) -> Batch {
    Batch {
        indices: indices.to_vec(),
        images: vec![seq as f32; indices.len()],
        labels: vec![1; indices.len()],
        domains: vec![0; indices.len()],
        identities: vec![0; indices.len()],
        depth: None,
        shape: [indices.len(), 1, 1, 1],
        depth_shape: None,
    }
}

fn batches(n: usize) -> Vec<Vec<usize>> {
    (0..n).map(|i| vec![i]).collect()
}

#[test]
fn yields_in_order_despite_uneven_work() {
    let job: JobFn = Arc::new(|seq, idx| {
        // Early batches are slowest, so they finish last.
        std::thread::sleep(Duration::from_millis(((8 - seq.min(8)) * 3) as u64));
        Ok(fake_batch(seq, idx))
    });
    let got: Vec<usize> = Epoch::start(batches(12).into_iter(), 3, 4, job)
        .unwrap()
        .map(|b| b.unwrap().indices[0])
        .collect();
    assert_eq!(got, (0..12).collect::<Vec<_>>());
}

#[test]
fn worker_panic_becomes_an_error_and_ends_the_epoch() {
    let job: JobFn = Arc::new(|seq, idx| {
        if seq == 3 {
            panic!("boom in batch three");
        }
        Ok(fake_batch(seq, idx))
    });
    let t = Instant::now();
    let mut e = Epoch::start(batches(10).into_iter(), 2, 3, job).unwrap();
    for i in 0..3 {
        assert_eq!(e.next().unwrap().unwrap().indices, vec![i]);
    }
    let err = e.next().unwrap().unwrap_err();
    assert!(
        matches!(&err, LoadError::WorkerPanic { batch: 3, message } if message == "boom in batch three"),
        "{err}"
    );
    assert!(e.next().is_none() && e.next().is_none());
    drop(e);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn error_is_yielded_after_earlier_batches_even_if_it_arrives_first() {
    let job: JobFn = Arc::new(|seq, idx| {
        if seq == 1 {
            return Err(LoadError::EmptyBatch { batch: 1 });
        }
        std::thread::sleep(Duration::from_millis(50));
        Ok(fake_batch(seq, idx))
    });
    let out: Vec<_> = Epoch::start(batches(6).into_iter(), 4, 4, job)
        .unwrap()
        .collect();
    assert_eq!(out.len(), 2);
    assert!(out[0].is_ok());
    assert!(matches!(out[1], Err(LoadError::EmptyBatch { batch: 1 })));
}

#[test]
fn back_pressure_limits_work_ahead() {
    let job: JobFn = Arc::new(|seq, idx| Ok(fake_batch(seq, idx)));
    let mut e = Epoch::start(batches(50).into_iter(), 3, 2, job).unwrap();
    e.next().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(e.batches_started() <= 1 + 2, "{}", e.batches_started());
    assert_eq!(e.count(), 49);
}

/// Subject ids repeat across datasets: an identity is the (domain, subject) pair.
#[test]
fn identities_are_subjects_within_their_domain() {
    let sample = |domain: &str, subject: &str| Sample {
        v: 1,
        path: format!("{domain}/{subject}.png"),
        label: Label::Live,
        attack: "none".into(),
        domain: domain.into(),
        subject: subject.into(),
        device: "cam".into(),
        split: fas_core::dataset::Split::Train,
        video: format!("{domain}-{subject}"),
        frame: 0,
    };
    let m = Manifest::new(vec![
        sample("b", "1"),
        sample("a", "1"),
        sample("b", "2"),
        sample("b", "1"),
    ]);
    let d = Dataset::from_manifest(m, "/tmp");
    let names: Vec<(&str, &str)> = d
        .identity_names()
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(names, vec![("a", "1"), ("b", "1"), ("b", "2")]);
    let ids: Vec<usize> = (0..4).map(|i| d.identity_index(i)).collect();
    assert_eq!(ids, vec![1, 0, 2, 1]);
    let b = Batch {
        identities: ids,
        ..fake_batch(0, &[0, 1, 2, 3])
    };
    let t = b.to_tensors(Device::Cpu);
    assert_eq!(
        Vec::<i64>::try_from(&t.identities).unwrap(),
        vec![1, 0, 2, 1]
    );
}

#[test]
fn mix_is_not_trivial() {
    assert_ne!(sample_seed(0, 0, 0), sample_seed(0, 0, 1));
    assert_ne!(sample_seed(0, 0, 1), sample_seed(0, 1, 0));
    assert_ne!(sample_seed(1, 0, 0), sample_seed(0, 1, 0));
}
