//! Architecture, naming and initialisation of the candle networks against the
//! PyTorch DCGAN tutorial.

use candle_core::{DType, Device, Tensor};
use dcgan_runtime::GeneratorSpec;
use dcgan_trainer::model::{Discriminator, DiscriminatorSpec, Generator, Mode};
use dcgan_trainer::rng::{stream_rng, Stream};

fn tutorial_networks() -> (Generator, Discriminator) {
    let device = Device::Cpu;
    let generator =
        Generator::init(GeneratorSpec::default(), &mut stream_rng(999, Stream::GeneratorInit, 0), &device).unwrap();
    let discriminator =
        Discriminator::init(DiscriminatorSpec::default(), &mut stream_rng(999, Stream::DiscriminatorInit, 0), &device)
            .unwrap();
    (generator, discriminator)
}

fn shapes(vars: &[dcgan_trainer::model::NamedVar]) -> Vec<(String, Vec<usize>)> {
    vars.iter().map(|named| (named.name.clone(), named.var.dims().to_vec())).collect()
}

fn owned(expected: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    expected.iter().map(|(name, dims)| (name.to_string(), dims.to_vec())).collect()
}

#[test]
fn tutorial_parameter_counts() {
    let (generator, discriminator) = tutorial_networks();
    assert_eq!(generator.parameter_count(), 3_576_704);
    assert_eq!(discriminator.parameter_count(), 2_765_568);
}

#[test]
fn generator_state_dict_shapes() {
    let (generator, _) = tutorial_networks();
    let expected: &[(&str, &[usize])] = &[
        ("netG.main.0.weight", &[100, 512, 4, 4]),
        ("netG.main.1.weight", &[512]),
        ("netG.main.1.bias", &[512]),
        ("netG.main.3.weight", &[512, 256, 4, 4]),
        ("netG.main.4.weight", &[256]),
        ("netG.main.4.bias", &[256]),
        ("netG.main.6.weight", &[256, 128, 4, 4]),
        ("netG.main.7.weight", &[128]),
        ("netG.main.7.bias", &[128]),
        ("netG.main.9.weight", &[128, 64, 4, 4]),
        ("netG.main.10.weight", &[64]),
        ("netG.main.10.bias", &[64]),
        ("netG.main.12.weight", &[64, 3, 4, 4]),
    ];
    assert_eq!(shapes(&generator.parameters()), owned(expected));

    let buffers: Vec<String> = generator.buffers().into_iter().map(|named| named.name).collect();
    assert_eq!(
        buffers,
        [
            "netG.main.1.running_mean",
            "netG.main.1.running_var",
            "netG.main.4.running_mean",
            "netG.main.4.running_var",
            "netG.main.7.running_mean",
            "netG.main.7.running_var",
            "netG.main.10.running_mean",
            "netG.main.10.running_var",
        ]
    );
}

#[test]
fn discriminator_state_dict_shapes() {
    let (_, discriminator) = tutorial_networks();
    let expected: &[(&str, &[usize])] = &[
        ("netD.main.0.weight", &[64, 3, 4, 4]),
        ("netD.main.2.weight", &[128, 64, 4, 4]),
        ("netD.main.3.weight", &[128]),
        ("netD.main.3.bias", &[128]),
        ("netD.main.5.weight", &[256, 128, 4, 4]),
        ("netD.main.6.weight", &[256]),
        ("netD.main.6.bias", &[256]),
        ("netD.main.8.weight", &[512, 256, 4, 4]),
        ("netD.main.9.weight", &[512]),
        ("netD.main.9.bias", &[512]),
        ("netD.main.11.weight", &[1, 512, 4, 4]),
    ];
    assert_eq!(shapes(&discriminator.parameters()), owned(expected));
    assert_eq!(discriminator.buffers().len(), 6);
}

