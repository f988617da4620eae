//! Dual-stage disentanglement: "Disentangled Representation with Dual-stage Feature Learning
//! for Face Anti-spoofing" (Y.-C. Wang, C.-Y. Wang, S.-H. Lai, WACV 2022), re-implemented from
//! the paper's description (no reference code was used). Equation numbers follow the paper.
//!
//! * **Stage 1** — a live autoencoder `E_L`/`D_L` learns the bona fide appearance from live
//!   images only: `L_live = ‖x − D_L(E_L(x))‖₁` (Eq. 1, mean absolute error over pixels).
//! * **Stage 2** — `E_L` is frozen (eval mode, no gradient, running statistics untouched);
//!   the spoof encoder `E_S` extracts `F_S` and the decoder `D_syn` reconstructs the image
//!   from `concat[F_L, F_S]`: `L_recon = ‖x − D_syn([F_L, F_S])‖₁` (Eq. 4), with an LSGAN
//!   patch discriminator `D` on real vs reconstructed images (Eq. 2 for `D`, Eq. 3 for the
//!   generator). Every stage-2 step alternates a discriminator step (generator outputs
//!   detached, `D`'s optimiser only) and a generator step (`D` frozen: its optimiser is not
//!   stepped).
//! * **Spoof-cue module** — the decoder `D_map` turns `F_S` into a one-channel spoof map
//!   `M = σ(·) ∈ [0, 1]` at input resolution. `L_t` (Eq. 5–7) is the live-anchor triplet
//!   loss plus its batch-hard version ([`losses::triplet_live_anchor`],
//!   [`losses::triplet_hard_live_anchor`]) on the L2-normalised, flattened outputs of the
//!   last three `D_map` layers, summed over the layers; `L_r = ‖M‖₁` on live samples only
//!   (Eq. 8, [`losses::live_map_l1`]); the auxiliary classifier `C_aux` reads the image
//!   overlaid with its map, `x + M`, trained with binary cross-entropy (Eq. 9), its gradient
//!   reaching `D_map` and `E_S` through `M`.
//! * **Total** (Eq. 10) — `L = λ_recon·L_recon + λ_adv·L_adv + λ_t·L_t + λ_r·L_r +
//!   λ_aux·L_aux` with the defaults (4, 1, 3, 5, 5) in that order. The paper's text was
//!   not at hand while this was written: the pairing of the five weights with the five
//!   terms is our reading of Eq. 10 and every weight is a config field.
//! * **Optimisation** — Adam, lr 5e-4, batches of 32 drawn 1:1 live/spoof
//!   ([`Sampling::ClassBalanced`]); the CLI defaults for `--recipe dualstage`.
//! * **Stage switch** — steps `< stage1_steps` are stage 1, later ones stage 2, decided from
//!   [`StepInfo::step`] alone, so a resumed run continues in the right stage (the CLI sets
//!   `stage1_steps` from `--stage1-fraction`, default 30 % of the run's steps).
//!
//! Inference uses `E_S` + `D_map` only: the spoof score is the map's mean and the deployed
//! model outputs `p_live = 1 − mean(M)` (contract 3). Since `M = σ(z)` and
//! `1 − σ(z) = σ(−z)`, the exported graph is `E_S` + `D_map` with the last conv's weight and
//! bias negated, giving the *live* map `σ(−z) = 1 − M`, and `p_live = MeanOfMap(σ(−z))`
//! (the exporter's accepted form "mean of a sigmoid map", in [0, 1] by construction).
//!
//! Our choices where the paper leaves room: small plain conv encoders/decoders (3×3 conv,
//! BN, ReLU; two stride-2 downsamplings, nearest-upsampling decoders) whose base width is
//! `channels`; the discriminator has no normalisation (so a generator step changes none of
//! its state); the triplet margin is 0.5 on unit-norm features. Ablations:
//! `single_stage` (no stage 1: `E_L`/`D_L` train jointly with everything else, `L_live` on
//! the live samples added to the generator objective), `no_triplet`, `no_aux`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use fas_core::ir::{Graph, GraphBuilder, UpsampleMode};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::losses;
use super::{Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::nn::{Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::state::{StateReader, StateWriter};

/// Everything that defines a dual-stage model and its optimisation (stored in the run dir).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualStageConfig {
    /// 3 (RGB) or 6 (RGB + HSV).
    pub in_channels: usize,
    /// Input side; a multiple of 4 (two stride-2 stages).
    pub input_size: usize,
    /// Base width `c` of every network (encoders end at `4c` channels).
    pub channels: usize,
    /// Steps of stage 1 (live autoencoder); ignored with `single_stage`.
    pub stage1_steps: usize,
    pub recon_weight: f64,
    pub adv_weight: f64,
    pub triplet_weight: f64,
    pub reg_weight: f64,
    pub aux_weight: f64,
    /// Margin of both triplet terms (features are unit-norm).
    pub triplet_margin: f64,
    /// Ablation: one stage, `E_L`/`D_L` trained jointly with the rest.
    pub single_stage: bool,
    /// Ablation: no `L_t`.
    pub no_triplet: bool,
    /// Ablation: no `C_aux` (no `L_aux`).
    pub no_aux: bool,
    /// The paper's learning rate (the CLI default for `--recipe dualstage`).
    pub lr: f64,
    /// Every optimiser.
    pub adam: AdamConfig,
    pub grad_clip: Option<f64>,
}

impl Default for DualStageConfig {
    fn default() -> Self {
        DualStageConfig {
            in_channels: 3,
            input_size: 256,
            channels: 32,
            stage1_steps: 0,
            recon_weight: 4.0,
            adv_weight: 1.0,
            triplet_weight: 3.0,
            reg_weight: 5.0,
            aux_weight: 5.0,
            triplet_margin: 0.5,
            single_stage: false,
            no_triplet: false,
            no_aux: false,
            lr: 5e-4,
            adam: AdamConfig {
                decoupled: false,
                ..AdamConfig::default()
            },
            grad_clip: None,
        }
    }
}

/// The stage-1 fraction the CLI uses when `--stage1-fraction` is not given.
pub const DEFAULT_STAGE1_FRACTION: f64 = 0.3;

const INPUT: &str = "input";
/// Node names of the last three `D_map` layers (the triplet features, Eq. 5–7).
const MAP_LAYERS: [&str; 3] = ["dmap.l1.relu", "dmap.l2.relu", "dmap.map"];
const SPOOF_FEATURES: &str = "es.c3.relu";
/// The deployed graph's live map `σ(−z) = 1 − M`.
const LIVE_MAP: &str = "dmap.live_map";
/// The last `D_map` conv, negated at export.
const MAP_CONV: &str = "dmap.l3";

/// Which networks an optimisation step may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Live autoencoder `E_L`/`D_L` on live images.
    One,
    /// `E_L` frozen; `E_S`, `D_syn`, `D_map`, `C_aux` and the discriminator train.
    Two,
}

