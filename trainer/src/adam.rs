//! The Adam optimizer, computed as PyTorch's `torch.optim.Adam` does.
//!
//! candle-nn's `AdamW` applies weight decay 0.01 by default and orders its
//! arithmetic differently, so this module implements the update of PyTorch's
//! single-tensor Adam (the path it takes for CPU tensors), without weight
//! decay and AMSGrad:
//!
//! ```text
//! m ← lerp(m, g, 1 - β1)
//! v ← β2·v + (1 - β2)·g²
//! θ ← θ - (lr / (1 - β1ᵗ))·m / (√v / √(1 - β2ᵗ) + ε)
//! ```

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use thiserror::Error;

use crate::model::NamedVar;

/// PyTorch's default Adam epsilon.
pub const ADAM_EPS: f64 = 1e-8;

/// Adam hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay rate.
    pub beta1: f64,
    /// Second-moment decay rate.
    pub beta2: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
}

impl Default for AdamConfig {
    /// The DCGAN tutorial's settings: lr 2e-4, betas (0.5, 0.999), eps 1e-8.
    fn default() -> Self {
        Self { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: ADAM_EPS }
    }
}

/// An optimizer step that could not be taken.
#[derive(Debug, Error)]
pub enum AdamError {
    /// The backward pass produced no gradient for a parameter.
    #[error("no gradient for parameter {0}: it is not part of the loss's graph")]
    MissingGradient(String),
    /// A tensor operation failed.
    #[error("Adam update failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Adam over a fixed list of named parameters.
///
/// The state (`m`, `v` per parameter and the step count) is public through
/// accessors so that checkpoints can store and restore it exactly.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    params: Vec<NamedVar>,
    first_moments: Vec<NamedVar>,
    second_moments: Vec<NamedVar>,
    step: u64,
}

impl Adam {
    /// Creates an optimizer with zero moments and step count 0.
    pub fn new(params: Vec<NamedVar>, config: AdamConfig) -> candle_core::Result<Self> {
        let zeros_like = |named: &NamedVar| -> candle_core::Result<NamedVar> {
            let tensor = named.var.as_tensor();
            Ok(NamedVar { name: named.name.clone(), var: Var::zeros(tensor.shape(), tensor.dtype(), tensor.device())? })
        };
        let first_moments = params.iter().map(zeros_like).collect::<candle_core::Result<_>>()?;
        let second_moments = params.iter().map(zeros_like).collect::<candle_core::Result<_>>()?;
        Ok(Self { config, params, first_moments, second_moments, step: 0 })
    }

    /// The hyperparameters.
    pub fn config(&self) -> AdamConfig {
        self.config
    }

    /// Returns the optimised parameters.
    pub fn params(&self) -> &[NamedVar] {
        &self.params
    }

    /// First-moment estimates `m`, one per parameter, named as the parameter.
    pub fn first_moments(&self) -> &[NamedVar] {
        &self.first_moments
    }

    /// Second-moment estimates `v`, one per parameter, named as the parameter.
    pub fn second_moments(&self) -> &[NamedVar] {
        &self.second_moments
    }

    /// Number of steps taken, `t` in the bias corrections.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Restores the step count, together with the moments restored through
    /// [`Adam::first_moments`] and [`Adam::second_moments`].
    pub fn set_step_count(&mut self, step: u64) {
        self.step = step;
    }

    /// Updates every parameter from its gradient in `grads`.
    pub fn step(&mut self, grads: &GradStore) -> Result<(), AdamError> {
        self.step += 1;
        let corrections = BiasCorrections::new(&self.config, self.step);
        for index in 0..self.params.len() {
            let param = &self.params[index];
            let grad =
                grads.get(param.var.as_tensor()).ok_or_else(|| AdamError::MissingGradient(param.name.clone()))?;
            self.update(index, grad, &corrections)?;
        }
        Ok(())
    }

    fn update(&self, index: usize, grad: &Tensor, corrections: &BiasCorrections) -> candle_core::Result<()> {
        if grad.device().is_cpu() {
            self.update_cpu(index, grad, corrections)
        } else {
            self.update_generic(index, grad, corrections)
        }
    }

