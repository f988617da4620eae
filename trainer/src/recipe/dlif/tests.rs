use super::*;
use proptest::prelude::*;

/// `f(a·i + b·j + c)` on an `[rows, cols]` grid, as `tests/reference/dlif_reference.py`
/// builds its inputs.
fn grid(rows: i64, cols: i64, a: f64, b: f64, c: f64, cos: bool) -> Tensor {
    let i = Tensor::arange(rows, (Kind::Double, Device::Cpu)).unsqueeze(1);
    let j = Tensor::arange(cols, (Kind::Double, Device::Cpu)).unsqueeze(0);
    let t = i * a + j * b + c;
    if cos {
        t.cos()
    } else {
        t.sin()
    }
}

fn close(got: &Tensor, want: f64, tol: f64) {
    let g = got.double_value(&[]);
    assert!(
        (g - want).abs() <= tol * want.abs().max(1.0),
        "{g} vs {want}"
    );
}

// Known answers from tests/reference/dlif_reference.py (PyTorch, float64).

#[test]
fn ortho_loss_known_answer() {
    let fu = grid(4, 5, 0.7, 0.3, 0.1, false);
    let fv = grid(4, 5, 0.5, -0.2, 0.0, true);
    close(&ortho_loss(&fu, &fv), 0.719_441_983_989_225_7, 1e-9);
}

#[test]
fn ambiguity_loss_known_answers() {
    let l4 = grid(3, 4, 1.3, 0.7, 0.0, false) * 2.0;
    close(&ambiguity_loss(&l4), 0.162_079_736_487_786_79, 1e-9);
    let l2 = grid(3, 2, 0.4, 0.9, 0.2, true) * 15.0;
    close(&ambiguity_loss(&l2), 0.499_742_622_003_183_5, 1e-9);
    // Uniform logits: no preference, no loss.
    close(
        &ambiguity_loss(&Tensor::ones([5, 7], (Kind::Double, Device::Cpu))),
        0.0,
        1e-12,
    );
}

#[test]
fn sup_con_known_answer() {
    let z = grid(6, 4, 0.9, 0.4, 0.2, false);
    let y = Tensor::from_slice(&[0i64, 0, 1, 2, 1, 3]);
    close(&sup_con(&z, &y, 0.07), 11.201_779_247_591_872, 1e-7);
}

#[test]
fn style_cross_known_answer() {
    let n = 4 * 2 * 2 * 3;
    let x = (Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37 + 0.5)
        .sin()
        .view([4, 2, 2, 3]);
    let scale = Tensor::from_slice(&[1.0f64, 2.0, 0.5, 3.0]).view([4, 1, 1, 1]);
    let shift = Tensor::arange(4, (Kind::Double, Device::Cpu)).view([4, 1, 1, 1]);
    let x = x * scale + shift;
    let out = style_cross(&x, &Tensor::from_slice(&[1i64, 0, 3, 2]), 1e-6);
    let w = Tensor::arange(n, (Kind::Double, Device::Cpu)).view([4, 2, 2, 3]);
    close(&out.sum(Kind::Double), 76.112_853_034_532_18, 1e-9);
    close(&(&out * w).sum(Kind::Double), 1_998.223_908_827_69, 1e-9);
    close(
        &out.get(0).get(1).get(1).get(2),
        2.098_605_907_421_725_4,
        1e-9,
    );
}

