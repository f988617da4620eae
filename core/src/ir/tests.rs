use super::*;
use proptest::prelude::*;

/// conv-bn-relu ×2 with a residual add, then a 2-class head and the p_live selection.
fn tiny_resnet() -> Graph {
    let mut b = GraphBuilder::new("tiny-resnet");
    let x = b.input("input", &[1, 3, 32, 32]);
    let x = b.conv("stem.conv", &x, 16, 3, 2, 1);
    let x = b.bn("stem.bn", &x);
    let x = b.relu("stem.relu", &x);
    let y = b.conv("block.conv1", &x, 16, 3, 1, 1);
    let y = b.bn("block.bn1", &y);
    let y = b.relu("block.relu1", &y);
    let y = b.conv("block.conv2", &y, 16, 3, 1, 1);
    let y = b.bn("block.bn2", &y);
    let s = b.add("block.add", &[&x, &y]);
    let s = b.relu("block.relu2", &s);
    let s = b.se("block.se", &s, 4);
    let p = b.global_avg_pool("gap", &s);
    let p = b.flatten("flatten", &p);
    let logits = b.linear("fc", &p, 2, true);
    let prob = b.softmax("softmax", &logits, 1);
    let live = b.select("p_live", &prob, 1, 1);
    b.output(&live);
    b.finish().unwrap()
}

#[test]
fn tiny_resnet_shapes_and_params() {
    let g = tiny_resnet();
    let shapes = g.infer_shapes().unwrap();
    assert_eq!(shapes["stem.conv"], [1, 16, 16, 16]);
    assert_eq!(shapes["block.add"], [1, 16, 16, 16]);
    assert_eq!(shapes["gap"], [1, 16, 1, 1]);
    assert_eq!(shapes["flatten"], [1, 16]);
    assert_eq!(shapes["fc"], [1, 2]);
    assert_eq!(g.output_shapes().unwrap(), vec![vec![1, 1]]);
    // stem conv 16*3*9 = 432; block convs 2 * 16*16*9 = 4608; 3 BN * 32 = 96;
    // SE: fc1 4*16 + 4, fc2 16*4 + 16 = 148; fc 2*16 + 2 = 34.
    assert_eq!(g.num_params(), 432 + 4608 + 96 + 148 + 34);
    let w = g.weights();
    assert_eq!(w[0], ("stem.conv.weight".to_string(), vec![16, 3, 3, 3]));
    assert!(w.contains(&("stem.bn.running_var".to_string(), vec![16])));
    assert!(w.contains(&("block.se.fc1.weight".to_string(), vec![4, 16])));
    assert!(w.contains(&("fc.bias".to_string(), vec![2])));
}

#[test]
fn json_round_trip_and_file() {
    let g = tiny_resnet();
    let text = g.to_json();
    assert!(text.contains("\"type\": \"conv2d\""), "{text}");
    assert_eq!(Graph::from_json(&text).unwrap(), g);
    let d = crate::atomic::tempdir("ir");
    let p = d.join("model.json");
    g.save(&p).unwrap();
    assert_eq!(Graph::load(&p).unwrap(), g);
    std::fs::remove_dir_all(d).unwrap();
}

fn single(op: Op, shape: &[usize]) -> Result<Vec<usize>, IrError> {
    let mut g = Graph::new("t");
    g.inputs.push(ValueInfo {
        name: "x".into(),
        shape: shape.to_vec(),
    });
    g.nodes.push(Node {
        name: "n".into(),
        op,
        inputs: vec!["x".into()],
        outputs: vec!["n".into()],
    });
    g.outputs.push("n".into());
    g.infer_shapes().map(|s| s["n"].clone())
}

fn conv(cin: usize, cout: usize, k: usize, s: usize, p: usize, d: usize, g: usize) -> Op {
    Op::Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
        dilation: [d, d],
        groups: g,
        bias: false,
    }
}

#[test]
fn conv_output_sizes_known_answers() {
    // (224 + 2*3 - 7)/2 + 1 = 112 (ResNet stem)
    assert_eq!(
        single(conv(3, 64, 7, 2, 3, 1, 1), &[1, 3, 224, 224]).unwrap(),
        [1, 64, 112, 112]
    );
    // MiniFASNet stem: 80 → 40
    assert_eq!(
        single(conv(3, 32, 3, 2, 1, 1, 1), &[1, 3, 80, 80]).unwrap(),
        [1, 32, 40, 40]
    );
    // valid conv: 5 - 3 + 1
    assert_eq!(
        single(conv(1, 1, 3, 1, 0, 1, 1), &[2, 1, 5, 7]).unwrap(),
        [2, 1, 3, 5]
    );
    // dilation 2: span 5 → (10 - 5)/1 + 1 = 6
    assert_eq!(
        single(conv(4, 4, 3, 1, 0, 2, 4), &[1, 4, 10, 10]).unwrap(),
        [1, 4, 6, 6]
    );
    // odd size, stride 2: (7 + 2 - 3)/2 + 1 = 4
    assert_eq!(
        single(conv(8, 8, 3, 2, 1, 1, 8), &[1, 8, 7, 7]).unwrap(),
        [1, 8, 4, 4]
    );
}

