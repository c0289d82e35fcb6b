//! Opening a device by name. candle's CUDA backend (cudarc) opens the CUDA
//! libraries when a GPU is first asked for and panics when one is missing; this
//! looks for each first and says which are missing instead.

use candle_core::Device;

/// `cpu`, `cuda` or `cuda:N`, or why not, as a sentence.
pub fn open(spec: &str) -> Result<Device, String> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let n = s.strip_prefix("cuda:").unwrap_or("0");
            let n: usize = n
                .parse()
                .map_err(|_| format!("`{s}`: expected cuda:N with N a GPU number"))?;
            cuda(n).map_err(|e| format!("cannot use {s}: {e}"))
        }
        s => Err(format!("unknown device `{s}`: use cpu, cuda or cuda:N")),
    }
}

/// GPU `ordinal`, once the libraries it needs are found.
pub fn cuda(ordinal: usize) -> Result<Device, String> {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc;
        // SAFETY: each call only tries to open its library by name.
        let found = unsafe {
            [
                (
                    "libcuda (the NVIDIA driver)",
                    cudarc::driver::sys::is_culib_present(),
                ),
                ("libcublas", cudarc::cublas::sys::is_culib_present()),
                ("libcublasLt", cudarc::cublaslt::sys::is_culib_present()),
                ("libcurand", cudarc::curand::sys::is_culib_present()),
                ("libnvrtc", cudarc::nvrtc::sys::is_culib_present()),
                #[cfg(feature = "cudnn")]
                ("libcudnn", cudarc::cudnn::sys::is_culib_present()),
            ]
        };
        let missing: Vec<&str> = found
            .iter()
            .filter(|(_, present)| !present)
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} not found: this needs an NVIDIA GPU with its driver, and CUDA 13's libraries on LD_LIBRARY_PATH (PyTorch's site-packages/nvidia/*/lib hold them; docs/training.md, \"CUDA\")",
                missing.join(", ")
            ));
        }
    }
    Device::new_cuda(ordinal).map_err(|e| {
        if cfg!(feature = "cuda") {
            e.to_string()
        } else {
            "this build has no CUDA: build with `--features cuda` (docs/training.md, \"CUDA\")"
                .to_string()
        }
    })
}
