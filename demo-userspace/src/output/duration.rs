//! The one way the text outputs write a duration: `812 ns`, `1.4 µs`, `12 µs`, `1.9 ms`,
//! `2.3 s`; two digits below ten of a unit, whole units above, so a column of them stays at
//! most six characters wide below 1000 s.

use crate::model::events::FaultTiming;

/// Where a fault's time went besides running on the CPU, each part that is not zero:
/// `1.7 ms off CPU`, `20 µs in reclaim`, `5.0 µs in compaction`; first `time off CPU not known`
/// when the kernel side missed the thread's return to the CPU. Empty when it all ran there.
pub fn away_from_cpu(timing: FaultTiming) -> Vec<String> {
    let unknown = timing
        .off_cpu_ns
        .is_none()
        .then(|| "time off CPU not known".to_owned());
    let parts = [
        (timing.off_cpu_ns.unwrap_or(0), "off CPU"),
        (timing.reclaim_ns, "in reclaim"),
        (timing.compaction_ns, "in compaction"),
    ]
    .into_iter()
    .filter(|&(ns, _)| ns > 0)
    .map(|(ns, what)| format!("{} {what}", human(ns)));
    unknown.into_iter().chain(parts).collect()
}

/// The units a duration is written in, smallest first: below `below` nanoseconds, in `unit`
/// (nanoseconds per unit), with one decimal when `tenths`. Past the last, in whole seconds.
const TIERS: [(u128, u128, bool, &str); 6] = [
    (1_000, 1, false, "ns"),
    (10_000, 1_000, true, "µs"),
    (1_000_000, 1_000, false, "µs"),
    (10_000_000, 1_000_000, true, "ms"),
    (1_000_000_000, 1_000_000, false, "ms"),
    (10_000_000_000, 1_000_000_000, true, "s"),
];

/// How a duration is brought to what is written.
#[derive(Clone, Copy)]
enum Rounding {
    Nearest,
    /// Up, for an upper bound: what is written is never below the duration.
    Up,
    /// Down, for a lower bound: what is written is never above the duration.
    Down,
}

/// `ns` for people, rounded to the nearest of what is written.
pub fn human(ns: u64) -> String {
    written(ns, Rounding::Nearest)
}

/// `ns` as a bound, rounded up: "at most" what is written holds.
pub fn at_most(ns: u64) -> String {
    written(ns, Rounding::Up)
}

/// `ns` as a bound, rounded down: "more than" what is written holds.
pub fn at_least(ns: u64) -> String {
    written(ns, Rounding::Down)
}

fn written(ns: u64, rounding: Rounding) -> String {
    let ns = u128::from(ns);
    let steps = |step: u128| match rounding {
        Rounding::Nearest => (ns + step / 2) / step,
        Rounding::Up => ns.div_ceil(step),
        Rounding::Down => ns / step,
    };
    for (below, unit, tenths, name) in TIERS {
        let step = if tenths { unit / 10 } else { unit };
        let count = steps(step);
        // A duration that rounds up to the tier's end is written in the next tier.
        if count * step < below {
            return if tenths {
                format!("{}.{} {name}", count / 10, count % 10)
            } else {
                format!("{count} {name}")
            };
        }
    }
    format!("{} s", steps(1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_is_written_to_two_digits_or_whole() {
        let cases = [
            (0, "0 ns"),
            (812, "812 ns"),
            (999, "999 ns"),
            (1_000, "1.0 µs"),
            (1_449, "1.4 µs"),
            (1_450, "1.5 µs"),
            (9_949, "9.9 µs"),
            // 9.96 µs rounds to 10.0, which is written in whole microseconds.
            (9_960, "10 µs"),
            (12_400, "12 µs"),
            (999_499, "999 µs"),
            (999_500, "1.0 ms"),
            (1_900_000, "1.9 ms"),
            (250_000_000, "250 ms"),
            (2_300_000_000, "2.3 s"),
            (125_000_000_000, "125 s"),
            (u64::MAX, "18446744074 s"),
        ];
        for (ns, text) in cases {
            assert_eq!(human(ns), text, "{ns}");
        }
    }

    #[test]
    fn a_bound_is_rounded_up_so_that_at_most_holds() {
        let cases = [
            (1_023, "1.1 µs"),
            (1_000, "1.0 µs"),
            (9_901, "10 µs"),
            (106_495, "107 µs"),
            (999_001, "1.0 ms"),
            (1_000_001, "1.1 ms"),
        ];
        for (ns, text) in cases {
            assert_eq!(at_most(ns), text, "{ns}");
        }
    }

    #[test]
    fn a_lower_bound_is_rounded_down() {
        // 2^30 ns is 1.073741824 s: more than 1.0 s holds, more than 1.1 s would not.
        assert_eq!(at_least(1 << 30), "1.0 s");
        assert_eq!(at_most(1 << 30), "1.1 s");
    }
}