    /// The update in three in-place passes over the parameter and its
    /// moments, with the same f32 operations in the same order as
    /// [`Adam::update_generic`], so both give identical bits.
    fn update_cpu(&self, index: usize, grad: &Tensor, corrections: &BiasCorrections) -> candle_core::Result<()> {
        let param = &self.params[index].var;
        let m = &self.first_moments[index].var;
        let v = &self.second_moments[index].var;
        let config = &self.config;
        let grad = grad.contiguous()?;

        m.inplace_op2(&grad, &fused::FirstMoment { weight: (1.0 - config.beta1) as f32 })?;
        let second = fused::SecondMoment { beta2: config.beta2 as f32, one_minus_beta2: (1.0 - config.beta2) as f32 };
        v.inplace_op2(&grad, &second)?;
        let step = fused::ParamStep {
            bc2_sqrt: corrections.bc2_sqrt as f32,
            eps: config.eps as f32,
            neg_step_size: (-corrections.step_size) as f32,
        };
        param.inplace_op3(m.as_tensor(), v.as_tensor(), &step)
    }

    /// The update from candle's generic operations, for every device.
    fn update_generic(&self, index: usize, grad: &Tensor, corrections: &BiasCorrections) -> candle_core::Result<()> {
        let param = &self.params[index].var;
        let m = &self.first_moments[index].var;
        let v = &self.second_moments[index].var;
        let config = &self.config;

        let m_new = lerp(m.as_tensor(), grad, (1.0 - config.beta1) as f32)?;
        let grad_term = (grad * (1.0 - config.beta2))?.mul(grad)?;
        let v_new = ((v.as_tensor() * config.beta2)? + grad_term)?;

        let bc2_sqrt = Tensor::new(corrections.bc2_sqrt as f32, v_new.device())?;
        let denom = (v_new.sqrt()?.broadcast_div(&bc2_sqrt)? + config.eps)?;
        let update = (&m_new * -corrections.step_size)?.div(&denom)?;
        let param_new = (param.as_tensor() + update)?;

        m.set(&m_new)?;
        v.set(&v_new)?;
        param.set(&param_new)
    }
}

/// Step-dependent scalars, computed in f64 as PyTorch computes them in Python.
struct BiasCorrections {
    step_size: f64,
    bc2_sqrt: f64,
}

impl BiasCorrections {
    fn new(config: &AdamConfig, step: u64) -> Self {
        let exponent = step as f64;
        let bc1 = 1.0 - config.beta1.powf(exponent);
        let bc2 = 1.0 - config.beta2.powf(exponent);
        Self { step_size: config.lr / bc1, bc2_sqrt: bc2.sqrt() }
    }
}

/// `start + weight·(end - start)`, rounded as PyTorch's `lerp` rounds: for
/// weights of at least 0.5 it computes `end - (end - start)·(1 - weight)`.
fn lerp(start: &Tensor, end: &Tensor, weight: f32) -> candle_core::Result<Tensor> {
    let diff = (end - start)?;
    if weight.abs() < 0.5 {
        start + (diff * f64::from(weight))?
    } else {
        end - (diff * f64::from(1.0 - weight))?
    }
}

