use super::*;

fn cfg() -> D2amConfig {
    D2amConfig {
        in_channels: 6,
        input_size: 32,
        width: 0.25,
        adapt_dim: 16,
        cluster_samples: 64,
        ..D2amConfig::default()
    }
}

/// 24 samples from 3 "domains" with different colour offsets, half live.
struct Toy {
    images: Tensor,
    labels: Tensor,
    domains: Tensor,
    depth: Tensor,
}

impl Toy {
    fn new() -> Toy {
        tch::manual_seed(0);
        let n = 24;
        let labels = Tensor::from_slice(&(0..n).map(|i| i % 2).collect::<Vec<_>>());
        let doms: Vec<i64> = (0..n).map(|i| i / 8).collect();
        let domains = Tensor::from_slice(&doms);
        let off = domains.to_kind(Kind::Float).view([-1, 1, 1, 1]) * 2.0;
        let lf = labels.to_kind(Kind::Float).view([-1, 1, 1, 1]);
        let images =
            Tensor::randn([n, 6, 32, 32], (Kind::Float, Device::Cpu)) * 0.5 + off + &lf * 0.5;
        let depth = Tensor::ones([n, 1, 4, 4], (Kind::Float, Device::Cpu)) * 0.7 * &lf;
        Toy {
            images,
            labels,
            domains,
            depth,
        }
    }

    fn batch(&self, idx: &[usize]) -> TrainBatch {
        let t = Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
        TrainBatch {
            images: self.images.index_select(0, &t),
            labels: self.labels.index_select(0, &t),
            domains: self.domains.index_select(0, &t),
            identities: self.labels.index_select(0, &t).zeros_like(),
            depth: Some(self.depth.index_select(0, &t)),
            indices: idx.to_vec(),
        }
    }
}

