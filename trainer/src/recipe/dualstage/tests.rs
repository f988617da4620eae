use super::*;

fn cfg() -> DualStageConfig {
    DualStageConfig {
        input_size: 16,
        channels: 4,
        stage1_steps: 2,
        ..DualStageConfig::default()
    }
}

/// 4 live + 4 spoof; spoofs are brighter.
fn batch(seed: i64) -> TrainBatch {
    tch::manual_seed(seed);
    let labels = Tensor::from_slice(&[1i64, 1, 1, 1, 0, 0, 0, 0]);
    let spoof = labels.eq(0).to_kind(Kind::Float).view([-1, 1, 1, 1]);
    let images = Tensor::randn([8, 3, 16, 16], (Kind::Float, Device::Cpu)) * 0.5 + spoof;
    TrainBatch {
        images,
        labels,
        domains: Tensor::zeros([8], (Kind::Int64, Device::Cpu)),
        identities: Tensor::zeros([8], (Kind::Int64, Device::Cpu)),
        depth: None,
        indices: Vec::new(),
    }
}

fn info(step: usize) -> StepInfo {
    StepInfo {
        step,
        epoch: 0,
        lr: 1e-3,
    }
}

/// Copies of every weight (parameters and running statistics) of a network.
fn snap(m: &IrModule) -> BTreeMap<String, Tensor> {
    m.snapshot()
}

fn same(m: &IrModule, before: &BTreeMap<String, Tensor>) -> bool {
    m.snapshot().iter().all(|(k, t)| t.equal(&before[k]))
}

fn all(r: &DualStage) -> Vec<(&'static str, BTreeMap<String, Tensor>)> {
    r.nets().into_iter().map(|(k, m)| (k, snap(m))).collect()
}

fn changed(r: &DualStage, before: &[(&'static str, BTreeMap<String, Tensor>)]) -> Vec<String> {
    let nets = r.nets();
    before
        .iter()
        .filter(|(k, b)| {
            let m = nets.iter().find(|(n, _)| n == k).unwrap().1;
            !same(m, b)
        })
        .map(|(k, _)| k.to_string())
        .collect()
}

#[test]
fn stage_one_trains_only_the_live_autoencoder() {
    let mut r = DualStage::new(cfg(), Device::Cpu, 1).unwrap();
    let before = all(&r);
    let t = r.step(&batch(0), &info(0)).unwrap();
    assert!(t.contains(&("stage".to_string(), 1.0)), "{t:?}");
    assert_eq!(changed(&r, &before), vec!["el", "dl"]);
}

#[test]
fn stage_two_freezes_the_live_encoder() {
    let mut r = DualStage::new(cfg(), Device::Cpu, 2).unwrap();
    let b = batch(1);
    for s in 0..2 {
        r.step(&b, &info(s)).unwrap();
    }
    let before = all(&r);
    let t = r.step(&b, &info(2)).unwrap();
    assert!(t.contains(&("stage".to_string(), 2.0)), "{t:?}");
    assert_eq!(changed(&r, &before), vec!["spoof", "dsyn", "disc", "aux"]);

    // Single-stage ablation: E_L/D_L move from the first step on, with everything else.
    let mut r = DualStage::new(
        DualStageConfig {
            single_stage: true,
            ..cfg()
        },
        Device::Cpu,
        2,
    )
    .unwrap();
    let before = all(&r);
    let t = r.step(&b, &info(0)).unwrap();
    assert!(t.iter().any(|(k, _)| k == "live"), "{t:?}");
    assert_eq!(
        changed(&r, &before),
        vec!["el", "dl", "spoof", "dsyn", "disc", "aux"]
    );
}

#[test]
fn gan_steps_alternate_the_right_networks() {
    let mut r = DualStage::new(cfg(), Device::Cpu, 3).unwrap();
    let b = batch(2);
    let before = all(&r);
    r.discriminator_step(&b, 1e-3).unwrap();
    assert_eq!(changed(&r, &before), vec!["disc"]);
    let before = all(&r);
    r.generator_step(&b, 1e-3).unwrap();
    assert_eq!(changed(&r, &before), vec!["spoof", "dsyn", "aux"]);
}

#[test]
fn ablations_drop_their_terms() {
    let mut r = DualStage::new(cfg(), Device::Cpu, 4).unwrap();
    let t = r.step(&batch(3), &info(5)).unwrap();
    let names: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        vec!["loss", "stage", "disc", "gen", "recon", "adv", "reg", "triplet", "aux"]
    );
    assert!(t.iter().all(|(_, v)| v.is_finite()), "{t:?}");
    let mut r = DualStage::new(
        DualStageConfig {
            no_triplet: true,
            no_aux: true,
            ..cfg()
        },
        Device::Cpu,
        4,
    )
    .unwrap();
    assert!(r.aux_classifier().is_none());
    let t = r.step(&batch(3), &info(5)).unwrap();
    let names: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        vec!["loss", "stage", "disc", "gen", "recon", "adv", "reg"]
    );
}

