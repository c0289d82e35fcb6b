//! Datasets: loaders for the standard formats, per-channel statistics,
//! augmentation and batching. Pure Rust over bytes; the runtime turns
//! batches into tensors.