#[test]
fn aaic_labels_tie_spoof_instances_to_their_copies_only() {
    let y = Tensor::from_slice(&[1i64, 0, 1, 0]);
    let got = Vec::<i64>::try_from(aaic_fas_labels(&y, 2)).unwrap();
    assert_eq!(got, vec![0, 2, 0, 4, 0, 2, 0, 4]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// After a Style Cross each sample carries its partner's channel mean and std, keeps
    /// its own normalised content, and the partner is another member of its group.
    #[test]
    fn style_cross_swaps_statistics_within_groups(
        groups in proptest::collection::vec(0i64..3, 2..10),
        seed in 0u64..1000,
    ) {
        let n = groups.len() as i64;
        tch::manual_seed(seed as i64);
        let x = Tensor::randn([n, 3, 4, 5], (Kind::Double, Device::Cpu))
            * (Tensor::rand([n, 3, 1, 1], (Kind::Double, Device::Cpu)) * 3.0 + 0.5)
            + Tensor::randn([n, 3, 1, 1], (Kind::Double, Device::Cpu)) * 2.0;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = partners(&groups, &mut rng);
        for (i, &j) in p.iter().enumerate() {
            prop_assert_eq!(groups[i], groups[j as usize]);
            let alone = groups.iter().filter(|&&g| g == groups[i]).count() == 1;
            prop_assert_eq!(j as usize == i, alone);
        }
        let out = style_cross(&x, &Tensor::from_slice(&p), 1e-12);
        let dims = [2i64, 3].as_slice();
        let stats = |t: &Tensor| (t.mean_dim(dims, true, Kind::Double), t.var_dim(dims, false, true).sqrt());
        let (mu, sd) = stats(&x);
        let (mu2, sd2) = stats(&out);
        let idx = Tensor::from_slice(&p);
        let d = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        prop_assert!(d(&mu2, &mu.index_select(0, &idx)) < 1e-9);
        prop_assert!(d(&sd2, &sd.index_select(0, &idx)) < 1e-9);
        prop_assert!(d(&((&out - &mu2) / &sd2), &((&x - &mu) / &sd)) < 1e-8);
    }
}

fn cfg() -> DlifConfig {
    DlifConfig {
        input_size: 32,
        width: 0.125,
        ..DlifConfig::default()
    }
}

/// Two source domains × two identities × (2 live + 2 spoof); identities 10, 11, 20, 21.
fn batch(seed: i64) -> TrainBatch {
    tch::manual_seed(seed);
    let labels = Tensor::from_slice(&[1i64, 1, 0, 0]).repeat([4]);
    let identities =
        Tensor::from_slice(&[10i64, 11, 20, 21]).repeat_interleave_self_int(4, 0, None);
    let domains = Tensor::from_slice(&[0i64, 1]).repeat_interleave_self_int(8, 0, None);
    let lf = labels.to_kind(Kind::Float).view([-1, 1, 1, 1]);
    let images = Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu)) + &lf * 0.5;
    TrainBatch {
        images,
        labels,
        domains,
        identities,
        depth: None,
        indices: Vec::new(),
    }
}

const IDS: [usize; 4] = [10, 11, 20, 21];

fn info(step: usize) -> StepInfo {
    StepInfo {
        step,
        epoch: 0,
        lr: 1e-3,
    }
}

/// The exported graph (U + CWSA + C) computes exactly what the recipe scores with.
#[test]
fn deployable_graph_scores_like_the_recipe() {
    for no_cwsa in [false, true] {
        let mut r = Dlif::new(DlifConfig { no_cwsa, ..cfg() }, &IDS, Device::Cpu, 1).unwrap();
        let b = batch(0);
        for step in 0..2 {
            r.step(&b, &info(step)).unwrap();
        }
        let want = r.score(&b.images).unwrap();
        let d = r.deployable().unwrap();
        assert_eq!(d.graph.outputs, vec!["p_live".to_string()]);
        let has_cwsa = d
            .graph
            .nodes
            .iter()
            .any(|n| matches!(n.op, fas_core::ir::Op::StyleAttention { .. }));
        assert_eq!(has_cwsa, !no_cwsa);
        // The backbone's own pooling is pruned when CWSA replaces it.
        assert!(no_cwsa || d.graph.node("avgpool").is_none());
        let mut m = IrModule::new(d.graph, Device::Cpu, 9).unwrap();
        let w: BTreeMap<String, Tensor> = d.weights.into_iter().collect();
        m.load_tensors(&w, true).unwrap();
        let got = tch::no_grad(|| m.forward(&[&b.images], false).unwrap().remove(0));
        assert_eq!(got.size(), vec![16, 1]);
        let diff = (got.view([-1]) - &want).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }
}