#[test]
fn printed_models_match_tutorial() {
    let (generator, discriminator) = tutorial_networks();
    let bn = |channels: usize| {
        format!("BatchNorm2d({channels}, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")
    };
    let expected_generator = format!(
        "Generator(
  (main): Sequential(
    (0): ConvTranspose2d(100, 512, kernel_size=(4, 4), stride=(1, 1), bias=False)
    (1): {}
    (2): ReLU(inplace=True)
    (3): ConvTranspose2d(512, 256, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (4): {}
    (5): ReLU(inplace=True)
    (6): ConvTranspose2d(256, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (7): {}
    (8): ReLU(inplace=True)
    (9): ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (10): {}
    (11): ReLU(inplace=True)
    (12): ConvTranspose2d(64, 3, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (13): Tanh()
  )
)",
        bn(512),
        bn(256),
        bn(128),
        bn(64)
    );
    assert_eq!(generator.to_string(), expected_generator);

    let expected_discriminator = format!(
        "Discriminator(
  (main): Sequential(
    (0): Conv2d(3, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (1): LeakyReLU(negative_slope=0.2, inplace=True)
    (2): Conv2d(64, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (3): {}
    (4): LeakyReLU(negative_slope=0.2, inplace=True)
    (5): Conv2d(128, 256, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (6): {}
    (7): LeakyReLU(negative_slope=0.2, inplace=True)
    (8): Conv2d(256, 512, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (9): {}
    (10): LeakyReLU(negative_slope=0.2, inplace=True)
    (11): Conv2d(512, 1, kernel_size=(4, 4), stride=(1, 1), bias=False)
    (12): Sigmoid()
  )
)",
        bn(128),
        bn(256),
        bn(512)
    );
    assert_eq!(discriminator.to_string(), expected_discriminator);
}

fn mean_and_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

fn host(named: &dcgan_trainer::model::NamedVar) -> Vec<f32> {
    named.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn initial_weights_follow_dcgan_init() {
    let (generator, discriminator) = tutorial_networks();
    let params = generator.parameters().into_iter().chain(discriminator.parameters());
    for named in params {
        let values = host(&named);
        let (mean, std) = mean_and_std(&values);
        let is_conv = named.var.rank() == 4;
        let is_bn_bias = named.name.ends_with(".bias");
        if is_conv {
            // Tolerances allow for the 8,192-value final discriminator kernel.
            assert!(mean.abs() < 2e-3, "{}: mean {mean}", named.name);
            assert!((std - 0.02).abs() < 1e-3, "{}: std {std}", named.name);
        } else if is_bn_bias {
            assert!(values.iter().all(|&v| v == 0.0), "{}: not zero", named.name);
        } else {
            assert!((mean - 1.0).abs() < 5e-3, "{}: mean {mean}", named.name);
            assert!((std - 0.02).abs() < 5e-3, "{}: std {std}", named.name);
        }
    }
}

#[test]
fn initial_running_stats_are_zero_and_one() {
    let (generator, _) = tutorial_networks();
    for named in generator.buffers() {
        let expected = if named.name.ends_with("running_mean") { 0.0 } else { 1.0 };
        assert!(host(&named).iter().all(|&v| v == expected), "{}", named.name);
    }
}

#[test]
fn init_is_seeded() {
    let device = Device::Cpu;
    let spec = GeneratorSpec { nz: 8, ngf: 4, nc: 3, image_size: 16 };
    let first = Generator::init(spec, &mut stream_rng(1, Stream::GeneratorInit, 0), &device).unwrap();
    let again = Generator::init(spec, &mut stream_rng(1, Stream::GeneratorInit, 0), &device).unwrap();
    let other = Generator::init(spec, &mut stream_rng(2, Stream::GeneratorInit, 0), &device).unwrap();
    assert_eq!(first.to_weights().unwrap(), again.to_weights().unwrap());
    assert_ne!(first.to_weights().unwrap(), other.to_weights().unwrap());
}

#[test]
fn forward_shapes_of_reduced_models() {
    let device = Device::Cpu;
    for image_size in [8, 32, 64] {
        let spec = GeneratorSpec { nz: 10, ngf: 4, nc: 3, image_size };
        let generator = Generator::init(spec, &mut stream_rng(3, Stream::GeneratorInit, 0), &device).unwrap();
        let d_spec = DiscriminatorSpec { ndf: 4, nc: 3, image_size };
        let discriminator =
            Discriminator::init(d_spec, &mut stream_rng(3, Stream::DiscriminatorInit, 0), &device).unwrap();

        let z = Tensor::randn(0f32, 1.0, (5, 10, 1, 1), &device).unwrap();
        let images = generator.forward(&z, Mode::Train).unwrap();
        assert_eq!(images.dims(), [5, 3, image_size, image_size]);
        let flat_z = z.reshape((5, 10)).unwrap();
        assert_eq!(generator.forward_eval(&flat_z).unwrap().dims(), [5, 3, image_size, image_size]);

        let logits = discriminator.forward(&images, Mode::Train).unwrap();
        assert_eq!(logits.dims(), [5]);
        let probabilities: Vec<f32> = discriminator.probability(&images, Mode::Eval).unwrap().to_vec1().unwrap();
        assert!(probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
    }
}

#[test]
fn generator_output_is_in_tanh_range() {
    let device = Device::Cpu;
    let spec = GeneratorSpec { nz: 10, ngf: 4, nc: 3, image_size: 16 };
    let generator = Generator::init(spec, &mut stream_rng(4, Stream::GeneratorInit, 0), &device).unwrap();
    let z = (Tensor::randn(0f32, 1.0, (3, 10), &device).unwrap() * 100.0).unwrap();
    let images: Vec<f32> = generator.forward_eval(&z).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(images.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn weights_round_trip() {
    let device = Device::Cpu;
    let spec = GeneratorSpec { nz: 6, ngf: 2, nc: 3, image_size: 16 };
    let generator = Generator::init(spec, &mut stream_rng(5, Stream::GeneratorInit, 0), &device).unwrap();
    // Train mode moves the running statistics away from 0 and 1.
    let z = Tensor::randn(0f32, 1.0, (4, 6), &device).unwrap();
    generator.forward(&z, Mode::Train).unwrap();

    let weights = generator.to_weights().unwrap();
    let copy = Generator::from_weights(&weights, &device).unwrap();
    assert_eq!(copy.to_weights().unwrap(), weights);
    let original = generator.forward_eval(&z).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let restored = copy.forward_eval(&z).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(original, restored);
}

#[test]
fn from_weights_rejects_wrong_lengths() {
    let device = Device::Cpu;
    let spec = GeneratorSpec { nz: 6, ngf: 2, nc: 3, image_size: 16 };
    let generator = Generator::init(spec, &mut stream_rng(6, Stream::GeneratorInit, 0), &device).unwrap();
    let mut weights = generator.to_weights().unwrap();
    weights.layers[1].weight.pop();
    let message = Generator::from_weights(&weights, &device).unwrap_err().to_string();
    assert!(message.contains("layer 1 weight"), "{message}");
}

#[test]
fn train_mode_updates_only_running_stats() {
    let device = Device::Cpu;
    let spec = DiscriminatorSpec { ndf: 4, nc: 3, image_size: 16 };
    let discriminator = Discriminator::init(spec, &mut stream_rng(8, Stream::DiscriminatorInit, 0), &device).unwrap();
    let before: Vec<Vec<f32>> = discriminator.parameters().iter().map(host).collect();
    let images = Tensor::randn(0f32, 1.0, (4, 3, 16, 16), &device).unwrap();

    let eval_before = discriminator.forward(&images, Mode::Eval).unwrap().to_vec1::<f32>().unwrap();
    discriminator.forward(&images, Mode::Train).unwrap();
    let eval_after = discriminator.forward(&images, Mode::Eval).unwrap().to_vec1::<f32>().unwrap();

    let after: Vec<Vec<f32>> = discriminator.parameters().iter().map(host).collect();
    assert_eq!(before, after);
    assert_ne!(eval_before, eval_after, "running statistics did not change");
    let means = host(&discriminator.buffers()[0]);
    assert!(means.iter().any(|&m| m != 0.0));
    assert_eq!(discriminator.buffers()[0].var.dtype(), DType::F32);
}