impl DualStageConfig {
    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("recon_weight", self.recon_weight),
            ("adv_weight", self.adv_weight),
            ("triplet_weight", self.triplet_weight),
            ("reg_weight", self.reg_weight),
            ("aux_weight", self.aux_weight),
            ("triplet_margin", self.triplet_margin),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("dual-stage {name} must be a finite number ≥ 0, got {v}");
            }
        }
        if self.input_size < 8 || !self.input_size.is_multiple_of(4) {
            bail!(
                "dual-stage input_size must be a multiple of 4 and ≥ 8 (two stride-2 stages), \
                 got {} — pass e.g. --size 256",
                self.input_size
            );
        }
        if self.channels == 0 {
            bail!("dual-stage channels must be ≥ 1 (e.g. 32; --width scales it)");
        }
        if self.in_channels == 0 {
            bail!("dual-stage in_channels must be ≥ 1");
        }
        Ok(())
    }

    /// The stage of a step.
    pub fn stage(&self, step: usize) -> Stage {
        if !self.single_stage && step < self.stage1_steps {
            Stage::One
        } else {
            Stage::Two
        }
    }

    fn feature_size(&self) -> usize {
        self.input_size / 4
    }

    fn image_input(&self, b: &mut GraphBuilder) -> String {
        b.input(
            INPUT,
            &[1, self.in_channels, self.input_size, self.input_size],
        )
    }

    /// `E_L` / `E_S`: three conv-BN-ReLU blocks (`c`, `2c` stride 2, `4c` stride 2).
    fn encoder(&self, b: &mut GraphBuilder, x: &str, p: &str) -> String {
        let c = self.channels;
        let mut y = x.to_string();
        for (k, (out, stride)) in [(c, 1), (2 * c, 2), (4 * c, 2)].into_iter().enumerate() {
            let n = format!("{p}.c{}", k + 1);
            y = b.conv(&n, &y, out, 3, stride, 1);
            y = b.bn(&format!("{n}.bn"), &y);
            y = b.relu(&format!("{n}.relu"), &y);
        }
        y
    }

    /// `D_L` / `D_syn`: two (nearest ×2, conv-BN-ReLU) blocks and a conv with bias to the
    /// image's channels.
    fn image_decoder(&self, b: &mut GraphBuilder, f: &str, p: &str) -> String {
        let c = self.channels;
        let mut y = f.to_string();
        for (k, out) in [2 * c, c].into_iter().enumerate() {
            let n = format!("{p}.u{}", k + 1);
            y = b.upsample(&format!("{n}.up"), &y, 2, UpsampleMode::Nearest);
            y = b.conv(&n, &y, out, 3, 1, 1);
            y = b.bn(&format!("{n}.bn"), &y);
            y = b.relu(&format!("{n}.relu"), &y);
        }
        b.conv_full(&format!("{p}.out"), &y, self.in_channels, 3, 1, 1, 1, true)
    }

    /// `D_map` on `F_S`: conv-BN-ReLU (`2c`), ×2, conv-BN-ReLU (`c`), ×2, conv with bias to
    /// one channel, sigmoid: the spoof map at input resolution (the last three layers are
    /// [`MAP_LAYERS`]).
    fn map_decoder(&self, b: &mut GraphBuilder, f: &str, map_name: &str) -> String {
        let c = self.channels;
        let mut y = b.conv("dmap.l1", f, 2 * c, 3, 1, 1);
        y = b.bn("dmap.l1.bn", &y);
        y = b.relu(MAP_LAYERS[0], &y);
        y = b.upsample("dmap.l2.up", &y, 2, UpsampleMode::Nearest);
        y = b.conv("dmap.l2", &y, c, 3, 1, 1);
        y = b.bn("dmap.l2.bn", &y);
        y = b.relu(MAP_LAYERS[1], &y);
        y = b.upsample("dmap.l3.up", &y, 2, UpsampleMode::Nearest);
        y = b.conv_full(MAP_CONV, &y, 1, 3, 1, 1, 1, true);
        b.sigmoid(map_name, &y)
    }

    /// `E_S` + `D_map`: outputs `[F_S, M]`, or with `deploy` only `p_live = mean(σ(−z))`
    /// (the caller negates the last conv, see [`Recipe::deployable`]).
    fn spoof_graph(&self, deploy: bool) -> Result<Graph> {
        let mut b = GraphBuilder::new(if deploy {
            "dualstage-spoof-map"
        } else {
            "dualstage-es-dmap"
        });
        let x = self.image_input(&mut b);
        let f = self.encoder(&mut b, &x, "es");
        if deploy {
            let live = self.map_decoder(&mut b, &f, LIVE_MAP);
            let p = b.mean_of_map("p_live", &live);
            b.output(&p);
        } else {
            let m = self.map_decoder(&mut b, &f, MAP_LAYERS[2]);
            b.output(&f);
            b.output(&m);
        }
        Ok(b.finish()?)
    }

    /// `E_L` alone (output `F_L`).
    fn live_encoder_graph(&self) -> Result<Graph> {
        let mut b = GraphBuilder::new("dualstage-el");
        let x = self.image_input(&mut b);
        let f = self.encoder(&mut b, &x, "el");
        b.output(&f);
        Ok(b.finish()?)
    }

    /// An image decoder from `k` feature channels at a quarter of the input size.
    fn decoder_graph(&self, name: &str, prefix: &str, k: usize) -> Result<Graph> {
        let mut b = GraphBuilder::new(name);
        let s = self.feature_size();
        let f = b.input(INPUT, &[1, k, s, s]);
        let y = self.image_decoder(&mut b, &f, prefix);
        b.output(&y);
        Ok(b.finish()?)
    }

    /// The LSGAN patch discriminator: conv(bias)-ReLU stride 2 twice, conv to one channel:
    /// a score per patch `[N, 1, s/4, s/4]`.
    fn discriminator_graph(&self) -> Result<Graph> {
        let c = self.channels;
        let mut b = GraphBuilder::new("dualstage-disc");
        let x = self.image_input(&mut b);
        let mut y = b.conv_full("disc.c1", &x, c, 3, 2, 1, 1, true);
        y = b.relu("disc.c1.relu", &y);
        y = b.conv_full("disc.c2", &y, 2 * c, 3, 2, 1, 1, true);
        y = b.relu("disc.c2.relu", &y);
        y = b.conv_full("disc.out", &y, 1, 3, 1, 1, 1, true);
        b.output(&y);
        Ok(b.finish()?)
    }

    /// `C_aux`: conv-BN-ReLU stride 2 twice, global pooling, one live logit.
    fn aux_graph(&self) -> Result<Graph> {
        let c = self.channels;
        let mut b = GraphBuilder::new("dualstage-aux");
        let x = self.image_input(&mut b);
        let mut y = x;
        for (k, out) in [c, 2 * c].into_iter().enumerate() {
            let n = format!("aux.c{}", k + 1);
            y = b.conv(&n, &y, out, 3, 2, 1);
            y = b.bn(&format!("{n}.bn"), &y);
            y = b.relu(&format!("{n}.relu"), &y);
        }
        let p = b.global_avg_pool("aux.pool", &y);
        let f = b.flatten("aux.flatten", &p);
        let l = b.linear("aux.fc", &f, 1, true);
        b.output(&l);
        Ok(b.finish()?)
    }
}

