use super::*;
use crate::ir::{Graph, Op};

/// Input `[1, C, S, S]`, the backbone with an empty prefix, its features (and depth) as
/// outputs.
fn standalone(spec: &BackboneSpec) -> (Graph, BackboneOut) {
    let mut b = GraphBuilder::new(spec.kind.as_str());
    let x = b.input(
        "input",
        &[1, spec.in_channels, spec.input_size, spec.input_size],
    );
    let out = build(&mut b, &x, spec, "").unwrap();
    b.output(&out.features);
    if let Some(d) = &out.depth {
        b.output(d);
    }
    (b.finish().unwrap(), out)
}

fn spec(kind: BackboneKind) -> BackboneSpec {
    BackboneSpec::new(kind)
}

fn names(g: &Graph) -> Vec<String> {
    g.weights().into_iter().map(|(n, _)| n).collect()
}

/// Parameters of a torchvision-layout ResNet-18 without fc, counted layer by layer.
fn resnet18_params(cin: usize, w: [usize; 4]) -> usize {
    let bn = |c: usize| 2 * c;
    let mut p = w[0] * cin * 49 + bn(w[0]);
    let mut prev = w[0];
    for (i, &c) in w.iter().enumerate() {
        // first block: conv prev→c, conv c→c, two BNs, downsample if the shape changes
        p += c * prev * 9 + c * c * 9 + 2 * bn(c);
        if i > 0 {
            p += c * prev + bn(c);
        }
        // second block
        p += 2 * c * c * 9 + 2 * bn(c);
        prev = c;
    }
    p
}

/// Parameters of the AFNM gate on `c` channels with reduction `r`.
fn gate_params(c: usize, r: usize) -> usize {
    let h = c / r;
    c * h + h + h * c + c
}

#[test]
fn resnet18_params_match_torchvision() {
    // torchvision resnet18: 11,689,512 parameters, of which fc (512·1000 + 1000) = 513,000.
    assert_eq!(
        resnet18_params(3, [64, 128, 256, 512]),
        11_689_512 - 513_000
    );
    let (g, out) = standalone(&spec(BackboneKind::Resnet18));
    assert_eq!(g.num_params(), 11_176_512);
    assert_eq!(out.feature_dim, 512);
    let mut six = spec(BackboneKind::Resnet18);
    six.in_channels = 6;
    assert_eq!(standalone(&six).0.num_params(), 11_176_512 + 64 * 3 * 49);
    let mut half = spec(BackboneKind::Resnet18);
    half.width = 0.5;
    let (g, out) = standalone(&half);
    assert_eq!(g.num_params(), resnet18_params(3, [32, 64, 128, 256]));
    assert_eq!(out.feature_dim, 256);
}

#[test]
fn resnet18_macs_match_the_paper() {
    // He et al. Table 1: 1.8·10⁹ multiply-adds at 224. Layer by layer (conv1 at 112², layer1
    // at 56², layer2..4 at 28², 14², 7² each with one strided conv, three 3×3 convs and a
    // 1×1 downsample): every later layer has the same count.
    let conv1 = 112 * 112 * 64 * 3 * 49;
    let layer1 = 4 * 56 * 56 * 64 * 64 * 9;
    let later = 28 * 28 * (128 * 64 * 9 + 3 * 128 * 128 * 9 + 128 * 64);
    let (g, _) = standalone(&spec(BackboneKind::Resnet18));
    let macs = g.flops().unwrap();
    assert_eq!(macs, (conv1 + layer1 + 3 * later) as u64);
    assert_eq!(macs, 1_813_561_344);
}

#[test]
fn resnet18_shapes_and_stages() {
    for size in [224, 256] {
        let mut s = spec(BackboneKind::Resnet18);
        s.input_size = size;
        let (g, out) = standalone(&s);
        let shapes = g.infer_shapes().unwrap();
        assert_eq!(shapes[&out.features], [1, 512]);
        let st: Vec<&Vec<usize>> = out.stages.iter().map(|v| &shapes[v]).collect();
        let (a, b, c) = (size / 4, size / 8, size / 16);
        assert_eq!(
            st,
            [&vec![1, 64, a, a], &vec![1, 128, b, b], &vec![1, 256, c, c]]
        );
        assert_eq!(shapes["layer4.1.relu2"], [1, 512, size / 32, size / 32]);
        assert_eq!(out.depth, None);
    }
}