#[test]
fn a_step_reports_every_term_and_ablations_drop_theirs() {
    let mut r = Dlif::new(cfg(), &IDS, Device::Cpu, 2).unwrap();
    assert_eq!(r.identity_classes(), 4);
    let terms = r.step(&batch(1), &info(0)).unwrap();
    let names: Vec<&str> = terms.iter().map(|(k, _)| k.as_str()).collect();
    for want in [
        "loss", "fas", "fr", "cls", "aaic_u", "id", "aaic_v", "ortho", "idamb", "liamb",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(terms.iter().all(|(_, v)| v.is_finite()), "{terms:?}");

    let ablated = DlifConfig {
        no_v: true,
        no_style_cross: true,
        style_cross: StyleCrossConfig {
            flow: Flow::Parallel,
            ..StyleCrossConfig::default()
        },
        ..cfg()
    };
    let mut r = Dlif::new(ablated, &[], Device::Cpu, 2).unwrap();
    assert!(r.identity_encoder().is_none());
    let terms = r.step(&batch(1), &info(0)).unwrap();
    let names: Vec<&str> = terms.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, vec!["loss", "fas", "cls", "aaic_u"]);
}

/// The hook really crosses styles after the named stage: with real partners the
/// style-crossed copy's features differ from the original's, with every sample as its
/// own partner they are the original's.
#[test]
fn style_cross_hook_acts_on_the_chosen_stage() {
    let r = Dlif::new(cfg(), &IDS, Device::Cpu, 4).unwrap();
    let b = batch(3);
    let labels = Vec::<i64>::try_from(&b.labels).unwrap();
    let swap = Tensor::from_slice(&partners(&labels, &mut ChaCha8Rng::seed_from_u64(1)));
    let same = Tensor::arange(16, (Kind::Int64, Device::Cpu));
    for stage in 0..3 {
        let gap = |p: &Tensor| {
            let f = r
                .features(&r.u, &b.images, 2, &[(1, stage, p.shallow_clone())])
                .unwrap();
            (f.narrow(0, 0, 16) - f.narrow(0, 16, 16))
                .abs()
                .max()
                .double_value(&[])
        };
        assert!(gap(&swap) > 1e-4, "stage {stage}");
        assert!(gap(&same) < 1e-4, "stage {stage}");
    }
}

#[test]
fn parallel_flow_makes_one_copy_per_level() {
    let mut c = cfg();
    assert_eq!(c.copies(), vec![vec![1, 2]]);
    c.style_cross.flow = Flow::Parallel;
    c.style_cross.levels = vec![Level::High, Level::Low, Level::High];
    assert_eq!(c.copies(), vec![vec![0], vec![2]]);
    let mut r = Dlif::new(c, &IDS, Device::Cpu, 3).unwrap();
    let t = r.step(&batch(2), &info(0)).unwrap();
    assert!(t.iter().all(|(_, v)| v.is_finite()), "{t:?}");
}

#[test]
fn unknown_identities_are_refused() {
    let mut r = Dlif::new(cfg(), &[10, 11, 20], Device::Cpu, 2).unwrap();
    let e = r.step(&batch(1), &info(0)).err().unwrap().to_string();
    assert!(e.contains("identity 21"), "{e}");
}

/// Saving the state (both optimisers) and loading it into a fresh recipe continues
/// identically.
#[test]
fn state_round_trip_continues_identically() {
    let mut a = Dlif::new(cfg(), &IDS, Device::Cpu, 3).unwrap();
    let b = batch(2);
    a.step(&b, &info(0)).unwrap();
    let saved: BTreeMap<String, Tensor> = a
        .state()
        .into_iter()
        .map(|(k, t)| (k, t.detach().copy()))
        .collect();
    assert!(saved.keys().any(|k| k.starts_with("opt_v.")));
    let mut c = Dlif::new(cfg(), &IDS, Device::Cpu, 3).unwrap();
    c.load_state(&saved).unwrap();
    let la = a.step(&b, &info(1)).unwrap();
    let lc = c.step(&b, &info(1)).unwrap();
    assert_eq!(la, lc);
    assert!(a
        .score(&b.images)
        .unwrap()
        .equal(&c.score(&b.images).unwrap()));
}

/// Training on one fixed batch lowers the liveness objective.
#[test]
fn training_reduces_the_loss() {
    let mut r = Dlif::new(cfg(), &IDS, Device::Cpu, 5).unwrap();
    let b = batch(4);
    let fas: Vec<f64> = (0..12)
        .map(|s| {
            let t = r.step(&b, &info(s)).unwrap();
            t.iter().find(|(k, _)| k == "cls").unwrap().1
        })
        .collect();
    let first: f64 = fas[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = fas[9..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.8 * first, "{fas:?}");
}