impl BatchSource for Toy {
    fn batches_per_epoch(&self) -> usize {
        1
    }
    fn epoch(
        &self,
        _epoch: usize,
        _skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>> {
        Ok(Box::new(std::iter::once(Ok(
            self.batch(&(0..24).collect::<Vec<_>>())
        ))))
    }
    fn survey(
        &self,
        max: usize,
    ) -> Result<Option<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>>> {
        let idx: Vec<usize> = (0..24.min(max)).collect();
        let b: Vec<Result<TrainBatch>> = idx.chunks(10).map(|c| Ok(self.batch(c))).collect();
        Ok(Some(Box::new(b.into_iter())))
    }
}

fn info(step: usize) -> StepInfo {
    StepInfo {
        step,
        epoch: 0,
        lr: 1e-3,
    }
}

#[test]
fn neg_entropy_known_answers() {
    let z = Tensor::from_slice(&[0.0f64, 0.0]);
    assert!((neg_entropy(&z).double_value(&[]) + 2f64.ln()).abs() < 1e-12);
    // P = σ(ln 3) = 0.75: 0.75 ln 0.75 + 0.25 ln 0.25.
    let z = Tensor::from_slice(&[3f64.ln()]);
    let want = 0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln();
    assert!((neg_entropy(&z).double_value(&[]) - want).abs() < 1e-12);
    let z = Tensor::from_slice(&[40.0f64, -40.0]);
    assert!(neg_entropy(&z).double_value(&[]).abs() < 1e-12);
}

#[test]
fn channel_stats_known_answer() {
    let x = Tensor::from_slice(&[1.0f64, 3.0, 5.0, 7.0]).view([1, 1, 2, 2]);
    let (mu, sd) = channel_stats(&x);
    assert_eq!(mu.double_value(&[0, 0]), 4.0);
    assert!((sd.double_value(&[0, 0]) - (5.0f64 + 1e-6).sqrt()).abs() < 1e-12);
}

/// The second-order meta-gradient (Eq. 11–13) equals central finite differences of the
/// meta objective, in f64, for θ_M and for the features (the path to θ_E).
#[test]
fn meta_gradient_matches_finite_differences() {
    tch::manual_seed(3);
    let opts = (Kind::Double, Device::Cpu);
    let theta: Vec<Tensor> = [vec![4i64, 5], vec![4], vec![1, 4], vec![1]]
        .iter()
        .map(|s| (Tensor::randn(s.as_slice(), opts) * 0.5).set_requires_grad(true))
        .collect();
    let feats: Vec<Tensor> = (0..3)
        .map(|_| Tensor::randn([6, 5], opts).set_requires_grad(true))
        .collect();
    let y = Tensor::from_slice(&[1i64, 0, 1, 0, 1, 1]);
    let prior = Tensor::randn([6, 4], opts);
    let mmd_fn = |h: &Tensor| mmd::mmd2(h, &prior, &mmd::BANDWIDTHS);
    let p = MetaParams {
        inner_lr: 0.5, // large, so the second-order terms matter
        mmd_weight: 0.3,
        second_order: true,
    };
    let objective = |theta: &[Tensor], feats: &[Tensor]| -> Tensor {
        let trn = vec![
            (feats[0].shallow_clone(), y.shallow_clone()),
            (feats[1].shallow_clone(), y.shallow_clone()),
        ];
        let tst = (feats[2].shallow_clone(), y.shallow_clone());
        meta_objective(theta, &trn, Some(&tst), p, Some(&mmd_fn)).total
    };
    let total = objective(&theta, &feats);
    let mut vars: Vec<&Tensor> = theta.iter().collect();
    vars.extend(feats.iter());
    let grads = Tensor::run_backward(&[&total], &vars, false, false);
    let eps = 1e-6;
    let mut first_order_differs = false;
    for (vi, g) in grads.iter().enumerate() {
        let n = vars[vi].numel() as i64;
        for j in 0..n.min(6) {
            let eval = |delta: f64| -> f64 {
                let all: Vec<Tensor> = vars.iter().map(|t| t.detach().copy()).collect();
                tch::no_grad(|| {
                    let _ = all[vi].view([-1]).get(j).f_add_scalar_(delta).unwrap();
                });
                let th: Vec<Tensor> = all[..4]
                    .iter()
                    .map(|t| t.shallow_clone().set_requires_grad(true))
                    .collect();
                objective(&th, &all[4..]).double_value(&[])
            };
            let fd = (eval(eps) - eval(-eps)) / (2.0 * eps);
            let an = g.view([-1]).double_value(&[j]);
            assert!(
                (fd - an).abs() < 1e-6 * (1.0 + fd.abs()),
                "var {vi} elem {j}: analytic {an} vs numeric {fd}"
            );
        }
    }
    // The first-order variant gives a different θ_M gradient (the check has teeth).
    let p1 = MetaParams {
        second_order: false,
        ..p
    };
    let trn = vec![
        (feats[0].shallow_clone(), y.shallow_clone()),
        (feats[1].shallow_clone(), y.shallow_clone()),
    ];
    let tst = (feats[2].shallow_clone(), y.shallow_clone());
    let t1 = meta_objective(&theta, &trn, Some(&tst), p1, Some(&mmd_fn)).total;
    let g1 = Tensor::run_backward(&[&t1], &[&theta[0]], false, false);
    if (&g1[0] - &grads[0]).abs().max().double_value(&[]) > 1e-6 {
        first_order_differs = true;
    }
    assert!(first_order_differs);
}

/// The exported graph validates and computes exactly what the recipe scores with.
#[test]
fn deployable_graph_scores_like_the_recipe() {
    let toy = Toy::new();
    let mut r = D2am::new(cfg(), Device::Cpu, 1).unwrap();
    r.start_epoch_with_data(0, &toy).unwrap();
    let b = toy.batch(&(0..24).collect::<Vec<_>>());
    for step in 0..2 {
        r.step(&b, &info(step)).unwrap();
    }
    let want = r.score(&b.images).unwrap();
    let d = r.deployable().unwrap();
    assert_eq!(d.graph.outputs.len(), 1);
    let mut m = IrModule::new(d.graph, Device::Cpu, 9).unwrap();
    let w: BTreeMap<String, Tensor> = d.weights.into_iter().collect();
    m.load_tensors(&w, true).unwrap();
    let got = tch::no_grad(|| m.forward(&[&b.images], false).unwrap().remove(0));
    assert_eq!(got.size(), vec![24, 1]);
    let diff = (got.view([-1]) - &want).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
    let p = Vec::<f64>::try_from(got.view([-1]).to_kind(Kind::Double)).unwrap();
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// Clustering assigns every surveyed sample, reports the NMI fields (no previous
/// assignment at epoch 0), keeps ids stable when nothing changed, and the step reports
/// finite terms.
#[test]
fn epochs_cluster_and_steps_train() {
    let toy = Toy::new();
    let mut r = D2am::new(cfg(), Device::Cpu, 2).unwrap();
    let rep0 = r.start_epoch_with_data(0, &toy).unwrap();
    let keys: Vec<&str> = rep0.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"pseudo_nmi_true"), "{keys:?}");
    assert!(!keys.contains(&"pseudo_nmi_prev"), "{keys:?}");
    let map0 = r.pseudo_domains();
    assert_eq!(map0.len(), 24);
    assert!(map0.values().all(|&d| d < 3));
    // The same epoch again (a resume inside it) does not re-cluster.
    assert!(r.start_epoch_with_data(0, &toy).unwrap().is_empty());
    let b = toy.batch(&(0..24).collect::<Vec<_>>());
    let terms = r.step(&b, &info(0)).unwrap();
    let names: Vec<&str> = terms.iter().map(|(k, _)| k.as_str()).collect();
    for want in [
        "loss", "cls", "mmd", "tst_cls", "depth", "entropy", "drlm_cls",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(terms.iter().all(|(_, v)| v.is_finite()), "{terms:?}");
    let rep1 = r.start_epoch_with_data(1, &toy).unwrap();
    let nmi_prev = rep1
        .iter()
        .find(|(k, _)| k == "pseudo_nmi_prev")
        .expect("epoch 1 reports nmi_prev")
        .1;
    assert!((0.0..=1.0).contains(&nmi_prev));
    // Rows that were not surveyed go to the nearest centroid of their class.
    let mut b2 = toy.batch(&[0, 1, 2, 3]);
    b2.indices = vec![1000, 1001, 1002, 1003];
    r.step(&b2, &info(1)).unwrap();
}

#[test]
fn clustering_a_domain_shift_finds_the_domains() {
    // Epoch 0 (random network) on images whose domains differ by a large colour
    // offset: the pseudo-domains follow the true ones.
    let toy = Toy::new();
    let mut r = D2am::new(cfg(), Device::Cpu, 4).unwrap();
    let rep = r.start_epoch_with_data(0, &toy).unwrap();
    let nmi = rep.iter().find(|(k, _)| k == "pseudo_nmi_true").unwrap().1;
    assert!(nmi > 0.9, "{rep:?}");
}

/// Saving the state and loading it into a fresh recipe continues identically,
/// pseudo-domains included.
#[test]
fn state_round_trip_continues_identically() {
    let toy = Toy::new();
    let mut a = D2am::new(cfg(), Device::Cpu, 3).unwrap();
    a.start_epoch_with_data(0, &toy).unwrap();
    let b = toy.batch(&(0..24).collect::<Vec<_>>());
    tch::manual_seed(10);
    a.step(&b, &info(0)).unwrap();
    let saved: BTreeMap<String, Tensor> = a
        .state()
        .into_iter()
        .map(|(k, t)| (k, t.detach().copy()))
        .collect();
    let mut c = D2am::new(cfg(), Device::Cpu, 3).unwrap();
    c.load_state(&saved).unwrap();
    assert_eq!(a.pseudo_domains(), c.pseudo_domains());
    assert!(c.start_epoch_with_data(0, &toy).unwrap().is_empty());
    tch::manual_seed(11);
    let la = a.step(&b, &info(1)).unwrap();
    tch::manual_seed(11);
    let lc = c.step(&b, &info(1)).unwrap();
    assert_eq!(la, lc);
    assert!(a
        .score(&b.images)
        .unwrap()
        .equal(&c.score(&b.images).unwrap()));
}

#[test]
fn training_reduces_the_loss() {
    let toy = Toy::new();
    let mut r = D2am::new(cfg(), Device::Cpu, 5).unwrap();
    r.start_epoch_with_data(0, &toy).unwrap();
    let b = toy.batch(&(0..24).collect::<Vec<_>>());
    let losses: Vec<f64> = (0..15)
        .map(|s| {
            tch::manual_seed(s as i64);
            let t = r.step(&b, &info(s)).unwrap();
            t.iter().find(|(k, _)| k == "loss").unwrap().1
        })
        .collect();
    let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = losses[12..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.8 * first, "{losses:?}");
}

fn all_rows(toy: &Toy) -> (TrainBatch, Vec<i64>) {
    let b = toy.batch(&(0..24).collect::<Vec<_>>());
    let labels = Vec::<i64>::try_from(&b.labels).unwrap();
    (b, labels)
}

fn term_names(terms: &[(String, f64)]) -> Vec<String> {
    terms.iter().map(|(k, _)| k.clone()).collect()
}

/// `true-domains`: every row's domain is the batch's (the manifest's) domain, surveyed
/// or not; nothing is surveyed or reported at the epoch start.
#[test]
fn true_domains_are_the_manifest_domains() {
    let toy = Toy::new();
    let c = D2amConfig {
        domains: DomainSource::True,
        ..cfg()
    };
    let mut r = D2am::new(c, Device::Cpu, 1).unwrap();
    assert!(r.start_epoch_with_data(0, &toy).unwrap().is_empty());
    assert!(r.pseudo_domains().is_empty() && r.clustering.is_none());
    let (mut b, labels) = all_rows(&toy);
    let want: Vec<usize> = (0..24).map(|i| i / 8).collect();
    assert_eq!(
        r.batch_domains(&b, &labels, &BTreeMap::new()).unwrap(),
        want
    );
    b.indices = (1000..1024).collect();
    assert_eq!(
        r.batch_domains(&b, &labels, &BTreeMap::new()).unwrap(),
        want
    );
    let t = r.step(&b, &info(0)).unwrap();
    assert_eq!(
        t.iter().find(|(k, _)| k == "pseudo_domains").unwrap().1,
        3.0
    );
    // It reads the batch's domains, nothing else: one domain, no meta-test.
    b.domains = b.domains.zeros_like();
    let t = r.step(&b, &info(1)).unwrap();
    assert_eq!(
        t.iter().find(|(k, _)| k == "pseudo_domains").unwrap().1,
        1.0
    );
    assert_eq!(t.iter().find(|(k, _)| k == "tst_cls").unwrap().1, 0.0);
}

/// `random-domains`: uniform in 0..K, a pure function of (seed, epoch, index) that
/// changes between epochs; the recipe's assignment, its batches and its report follow it.
#[test]
fn random_domains_are_seeded_uniform_and_change_per_epoch() {
    let draw = |seed, epoch, k| -> Vec<usize> {
        (0..24).map(|i| random_domain(seed, epoch, i, k)).collect()
    };
    assert_eq!(draw(7, 0, 3), draw(7, 0, 3));
    assert_ne!(draw(7, 0, 3), draw(7, 1, 3));
    assert_ne!(draw(7, 0, 3), draw(8, 0, 3));
    let mut counts = [0usize; 4];
    for i in 0..4000 {
        counts[random_domain(3, 2, i, 4)] += 1;
    }
    // Binomial(4000, 1/4): sd ≈ 27; ±135 is 5 sd.
    assert!(counts.iter().all(|&n| n.abs_diff(1000) < 135), "{counts:?}");

    let toy = Toy::new();
    let c = D2amConfig {
        domains: DomainSource::Random,
        clusters: 4,
        ..cfg()
    };
    let mut r = D2am::new(c.clone(), Device::Cpu, 7).unwrap();
    let rep0 = r.start_epoch_with_data(0, &toy).unwrap();
    let keys = term_names(&rep0);
    assert!(keys.contains(&"pseudo_nmi_true".to_string()), "{keys:?}");
    assert!(!keys.contains(&"pseudo_nmi_prev".to_string()), "{keys:?}");
    assert!(keys.contains(&"pseudo_domain_3".to_string()), "{keys:?}");
    let want0: BTreeMap<usize, usize> = draw(7, 0, 4).into_iter().enumerate().collect();
    assert_eq!(r.pseudo_domains(), want0);
    let covered: BTreeSet<usize> = want0.values().copied().collect();
    assert_eq!(covered, (0..4).collect());
    let (mut b, labels) = all_rows(&toy);
    let got = r.batch_domains(&b, &labels, &BTreeMap::new()).unwrap();
    assert_eq!(got, draw(7, 0, 4));
    b.indices = (100..124).collect();
    let got = r.batch_domains(&b, &labels, &BTreeMap::new()).unwrap();
    let want: Vec<usize> = (100..124).map(|i| random_domain(7, 0, i, 4)).collect();
    assert_eq!(got, want);
    // The same seed gives the same epoch in another recipe instance.
    let mut again = D2am::new(c, Device::Cpu, 7).unwrap();
    again.start_epoch_with_data(0, &toy).unwrap();
    assert_eq!(again.pseudo_domains(), r.pseudo_domains());
    let rep1 = r.start_epoch_with_data(1, &toy).unwrap();
    assert!(term_names(&rep1).contains(&"pseudo_nmi_prev".to_string()));
    let want1: BTreeMap<usize, usize> = draw(7, 1, 4).into_iter().enumerate().collect();
    assert_eq!(r.pseudo_domains(), want1);
    assert_ne!(want0, want1);
    // No clustering ran: no centroids, no channels.
    let cl = r.clustering.as_ref().unwrap();
    assert!(cl.centroids.is_empty() && cl.channels.is_empty());
}

/// `no-selection`: after epoch 0 the domain features are the statistics of all channels
/// of `F`, twice as many as the `C/2` lowest-attention channels of `F⁻`.
#[test]
fn no_selection_clusters_all_channels_of_f() {
    let toy = Toy::new();
    let run = |no_selection| {
        let c = D2amConfig {
            no_selection,
            ..cfg()
        };
        let mut r = D2am::new(c, Device::Cpu, 4).unwrap();
        r.start_epoch_with_data(0, &toy).unwrap();
        let d0 = r.clustering.as_ref().unwrap().mean.len();
        r.start_epoch_with_data(1, &toy).unwrap();
        let cl = r.clustering.clone().unwrap();
        (d0, cl)
    };
    let (d0, sel) = run(false);
    let (d0_all, all) = run(true);
    assert_eq!(d0, d0_all, "epoch 0 clusters all channels of F either way");
    assert!(!sel.pre_drlm && all.pre_drlm);
    assert_eq!(all.mean.len(), 2 * sel.mean.len());
    assert_eq!(all.mean.len(), d0);
    for (a, s) in all.channels.iter().zip(&sel.channels) {
        assert_eq!(a, &(0..a.len()).collect::<Vec<_>>());
        assert_eq!(s.len(), a.len() / 2);
    }
    let bad = D2amConfig {
        no_selection: true,
        domains: DomainSource::Random,
        ..cfg()
    };
    assert!(D2am::new(bad, Device::Cpu, 0).is_err());
}

/// `no-entropy` drops L_p and the W_p BCE (W_p gets no update), `no-mmd` drops the MMD
/// terms; everything else is still computed and logged.
#[test]
fn no_entropy_and_no_mmd_drop_their_terms() {
    let toy = Toy::new();
    let (b, _) = all_rows(&toy);
    let step = |c: D2amConfig| {
        let mut r = D2am::new(c, Device::Cpu, 6).unwrap();
        r.start_epoch_with_data(0, &toy).unwrap();
        let w0 = r.predictors[0].0.detach().copy();
        tch::manual_seed(1);
        let t = r.step(&b, &info(0)).unwrap();
        let moved = !r.predictors[0].0.equal(&w0);
        (term_names(&t), moved)
    };
    let (full, moved) = step(cfg());
    assert!(moved, "the full recipe trains W_p");
    let (ne, moved) = step(D2amConfig {
        no_entropy: true,
        ..cfg()
    });
    assert!(!moved, "no-entropy must leave W_p alone");
    let (nm, moved) = step(D2amConfig {
        no_mmd: true,
        ..cfg()
    });
    assert!(moved);
    let minus = |drop: &[&str]| -> Vec<String> {
        full.iter()
            .filter(|k| !drop.contains(&k.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(ne, minus(&["entropy", "drlm_cls"]));
    assert_eq!(nm, minus(&["mmd", "tst_mmd"]));

    // Without MMD the meta objective is exactly the one with λ_m = 0.
    tch::manual_seed(2);
    let opts = (Kind::Double, Device::Cpu);
    let theta: Vec<Tensor> = [vec![4i64, 5], vec![4], vec![1, 4], vec![1]]
        .iter()
        .map(|s| Tensor::randn(s.as_slice(), opts).set_requires_grad(true))
        .collect();
    let y = Tensor::from_slice(&[1i64, 0, 1, 0]);
    let trn = vec![(Tensor::randn([4, 5], opts), y.shallow_clone())];
    let tst = (Tensor::randn([4, 5], opts), y.shallow_clone());
    let prior = Tensor::randn([4, 4], opts);
    let mmd_fn = |h: &Tensor| mmd::mmd2(h, &prior, &mmd::BANDWIDTHS);
    let p = MetaParams {
        inner_lr: 0.5,
        mmd_weight: 0.0,
        second_order: true,
    };
    let with = meta_objective(&theta, &trn, Some(&tst), p, Some(&mmd_fn));
    let without = meta_objective(&theta, &trn, Some(&tst), p, None);
    assert!(with.trn_mmd.double_value(&[]) > 0.0);
    assert_eq!(without.trn_mmd.double_value(&[]), 0.0);
    let (a, b) = (
        with.total.double_value(&[]),
        without.total.double_value(&[]),
    );
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

/// K = 2 and K = 4 cluster into exactly that many pseudo-domains.
#[test]
fn k_sets_the_number_of_pseudo_domains() {
    let toy = Toy::new();
    for k in [2usize, 4] {
        let c = D2amConfig {
            clusters: k,
            ..cfg()
        };
        let mut r = D2am::new(c, Device::Cpu, 8).unwrap();
        let rep = r.start_epoch_with_data(0, &toy).unwrap();
        let ids: BTreeSet<usize> = r.pseudo_domains().values().copied().collect();
        assert_eq!(ids, (0..k).collect(), "K = {k}");
        let keys = term_names(&rep);
        assert!(
            keys.contains(&format!("pseudo_domain_{}", k - 1)),
            "{keys:?}"
        );
        assert!(!keys.contains(&format!("pseudo_domain_{k}")), "{keys:?}");
        let cl = r.clustering.as_ref().unwrap();
        assert!(cl.centroids.iter().all(|per_class| per_class.len() == k));
        let (b, _) = all_rows(&toy);
        let t = r.step(&b, &info(0)).unwrap();
        let present = t.iter().find(|(n, _)| n == "pseudo_domains").unwrap().1;
        assert!(present >= 2.0 && present <= k as f64, "{t:?}");
    }
}
