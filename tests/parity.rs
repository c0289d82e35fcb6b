//! Parity with PyTorch on the runtime's own kernels: every check of
//! `support/parity.rs` (what the fixtures hold, and the tolerances), on the device
//! `CNNCOST_TEST_DEVICE` names (the CPU unless the GPU script sets it).

mod support {
    pub mod parity;
}

parity_tests!(|| {});
