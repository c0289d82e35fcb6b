//! What the machine has: allocations larger than the memory available are
//! refused with an error that names their size and cause, instead of the
//! allocator's abort ("memory allocation of N bytes failed", exit 134).

/// Bytes the kernel says can be allocated without swapping (Linux's
/// `MemAvailable`); `None` where it cannot be read.
pub fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// `bytes` in GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// An error when `what` (which needs `bytes`) cannot fit in the memory
/// available now; fine where that cannot be known.
pub fn check_fits(bytes: u64, what: &str) -> Result<(), String> {
    match available_bytes() {
        Some(free) if bytes > free => Err(format!(
            "{what} needs {}, more than the {} this machine has available",
            gib(bytes),
            gib(free)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn more_than_the_machine_has_is_refused_and_named() {
        if super::available_bytes().is_none() {
            return;
        }
        let e = super::check_fits(u64::MAX, "a test").unwrap_err();
        assert!(e.starts_with("a test needs 17179869184.00 GiB"), "{e}");
        super::check_fits(1, "one byte").unwrap();
    }
}
