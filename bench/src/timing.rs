//! Turning measured durations into the figures reported: rates, medians, milliseconds.

use std::time::Duration;

/// `count` per second of `elapsed`, rounded; 0 if no time was measured.
pub fn per_second(count: u64, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        round_to_u64(count as f64 / seconds)
    } else {
        0
    }
}

/// The median; the mean of the middle two for an even count (zero for none).
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => Duration::ZERO,
        len if len % 2 == 1 => sorted[middle],
        _ => (sorted[middle - 1] + sorted[middle]) / 2,
    }
}

/// A duration in milliseconds with one decimal, as the output lines print it.
pub fn ms(time: Duration) -> String {
    format!("{:.1}", time.as_secs_f64() * 1e3)
}

/// Every duration in milliseconds, for the stderr lines that list each load or pass.
pub fn format_ms(times: &[Duration]) -> String {
    times.iter().map(|&t| ms(t)).collect::<Vec<_>>().join(" ")
}

/// `value` rounded to the nearest whole number: rates are positive and far below 2^53, so
/// the float-to-integer conversion loses nothing that a figure shows. (`as` saturates a
/// negative or NaN value to 0 and an infinite one to `u64::MAX`.)
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the one float-to-integer conversion of the figures; see the doc comment"
)]
fn round_to_u64(value: f64) -> u64 {
    value.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_and_survive_a_zero_duration() {
        assert_eq!(per_second(3, Duration::from_secs(2)), 2);
        assert_eq!(per_second(20_000, Duration::from_millis(1250)), 16_000);
        assert_eq!(per_second(5, Duration::ZERO), 0);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(5), ms(1), ms(3)]), ms(3));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(format_ms(&[ms(1), Duration::from_micros(2250)]), "1.0 2.2");
    }
}