#[test]
fn depthnet_params_shapes_and_macs() {
    let (g, out) = standalone(&spec(BackboneKind::DepthNet));
    // stem, three blocks (the first reads 64 channels, the others 128), head (384 in),
    // final conv with bias, BN weight+bias per normalised conv.
    let block = |cin: usize| cin * 128 * 9 + 128 * 196 * 9 + 196 * 128 * 9;
    let convs = 3 * 64 * 9 + block(64) + 2 * block(128) + 384 * 128 * 9 + 128 * 64 * 9;
    let bns = 2 * (64 + 3 * (128 + 196 + 128) + 128 + 64);
    assert_eq!(g.num_params(), convs + bns + 64 * 9 + 1);
    assert_eq!(g.num_params(), 2_245_017);
    assert_eq!(out.feature_dim, 384);
    for size in [256, 128] {
        let mut s = spec(BackboneKind::DepthNet);
        s.input_size = size;
        let (g, out) = standalone(&s);
        let shapes = g.infer_shapes().unwrap();
        let d = size / 8;
        assert_eq!(shapes[out.depth.as_ref().unwrap()], [1, 1, d, d]);
        assert_eq!(shapes[&out.features], [1, 384]);
        assert_eq!(shapes["concat"], [1, 384, d, d]);
        let st: Vec<&Vec<usize>> = out.stages.iter().map(|v| &shapes[v]).collect();
        assert_eq!(
            st,
            [
                &vec![1, 128, size / 2, size / 2],
                &vec![1, 128, size / 4, size / 4],
                &vec![1, 128, d, d]
            ]
        );
        assert_eq!(g.output_shapes().unwrap(), [vec![1, 384], vec![1, 1, d, d]]);
    }
    // MACs at 256: convs at 256² (stem, block1), 128² (block2), 64² (block3), 32² (head).
    let macs = 256 * 256 * (3 * 64 * 9 + block(64))
        + 128 * 128 * block(128)
        + 64 * 64 * block(128)
        + 32 * 32 * (384 * 128 * 9 + 128 * 64 * 9 + 64 * 9);
    assert_eq!(g.flops().unwrap(), macs as u64);
}

#[test]
fn edgenet_is_minifasnet_sized() {
    let (g, out) = standalone(&spec(BackboneKind::EdgeNet));
    let (params, macs) = (g.num_params(), g.flops().unwrap());
    // MiniFASNetV2-SE: 0.43 M parameters, 0.08 G multiply-adds at 80×80. Stated tolerance:
    // 0.3–0.5 M parameters, 60–100 M MACs.
    assert!((300_000..=500_000).contains(&params), "{params}");
    assert!((60_000_000..=100_000_000).contains(&macs), "{macs}");
    // Exact values from an independent layer-by-layer count of the table in edgenet.rs.
    assert_eq!(params, 426_976);
    assert_eq!(macs, 79_167_616);
    assert_eq!(out.feature_dim, 128);
    let shapes = g.infer_shapes().unwrap();
    assert_eq!(shapes[&out.features], [1, 128]);
    assert_eq!(shapes["gdc.conv"], [1, 512, 1, 1]);
    let st: Vec<&Vec<usize>> = out.stages.iter().map(|v| &shapes[v]).collect();
    assert_eq!(
        st,
        [
            &vec![1, 64, 20, 20],
            &vec![1, 64, 10, 10],
            &vec![1, 64, 5, 5]
        ]
    );
    let mut six = spec(BackboneKind::EdgeNet);
    six.in_channels = 6;
    let (g6, _) = standalone(&six);
    // Only the stem conv reads the input: 32·3·9 more weights, 40²·32·3·9 more MACs.
    assert_eq!(g6.num_params(), params + 32 * 3 * 9);
    assert_eq!(g6.flops().unwrap(), macs + 40 * 40 * 32 * 3 * 9);
}

#[test]
fn every_kind_builds_with_six_channels_half_width_and_a_prefix() {
    for kind in BackboneKind::ALL {
        let full = standalone(&spec(kind)).1.feature_dim;
        let mut s = spec(kind);
        s.in_channels = 6;
        s.width = 0.5;
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &[2, 6, s.input_size, s.input_size]);
        let out = build(&mut b, &x, &s, "backbone").unwrap();
        assert_eq!(out.feature_dim, full / 2, "{kind}");
        b.output(&out.features);
        let g = b.finish().unwrap();
        let shapes = g.infer_shapes().unwrap();
        assert_eq!(shapes[&out.features], [2, full / 2], "{kind}");
        assert_eq!(out.stages.len(), 3);
        for v in &out.stages {
            assert_eq!(shapes[v].len(), 4, "{kind} {v}");
            assert!(v.starts_with("backbone."), "{v}");
        }
        let w = g.weights();
        assert!(w.iter().all(|(n, _)| n.starts_with("backbone.")));
        // The first conv reads all six channels.
        assert_eq!(w[0].1[1], 6, "{kind}");
        assert!(g.num_params() < standalone(&spec(kind)).0.num_params() / 2);
    }
}

