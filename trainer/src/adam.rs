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
