//! Device profiles and the roofline (issue 16): the arithmetic on
//! hand-computed cases, the fusion of a conv with its ReLU, the built-in
//! datasheet profiles, and every error a bad profile file gives.

use analyzer::device::{inference_times, roofline, step_times, Bound, DeviceProfile, BUILT_IN};
use analyzer::{analyze, Options};

const MEASURED: &str = "name: test machine
source: measured
reference: by hand
threads: 2
peak_gflops: 100
read_gbps: 10
write_gbps: 5
efficiency:
  conv: 0.5
  relu: 0.25
  linear: 1.0
";

fn profile() -> DeviceProfile {
    DeviceProfile::parse(MEASURED, "test.yaml").unwrap()
}

#[test]
fn the_roofline_by_hand() {
    let p = profile();
    // 2 GFLOP at 100 GFLOP/s: 20 ms; 100 MB read at 10 GB/s (10 ms) and
    // 100 MB written at 5 GB/s (20 ms): 30 ms. Memory-bound, and conv's
    // efficiency of 0.5 makes 60 ms.
    let t = roofline(&p, "conv", 2_000_000_000, 100_000_000, 100_000_000);
    assert!((t.compute - 0.020).abs() < 1e-12);
    assert!((t.memory - 0.030).abs() < 1e-12);
    assert!((t.predicted - 0.060).abs() < 1e-12);
    assert_eq!(t.bound(), Bound::Memory);
    assert!((t.intensity() - 10.0).abs() < 1e-12);
    // Compute-bound: 10 GFLOP (100 ms) over 10 MB (1 ms + 0 ms).
    let t = roofline(&p, "linear", 10_000_000_000, 10_000_000, 0);
    assert_eq!(t.bound(), Bound::Compute);
    assert!((t.predicted - 0.100).abs() < 1e-12);
    // A kind not measured takes the median of the measured ones (0.25,
    // 0.5, 1.0: 0.5); a datasheet's is the bare roofline.
    assert_eq!(p.efficiency_of("maxpool"), 0.5);
    assert_eq!(
        DeviceProfile::built_in("a100")
            .unwrap()
            .efficiency_of("conv"),
        1.0
    );
}

/// A conv and its ReLU run as one (`dsl::plan::fusions`): their time is
/// the group's, under the ReLU. conv 16 k=3 p=1 on 3x32x32, batch 1, f32:
/// FLOPs as the analysis counts them (docs/costs.md); read the input
/// (3*32*32*4 = 12,288 bytes) and the weights ((16*27 + 16)*4 = 1,792),
/// write the ReLU's output (16*32*32*4 = 65,536).
#[test]
fn a_fused_conv_and_relu_by_hand() {
    let net = dsl::compile(
        "t.net",
        "network t\ninput 3x32x32\nc: conv 16 k=3 p=1 | relu\nflatten\n",
        &Default::default(),
    )
    .unwrap();
    let a = analyze(&net, Options::default()).unwrap();
    let p = profile();
    let times = inference_times(&a, &p);
    let (conv, relu, flatten) = (1, 2, 3);
    let flops = a.layers[conv].cost.flops + a.layers[relu].cost.flops;
    assert_eq!(times[conv].predicted, 0.0);
    assert_eq!(times[conv].fused_into, Some(relu));
    assert_eq!(times[relu].flops, flops);
    assert_eq!(times[relu].bytes_read, 12_288 + 1_792);
    assert_eq!(times[relu].bytes_written, 65_536);
    let compute = flops as f64 / 100e9;
    let memory = 14_080.0 / 10e9 + 65_536.0 / 5e9;
    // The group is timed as its first op, a conv (efficiency 0.5).
    assert!((times[relu].predicted - compute.max(memory) / 0.5).abs() < 1e-15);
    // A view moves nothing.
    assert_eq!(times[flatten].predicted, 0.0);
}

/// A training step's prediction, by hand: fc1, linear 8 -> 4, and fc2,
/// linear 4 -> 3 (both with bias, on a flattened 2x2x2 input), batch 2, f32,
/// SGD with momentum. fc1's input is data: no dX, as in PyTorch; its dW is
/// dYᵀ·X (2·4·8 MACs, 128 FLOPs) and the bias's sums (8). fc2: dX = dY·W
/// (2·3·4 MACs, 48 FLOPs), reading dY (2·3·4 = 24 bytes), X (32) and the
/// weights ((12 + 3)·4 = 60) and writing dX (32); dW (48 + 6 FLOPs) reads X
/// and dY (56) and writes its gradient (60). The update reads weights,
/// gradients and momentum (3·51·4 = 612 bytes) and writes weights and
/// momentum (408).
#[test]
fn a_training_step_by_hand() {
    let net = dsl::compile(
        "t.net",
        "network t\ninput 2x2x2\nflatten\nfc1: linear 4\nfc2: linear 3\n",
        &Default::default(),
    )
    .unwrap();
    let a = analyze(
        &net,
        Options {
            batch: 2,
            ..Options::default()
        },
    )
    .unwrap();
    let a = analyzer::with_training(
        a,
        &analyzer::training::TrainOptions {
            optimizer: dsl::plan::Optimizer::Momentum,
            ..Default::default()
        },
    )
    .unwrap();
    let p = profile();
    let s = step_times(&a, &p).expect("training counts");
    let (fc1, fc2) = (&s.ops[2], &s.ops[3]);
    assert_eq!((fc1.input_grad.flops, fc1.input_grad.predicted), (0, 0.0));
    assert_eq!(fc1.weight_grad.flops, 136);
    assert_eq!((fc2.input_grad.flops, fc2.weight_grad.flops), (48, 54));
    assert_eq!(
        (fc2.input_grad.bytes_read, fc2.input_grad.bytes_written),
        (116, 32)
    );
    assert_eq!(
        (fc2.weight_grad.bytes_read, fc2.weight_grad.bytes_written),
        (56, 60)
    );
    // Memory-bound, linear's efficiency 1.0: 116 B / 10 GB/s + 32 B / 5 GB/s.
    assert!((fc2.input_grad.predicted - (11.6e-9 + 6.4e-9)).abs() < 1e-18);
    assert_eq!((s.update.bytes_read, s.update.bytes_written), (612, 408));
    assert_eq!(s.update.flops, 0);
    let parts: f64 = s.ops.iter().map(|o| o.predicted()).sum();
    assert!((s.total() - parts - s.update.predicted).abs() < 1e-18);
    // Without training counts there is no step to predict.
    let plain = analyze(&net, Options::default()).unwrap();
    assert!(step_times(&plain, &p).is_none());
}