#[test]
fn weight_names_are_stable() {
    let cases: [(BackboneKind, [&str; 6], [&str; 5]); 3] = [
        (
            BackboneKind::Resnet18,
            [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "bn1.running_mean",
                "bn1.running_var",
                "layer1.0.conv1.weight",
            ],
            [
                "layer4.1.conv2.weight",
                "layer4.1.bn2.weight",
                "layer4.1.bn2.bias",
                "layer4.1.bn2.running_mean",
                "layer4.1.bn2.running_var",
            ],
        ),
        (
            BackboneKind::DepthNet,
            [
                "stem.conv.weight",
                "stem.bn.weight",
                "stem.bn.bias",
                "stem.bn.running_mean",
                "stem.bn.running_var",
                "block1.conv1.weight",
            ],
            [
                "head.bn2.bias",
                "head.bn2.running_mean",
                "head.bn2.running_var",
                "head.conv3.weight",
                "head.conv3.bias",
            ],
        ),
        (
            BackboneKind::EdgeNet,
            [
                "stem.conv.weight",
                "stem.bn.weight",
                "stem.bn.bias",
                "stem.bn.running_mean",
                "stem.bn.running_var",
                "stem.prelu.weight",
            ],
            [
                "embed.conv.weight",
                "embed.bn.weight",
                "embed.bn.bias",
                "embed.bn.running_mean",
                "embed.bn.running_var",
            ],
        ),
    ];
    for (kind, first, last) in cases {
        let n = names(&standalone(&spec(kind)).0);
        assert_eq!(&n[..6], first, "{kind}");
        assert_eq!(&n[n.len() - 5..], last, "{kind}");
    }
    let n = names(&standalone(&spec(BackboneKind::Resnet18)).0);
    for w in [
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_var",
        "layer3.1.bn1.bias",
    ] {
        assert!(n.iter().any(|x| x == w), "{w}");
    }
    // torchvision has no downsample in layer1 and none in a layer's second block.
    assert!(!n.iter().any(|x| x.starts_with("layer1.0.downsample")));
    assert!(!n.iter().any(|x| x.starts_with("layer2.1.downsample")));
    let n = names(&standalone(&spec(BackboneKind::EdgeNet)).0);
    for w in [
        "down1.expand.conv.weight",
        "stage1.4.se.fc2.bias",
        "stage3.1.project.bn.running_mean",
        "gdc.conv.weight",
    ] {
        assert!(n.iter().any(|x| x == w), "{w}");
    }
    assert!(!n.iter().any(|x| x.starts_with("stage1.5.")));
}

#[test]
fn adaptive_bn_in_fills_every_norm_slot() {
    let r = 16;
    for kind in BackboneKind::ALL {
        let mut s = spec(kind);
        s.norm = NormKind::AdaptiveBnIn { reduction: r };
        let (g, _) = standalone(&s);
        let (plain, _) = standalone(&spec(kind));
        let batch: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::BatchNorm2d { .. }))
            .map(|n| n.name.as_str())
            .collect();
        let slots: Vec<usize> = g
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::AdaptiveBnIn { channels, .. } => Some(channels),
                _ => None,
            })
            .collect();
        let plain_norms = plain
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::BatchNorm2d { .. }))
            .count();
        if kind == BackboneKind::EdgeNet {
            assert_eq!(batch, ["gdc.bn", "embed.bn"]);
        } else {
            assert!(batch.is_empty(), "{kind}: {batch:?}");
        }
        assert_eq!(slots.len() + batch.len(), plain_norms, "{kind}");
        // Same names otherwise: the BN weights keep theirs, the gate adds four per slot.
        let (n, p) = (names(&g), names(&plain));
        assert!(p.iter().all(|w| n.contains(w)), "{kind}");
        assert_eq!(n.len(), p.len() + 4 * slots.len());
        assert!(n.iter().any(|w| w.ends_with(".gate.fc1.weight")));
        let expected_extra: usize = match kind {
            // bn1; four BNs per layer; one downsample BN in layer2..4.
            BackboneKind::Resnet18 => {
                gate_params(64, r)
                    + [64, 128, 256, 512]
                        .iter()
                        .enumerate()
                        .map(|(i, &c)| (4 + usize::from(i > 0)) * gate_params(c, r))
                        .sum::<usize>()
            }
            BackboneKind::DepthNet => {
                gate_params(64, r)
                    + 3 * (2 * gate_params(128, r) + gate_params(196, r))
                    + gate_params(128, r)
                    + gate_params(64, r)
            }
            // stem, stem_dw; per bottleneck expand, dw, project; sep.
            BackboneKind::EdgeNet => {
                let bott = |e: usize, c: usize| 2 * gate_params(e, r) + gate_params(c, r);
                2 * gate_params(32, r)
                    + bott(128, 64)
                    + 5 * bott(192, 64)
                    + bott(192, 64)
                    + 3 * bott(128, 64)
                    + bott(128, 64)
                    + 2 * bott(128, 64)
                    + gate_params(512, r)
            }
        };
        assert_eq!(
            g.num_params(),
            plain.num_params() + expected_extra,
            "{kind}"
        );
    }
}