fn adam_over(nets: &[&IrModule], cfg: AdamConfig) -> Adam {
    Adam::new(
        nets.iter().flat_map(|m| {
            m.parameters()
                .iter()
                .map(|(k, t)| (k.clone(), t.shallow_clone()))
        }),
        cfg,
    )
}

fn output(m: &IrModule, x: &Tensor, f: &Forward<'_>) -> Result<Tensor> {
    let mut v = m.run(&[x], f, &[])?;
    let name = &m.graph().outputs[0];
    v.remove(name)
        .with_context(|| format!("model \"{}\" computed no output", m.graph().name))
}

/// Training mode without touching running statistics (passes that only feed another
/// network's update).
const TRAIN_FROZEN_STATS: Forward<'static> = Forward {
    train: true,
    update_stats: false,
    params: None,
    hook: None,
};

/// Dual-stage recipe state.
pub struct DualStage {
    cfg: DualStageConfig,
    /// `E_L`.
    el: IrModule,
    /// `D_L`.
    dl: IrModule,
    /// `E_S` + `D_map` (outputs `F_S`, `M`): the deployed part.
    spoof: IrModule,
    /// `D_syn`.
    dsyn: IrModule,
    /// The LSGAN discriminator.
    disc: IrModule,
    /// `C_aux`, absent with `no_aux`.
    aux: Option<IrModule>,
    /// `E_L` + `D_L` (stage 1; with `single_stage`, stepped with the generator).
    opt_live: Adam,
    /// `E_S`, `D_map`, `D_syn`, `C_aux`.
    opt_gen: Adam,
    opt_disc: Adam,
}

