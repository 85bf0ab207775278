//! Resident memory of this process, from `/proc/self/status` (Linux).

/// `VmHWM`, the peak resident set size so far, in KiB; 0 where `/proc` is not there.
pub fn peak_kib() -> u64 {
    status_kib("VmHWM:")
}

/// `VmRSS`, the current resident set size, in KiB; 0 where `/proc` is not there.
pub fn current_kib() -> u64 {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