#[test]
fn graphs_round_trip_through_json() {
    for kind in BackboneKind::ALL {
        for norm in [
            NormKind::Batch,
            NormKind::Instance,
            NormKind::AdaptiveBnIn { reduction: 8 },
        ] {
            let mut s = spec(kind);
            s.norm = norm;
            let mut b = GraphBuilder::new("m");
            let x = b.input("input", &[1, 3, s.input_size, s.input_size]);
            let out = build(&mut b, &x, &s, "backbone").unwrap();
            let logits = head(&mut b, &out.features, out.feature_dim, 2, "classifier");
            let p = live_prob(&mut b, &logits, LiveProbKind::Softmax).unwrap();
            b.output(&p);
            let g = b.finish().unwrap();
            assert_eq!(g.output_shapes().unwrap(), [vec![1, 1]]);
            assert!(g.node("classifier.fc").is_some());
            assert_eq!(Graph::from_json(&g.to_json()).unwrap(), g, "{kind}");
        }
        let s = spec(kind);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<BackboneSpec>(&text).unwrap(), s);
    }
    let s = BackboneSpec {
        norm: NormKind::AdaptiveBnIn { reduction: 16 },
        ..spec(BackboneKind::DepthNet)
    };
    let text = serde_json::to_string(&s).unwrap();
    assert!(
        text.contains(r#""kind":"depth_net""#) && text.contains(r#""type":"adaptive_bn_in""#),
        "{text}"
    );
}

#[test]
fn flops_known_answer_on_a_tiny_graph() {
    let mut b = GraphBuilder::new("tiny");
    let x = b.input("x", &[2, 3, 8, 8]);
    let y = b.conv("conv", &x, 4, 3, 1, 1); // 8·8 positions · 4 out · 3·3·3 = 6912 per sample
    let y = b.dwconv("dw", &y, 3, 2, 1); // 4·4 · 4 · 3·3 = 576
    let y = b.se("se", &y, 2); // hidden 2: 4·2 + 2·4 = 16
    let y = b.adaptive_bn_in("afnm", &y, 2); // gate: 16
    let y = b.style_attention("style", &y, 2); // 8·2 + 2·4 = 24
    let y = b.relu("relu", &y);
    let y = b.global_avg_pool("gap", &y);
    let y = b.flatten("flat", &y);
    let y = b.linear("fc", &y, 2, true); // 4·2 = 8
    b.output(&y);
    let g = b.finish().unwrap();
    assert_eq!(g.flops().unwrap(), 2 * (6912 + 576 + 16 + 16 + 24 + 8));
    let mut bad = g.clone();
    bad.outputs.clear();
    assert!(bad.flops().is_err());
}

