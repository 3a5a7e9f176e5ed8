//! BCE-with-logits and Adam against hand-computed values.

use candle_core::{Device, Tensor, Var};
use dcgan_trainer::adam::{Adam, AdamConfig};
use dcgan_trainer::loss::{bce_with_logits, bce_with_logits_const};
use dcgan_trainer::model::NamedVar;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn naive_bce(logits: &[f64], targets: &[f64]) -> f64 {
    let sum: f64 =
        logits.iter().zip(targets).map(|(&x, &y)| -(y * sigmoid(x).ln() + (1.0 - y) * (1.0 - sigmoid(x)).ln())).sum();
    sum / logits.len() as f64
}

#[test]
fn bce_matches_naive_formula() {
    let device = Device::Cpu;
    let logits = [-3.0, -0.5, 0.0, 0.5, 3.0, 8.0];
    let targets = [0.0, 1.0, 0.3, 1.0, 0.0, 1.0];
    let to_tensor = |values: &[f64]| {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_vec(values, 6, &device).unwrap()
    };

    let loss: f32 = bce_with_logits(&to_tensor(&logits), &to_tensor(&targets)).unwrap().to_scalar().unwrap();
    let expected = naive_bce(&logits, &targets);
    assert!((f64::from(loss) - expected).abs() < 1e-6, "{loss} vs {expected}");
}

#[test]
fn bce_gradient_is_sigmoid_minus_target() {
    let device = Device::Cpu;
    let logits = Var::from_vec(vec![-2f32, 0.0, 1.5, 4.0], 4, &device).unwrap();
    let loss = bce_with_logits_const(logits.as_tensor(), 1.0).unwrap();
    let grads = loss.backward().unwrap();
    let grad: Vec<f32> = grads.get(logits.as_tensor()).unwrap().to_vec1().unwrap();
    for (x, g) in [-2.0, 0.0, 1.5, 4.0].iter().zip(&grad) {
        let expected = (sigmoid(*x) - 1.0) / 4.0;
        assert!((f64::from(*g) - expected).abs() < 1e-6, "logit {x}: {g} vs {expected}");
    }
}

#[test]
fn bce_stays_finite_for_extreme_logits() {
    let device = Device::Cpu;
    let logits = Var::from_vec(vec![100f32, -100.0], 2, &device).unwrap();

    let right: f32 =
        bce_with_logits(logits.as_tensor(), &Tensor::new(&[1f32, 0.0], &device).unwrap()).unwrap().to_scalar().unwrap();
    assert!(right.abs() < 1e-6, "confident and right: {right}");

    let wrong_loss = bce_with_logits(logits.as_tensor(), &Tensor::new(&[0f32, 1.0], &device).unwrap()).unwrap();
    let wrong: f32 = wrong_loss.to_scalar().unwrap();
    assert!((wrong - 100.0).abs() < 1e-4, "confident and wrong: {wrong}");

    let grads = wrong_loss.backward().unwrap();
    let grad: Vec<f32> = grads.get(logits.as_tensor()).unwrap().to_vec1().unwrap();
    assert!(grad.iter().all(|g| g.is_finite()), "gradient {grad:?}");
    assert!((grad[0] - 0.5).abs() < 1e-6, "gradient {grad:?}");
    assert!((grad[1] + 0.5).abs() < 1e-6, "gradient {grad:?}");
}

/// Gradients of `sum(param * coefficients)` are `coefficients`.
fn step_with_gradient(adam: &mut Adam, param: &Var, gradient: &[f32]) {
    let coefficients = Tensor::new(gradient, param.device()).unwrap();
    let loss = (param.as_tensor() * coefficients).unwrap().sum_all().unwrap();
    adam.step(&loss.backward().unwrap()).unwrap();
}

fn adam_for(param: &Var, config: AdamConfig) -> Adam {
    Adam::new(vec![NamedVar { name: "p".into(), var: param.clone() }], config).unwrap()
}

#[test]
fn adam_matches_hand_computed_steps() {
    let param = Var::from_vec(vec![1f32, -2.0], 2, &Device::Cpu).unwrap();
    let config = AdamConfig { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let mut adam = adam_for(&param, config);

    // Step 1: m̂ = g and v̂ = g², so each value moves by lr against its gradient's sign.
    step_with_gradient(&mut adam, &param, &[0.5, -0.1]);
    let values: Vec<f32> = param.as_tensor().to_vec1().unwrap();
    assert!((values[0] - 0.9).abs() < 1e-6, "step 1: {values:?}");
    assert!((values[1] + 1.9).abs() < 1e-6, "step 1: {values:?}");

    // Step 2: m = [0.015, 0.011], v = [3.3975e-4, 4.999e-5], bias corrections 0.19 and 0.001999.
    step_with_gradient(&mut adam, &param, &[-0.3, 0.2]);
    let values: Vec<f32> = param.as_tensor().to_vec1().unwrap();
    assert!((values[0] - 0.880_850_2).abs() < 1e-6, "step 2: {values:?}");
    assert!((values[1] + 1.936_610_4).abs() < 1e-6, "step 2: {values:?}");

    assert_eq!(adam.step_count(), 2);
    let m: Vec<f32> = adam.first_moments()[0].var.as_tensor().to_vec1().unwrap();
    let v: Vec<f32> = adam.second_moments()[0].var.as_tensor().to_vec1().unwrap();
    assert!((m[0] - 0.015).abs() < 1e-7, "m {m:?}");
    assert!((m[1] - 0.011).abs() < 1e-7, "m {m:?}");
    assert!((v[0] - 3.3975e-4).abs() < 1e-9, "v {v:?}");
    assert!((v[1] - 4.999e-5).abs() < 1e-10, "v {v:?}");
}

#[test]
fn adam_with_dcgan_betas() {
    // beta1 = 0.5 takes the other branch of PyTorch's lerp.
    let param = Var::from_vec(vec![0.25f32, 0.0], 2, &Device::Cpu).unwrap();
    let mut adam = adam_for(&param, AdamConfig::default());
    step_with_gradient(&mut adam, &param, &[2.0, -1e-3]);
    step_with_gradient(&mut adam, &param, &[2.0, -1e-3]);

    // A constant gradient keeps m̂ = g and v̂ = g², so every step moves by lr.
    let values: Vec<f32> = param.as_tensor().to_vec1().unwrap();
    assert!((values[0] - (0.25 - 4e-4)).abs() < 1e-7, "{values:?}");
    assert!((values[1] - 4e-4).abs() < 1e-7, "{values:?}");
    let m: Vec<f32> = adam.first_moments()[0].var.as_tensor().to_vec1().unwrap();
    assert!((m[0] - 1.5).abs() < 1e-6, "m after two steps of 0.5 decay: {m:?}");
}

#[test]
fn adam_reports_missing_gradient() {
    let device = Device::Cpu;
    let used = Var::from_vec(vec![1f32], 1, &device).unwrap();
    let unused = Var::from_vec(vec![1f32], 1, &device).unwrap();
    let params =
        vec![NamedVar { name: "used".into(), var: used.clone() }, NamedVar { name: "unused".into(), var: unused }];
    let mut adam = Adam::new(params, AdamConfig::default()).unwrap();
    let grads = used.as_tensor().sum_all().unwrap().backward().unwrap();
    let message = adam.step(&grads).unwrap_err().to_string();
    assert!(message.contains("unused"), "{message}");
}
