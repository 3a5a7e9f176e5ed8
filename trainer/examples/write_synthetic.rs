//! Writes the demo's synthetic faces as PNG files, to look at them or to
//! train another implementation on the same data.
//!
//! ```sh
//! cargo run --release -p dcgan-trainer --example write_synthetic -- OUT_DIR [COUNT]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use dcgan_trainer::data::synthetic::write_synthetic_pngs;
use dcgan_trainer::demo::DemoConfig;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(args.next().context("usage: write_synthetic OUT_DIR [COUNT]")?);
    let defaults = DemoConfig::default();
    let count = match args.next() {
        Some(text) => text.to_string_lossy().parse().context("COUNT must be a whole number")?,
        None => defaults.images,
    };

    write_synthetic_pngs(&out, count, defaults.train.image_size, defaults.train.seed)
        .with_context(|| format!("cannot write synthetic faces to {}", out.display()))?;
    println!("wrote {count} synthetic faces to {}", out.display());
    Ok(())
}