#[test]
fn live_prob_kinds() {
    let mut b = GraphBuilder::new("p");
    let f = b.input("f", &[3, 16]);
    let l2 = head(&mut b, &f, 16, 2, "");
    assert_eq!(l2, "fc");
    let p = live_prob(&mut b, &l2, LiveProbKind::Softmax).unwrap();
    assert_eq!(p, "p_live");
    b.output(&p);
    let g = b.finish().unwrap();
    assert_eq!(g.output_shapes().unwrap(), [vec![3, 1]]);
    assert_eq!(
        g.node("p_live").unwrap().op,
        Op::Select { axis: 1, index: 1 }
    );

    let mut b = GraphBuilder::new("p");
    let f = b.input("f", &[3, 16]);
    let l1 = head(&mut b, &f, 16, 1, "cls");
    assert!(live_prob(&mut b, &l1, LiveProbKind::Softmax)
        .unwrap_err()
        .to_string()
        .contains("K ≥ 2"));
    let p = live_prob(&mut b, &l1, LiveProbKind::Sigmoid).unwrap();
    b.output(&p);
    let g = b.finish().unwrap();
    assert_eq!(g.output_shapes().unwrap(), [vec![3, 1]]);
    assert_eq!(g.node("p_live").unwrap().op, Op::Sigmoid);

    let mut s = spec(BackboneKind::DepthNet);
    s.input_size = 64;
    let mut b = GraphBuilder::new("d");
    let x = b.input("x", &[1, 3, 64, 64]);
    let out = build(&mut b, &x, &s, "").unwrap();
    let depth = out.depth.unwrap();
    assert!(live_prob(&mut b, &depth, LiveProbKind::Sigmoid).is_err());
    assert!(live_prob(&mut b, &out.features, LiveProbKind::DepthMean).is_err());
    assert!(live_prob(&mut b, "nope", LiveProbKind::DepthMean).is_err());
    let p = live_prob(&mut b, &depth, LiveProbKind::DepthMean).unwrap();
    b.output(&p);
    assert_eq!(b.finish().unwrap().output_shapes().unwrap(), [vec![1, 1]]);

    // A head whose declared width disagrees with the features fails at finish, naming it.
    let mut b = GraphBuilder::new("p");
    let f = b.input("f", &[1, 16]);
    let l = head(&mut b, &f, 32, 2, "cls");
    b.output(&l);
    let e = b.finish().unwrap_err();
    assert_eq!(e.node(), Some("cls.fc"));
}

#[test]
fn kind_names_parse_and_unknown_names_list_the_options() {
    for kind in BackboneKind::ALL {
        assert_eq!(kind.to_string().parse::<BackboneKind>().unwrap(), kind);
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{kind}\""));
    }
    let e = "resnet50".parse::<BackboneKind>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown backbone \"resnet50\" — choose one of: resnet18, depth_net, edge_net"
    );
}

#[test]
fn bad_specs_are_rejected_with_the_field() {
    let check = |s: BackboneSpec, field: &str, needle: &str| {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &[1, s.in_channels, s.input_size, s.input_size]);
        let e = build(&mut b, &x, &s, "").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("backbone spec: field \"{field}\"")),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg}");
    };
    let base = spec(BackboneKind::DepthNet);
    check(
        BackboneSpec {
            in_channels: 0,
            ..base
        },
        "in_channels",
        "use 3",
    );
    check(BackboneSpec { width: 0.0, ..base }, "width", "positive");
    check(
        BackboneSpec {
            width: f32::NAN,
            ..base
        },
        "width",
        "positive",
    );
    check(
        BackboneSpec {
            input_size: 100,
            ..base
        },
        "input_size",
        "multiple of 8",
    );
    check(
        BackboneSpec {
            input_size: 16,
            ..spec(BackboneKind::Resnet18)
        },
        "input_size",
        "at least 32",
    );
    check(
        BackboneSpec {
            width: 0.03,
            ..spec(BackboneKind::EdgeNet)
        },
        "width",
        "SE reduction",
    );
    check(
        BackboneSpec {
            width: 0.5,
            norm: NormKind::AdaptiveBnIn { reduction: 64 },
            ..spec(BackboneKind::EdgeNet)
        },
        "norm.reduction",
        "1..=16",
    );
    check(
        BackboneSpec {
            norm: NormKind::AdaptiveBnIn { reduction: 0 },
            ..base
        },
        "norm.reduction",
        "1..=64",
    );

    // The input value must agree with the spec.
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &[1, 3, 128, 128]);
    let e = build(&mut b, &x, &base, "").unwrap_err();
    assert!(e.to_string().contains("[1, 3, 256, 256]"), "{e}");
    let e = build(&mut b, "missing", &base, "").unwrap_err();
    assert!(e.to_string().contains("\"missing\""), "{e}");
}

#[test]
fn spec_json_rejects_unknown_fields() {
    let e = serde_json::from_str::<BackboneSpec>(
        r#"{"kind":"edge_net","in_channels":3,"input_size":80,"norm":{"type":"batch"},"width":1.0,"depth":1}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("depth"), "{e}");
    let s: BackboneSpec = serde_json::from_str(
        r#"{"kind":"edge_net","in_channels":6,"input_size":80,"norm":{"type":"adaptive_bn_in","reduction":8},"width":0.5}"#,
    )
    .unwrap();
    assert_eq!(s.norm, NormKind::AdaptiveBnIn { reduction: 8 });
    assert_eq!(s.in_channels, 6);
}
