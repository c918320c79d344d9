//! Progress of long work (`rebuild`, `copy`): one line on standard error, redrawn at most
//! five times a second, with the share done, the rate and an estimate of the time left.
//! Shown only when standard error is a terminal, so piped and scripted runs stay quiet.
//!
//! A few lines rather than a progress-bar crate: one bar, redrawn in place, is all the
//! commands need.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line towards `total` units.
pub struct Progress {
    label: &'static str,
    total: u64,
    started: Instant,
    drawn: Option<Instant>,
    shown: bool,
}

/// The shortest time between two redraws.
const REDRAW: Duration = Duration::from_millis(200);

impl Progress {
    /// A line for `label`, shown if standard error is a terminal.
    pub fn new(label: &'static str, total: u64) -> Self {
        Self::with_visibility(label, total, std::io::stderr().is_terminal())
    }

    fn with_visibility(label: &'static str, total: u64, shown: bool) -> Self {
        Self {
            label,
            total,
            started: Instant::now(),
            drawn: None,
            shown,
        }
    }

    /// Redraws the line at `done` units, unless it was drawn a moment ago.
    pub fn update(&mut self, done: u64) {
        if !self.shown || self.drawn.is_some_and(|at| at.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = line(self.label, done, self.total, self.started.elapsed());
        let mut err = std::io::stderr().lock();
        // Progress is a courtesy: a terminal that cannot be written to changes nothing.
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Clears the line.
    pub fn finish(self) {
        if self.shown && self.drawn.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// `label [#####.....] 50% 500/1000, 250/s, ETA 2s`.
fn line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    const WIDTH: u64 = 30;
    let done = done.min(total);
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let eta = if rate > 0.0 {
        format!("ETA {:.0}s", (total - done) as f64 / rate)
    } else {
        "ETA -".to_owned()
    };
    format!("{label} [{bar}] {percent}% {done}/{total}, {rate:.0}/s, {eta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_share_rate_and_time_left() {
        let text = line("copy", 500, 1000, Duration::from_secs(2));
        assert_eq!(
            text,
            "copy [###############...............] 50% 500/1000, 250/s, ETA 2s"
        );
        assert!(line("x", 0, 0, Duration::ZERO).contains("100% 0/0"));
    }

    #[test]
    fn a_hidden_line_draws_nothing() {
        let mut progress = Progress::with_visibility("x", 10, false);
        progress.update(5);
        assert!(progress.drawn.is_none());
    }
}
