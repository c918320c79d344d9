//! The hand-written limit beside the bench's own figures: reads the output of the limits
//! program (`limits --out FILE`, lines `limits <workload> <backend> <metric>=<value>
//! <unit>`), and prints each bench figure that has a limit as a ratio to it.

use crate::report::Figure;
use std::path::Path;

/// One figure of the limits program.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// E.g. `L5-W1-handwritten`.
    pub workload: String,
    /// `sqlite-normal`, `sqlite-full`, `postgres` or `postgres-text`.
    pub backend: String,
    /// E.g. `cmds_per_s`.
    pub metric: String,
    /// The figure.
    pub value: f64,
}

/// The limit figures in the limits program's output; its other lines (checks, comments)
/// are passed over. A figure line that does not parse is an error naming it.
pub fn parse(output: &str) -> Result<Vec<Limit>, String> {
    let mut limits = Vec::new();
    for (index, line) in output.lines().enumerate() {
        let mut words = line.split_whitespace();
        if words.next() != Some("limits") {
            continue;
        }
        let bad = || format!("line {}: not a limit figure: {line:?}", index + 1);
        let (Some(workload), Some(backend), Some(figure)) =
            (words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        let (metric, value) = figure.split_once('=').ok_or_else(bad)?;
        let value: f64 = value.parse().map_err(|_| bad())?;
        limits.push(Limit {
            workload: workload.to_owned(),
            backend: backend.to_owned(),
            metric: metric.to_owned(),
            value,
        });
    }
    Ok(limits)
}

/// Reads and parses the limits program's output file.
pub fn read(path: &Path) -> Result<Vec<Limit>, String> {
    let output =
        std::fs::read_to_string(path).map_err(|e| format!("--limits {}: {e}", path.display()))?;
    parse(&output).map_err(|e| format!("--limits {}: {e}", path.display()))
}

/// The limit workload a bench figure compares with (`bench/README.md`): W1 and W2 with the
/// hand-written commands, W3 (no snapshot, the `--replay-events` size) with the replay, W4
/// over the bulk store (`<backend>@<size>`) with the decoded global read of a store of
/// that size. Returns the limit's workload and backend.
fn limit_of(figure: &Figure, bulk_label: &str) -> Option<(&'static str, String)> {
    // SQLite figures compare with the limit of the same backend; `postgres` (which stores
    // payloads as text) with the limit's `postgres-text`.
    let plain = |backend: &str| -> Option<String> {
        if backend.contains(['+', '@']) {
            None
        } else if backend.starts_with("sqlite-") {
            Some(backend.to_owned())
        } else if backend == "postgres" {
            Some("postgres-text".to_owned())
        } else {
            None
        }
    };
    let limit = |workload: &'static str, backend: &str| Some((workload, plain(backend)?));
    match (figure.workload.as_str(), figure.metric.as_str()) {
        ("W1", "cmds_per_s") => limit("L5-W1-handwritten", &figure.backend),
        ("W2", "cmds_per_s") => limit("L5-W2-handwritten", &figure.backend),
        ("W3", "events_per_s") => limit("L3-replay", &figure.backend),
        ("W4", "events_per_s") => limit(
            "L6-global-read-decode",
            figure.backend.strip_suffix(bulk_label)?,
        ),
        _ => None,
    }
}

/// The ratio lines: for each figure with a limit, `ratio <workload> <backend>
/// <metric>=<figure / limit> (<figure> / <limit workload> <limit>)`.
pub fn ratios(figures: &[Figure], limits: &[Limit], bulk_label: &str) -> Vec<String> {
    figures
        .iter()
        .filter_map(|figure| {
            let (workload, backend) = limit_of(figure, bulk_label)?;
            let limit = limits.iter().find(|limit| {
                limit.workload == workload
                    && limit.backend == backend
                    && limit.metric == figure.metric
            })?;
            Some(format!(
                "ratio {} {} {}={:.2} ({} / {workload} {:.0})",
                figure.workload,
                figure.backend,
                figure.metric,
                figure.value / limit.value,
                figure.value,
                limit.value
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(workload: &str, backend: &str, metric: &str, value: f64) -> Figure {
        Figure {
            workload: workload.to_owned(),
            backend: backend.to_owned(),
            metric: metric.to_owned(),
            value,
        }
    }

    const OUTPUT: &str = "\
limits L5-W1-handwritten sqlite-normal cmds_per_s=40000 cmd/s
# limits check L5-W1 sqlite-normal events=20000 OK
limits L5-W1-handwritten sqlite-full cmds_per_s=8000 cmd/s
limits L3-replay sqlite-normal events_per_s=4000000 ev/s
limits L6-global-read-decode sqlite-normal events_per_s=3000000 ev/s
";

    #[test]
    fn each_figure_is_divided_by_its_own_limit() {
        let limits = parse(OUTPUT).unwrap();
        assert_eq!(limits.len(), 4, "the check line is not a figure");
        let figures = [
            figure("W1", "sqlite-normal", "cmds_per_s", 20000.0),
            figure("W1", "sqlite-full", "cmds_per_s", 8800.0),
            figure("W1", "sqlite-normal+cache", "cmds_per_s", 30000.0),
            figure("W1", "mem", "cmds_per_s", 500000.0),
            figure("W3", "sqlite-normal", "events_per_s", 2000000.0),
            figure("W3", "sqlite-normal", "load_ms_median", 50.0),
            figure("W3", "sqlite-normal@10k", "events_per_s", 2000000.0),
            figure("W4", "sqlite-normal", "events_per_s", 1000000.0),
            figure("W4", "sqlite-normal@1M", "events_per_s", 1500000.0),
            figure("W2", "sqlite-normal", "cmds_per_s", 1.0),
        ];
        assert_eq!(
            ratios(&figures, &limits, "@1M"),
            [
                "ratio W1 sqlite-normal cmds_per_s=0.50 (20000 / L5-W1-handwritten 40000)",
                "ratio W1 sqlite-full cmds_per_s=1.10 (8800 / L5-W1-handwritten 8000)",
                "ratio W3 sqlite-normal events_per_s=0.50 (2000000 / L3-replay 4000000)",
                "ratio W4 sqlite-normal@1M events_per_s=0.50 \
                 (1500000 / L6-global-read-decode 3000000)",
            ]
        );
    }

    #[test]
    fn postgres_figures_are_divided_by_the_text_limits() {
        let limits = parse(
            "limits L5-W1-handwritten postgres cmds_per_s=2000 cmd/s\n\
             limits L5-W1-handwritten postgres-text cmds_per_s=2500 cmd/s\n\
             limits L6-global-read-decode postgres-text events_per_s=2000000 ev/s\n",
        )
        .unwrap();
        let figures = [
            figure("W1", "postgres", "cmds_per_s", 2500.0),
            figure("W1", "postgres+cache", "cmds_per_s", 3000.0),
            figure("W4", "postgres@100k", "events_per_s", 1000000.0),
        ];
        assert_eq!(
            ratios(&figures, &limits, "@100k"),
            [
                "ratio W1 postgres cmds_per_s=1.00 (2500 / L5-W1-handwritten 2500)",
                "ratio W4 postgres@100k events_per_s=0.50 \
                 (1000000 / L6-global-read-decode 2000000)",
            ]
        );
    }

    #[test]
    fn a_figure_line_that_does_not_parse_is_named() {
        let error = parse("limits L3-replay sqlite-normal events_per_s=fast ev/s").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        assert!(parse("limits L3-replay").is_err());
    }
}