impl DualStage {
    pub fn new(cfg: DualStageConfig, device: Device, seed: u64) -> Result<DualStage> {
        cfg.check()?;
        let k = 4 * cfg.channels;
        let el = IrModule::new(cfg.live_encoder_graph()?, device, seed ^ 0x11)?;
        let dl = IrModule::new(
            cfg.decoder_graph("dualstage-dl", "dl", k)?,
            device,
            seed ^ 0x12,
        )?;
        let spoof = IrModule::new(cfg.spoof_graph(false)?, device, seed ^ 0x21)?;
        let dsyn = IrModule::new(
            cfg.decoder_graph("dualstage-dsyn", "dsyn", 2 * k)?,
            device,
            seed ^ 0x22,
        )?;
        let disc = IrModule::new(cfg.discriminator_graph()?, device, seed ^ 0x31)?;
        let aux = if cfg.no_aux {
            None
        } else {
            Some(IrModule::new(cfg.aux_graph()?, device, seed ^ 0x41)?)
        };
        let opt_live = adam_over(&[&el, &dl], cfg.adam);
        let mut gen: Vec<&IrModule> = vec![&spoof, &dsyn];
        if let Some(a) = &aux {
            gen.push(a);
        }
        let opt_gen = adam_over(&gen, cfg.adam);
        let opt_disc = adam_over(&[&disc], cfg.adam);
        Ok(DualStage {
            cfg,
            el,
            dl,
            spoof,
            dsyn,
            disc,
            aux,
            opt_live,
            opt_gen,
            opt_disc,
        })
    }