/// The in-place CPU passes of [`Adam::update_cpu`].
mod fused {
    use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout};
    use rayon::prelude::*;

    /// Elements per parallel task.
    const CHUNK: usize = 1 << 14;

    fn values_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a mut [f32]> {
        let Some((start, end)) = layout.contiguous_offsets() else { bail!("{op}: expected a contiguous tensor") };
        match storage {
            CpuStorage::F32(values) => Ok(&mut values[start..end]),
            _ => bail!("{op}: expected f32 values"),
        }
    }

    fn values<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
        let Some((start, end)) = layout.contiguous_offsets() else { bail!("{op}: expected a contiguous tensor") };
        Ok(&storage.as_slice::<f32>()?[start..end])
    }

    fn check_len(op: &str, a: usize, b: usize) -> candle_core::Result<()> {
        if a != b {
            bail!("{op}: {a} values against {b}");
        }
        Ok(())
    }

    /// `m ← lerp(m, g, weight)`, rounded as [`super::lerp`].
    pub(super) struct FirstMoment {
        pub weight: f32,
    }

    impl InplaceOp2 for FirstMoment {
        fn name(&self) -> &'static str {
            "adam-first-moment"
        }

        fn cpu_fwd(
            &self,
            dst: &mut CpuStorage,
            dst_l: &Layout,
            g: &CpuStorage,
            g_l: &Layout,
        ) -> candle_core::Result<()> {
            let m = values_mut(dst, dst_l, self.name())?;
            let g = values(g, g_l, self.name())?;
            check_len(self.name(), m.len(), g.len())?;
            let weight = self.weight;
            let keep = 1.0 - weight;
            m.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
                for (m, &g) in m.iter_mut().zip(g) {
                    let diff = g - *m;
                    *m = if weight.abs() < 0.5 { *m + diff * weight } else { g - diff * keep };
                }
            });
            Ok(())
        }
    }

    /// `v ← β2·v + ((1 - β2)·g)·g`.
    pub(super) struct SecondMoment {
        pub beta2: f32,
        pub one_minus_beta2: f32,
    }

    impl InplaceOp2 for SecondMoment {
        fn name(&self) -> &'static str {
            "adam-second-moment"
        }

        fn cpu_fwd(
            &self,
            dst: &mut CpuStorage,
            dst_l: &Layout,
            g: &CpuStorage,
            g_l: &Layout,
        ) -> candle_core::Result<()> {
            let v = values_mut(dst, dst_l, self.name())?;
            let g = values(g, g_l, self.name())?;
            check_len(self.name(), v.len(), g.len())?;
            let (beta2, one_minus_beta2) = (self.beta2, self.one_minus_beta2);
            v.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(v, g)| {
                for (v, &g) in v.iter_mut().zip(g) {
                    *v = *v * beta2 + g * one_minus_beta2 * g;
                }
            });
            Ok(())
        }
    }

    /// `θ ← θ + (m·(-step size)) / (√v / √(1 - β2ᵗ) + ε)`.
    pub(super) struct ParamStep {
        pub bc2_sqrt: f32,
        pub eps: f32,
        pub neg_step_size: f32,
    }

    impl InplaceOp3 for ParamStep {
        fn name(&self) -> &'static str {
            "adam-param-step"
        }

        fn cpu_fwd(
            &self,
            dst: &mut CpuStorage,
            dst_l: &Layout,
            m: &CpuStorage,
            m_l: &Layout,
            v: &CpuStorage,
            v_l: &Layout,
        ) -> candle_core::Result<()> {
            let param = values_mut(dst, dst_l, self.name())?;
            let m = values(m, m_l, self.name())?;
            let v = values(v, v_l, self.name())?;
            check_len(self.name(), param.len(), m.len())?;
            check_len(self.name(), param.len(), v.len())?;
            let (bc2_sqrt, eps, neg_step_size) = (self.bc2_sqrt, self.eps, self.neg_step_size);
            param.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK))).for_each(|(p, (m, v))| {
                for (p, (&m, &v)) in p.iter_mut().zip(m.iter().zip(v)) {
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *p += m * neg_step_size / denom;
                }
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn optimizer(values: &[f32]) -> Adam {
        let var = Var::from_slice(values, values.len(), &Device::Cpu).unwrap();
        Adam::new(vec![NamedVar { name: "w".to_owned(), var }], AdamConfig::default()).unwrap()
    }

    fn host(var: &NamedVar) -> Vec<u32> {
        var.var.as_tensor().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// The fused CPU passes and the generic operations give the same bits,
    /// for both rounding branches of the first-moment update.
    #[test]
    fn fused_update_matches_generic_bits() {
        let values: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0).collect();
        for beta1 in [0.5, 0.9] {
            let (mut fused, mut generic) = (optimizer(&values), optimizer(&values));
            fused.config.beta1 = beta1;
            generic.config.beta1 = beta1;
            for step in 1..=3u64 {
                let grad_values: Vec<f32> = values.iter().map(|v| (v * step as f32).sin()).collect();
                let grad = Tensor::from_slice(&grad_values, values.len(), &Device::Cpu).unwrap();
                let corrections = BiasCorrections::new(&fused.config, step);
                fused.update_cpu(0, &grad, &corrections).unwrap();
                generic.update_generic(0, &grad, &corrections).unwrap();
            }
            assert_eq!(host(&fused.params[0]), host(&generic.params[0]));
            assert_eq!(host(&fused.first_moments[0]), host(&generic.first_moments[0]));
            assert_eq!(host(&fused.second_moments[0]), host(&generic.second_moments[0]));
        }
    }
}