#[test]
fn the_built_in_profiles_are_datasheet_figures() {
    for (name, _) in BUILT_IN {
        let p = DeviceProfile::built_in(name).unwrap();
        assert_eq!(p.source, "datasheet", "{name}");
        assert!(p.reference.contains("TFLOPS FP32"), "{name}");
        assert!(p.efficiency.is_empty(), "{name}: efficiencies are measured");
    }
    let h200 = DeviceProfile::built_in("h200").unwrap();
    assert_eq!((h200.peak_gflops, h200.read_gbps), (67_000.0, 4_800.0));
}

#[test]
fn a_profile_reads_back_what_it_writes() {
    let p = profile();
    assert_eq!(DeviceProfile::parse(&p.to_yaml(), "again.yaml").unwrap(), p);
}

#[test]
fn every_bad_profile_has_its_message() {
    let with = |from: &str, to: &str| MEASURED.replace(from, to);
    for (text, message) in [
        (
            with("peak_gflops: 100\n", ""),
            "bad.yaml:1:1: not a device profile: missing field `peak_gflops`",
        ),
        (
            with("threads: 2", "threads: 2\ncolour: red"),
            "bad.yaml:5:1: not a device profile: unknown field `colour`, expected one of `name`, `source`, `reference`, `threads`, `peak_gflops`, `read_gbps`, `write_gbps`, `gemm`, `efficiency`",
        ),
        (
            with("peak_gflops: 100", "peak_gflops: fast"),
            "bad.yaml:5:14: not a device profile: peak_gflops: invalid type: string \"fast\", expected f64",
        ),
        (
            with("read_gbps: 10", "read_gbps: -10"),
            "bad.yaml: `read_gbps: -10` must be a positive number",
        ),
        (
            with("source: measured", "source: guessed"),
            "bad.yaml: `source: guessed`: write `datasheet` or `measured`",
        ),
        (
            with("threads: 2", "threads: 0"),
            "bad.yaml: `threads: 0` must be at least 1",
        ),
        (
            with("conv: 0.5", "conv: 7"),
            "bad.yaml: `efficiency: conv: 7` must be in (0, 4]: the roofline time over the measured time",
        ),
        (
            with("conv: 0.5", "cnov: 0.5"),
            "bad.yaml: `efficiency: cnov` is not an op kind (did you mean `conv`?): one of conv_winograd, conv_1x1, conv_depthwise, update, conv, linear, fc, maxpool, avgpool, gap, adaptive_avgpool, bn, lrn, dropout, relu, leaky_relu, prelu, elu, selu, gelu, sigmoid, tanh, softmax, flatten, identity, zeropad, concat, add",
        ),
        (
            with("read_gbps: 10", "read_gbps: 1e-300"),
            "bad.yaml: `read_gbps: 1e-300` is outside 1e-2 to 1e5: check the unit (GFLOP/s, GB/s)",
        ),
    ] {
        assert_eq!(DeviceProfile::parse(&text, "bad.yaml").unwrap_err(), message);
    }
}

/// Spearman's rho by hand: the same order is 1, the reverse -1; ties share
/// their mean rank (x = 1, 2, 2, 3 has ranks 1, 2.5, 2.5, 4).
#[test]
fn rank_correlation_by_hand() {
    use analyzer::device::rank_correlation;
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(rank_correlation(&x, &[10.0, 20.0, 30.0, 40.0]), Some(1.0));
    assert_eq!(rank_correlation(&x, &[4.0, 3.0, 2.0, 1.0]), Some(-1.0));
    // Ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): covariance 4.5 over
    // sqrt(4.5 * 5) = 0.9487.
    let rho = rank_correlation(&[1.0, 2.0, 2.0, 3.0], &x).unwrap();
    assert!((rho - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-12, "{rho}");
    assert_eq!(rank_correlation(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    assert_eq!(rank_correlation(&[1.0, 2.0], &[1.0, 2.0]), None);
}