    pub fn config(&self) -> &DualStageConfig {
        &self.cfg
    }

    /// `E_L`.
    pub fn live_encoder(&self) -> &IrModule {
        &self.el
    }

    /// `D_L`.
    pub fn live_decoder(&self) -> &IrModule {
        &self.dl
    }

    /// `E_S` + `D_map` (the deployed part).
    pub fn spoof_network(&self) -> &IrModule {
        &self.spoof
    }

    /// `D_syn`.
    pub fn synthesis_decoder(&self) -> &IrModule {
        &self.dsyn
    }

    /// The LSGAN discriminator.
    pub fn discriminator(&self) -> &IrModule {
        &self.disc
    }

    /// `C_aux`, absent with `no_aux`.
    pub fn aux_classifier(&self) -> Option<&IrModule> {
        self.aux.as_ref()
    }

    /// `F_L` for the stage-2 passes: frozen (eval, no gradient) unless `single_stage`.
    fn live_features(&self, x: &Tensor) -> Result<Tensor> {
        if self.cfg.single_stage {
            output(&self.el, x, &Forward::train())
        } else {
            tch::no_grad(|| output(&self.el, x, &Forward::eval()))
        }
    }

    /// `D_syn([F_L, F_S])`, the synthesised image, with the networks run as `f` says.
    fn synthesise(&self, fl: &Tensor, fs: &Tensor, f: &Forward<'_>) -> Result<Tensor> {
        output(&self.dsyn, &Tensor::cat(&[fl, fs], 1), f)
    }

    /// Stage 1 (Eq. 1): one Adam step of `E_L`/`D_L` on the batch's live images.
    pub fn live_step(&mut self, batch: &TrainBatch, lr: f64) -> Result<Vec<(String, f64)>> {
        let live = batch.labels.eq(1).nonzero().view([-1]);
        if live.size()[0] == 0 {
            bail!(
                "dual-stage stage 1 got a batch without live samples — it trains on bona fide \
                 images only; use the class-balanced sampler"
            );
        }
        let x = batch.images.index_select(0, &live);
        self.opt_live.zero_grad();
        let f = output(&self.el, &x, &Forward::train())?;
        let rec = output(&self.dl, &f, &Forward::train())?;
        let l = (&rec - &x).abs().mean(Kind::Float);
        let value = l.double_value(&[]);
        if !value.is_finite() {
            bail!("dual-stage L_live is {value} — lower the learning rate or enable --clip");
        }
        l.backward();
        let mut terms = vec![
            ("loss".to_string(), value),
            ("stage".to_string(), 1.0),
            ("live".to_string(), value),
        ];
        if let Some(m) = self.cfg.grad_clip {
            terms.push((
                "grad_norm_live".to_string(),
                self.opt_live.clip_grad_norm(m),
            ));
        }
        self.opt_live.step(lr);
        Ok(terms)
    }

