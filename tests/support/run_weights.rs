//! The weights a run directory's checkpoint holds, as bytes by name: two
//! runs that should end alike are compared with it, bit for bit.

use std::path::Path;

/// Every tensor of the checkpoint in `dir`, as its f64 values' bytes,
/// sorted by name.
pub fn run_weights(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let c = runtime::checkpoint::load(dir).expect("the checkpoint loads");
    let mut v: Vec<(String, Vec<u8>)> = c
        .tensors
        .iter()
        .map(|(k, t)| {
            let bytes: Vec<u8> = t
                .flatten_all()
                .unwrap()
                .to_dtype(candle_core::DType::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (k.clone(), bytes)
        })
        .collect();
    v.sort();
    v
}
