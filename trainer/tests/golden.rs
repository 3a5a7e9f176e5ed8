//! The candle networks against values computed by PyTorch
//! (`tests/golden/make_golden.py`).

use std::path::PathBuf;

use candle_core::{Device, Tensor, Var};
use dcgan_runtime::{BatchNormWeights, GeneratorSpec, GeneratorWeights, LayerWeights};
use dcgan_trainer::model::{BatchNorm2d, Generator, Mode};
use serde::Deserialize;

/// Largest difference allowed from PyTorch's float32 results: room for a
/// different summation order.
const TOLERANCE: f32 = 1e-5;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn read_golden<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = golden_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("invalid {}: {err}", path.display()))
}

fn assert_close(name: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{name}: length");
    let (index, diff) = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .enumerate()
        .fold((0, 0f32), |worst, (index, diff)| if diff > worst.1 { (index, diff) } else { worst });
    assert!(diff < TOLERANCE, "{name}: max abs diff {diff} at {index} ({} vs {})", actual[index], expected[index]);
}

fn host(tensor: &Tensor) -> Vec<f32> {
    tensor.flatten_all().unwrap().to_vec1().unwrap()
}

#[derive(Deserialize)]
struct SpecJson {
    nz: usize,
    ngf: usize,
    nc: usize,
    image_size: usize,
}

#[derive(Deserialize)]
struct BatchNormJson {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

#[derive(Deserialize)]
struct LayerJson {
    weight: Vec<f32>,
    batch_norm: Option<BatchNormJson>,
}

#[derive(Deserialize)]
struct SmallGenerator {
    generator_spec: SpecJson,
    eps: f32,
    batch: usize,
    layers: Vec<LayerJson>,
    z: Vec<f32>,
    image: Vec<f32>,
}

impl SmallGenerator {
    fn weights(&self) -> GeneratorWeights {
        let SpecJson { nz, ngf, nc, image_size } = self.generator_spec;
        let layers = self
            .layers
            .iter()
            .map(|layer| LayerWeights {
                weight: layer.weight.clone(),
                batch_norm: layer.batch_norm.as_ref().map(|bn| BatchNormWeights {
                    gamma: bn.gamma.clone(),
                    beta: bn.beta.clone(),
                    running_mean: bn.running_mean.clone(),
                    running_var: bn.running_var.clone(),
                    eps: self.eps,
                }),
            })
            .collect();
        GeneratorWeights { spec: GeneratorSpec { nz, ngf, nc, image_size }, layers }
    }
}

#[test]
fn small_generator_matches_pytorch_eval() {
    let golden: SmallGenerator = read_golden("small_generator.json");
    let device = Device::Cpu;
    let generator = Generator::from_weights(&golden.weights(), &device).unwrap();
    let spec = generator.spec();

    let z = Tensor::from_vec(golden.z.clone(), (golden.batch, spec.nz, 1, 1), &device).unwrap();
    let image = generator.forward_eval(&z).unwrap();
    assert_eq!(image.dims(), [golden.batch, spec.nc, spec.image_size, spec.image_size]);
    assert_close("image", &host(&image), &golden.image);
}

#[test]
fn small_generator_weights_round_trip() {
    let golden: SmallGenerator = read_golden("small_generator.json");
    let weights = golden.weights();
    let generator = Generator::from_weights(&weights, &Device::Cpu).unwrap();
    assert_eq!(generator.to_weights().unwrap(), weights);
}

#[derive(Deserialize)]
struct BatchNormTrain {
    shape: [usize; 4],
    momentum: f64,
    eps: f32,
    input: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    output: Vec<f32>,
    updated_running_mean: Vec<f32>,
    updated_running_var: Vec<f32>,
    grad_output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_gamma: Vec<f32>,
    grad_beta: Vec<f32>,
}

#[test]
fn batch_norm_train_step_matches_pytorch() {
    let golden: BatchNormTrain = read_golden("batchnorm_train.json");
    assert_eq!(golden.momentum, dcgan_trainer::model::BATCH_NORM_MOMENTUM);
    let device = Device::Cpu;
    let weights = BatchNormWeights {
        gamma: golden.gamma.clone(),
        beta: golden.beta.clone(),
        running_mean: golden.running_mean.clone(),
        running_var: golden.running_var.clone(),
        eps: golden.eps,
    };
    let bn = BatchNorm2d::from_weights(&weights, &device).unwrap();
    let input = Var::from_vec(golden.input.clone(), golden.shape.to_vec(), &device).unwrap();
    let grad_output = Tensor::from_vec(golden.grad_output.clone(), golden.shape.to_vec(), &device).unwrap();

    let output = bn.forward(input.as_tensor(), Mode::Train).unwrap();
    assert_close("output", &host(&output), &golden.output);
    let stats = bn.to_weights().unwrap();
    assert_close("running_mean", &stats.running_mean, &golden.updated_running_mean);
    assert_close("running_var", &stats.running_var, &golden.updated_running_var);

    let grads = (output * grad_output).unwrap().sum_all().unwrap().backward().unwrap();
    let params = bn.parameters("bn");
    assert_close("grad_input", &host(grads.get(input.as_tensor()).unwrap()), &golden.grad_input);
    assert_close("grad_gamma", &host(grads.get(params[0].var.as_tensor()).unwrap()), &golden.grad_gamma);
    assert_close("grad_beta", &host(grads.get(params[1].var.as_tensor()).unwrap()), &golden.grad_beta);
}
