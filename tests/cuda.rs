//! ResNet-20 against PyTorch's fixture on a CUDA GPU, when there is one: its
//! logits, loss, gradients and BN statistics at the CPU tolerances
//! (support/parity.rs). Without a GPU, or in a build without the `cuda`
//! feature, it says so and passes; scripts/gpu-check.sh runs every parity check
//! on the GPU.

mod support {
    // This file runs one of the checks.
    #[allow(dead_code)]
    pub mod parity;
}

use runtime::model::Mode;
use support::parity::check_model;

#[test]
fn resnet20_on_a_gpu_matches_pytorch() {
    if let Err(e) = runtime::device::cuda(0) {
        eprintln!("skipped: no CUDA GPU here ({e})");
        return;
    }
    // The only test of this binary: nothing else reads the variable.
    std::env::set_var("CNNCOST_TEST_DEVICE", "cuda");
    check_model("resnet20_cifar", "zoo/resnet20.net", Mode::Train);
}
