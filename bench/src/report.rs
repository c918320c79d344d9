//! The output lines: one figure per line on stdout, in the format every compared system
//! prints, so that their outputs can be put side by side.

use std::fmt::Display;
use std::sync::Mutex;

/// One figure as reported, kept for the ratios to the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// `W1` to `W4`, `P1`.
    pub workload: String,
    /// The backend's label, e.g. `sqlite-normal+cache` or `mem@1M`.
    pub backend: String,
    /// E.g. `cmds_per_s`.
    pub metric: String,
    /// The figure.
    pub value: f64,
}

/// Every figure reported so far, in order.
static FIGURES: Mutex<Vec<Figure>> = Mutex::new(Vec::new());

/// Prints `cqrs <workload> <backend> <metric>=<value> <unit>`, and keeps the figure.
pub fn report(workload: &str, backend: &str, metric: &str, value: impl Display, unit: &str) {
    let value = value.to_string();
    println!("cqrs {workload} {backend} {metric}={value} {unit}");
    if let Ok(number) = value.parse() {
        FIGURES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Figure {
                workload: workload.to_owned(),
                backend: backend.to_owned(),
                metric: metric.to_owned(),
                value: number,
            });
    }
}

/// Every figure reported so far.
pub fn figures() -> Vec<Figure> {
    FIGURES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A store size as the `@<size>` of a label: `1000000` as `1M`, `20000` as `20k`, other
/// sizes as they are.
pub fn compact(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_compactly_only_when_exact() {
        assert_eq!(compact(1_000_000), "1M");
        assert_eq!(compact(20_000), "20k");
        assert_eq!(compact(1_500_000), "1500k");
        assert_eq!(compact(1234), "1234");
        assert_eq!(compact(0), "0");
    }
}
