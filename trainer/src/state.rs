//! The networks and optimizers of a run: everything training mutates.

use candle_core::Device;

use crate::adam::{Adam, AdamConfig, ADAM_EPS};
use crate::config::TrainConfig;
use crate::model::{Discriminator, Generator, ModelError, NamedVar};
use crate::rng::{stream_rng, Stream};

/// Both networks and their Adam optimizers.
#[derive(Debug)]
pub struct TrainingState {
    /// The generator, `netG`.
    pub generator: Generator,
    /// The discriminator, `netD`.
    pub discriminator: Discriminator,
    /// Adam over the generator's parameters.
    pub generator_optimizer: Adam,
    /// Adam over the discriminator's parameters.
    pub discriminator_optimizer: Adam,
}

impl TrainingState {
    /// Creates freshly initialised networks for `config` on `device`, with
    /// weights drawn from the config's seed.
    pub fn init(config: &TrainConfig, device: &Device) -> Result<Self, ModelError> {
        let mut generator_rng = stream_rng(config.seed, Stream::GeneratorInit, 0);
        let generator = Generator::init(config.generator_spec(), &mut generator_rng, device)?;
        let mut discriminator_rng = stream_rng(config.seed, Stream::DiscriminatorInit, 0);
        let discriminator = Discriminator::init(config.discriminator_spec(), &mut discriminator_rng, device)?;

        let adam = AdamConfig { lr: config.lr, beta1: config.beta1, beta2: config.beta2, eps: ADAM_EPS };
        let generator_optimizer = Adam::new(generator.parameters(), adam)?;
        let discriminator_optimizer = Adam::new(discriminator.parameters(), adam)?;
        Ok(Self { generator, discriminator, generator_optimizer, discriminator_optimizer })
    }

    /// Lists every tensor a checkpoint stores, with its name: weights, BatchNorm
    /// running statistics and Adam moments of both networks.
    pub fn named_tensors(&self) -> Vec<NamedVar> {
        let mut named = Vec::new();
        for (network, params, buffers, optimizer) in [
            ("netG", self.generator.parameters(), self.generator.buffers(), &self.generator_optimizer),
            ("netD", self.discriminator.parameters(), self.discriminator.buffers(), &self.discriminator_optimizer),
        ] {
            named.extend(params);
            named.extend(buffers);
            named.extend(moments(network, "m", optimizer.first_moments()));
            named.extend(moments(network, "v", optimizer.second_moments()));
        }
        named
    }
}

/// Renames `netG.main.0.weight`'s moment to `adam.netG.m.main.0.weight`.
fn moments<'a>(network: &'a str, kind: &'a str, moments: &'a [NamedVar]) -> impl Iterator<Item = NamedVar> + 'a {
    moments.iter().map(move |moment| {
        let param = moment.name.strip_prefix(network).unwrap_or(&moment.name).trim_start_matches('.');
        NamedVar { name: format!("adam.{network}.{kind}.{param}"), var: moment.var.clone() }
    })
}
