//! One iteration of the tutorial's loop on a batch that is already a tensor.

use candle_core::Tensor;

use crate::loss::bce_with_logits_const;
use crate::model::Mode;
use crate::state::TrainingState;

/// Label of real images.
const REAL_LABEL: f32 = 1.0;
/// Label of generated images.
const FAKE_LABEL: f32 = 0.0;

/// Losses and mean discriminator outputs of one iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutput {
    /// Discriminator loss on the real and the fake batch.
    pub loss_d: f32,
    /// Generator loss.
    pub loss_g: f32,
    /// Mean `D(x)` on the real batch.
    pub d_x: f32,
    /// Mean `D(G(z))` before the discriminator's update.
    pub d_g_z1: f32,
    /// Mean `D(G(z))` after the discriminator's update.
    pub d_g_z2: f32,
}

/// Runs one iteration: the discriminator learns real images towards 1 and
/// detached fakes towards 0 and takes an Adam step, then the generator
/// learns to make the updated discriminator output 1 on the same fakes.
///
/// # Shapes
/// `real`: `[N, nc, size, size]` in `[-1, 1]`, `noise`: `[N, nz, 1, 1]`.
pub fn train_step(state: &mut TrainingState, real: &Tensor, noise: &Tensor) -> candle_core::Result<StepOutput> {
    let TrainingState { generator, discriminator, generator_optimizer, discriminator_optimizer } = state;

    // Discriminator: real images towards 1, detached fakes towards 0.
    let real_logits = discriminator.forward(real, Mode::Train)?;
    let loss_real = bce_with_logits_const(&real_logits, REAL_LABEL)?;
    let fake = generator.forward(noise, Mode::Train)?;
    let fake_logits = discriminator.forward(&fake.detach(), Mode::Train)?;
    let loss_fake = bce_with_logits_const(&fake_logits, FAKE_LABEL)?;
    let loss_d = (&loss_real + &loss_fake)?;
    let discriminator_grads = loss_d.backward()?;
    discriminator_optimizer.step(&discriminator_grads).map_err(adam_to_candle)?;

    // Generator: the updated discriminator's output on the fakes towards 1.
    // Only the generator learns here, so D's weight gradients are skipped.
    let fake_logits_after = discriminator.forward_for_input_grad(&fake, Mode::Train)?;
    let loss_g = bce_with_logits_const(&fake_logits_after, REAL_LABEL)?;
    let generator_grads = loss_g.backward()?;
    generator_optimizer.step(&generator_grads).map_err(adam_to_candle)?;

    Ok(StepOutput {
        loss_d: loss_d.to_scalar()?,
        loss_g: loss_g.to_scalar()?,
        d_x: mean_probability(&real_logits)?,
        d_g_z1: mean_probability(&fake_logits)?,
        d_g_z2: mean_probability(&fake_logits_after)?,
    })
}

fn mean_probability(logits: &Tensor) -> candle_core::Result<f32> {
    candle_nn::ops::sigmoid(logits)?.mean_all()?.to_scalar()
}

/// Carries an optimizer failure through the step's candle error type.
fn adam_to_candle(err: crate::adam::AdamError) -> candle_core::Error {
    match err {
        crate::adam::AdamError::Candle(source) => source,
        other => candle_core::Error::Msg(other.to_string()),
    }
}