#[test]
fn pooling_and_linear_known_answers() {
    let mp = Op::MaxPool2d {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
    };
    assert_eq!(single(mp, &[1, 64, 112, 112]).unwrap(), [1, 64, 56, 56]);
    let ap = Op::AvgPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
    };
    assert_eq!(single(ap, &[1, 8, 5, 5]).unwrap(), [1, 8, 2, 2]);
    assert_eq!(
        single(Op::GlobalAvgPool, &[1, 8, 5, 5]).unwrap(),
        [1, 8, 1, 1]
    );
    assert_eq!(single(Op::Flatten, &[1, 8, 5, 5]).unwrap(), [1, 200]);
    let lin = Op::Linear {
        in_features: 200,
        out_features: 3,
        bias: true,
    };
    assert_eq!(single(lin, &[4, 200]).unwrap(), [4, 3]);
    let up = Op::Upsample {
        scale: 2,
        mode: UpsampleMode::Bilinear,
    };
    assert_eq!(single(up, &[1, 8, 5, 5]).unwrap(), [1, 8, 10, 10]);
    assert_eq!(single(Op::MeanOfMap, &[1, 1, 32, 32]).unwrap(), [1, 1]);
    let sa = Op::StyleAttention {
        channels: 8,
        reduction: 2,
    };
    assert_eq!(single(sa, &[1, 8, 5, 5]).unwrap(), [1, 8, 5, 5]);
}

#[test]
fn weights_of_special_ops() {
    let w = Op::AdaptiveBnIn {
        channels: 8,
        reduction: 4,
        eps: 1e-5,
        momentum: 0.1,
    }
    .weights("n");
    let names: Vec<&str> = w.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "n.gate.fc1.weight",
            "n.gate.fc1.bias",
            "n.gate.fc2.weight",
            "n.gate.fc2.bias",
            "n.weight",
            "n.bias",
            "n.running_mean",
            "n.running_var"
        ]
    );
    assert_eq!(w[0].1, [2, 8]);
    let sa = Op::StyleAttention {
        channels: 8,
        reduction: 4,
    };
    assert_eq!(
        sa.weights("s")[0],
        ("s.fc1.weight".to_string(), vec![2, 16])
    );
    assert_eq!(sa.num_params("s"), 2 * 16 + 2 + 8 * 2 + 8);
    let dw = conv(8, 8, 3, 1, 1, 1, 8);
    assert_eq!(dw.weights("d")[0].1, [8, 1, 3, 3]);
    assert!(Op::InstanceNorm2d {
        channels: 4,
        eps: 1e-5,
        affine: false
    }
    .weights("i")
    .is_empty());
    // BN: running stats are not parameters.
    assert_eq!(
        Op::BatchNorm2d {
            channels: 4,
            eps: 1e-5,
            momentum: 0.1
        }
        .num_params("b"),
        8
    );
}

#[test]
fn shape_errors_name_the_node() {
    let e = single(conv(4, 8, 3, 1, 1, 1, 1), &[1, 3, 8, 8]).unwrap_err();
    assert_eq!(e.node(), Some("n"));
    let s = e.to_string();
    assert!(
        s.starts_with("model.json: node \"n\" (conv2d): expects 4 channels"),
        "{s}"
    );
    let e = single(conv(3, 8, 9, 1, 0, 1, 1), &[1, 3, 8, 8]).unwrap_err();
    assert!(
        e.to_string().contains("smaller than the kernel span"),
        "{e}"
    );
    let e = single(conv(6, 8, 3, 1, 0, 1, 4), &[1, 6, 8, 8]).unwrap_err();
    assert!(e.to_string().contains("groups 4"), "{e}");
    let e = single(
        Op::Linear {
            in_features: 10,
            out_features: 2,
            bias: true,
        },
        &[1, 12],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("(linear): expects 10 input features"),
        "{e}"
    );
    let e = single(Op::Select { axis: 1, index: 2 }, &[1, 2]).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");

    let mut b = GraphBuilder::new("bad");
    let x = b.input("x", &[1, 4, 8, 8]);
    let y = b.conv("c", &x, 8, 3, 1, 1);
    let s = b.add("sum", &[&x, &y]);
    b.output(&s);
    let e = b.finish().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("model.json: node \"sum\" (add): input shapes differ"),
        "{e}"
    );
}