    /// Stage 2, discriminator half (Eq. 2): one Adam step of `D` on real images vs
    /// `D_syn([F_L, F_S])` computed without gradient and without touching any running
    /// statistics. Only the discriminator changes.
    pub fn discriminator_step(&mut self, batch: &TrainBatch, lr: f64) -> Result<f64> {
        let x = &batch.images;
        let fake = tch::no_grad(|| -> Result<Tensor> {
            let fl = output(&self.el, x, &Forward::eval())?;
            let fs = output(&self.spoof, x, &TRAIN_FROZEN_STATS)?;
            self.synthesise(&fl, &fs, &TRAIN_FROZEN_STATS)
        })?;
        self.opt_disc.zero_grad();
        let real = output(&self.disc, x, &Forward::train())?;
        let fake = output(&self.disc, &fake.detach(), &Forward::train())?;
        let l = losses::lsgan_d(&real, &fake);
        let value = l.double_value(&[]);
        if !value.is_finite() {
            bail!("dual-stage discriminator loss is {value} — lower the learning rate");
        }
        l.backward();
        if let Some(m) = self.cfg.grad_clip {
            self.opt_disc.clip_grad_norm(m);
        }
        self.opt_disc.step(lr);
        Ok(value)
    }

    /// Stage 2, generator half (Eq. 3–10): one Adam step of `E_S`, `D_map`, `D_syn` and
    /// `C_aux` (and, with `single_stage`, `E_L`/`D_L` with `L_live` added) on the total
    /// objective; the discriminator is read, never stepped.
    pub fn generator_step(&mut self, batch: &TrainBatch, lr: f64) -> Result<Vec<(String, f64)>> {
        let c = self.cfg.clone();
        let x = &batch.images;
        let labels = &batch.labels;
        self.opt_gen.zero_grad();
        if c.single_stage {
            self.opt_live.zero_grad();
        }
        let fl = self.live_features(x)?;
        let want: Vec<&str> = MAP_LAYERS[..2].to_vec();
        let out = self.spoof.run(&[x], &Forward::train(), &want)?;
        let fs = &out[SPOOF_FEATURES];
        let map = &out[MAP_LAYERS[2]];
        let rec = self.synthesise(&fl, fs, &Forward::train())?;
        // Eq. 4.
        let recon = (&rec - x).abs().mean(Kind::Float);
        // Eq. 3 (the discriminator has no normalisation: this pass changes no state of it).
        let adv = losses::lsgan_g(&output(&self.disc, &rec, &Forward::train())?);
        // Eq. 8.
        let reg = losses::live_map_l1(map, labels);
        // The weighted terms of Eq. 10, summed once all are known.
        let mut parts = vec![
            &recon * c.recon_weight,
            &adv * c.adv_weight,
            &reg * c.reg_weight,
        ];
        let mut terms = vec![
            ("recon".to_string(), recon.double_value(&[])),
            ("adv".to_string(), adv.double_value(&[])),
            ("reg".to_string(), reg.double_value(&[])),
        ];
        if !c.no_triplet {
            // Eq. 5–7, over the last three D_map layers.
            let mut lt = Tensor::zeros([], (Kind::Float, x.device()));
            for name in MAP_LAYERS {
                let f = losses::l2_normalize(&out[name].flatten(1, -1));
                lt = lt
                    + losses::triplet_live_anchor(&f, labels, c.triplet_margin)
                    + losses::triplet_hard_live_anchor(&f, labels, c.triplet_margin);
            }
            parts.push(&lt * c.triplet_weight);
            terms.push(("triplet".to_string(), lt.double_value(&[])));
        }
        if let Some(aux) = &self.aux {
            // Eq. 9: the image overlaid with its spoof map.
            let logit = output(aux, &(x + map), &Forward::train())?;
            let la = losses::bce(&logit, labels);
            parts.push(&la * c.aux_weight);
            terms.push(("aux".to_string(), la.double_value(&[])));
        }
        if c.single_stage {
            let live = labels.eq(1).nonzero().view([-1]);
            if live.size()[0] > 0 {
                let xl = x.index_select(0, &live);
                let rl = output(&self.dl, &fl.index_select(0, &live), &Forward::train())?;
                let ll = (&rl - &xl).abs().mean(Kind::Float);
                parts.push(ll.shallow_clone());
                terms.push(("live".to_string(), ll.double_value(&[])));
            }
        }
        let total = Tensor::stack(&parts, 0).sum(Kind::Float);
        let value = total.double_value(&[]);
        if !value.is_finite() {
            bail!(
                "dual-stage generator loss is {value} — lower the learning rate or enable --clip"
            );
        }
        total.backward();
        if let Some(m) = c.grad_clip {
            terms.push(("grad_norm_gen".to_string(), self.opt_gen.clip_grad_norm(m)));
            if c.single_stage {
                self.opt_live.clip_grad_norm(m);
            }
        }
        self.opt_gen.step(lr);
        if c.single_stage {
            self.opt_live.step(lr);
        }
        let mut head = vec![("gen".to_string(), value)];
        head.extend(terms);
        Ok(head)
    }