/// The exported E_S + D_map graph computes exactly `score`.
#[test]
fn deployable_graph_scores_like_the_recipe() {
    let mut r = DualStage::new(cfg(), Device::Cpu, 5).unwrap();
    let b = batch(4);
    for s in 0..4 {
        r.step(&b, &info(s)).unwrap();
    }
    let want = r.score(&b.images).unwrap();
    assert!(want.min().double_value(&[]) >= 0.0 && want.max().double_value(&[]) <= 1.0);
    let d = r.deployable().unwrap();
    assert_eq!(d.graph.outputs, vec!["p_live".to_string()]);
    let mut m = IrModule::new(d.graph, Device::Cpu, 99).unwrap();
    let w: BTreeMap<String, Tensor> = d.weights.into_iter().collect();
    m.load_tensors(&w, true).unwrap();
    let got = tch::no_grad(|| m.forward(&[&b.images], false).unwrap().remove(0));
    assert_eq!(got.size(), vec![8, 1]);
    let diff = (got.view([-1]) - &want).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "{diff}");
    // The score depends on the input.
    let spread = (want.max() - want.min()).double_value(&[]);
    assert!(spread > 1e-6, "{want}");
}

/// Saving the state (all three optimisers) and loading it into a fresh recipe continues
/// identically, in either stage.
#[test]
fn state_round_trip_continues_identically() {
    for at in [0usize, 3] {
        let mut a = DualStage::new(cfg(), Device::Cpu, 6).unwrap();
        let b = batch(5);
        for s in 0..=at {
            a.step(&b, &info(s)).unwrap();
        }
        let saved: BTreeMap<String, Tensor> = a
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.detach().copy()))
            .collect();
        assert!(saved.keys().any(|k| k.starts_with("opt_disc.")));
        let mut c = DualStage::new(cfg(), Device::Cpu, 7).unwrap();
        c.load_state(&saved).unwrap();
        let la = a.step(&b, &info(at + 1)).unwrap();
        let lc = c.step(&b, &info(at + 1)).unwrap();
        assert_eq!(la, lc);
        assert!(a
            .score(&b.images)
            .unwrap()
            .equal(&c.score(&b.images).unwrap()));
    }
    // A checkpoint of the full model does not load into an ablated one.
    let a = DualStage::new(cfg(), Device::Cpu, 6).unwrap();
    let saved: BTreeMap<String, Tensor> = a.state().into_iter().collect();
    let mut c = DualStage::new(
        DualStageConfig {
            channels: 8,
            ..cfg()
        },
        Device::Cpu,
        6,
    )
    .unwrap();
    assert!(c.load_state(&saved).is_err());
}

/// Stage 2 on one fixed batch separates the maps: spoof samples end with a larger mean
/// map than live ones.
#[test]
fn training_separates_live_and_spoof_maps() {
    let mut r = DualStage::new(
        DualStageConfig {
            stage1_steps: 0,
            ..cfg()
        },
        Device::Cpu,
        8,
    )
    .unwrap();
    let b = batch(6);
    for s in 0..30 {
        r.step(&b, &info(s)).unwrap();
    }
    let p = r.score(&b.images).unwrap();
    let live = p.narrow(0, 0, 4).mean(Kind::Float).double_value(&[]);
    let spoof = p.narrow(0, 4, 4).mean(Kind::Float).double_value(&[]);
    assert!(live > spoof + 0.05, "live {live}, spoof {spoof}");
}

#[test]
fn bad_configs_are_refused() {
    for c in [
        DualStageConfig {
            input_size: 18,
            ..cfg()
        },
        DualStageConfig {
            channels: 0,
            ..cfg()
        },
        DualStageConfig {
            aux_weight: -1.0,
            ..cfg()
        },
    ] {
        assert!(DualStage::new(c, Device::Cpu, 0).is_err());
    }
}

/// Swapping in one's own spoof features is the plain reconstruction; another sample's
/// change it; the grid holds the denormalised inputs and the maps.
#[test]
fn translation_swaps_spoof_features() {
    let mut r = DualStage::new(cfg(), Device::Cpu, 9).unwrap();
    let b = batch(7);
    for s in 0..3 {
        r.step(&b, &info(s)).unwrap();
    }
    let live = b.images.narrow(0, 0, 2);
    let spoof = b.images.narrow(0, 4, 2);
    let own = r.translate(&live, &live).unwrap();
    let rec = tch::no_grad(|| {
        let fl = output(&r.el, &live, &Forward::eval()).unwrap();
        let fs = output(&r.spoof, &live, &Forward::eval()).unwrap();
        output(&r.dsyn, &Tensor::cat(&[fl, fs], 1), &Forward::eval()).unwrap()
    });
    assert!(own.equal(&rec));
    let swapped = r.translate(&live, &spoof).unwrap();
    assert_eq!(swapped.size(), vec![2, 3, 16, 16]);
    assert!((swapped - own).abs().max().double_value(&[]) > 1e-6);

    let norm = fas_core::preprocess::Normalize {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
    };
    let x = |i: i64| b.images.narrow(0, i, 1);
    let g = r.translation_grid(&x(0), &x(4), &norm).unwrap();
    assert_eq!(g.dimensions(), (64, 32));
    let v = b.images.double_value(&[0, 1, 2, 3]);
    let want = ((v * 0.25 + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8;
    assert_eq!(g.get_pixel(3, 2)[1], want);
    assert!(r.translation_grid(&live, &x(4), &norm).is_err());
}
