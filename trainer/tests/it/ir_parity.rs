//! The tch interpreter of the model IR against an independent PyTorch implementation of the
//! same op semantics (tests/reference/ir_reference.py, run with the venv's torch).

use std::path::{Path, PathBuf};
use std::process::Command;

use fas_core::ir::{Graph, GraphBuilder, Op, UpsampleMode};
use fas_train::nn::{Forward, IrModule};
use fas_train::train::checkpoint::{read_tensors, write_tensors_atomic};
use tch::{Device, Kind, Tensor};

fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => Path::new(&v).join("bin/python"),
        None => PathBuf::from("python3"),
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fas-ir-parity-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the PyTorch reference on `m` and `x`; returns max |Δ| per (mode, output).
fn compare(tag: &str, m: &IrModule, x: &Tensor) -> Vec<(String, f64)> {
    let dir = tempdir(tag);
    m.graph().save(dir.join("model.json")).unwrap();
    m.save_safetensors(&dir.join("weights.safetensors"))
        .unwrap();
    let input_name = m.graph().inputs[0].name.clone();
    write_tensors_atomic(
        &dir.join("input.safetensors"),
        &[(input_name, x.shallow_clone())],
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/ir_reference.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("run the PyTorch reference (cargo xtask setup installs the venv)");
    assert!(
        out.status.success(),
        "ir_reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = read_tensors(&dir.join("reference.safetensors")).unwrap();
    let mut diffs = Vec::new();
    for (mode, train) in [("eval", false), ("train", true)] {
        let f = Forward {
            train,
            update_stats: false,
            ..Forward::default()
        };
        let got = tch::no_grad(|| m.run(&[x], &f, &[]).unwrap());
        for o in &m.graph().outputs {
            let r = &reference[&format!("{mode}/{o}")];
            let g = &got[o];
            assert_eq!(g.size(), r.size(), "{mode}/{o} shape");
            let d = (g - r).abs().max().double_value(&[]);
            diffs.push((format!("{mode}/{o}"), d));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    diffs
}

/// Non-trivial running statistics and AFNM gates, so eval mode is really exercised.
fn perturb_buffers(m: &IrModule, seed: i64) {
    tch::manual_seed(seed);
    tch::no_grad(|| {
        for (name, t) in m.buffers() {
            let mut t = t.shallow_clone();
            if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand_like(&t) + 0.5));
            } else {
                t.copy_(&(Tensor::randn_like(&t) * 0.1));
            }
        }
        for (name, t) in m.parameters() {
            if name.contains(".gate.fc2.") || name.ends_with("bn.weight") {
                let mut t = t.shallow_clone();
                t.copy_(&(Tensor::randn_like(&t) * 0.5));
            }
        }
    });
}

/// Every IR op at least once.
fn all_ops_graph() -> Graph {
    let mut b = GraphBuilder::new("all_ops");
    let x = b.input("input", &[1, 3, 12, 12]);
    let c1 = b.conv_full("c1", &x, 8, 3, 1, 1, 1, true);
    let bn = b.bn("c1bn", &c1);
    let pr = b.prelu("pr", &bn);
    let dw = b.dwconv("dw", &pr, 3, 2, 1);
    let inn = b.instance_norm("inorm", &dw, true);
    let inn0 = b.instance_norm("inorm0", &inn, false);
    let af = b.adaptive_bn_in("afnm", &inn0, 2);
    let sa = b.style_attention("style", &af, 2);
    let se = b.se("se", &sa, 2);
    let r = b.relu("r", &se);
    let dil = b.node(
        "dil",
        Op::Conv2d {
            in_channels: 8,
            out_channels: 4,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [2, 2],
            dilation: [2, 2],
            groups: 2,
            bias: true,
        },
        &[&r],
    );
    let ap = b.avg_pool("ap", &dil, 3, 1, 1);
    let mp = b.max_pool("mp", &ap, 2, 2, 0);
    let un = b.upsample("upn", &mp, 2, UpsampleMode::Nearest);
    let ub = b.upsample("upb", &mp, 2, UpsampleMode::Bilinear);
    let sum = b.add("sum", &[&un, &ub, &ap]);
    let cat = b.concat("cat", &[&sum, &dil], 1);
    let sig = b.sigmoid("sig", &cat);
    let map = b.mean_of_map("map", &sig);
    let gap = b.global_avg_pool("gap", &cat);
    let fl = b.flatten("flat", &gap);
    let dr = b.dropout("drop", &fl, 0.0);
    let lin = b.linear("fc", &dr, 2, true);
    let sm = b.softmax("sm", &lin, 1);
    let live = b.select("live", &sm, 1, 1);
    let l2 = b.l2_normalize("l2", &fl);
    let nb = b.linear("fc_nobias", &l2, 3, false);
    b.output(&live);
    b.output(&map);
    b.output(&nb);
    b.finish().unwrap()
}

#[test]
fn every_op_matches_the_pytorch_reference() {
    let g = all_ops_graph();
    let m = IrModule::new(g, Device::Cpu, 7).unwrap();
    perturb_buffers(&m, 3);
    tch::manual_seed(11);
    let x = Tensor::randn([5, 3, 12, 12], (Kind::Float, Device::Cpu));
    let diffs = compare("all_ops", &m, &x);
    assert_eq!(diffs.len(), 6);
    for (what, d) in &diffs {
        assert!(*d <= 1e-5, "{what}: max |Δ| = {d:e}");
    }
}

#[test]
fn forward_rejects_a_wrong_input_shape_with_the_expected_one() {
    let m = IrModule::new(all_ops_graph(), Device::Cpu, 1).unwrap();
    let x = Tensor::zeros([2, 4, 12, 12], (Kind::Float, Device::Cpu));
    let e = m.forward(&[&x], false).unwrap_err().to_string();
    assert!(e.contains("[N, 3, 12, 12]"), "{e}");
}

#[test]
fn saved_weights_round_trip_and_reload_bit_identically() {
    let dir = tempdir("roundtrip");
    let a = IrModule::new(all_ops_graph(), Device::Cpu, 5).unwrap();
    perturb_buffers(&a, 9);
    a.save_safetensors(&dir.join("w.safetensors")).unwrap();
    let mut b = IrModule::new(all_ops_graph(), Device::Cpu, 6).unwrap();
    b.load_safetensors(&dir.join("w.safetensors"), true)
        .unwrap();
    for ((na, ta), (nb, tb)) in a.named_tensors().iter().zip(b.named_tensors().iter()) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs after reload");
    }
    let x = Tensor::randn([2, 3, 12, 12], (Kind::Float, Device::Cpu));
    let ya = a.forward(&[&x], false).unwrap();
    let yb = b.forward(&[&x], false).unwrap();
    assert!(ya[0].equal(&yb[0]));
    std::fs::remove_dir_all(&dir).ok();
}

