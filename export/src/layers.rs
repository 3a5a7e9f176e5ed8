//! Layer lists such as `--keep-f32 first,last`.

use crate::ExportError;

/// Layers kept in f32 by default when quantizing: none, because int8 in
/// every layer met the fidelity target (PSNR at least 35 dB, SSIM at least
/// 0.98 against f32) on a generator trained on face photos; see
/// `docs/benchmarks.md`.
pub const DEFAULT_KEEP_F32: &str = "none";

/// Parses a comma-separated layer list for a generator of `layer_count`
/// layers: `none`, `all`, `first`, `last` and layer indices from 0 at the
/// latent. Returns the sorted indices without repeats.
///
/// # Errors
///
/// [`ExportError::LayerList`] for an unknown word or an index past the last layer.
pub fn parse_layer_list(list: &str, layer_count: usize) -> Result<Vec<usize>, ExportError> {
    let error = |reason: String| ExportError::LayerList { list: list.to_string(), reason };
    let mut layers = Vec::new();
    for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        match item {
            "none" => {}
            "all" => layers.extend(0..layer_count),
            "first" => layers.push(0),
            "last" => layers.push(layer_count.saturating_sub(1)),
            index => {
                let index: usize = index.parse().map_err(|_| {
                    error(format!(
                        "`{index}` is not a layer: use none, all, first, last or an index from 0 to {}",
                        layer_count.saturating_sub(1)
                    ))
                })?;
                if index >= layer_count {
                    return Err(error(format!(
                        "layer {index} does not exist: the generator has layers 0 to {}",
                        layer_count.saturating_sub(1)
                    )));
                }
                layers.push(index);
            }
        }
    }
    layers.sort_unstable();
    layers.dedup();
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_indices_parse() {
        assert_eq!(parse_layer_list("first,last", 5).unwrap(), [0, 4]);
        assert_eq!(parse_layer_list("none", 5).unwrap(), Vec::<usize>::new());
        assert_eq!(parse_layer_list("all", 3).unwrap(), [0, 1, 2]);
        assert_eq!(parse_layer_list("3, 1,3", 5).unwrap(), [1, 3]);
    }

    #[test]
    fn bad_items_are_rejected() {
        let err = parse_layer_list("middle", 5).unwrap_err().to_string();
        assert!(err.contains("`middle` is not a layer"), "{err}");
        let err = parse_layer_list("5", 5).unwrap_err().to_string();
        assert!(err.contains("layer 5 does not exist"), "{err}");
    }
}
