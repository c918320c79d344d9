//! The process's peak resident memory (Linux `/proc`), reported with the large W4 store so
//! that a reader that holds the whole log in memory shows up.

/// Resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// VmHWM (peak resident set) of this process, in kB.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Kilobytes as whole megabytes, rounded to the nearest.
pub fn kb_to_mb(kb: u64) -> u64 {
    kb.saturating_add(512) / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabytes_round_to_the_nearest() {
        assert_eq!(kb_to_mb(0), 0);
        assert_eq!(kb_to_mb(511), 0);
        assert_eq!(kb_to_mb(512), 1);
        assert_eq!(kb_to_mb(1024 * 300 + 700), 301);
    }
}