/// Every backbone (and its AFNM variant) against the PyTorch reference, in eval and train
/// mode — the same graphs the exporter will write.
#[test]
fn backbones_match_the_pytorch_reference() {
    use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, NormKind};
    let cases = [
        (BackboneKind::Resnet18, 3, 64, NormKind::Batch, 0.5),
        (BackboneKind::DepthNet, 6, 64, NormKind::Batch, 0.5),
        (BackboneKind::EdgeNet, 3, 80, NormKind::Batch, 1.0),
        (
            BackboneKind::EdgeNet,
            6,
            64,
            NormKind::AdaptiveBnIn { reduction: 4 },
            1.0,
        ),
    ];
    for (i, (kind, c, size, norm, width)) in cases.into_iter().enumerate() {
        let mut b = GraphBuilder::new("bb");
        let x = b.input("input", &[1, c, size, size]);
        let spec = BackboneSpec {
            kind,
            in_channels: c,
            input_size: size,
            norm,
            width,
        };
        let out = backbones::build(&mut b, &x, &spec, "").unwrap();
        b.output(&out.features);
        if let Some(d) = &out.depth {
            b.output(d);
        }
        let m = IrModule::new(b.finish().unwrap(), Device::Cpu, i as u64).unwrap();
        perturb_buffers(&m, i as i64);
        tch::manual_seed(100 + i as i64);
        let x = Tensor::randn(
            [3, c as i64, size as i64, size as i64],
            (Kind::Float, Device::Cpu),
        );
        for (what, d) in compare(&format!("bb{i}"), &m, &x) {
            assert!(d <= 1e-4, "{kind:?} {norm:?} {what}: max |Δ| = {d:e}");
        }
    }
}