    /// `D_syn([F_L(a), F_S(b)])` in eval mode: the live content of `a` with the spoof cues
    /// of `b` (the feature-swap translation of the paper's §5.1).
    pub fn translate(&self, content: &Tensor, cues: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let fl = output(&self.el, content, &Forward::eval())?;
            let fs = output(&self.spoof, cues, &Forward::eval())?;
            self.synthesise(&fl, &fs, &Forward::eval())
        })
    }

    /// The feature-swap figure of the paper's §5.1 as an RGB grid, one row per input:
    /// `[x, D_syn(F_L(x), F_S(x)), D_syn(F_L(x), F_S(other)), M(x)]` for `x` = `live`
    /// (row 1, its content with the spoof sample's cues) and `x` = `spoof` (row 2, its
    /// content with the live sample's cues, i.e. the attack "cleaned"). `live` and `spoof`
    /// are single normalised images `[1, C, H, W]`; `normalize` undoes the preprocessing of
    /// the first three channels. Returns an image of `4·W × 2·H` pixels.
    pub fn translation_grid(
        &self,
        live: &Tensor,
        spoof: &Tensor,
        normalize: &fas_core::preprocess::Normalize,
    ) -> Result<image::RgbImage> {
        let s = self.cfg.input_size as i64;
        for (name, t) in [("live", live), ("spoof", spoof)] {
            let want = [1, self.cfg.in_channels as i64, s, s];
            if t.size() != want {
                bail!(
                    "translation_grid: {name} image has shape {:?}, expected {want:?}",
                    t.size()
                );
            }
        }
        if normalize.mean.len() < 3 || normalize.std.len() < 3 {
            bail!("translation_grid: the preprocessing has fewer than 3 normalised channels");
        }
        let mean = Tensor::from_slice(&normalize.mean[..3]).view([1, 3, 1, 1]);
        let std = Tensor::from_slice(&normalize.std[..3]).view([1, 3, 1, 1]);
        let to_rgb = |x: &Tensor| -> Tensor {
            (x.to_device(Device::Cpu).narrow(1, 0, 3) * &std + &mean).clamp(0.0, 1.0)
        };
        let mut rows = Vec::new();
        for (x, other) in [(live, spoof), (spoof, live)] {
            let same = self.translate(x, x)?;
            let swapped = self.translate(x, other)?;
            let map = self
                .spoof_map(x)?
                .to_device(Device::Cpu)
                .repeat([1, 3, 1, 1]);
            let cells = [to_rgb(x), to_rgb(&same), to_rgb(&swapped), map];
            rows.push(Tensor::cat(&cells, 3));
        }
        // [3, 2H, 4W] → [2H, 4W, 3] bytes.
        let grid = Tensor::cat(&rows, 2).squeeze_dim(0).permute([1, 2, 0]);
        let bytes = Vec::<u8>::try_from(
            (grid * 255.0)
                .round()
                .to_kind(Kind::Uint8)
                .contiguous()
                .view([-1]),
        )?;
        image::RgbImage::from_raw(4 * s as u32, 2 * s as u32, bytes)
            .context("translation_grid: the pixel buffer does not match the grid size")
    }

    /// The spoof map `M [N, 1, H, W]` in eval mode.
    pub fn spoof_map(&self, images: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let out = self.spoof.run(&[images], &Forward::eval(), &[])?;
            Ok(out[MAP_LAYERS[2]].shallow_clone())
        })
    }

    fn nets(&self) -> Vec<(&'static str, &IrModule)> {
        let mut v = vec![
            ("el", &self.el),
            ("dl", &self.dl),
            ("spoof", &self.spoof),
            ("dsyn", &self.dsyn),
            ("disc", &self.disc),
        ];
        if let Some(a) = &self.aux {
            v.push(("aux", a));
        }
        v
    }
}

