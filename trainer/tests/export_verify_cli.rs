//! `dcgan export --from-pytorch/--int8/--qdq-onnx` and `dcgan verify` on the
//! PyTorch generator of `export/tests/golden`.

use std::process::{Command, Output};

const NETG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../export/tests/golden/netG.pth");

fn dcgan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcgan")).args(args).output().expect("dcgan runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn export_all_forms_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (onnx, int8, qdq) = (path("netG.onnx"), path("netG.dcgw"), path("netG_qdq.onnx"));

    let output = dcgan(&[
        "export",
        "--from-pytorch",
        NETG,
        "--onnx",
        &onnx,
        "--int8",
        &int8,
        "--qdq-onnx",
        &qdq,
        "--keep-f32",
        "last",
    ]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("nz=100 ngf=4 nc=3 64x64"), "{report}");
    assert!(report.contains("int8 layers [0, 1, 2, 3]"), "{report}");

    let verify =
        ["verify", "--from-pytorch", NETG, "--onnx", &onnx, "--int8", &int8, "--qdq-onnx", &qdq, "--latents", "4"];
    let output = dcgan(&verify);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    for form in ["folded f32 (runtime core)", "f32 ONNX (tract)", "int8 weight file (runtime core)", "QDQ ONNX (tract)"]
    {
        assert!(report.contains(form), "{form} missing from:\n{report}");
    }
    assert!(report.contains("layer 4"), "{report}");

    // A PSNR threshold no int8 form can meet makes the command fail.
    let mut strict = verify.to_vec();
    strict.extend(["--min-psnr", "150"]);
    let output = dcgan(&strict);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("FAILED: PSNR"), "{report}");
}

#[test]
fn export_rejects_bad_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("garbage.pth");
    std::fs::write(&bad, b"PK\x03\x04 not really a zip archive").unwrap();
    let onnx = dir.path().join("out.onnx");

    let output = dcgan(&["export", "--from-pytorch", bad.to_str().unwrap(), "--onnx", onnx.to_str().unwrap()]);
    let report = text(&output);
    assert!(!output.status.success(), "{report}");
    assert!(report.contains("garbage.pth"), "{report}");
    assert!(!report.contains("panicked"), "{report}");
    assert!(!onnx.exists());

    let weights = dir.path().join("empty.dcgw");
    std::fs::write(&weights, b"").unwrap();
    let output = dcgan(&["verify", "--from-pytorch", NETG, "--int8", weights.to_str().unwrap(), "--latents", "1"]);
    let report = text(&output);
    assert!(!output.status.success(), "{report}");
    assert!(report.contains("empty.dcgw") && report.contains("truncated"), "{report}");
}

#[test]
fn export_rejects_bad_keep_f32() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = dir.path().join("netG.dcgw");
    let output = dcgan(&["export", "--from-pytorch", NETG, "--int8", int8.to_str().unwrap(), "--keep-f32", "7"]);
    let report = text(&output);
    assert!(!output.status.success(), "{report}");
    assert!(report.contains("layer 7 does not exist"), "{report}");
}
