//! Time in faults, with `demo top --durations`: each row's completed faults timed by the kernel
//! side, their time per second of the interval, and the interval's 99th percentile as the
//! kernel's log2 buckets bound it.

use demo_common::{TopTimes, top_time};

use crate::model::latency::bucket_of_percentile;

/// A duration as a bucket bounds it: the kernel side keeps no exact duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// At most this many nanoseconds: the upper bound of its bucket.
    AtMost(u64),
    /// More than this many nanoseconds: in the last bucket, which has no upper bound.
    Above(u64),
}

/// One row's time in faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeInFaults {
    /// Completed faults timed since demo top started (or the process did), minor and major.
    pub timed: [u64; 2],
    /// Their total time in nanoseconds.
    pub total_ns: u64,
    /// Faults timed in this interval.
    pub interval_timed: u64,
    /// The time of this interval's faults in nanoseconds.
    pub interval_ns: u64,
    /// That time per second of the interval, in nanoseconds.
    pub per_second_ns: u64,
    /// The 99th percentile of this interval's faults, both classes; `None` when none was timed.
    pub p99: Option<Bound>,
}

/// The faults timed since `before` (the last reading of the same process): a reading with
/// fewer than before is a new process under a reused pid, whose interval is taken as empty, as
/// its fault count's is.
pub fn since(now: &TopTimes, before: Option<&TopTimes>) -> TopTimes {
    let Some(before) = before else {
        return *now;
    };
    if now.timed() < before.timed() {
        return TopTimes::default();
    }
    let mut interval = *now;
    for class in 0..2 {
        interval.faults[class] -= before.faults[class].min(interval.faults[class]);
        interval.total_ns[class] -= before.total_ns[class].min(interval.total_ns[class]);
        for (count, earlier) in interval.buckets[class]
            .iter_mut()
            .zip(&before.buckets[class])
        {
            *count -= (*earlier).min(*count);
        }
    }
    interval
}

impl TimeInFaults {
    /// The row of faults timed `total` so far, `interval` of them in an interval of `seconds`.
    pub fn of(total: &TopTimes, interval: &TopTimes, seconds: f64) -> Self {
        let interval_ns = interval.total_ns[0] + interval.total_ns[1];
        let mut buckets = interval.buckets[0];
        for (count, major) in buckets.iter_mut().zip(&interval.buckets[1]) {
            *count += major;
        }
        let p99 =
            bucket_of_percentile(&buckets, 0.99).map(|bucket| match top_time::bound_ns(bucket) {
                Some(bound) => Bound::AtMost(bound),
                None => Bound::Above(1 << top_time::LAST_BOUND_LOG2),
            });
        Self {
            timed: total.faults,
            total_ns: total.total_ns[0] + total.total_ns[1],
            interval_timed: interval.timed(),
            interval_ns,
            per_second_ns: if seconds > 0.0 {
                (interval_ns as f64 / seconds).round() as u64
            } else {
                0
            },
            p99,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(minor: &[u64], major: &[u64]) -> TopTimes {
        let mut times = TopTimes::default();
        for (class, durations) in [minor, major].into_iter().enumerate() {
            for &ns in durations {
                times.faults[class] += 1;
                times.total_ns[class] += ns;
                times.buckets[class][top_time::bucket_of(ns)] += 1;
            }
        }
        times
    }

    #[test]
    fn the_buckets_are_log2_from_1024_ns_to_2_to_the_30_and_one_above() {
        assert_eq!(top_time::BUCKETS, 22);
        for (ns, bucket) in [
            (0, 0),
            (1024, 0),
            (1025, 1),
            (2048, 1),
            (2049, 2),
            (1 << 30, 20),
            ((1 << 30) + 1, 21),
            (u64::MAX, 21),
        ] {
            assert_eq!(top_time::bucket_of(ns), bucket, "{ns}");
        }
        assert_eq!(top_time::bound_ns(0), Some(1024));
        assert_eq!(top_time::bound_ns(20), Some(1 << 30));
        assert_eq!(top_time::bound_ns(21), None);
    }

    #[test]
    fn an_interval_has_its_time_per_second_and_its_p99_as_a_bucket_bound() {
        let before = times(&[500; 10], &[]);
        // 99 minor faults of 1.5 µs and one major of 3 ms in the interval.
        let mut now = times(&[500; 10], &[]);
        now.add(&times(&[1500; 99], &[3_000_000]));
        let interval = since(&now, Some(&before));
        assert_eq!(interval.timed(), 100);
        let time = TimeInFaults::of(&now, &interval, 2.0);
        assert_eq!(time.timed, [109, 1]);
        assert_eq!(time.interval_ns, 99 * 1500 + 3_000_000);
        assert_eq!(time.per_second_ns, (99 * 1500 + 3_000_000) / 2);
        assert_eq!(time.p99, Some(Bound::AtMost(2048)));
        let slow = TimeInFaults::of(&now, &times(&[], &[2_000_000_000]), 1.0);
        assert_eq!(slow.p99, Some(Bound::Above(1 << 30)));
        assert_eq!(TimeInFaults::of(&now, &TopTimes::default(), 1.0).p99, None);
    }

    #[test]
    fn a_reused_pid_with_fewer_faults_has_an_empty_interval() {
        let before = times(&[500; 10], &[]);
        assert_eq!(
            since(&times(&[500; 3], &[]), Some(&before)),
            TopTimes::default()
        );
        assert_eq!(since(&before, None), before);
    }
}
