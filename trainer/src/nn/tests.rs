use std::collections::BTreeMap;

use fas_core::ir::GraphBuilder;
use tch::{Device, Kind, Tensor};

use super::*;

fn small() -> Graph {
    let mut b = GraphBuilder::new("small");
    let x = b.input("input", &[1, 3, 8, 8]);
    let x = b.conv("conv", &x, 4, 3, 1, 1);
    let x = b.adaptive_bn_in("afnm", &x, 2);
    let x = b.relu("relu", &x);
    let x = b.global_avg_pool("gap", &x);
    let x = b.flatten("flat", &x);
    let x = b.linear("fc", &x, 2, true);
    b.output(&x);
    b.finish().unwrap()
}

#[test]
fn init_is_deterministic_per_seed_and_differs_across_seeds() {
    let a = IrModule::new(small(), Device::Cpu, 1).unwrap();
    let b = IrModule::new(small(), Device::Cpu, 1).unwrap();
    let c = IrModule::new(small(), Device::Cpu, 2).unwrap();
    let wa = a.tensor("conv.weight").unwrap();
    assert!(wa.equal(b.tensor("conv.weight").unwrap()));
    assert!(!wa.equal(c.tensor("conv.weight").unwrap()));
    // Kaiming fan-out std for a 4×3×3 conv: sqrt(2/36).
    let std = wa.std(true).double_value(&[]);
    assert!((std - (2.0f64 / 36.0).sqrt()).abs() < 0.12, "std {std}");
}

#[test]
fn afnm_balance_starts_at_one_half() {
    let m = IrModule::new(small(), Device::Cpu, 3).unwrap();
    let w = m.tensor("afnm.gate.fc2.weight").unwrap();
    let b = m.tensor("afnm.gate.fc2.bias").unwrap();
    assert_eq!(w.abs().sum(Kind::Float).double_value(&[]), 0.0);
    assert_eq!(b.abs().sum(Kind::Float).double_value(&[]), 0.0);
}

/// A deterministic, varied [4, 3, 8, 8] batch: samples differ in mean, spread and pattern.
fn fixed_batch() -> Tensor {
    let n = 4 * 3 * 8 * 8;
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let s = (i / (3 * 64)) as f32;
            ((i as f32) * 0.37 + s).sin() * (1.0 + s) + 0.5 * s - 0.7
        })
        .collect();
    Tensor::from_slice(&v).reshape([4, 3, 8, 8])
}

#[test]
fn every_parameter_gets_a_gradient() {
    let m = IrModule::new(small(), Device::Cpu, 4).unwrap();
    // A fixed input, not the global RNG (which parallel tests share): the gate has only two
    // hidden ReLU units, and a random batch that leaves both dead for all four samples gives
    // fc2 an exactly zero gradient by construction — that made this test fail now and then.
    let x = fixed_batch();
    let y = m.forward(&[&x], true).unwrap().remove(0);
    let target = Tensor::from_slice(&[0i64, 1, 0, 1]);
    y.cross_entropy_for_logits(&target).backward();
    for (name, p) in m.parameters() {
        let g = p.grad();
        assert!(g.defined(), "{name} has no gradient");
        // fc2 of the gate starts at zero, its gradient need not vanish; fc1's does since
        // fc2's weight is zero (chain through zero weights) — the rest must be non-zero.
        if !name.starts_with("afnm.gate.fc1") {
            assert!(
                g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "{name} zero grad"
            );
        }
    }
}

#[test]
fn train_mode_updates_running_stats_unless_told_not_to() {
    let m = IrModule::new(small(), Device::Cpu, 5).unwrap();
    let before = m.tensor("afnm.running_mean").unwrap().copy();
    let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu)) + 3.0;
    let f = Forward {
        train: true,
        update_stats: false,
        ..Forward::default()
    };
    tch::no_grad(|| m.run(&[&x], &f, &[]).unwrap());
    assert!(before.equal(m.tensor("afnm.running_mean").unwrap()));
    tch::no_grad(|| m.forward(&[&x], true).unwrap());
    assert!(!before.equal(m.tensor("afnm.running_mean").unwrap()));
}

#[test]
fn explicit_parameters_replace_the_module_ones_and_carry_second_order_gradients() {
    let m = IrModule::new(small(), Device::Cpu, 6).unwrap();
    let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let target = Tensor::from_slice(&[0i64, 1, 1, 0]);
    // Inner step θ' = θ − β∇L(θ) with create_graph, then the outer loss at θ'.
    let f = Forward {
        train: true,
        update_stats: false,
        ..Forward::default()
    };
    let inner = m.run(&[&x], &f, &[]).unwrap()["fc"].cross_entropy_for_logits(&target);
    let params: Vec<Tensor> = m
        .parameters()
        .iter()
        .map(|(_, t)| t.shallow_clone())
        .collect();
    let grads = Tensor::run_backward(&[&inner], &params, true, true);
    let fast: BTreeMap<String, Tensor> = m
        .parameters()
        .iter()
        .zip(&grads)
        .map(|((n, p), g)| (n.clone(), p - g * 0.1))
        .collect();
    let f2 = Forward {
        params: Some(&fast),
        ..f
    };
    let outer = m.run(&[&x], &f2, &[]).unwrap()["fc"].cross_entropy_for_logits(&target);
    assert!(outer.double_value(&[]) < inner.double_value(&[]) + 1e-6);
    outer.backward();
    let g = m.tensor("fc.weight").unwrap().grad();
    assert!(g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

#[test]
fn loading_weights_of_another_architecture_names_the_weight() {
    let mut m = IrModule::new(small(), Device::Cpu, 7).unwrap();
    let mut src: BTreeMap<String, Tensor> = m.named_tensors().into_iter().collect();
    src.insert(
        "fc.weight".into(),
        Tensor::zeros([3, 4], (Kind::Float, Device::Cpu)),
    );
    let e = m.load_tensors(&src, true).unwrap_err().to_string();
    assert!(e.contains("fc.weight") && e.contains("[2, 4]"), "{e}");
    src.remove("fc.weight");
    let e = m.load_tensors(&src, true).unwrap_err().to_string();
    assert!(e.contains("missing") && e.contains("fc.weight"), "{e}");
    let mut src: BTreeMap<String, Tensor> = m.named_tensors().into_iter().collect();
    src.insert(
        "head.weight".into(),
        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
    );
    let e = m.load_tensors(&src, true).unwrap_err().to_string();
    assert!(e.contains("head.weight"), "{e}");
    m.load_tensors(&src, false).unwrap();
}