impl Recipe for DualStage {
    fn name(&self) -> &'static str {
        "dualstage"
    }

    fn sampling(&self) -> Sampling {
        Sampling::ClassBalanced
    }

    fn step(&mut self, batch: &TrainBatch, info: &StepInfo) -> Result<Vec<(String, f64)>> {
        match self.cfg.stage(info.step) {
            Stage::One => self.live_step(batch, info.lr),
            Stage::Two => {
                let d = self.discriminator_step(batch, info.lr)?;
                let g = self.generator_step(batch, info.lr)?;
                let mut terms = vec![
                    ("loss".to_string(), g[0].1),
                    ("stage".to_string(), 2.0),
                    ("disc".to_string(), d),
                ];
                terms.extend(g);
                Ok(terms)
            }
        }
    }

    fn score(&self, images: &Tensor) -> Result<Tensor> {
        let m = self.spoof_map(images)?;
        Ok(1.0
            - m.flatten(1, -1)
                .mean_dim([1i64].as_slice(), false, Kind::Float))
    }

    fn deployable(&self) -> Result<Deployable> {
        let graph = self.cfg.spoof_graph(true)?;
        let negate = [format!("{MAP_CONV}.weight"), format!("{MAP_CONV}.bias")];
        let weights: Vec<(String, Tensor)> = self
            .spoof
            .named_tensors()
            .into_iter()
            .map(|(k, t)| {
                let t = if negate.contains(&k) {
                    -t.detach()
                } else {
                    t.detach()
                };
                (k, t)
            })
            .collect();
        Ok(Deployable { graph, weights })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut w = StateWriter::new();
        for (p, net) in self.nets() {
            w.module(p, net);
        }
        w.adam("opt_live", &self.opt_live)
            .adam("opt_gen", &self.opt_gen)
            .adam("opt_disc", &self.opt_disc)
            .finish()
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let r = StateReader::new("dualstage", state);
        r.module("el", &mut self.el)?;
        r.module("dl", &mut self.dl)?;
        r.module("spoof", &mut self.spoof)?;
        r.module("dsyn", &mut self.dsyn)?;
        r.module("disc", &mut self.disc)?;
        if let Some(a) = &mut self.aux {
            r.module("aux", a)?;
        }
        r.adam("opt_live", &mut self.opt_live)?;
        r.adam("opt_gen", &mut self.opt_gen)?;
        r.adam("opt_disc", &mut self.opt_disc)
    }
}

pub mod setup;

#[cfg(test)]
mod tests;