#[test]
fn validation_errors() {
    let good = tiny_resnet();

    let mut g = good.clone();
    g.nodes[3].name = g.nodes[2].name.clone();
    assert!(matches!(g.validate(), Err(IrError::DuplicateName { .. })));

    let mut g = good.clone();
    g.nodes[4].inputs = vec!["nowhere".into()];
    let e = g.validate().unwrap_err();
    assert!(
        e.to_string()
            .contains("node \"block.bn1\": input \"nowhere\" is not defined"),
        "{e}"
    );

    // Use before definition.
    let mut g = good.clone();
    g.nodes.swap(1, 2);
    assert!(matches!(g.validate(), Err(IrError::UndefinedInput { .. })));

    let mut g = good.clone();
    g.outputs = vec!["ghost".into()];
    let e = g.validate().unwrap_err();
    assert!(e.to_string().contains("graph output \"ghost\""), "{e}");

    let mut g = good.clone();
    g.nodes[0].inputs.push("input".into());
    assert!(matches!(g.validate(), Err(IrError::Arity { .. })));

    let mut g = good.clone();
    g.version = IR_VERSION + 1;
    let e = Graph::from_json(&g.to_json()).unwrap_err();
    assert!(e.to_string().contains("upgrade"), "{e}");

    let text = good
        .to_json()
        .replace("\"groups\": 1", "\"groups\": 1, \"colour\": 2");
    assert!(matches!(Graph::from_json(&text), Err(IrError::Json { .. })));
}

#[test]
fn weight_name_collision_is_rejected() {
    // "a" (adaptive BN/IN) owns "a.gate.fc1.weight"; so would an SE node named "a.gate".
    let mut b = GraphBuilder::new("collide");
    let x = b.input("x", &[1, 8, 4, 4]);
    let y = b.adaptive_bn_in("a", &x, 2);
    let z = b.se("a.gate", &y, 2);
    b.output(&z);
    let e = b.finish().unwrap_err();
    assert!(matches!(e, IrError::DuplicateWeight { .. }), "{e}");
    assert!(e.to_string().contains("\"a.gate.fc1.weight\""), "{e}");
}

fn arb_conv() -> impl Strategy<Value = (Op, Vec<usize>)> {
    (
        1usize..4,
        1usize..4,
        1usize..6,
        1usize..4,
        0usize..3,
        1usize..3,
        1usize..40,
        1usize..40,
    )
        .prop_map(|(g, m, k, s, p, d, h, w)| {
            let cin = g * m;
            let op = Op::Conv2d {
                in_channels: cin,
                out_channels: g * 2,
                kernel: [k, k],
                stride: [s, s],
                padding: [p, p],
                dilation: [d, d],
                groups: g,
                bias: h % 2 == 0,
            };
            (op, vec![1, cin, h, w])
        })
}

proptest! {
    #[test]
    fn conv_matches_direct_formula((op, shape) in arb_conv()) {
        if let Op::Conv2d { kernel, stride, padding, dilation, .. } = op {
            let span = dilation[0] * (kernel[0] - 1) + 1;
            let r = single(op.clone(), &shape);
            if shape[2] + 2 * padding[0] < span || shape[3] + 2 * padding[1] < span {
                prop_assert!(r.is_err());
            } else {
                let out = r.unwrap();
                // Count valid window positions directly.
                let count = |n: usize| (0..n + 2 * padding[0]).step_by(stride[0])
                    .filter(|st| st + span <= n + 2 * padding[0]).count();
                prop_assert_eq!(out[2], count(shape[2]));
                prop_assert_eq!(out[3], count(shape[3]));
            }
        }
    }

    #[test]
    fn graph_json_round_trip(
        (op, shape) in arb_conv(),
        eps in 1e-8f64..1e-2,
        name in "[a-z][a-z0-9_.]{0,10}",
    ) {
        let mut g = Graph::new(name);
        g.inputs.push(ValueInfo { name: "x".into(), shape });
        let c = match op { Op::Conv2d { out_channels, .. } => out_channels, _ => unreachable!() };
        g.nodes.push(Node { name: "c".into(), op, inputs: vec!["x".into()], outputs: vec!["c".into()] });
        g.nodes.push(Node {
            name: "n".into(),
            op: Op::BatchNorm2d { channels: c, eps, momentum: 0.1 },
            inputs: vec!["c".into()],
            outputs: vec!["n".into()],
        });
        g.outputs.push("n".into());
        let back: Graph = serde_json::from_str(&g.to_json()).unwrap();
        prop_assert_eq!(back, g);
    }
}
