//! Parity with PyTorch through the portable ops (`runtime::kernels::portable`, what
//! runs on a GPU), forced on the CPU: every check of `support/parity.rs`. A GPU run
//! that fails where this passes points at the device, not at the ops' composition.

mod support {
    pub mod parity;
}

parity_tests!(runtime::kernels::portable::force);
