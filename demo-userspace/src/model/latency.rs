//! Fault latencies: a log-linear histogram that holds any number of durations in fixed
//! memory, and answers their count, total and exact maximum, the log2 buckets a summary
//! draws, and percentiles to within one eighth of a power of two.

/// Durations below this many nanoseconds each have a bucket of their own.
const EXACT_BELOW: u64 = 16;
/// Each power of two from [`EXACT_BELOW`] up is cut into this many buckets of equal width.
const SUB_BUCKETS: u64 = 8;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Buckets in all: the exact ones, then eight for each power of two from 2^4 to 2^63.
const BUCKETS: usize = EXACT_BELOW as usize + (64 - 4) * SUB_BUCKETS as usize;

/// Durations in nanoseconds, counted in log-linear buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    total_ns: u128,
    max_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            total_ns: 0,
            max_ns: 0,
        }
    }
}

/// One log2 bucket: the durations from `from_ns` up to, not including, `to_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Log2Bucket {
    pub from_ns: u64,
    /// `None` for the last bucket, which has no upper bound.
    pub to_ns: Option<u64>,
    pub count: u64,
}

impl LatencyHistogram {
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.count += 1;
        self.total_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds every duration of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.total_ns += other.total_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of every duration, in nanoseconds.
    pub fn total_ns(&self) -> u128 {
        self.total_ns
    }

    /// The longest duration, exactly; 0 when there is none.
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// The duration that `fraction` (0 to 1) of the durations do not exceed, as the upper end
    /// of the bucket that holds it (at most an eighth above it), and never above the maximum.
    /// `None` when there is no duration.
    pub fn percentile_ns(&self, fraction: f64) -> Option<u64> {
        let bucket = bucket_of_percentile(&self.counts[..], fraction)?;
        Some(last_of(bucket).min(self.max_ns))
    }

    /// The counts by power of two, from the lowest bucket with a duration to the highest:
    /// `[0, 1)`, `[1, 2)`, `[2, 4)`, … Empty when there is no duration.
    pub fn log2_buckets(&self) -> Vec<Log2Bucket> {
        let mut by_power = [0u64; 65];
        for (bucket, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                by_power[power_of(first_of(bucket))] += count;
            }
        }
        let Some(first) = by_power.iter().position(|&count| count > 0) else {
            return Vec::new();
        };
        let last = by_power
            .iter()
            .rposition(|&count| count > 0)
            .unwrap_or(first);
        (first..=last)
            .map(|power| Log2Bucket {
                from_ns: if power == 0 { 0 } else { 1 << (power - 1) },
                to_ns: (power < 64).then(|| 1 << power),
                count: by_power[power],
            })
            .collect()
    }
}

/// The log2 bucket of `ns`: 0 for 0, else one more than the position of its highest bit.
fn power_of(ns: u64) -> usize {
    (64 - ns.leading_zeros()) as usize
}

fn bucket_of(ns: u64) -> usize {
    if ns < EXACT_BELOW {
        return ns as usize;
    }
    let exponent = 63 - ns.leading_zeros();
    let sub = (ns >> (exponent - SUB_BITS)) & (SUB_BUCKETS - 1);
    EXACT_BELOW as usize + ((exponent - 4) as usize) * SUB_BUCKETS as usize + sub as usize
}

/// The smallest duration bucket `bucket` holds.
fn first_of(bucket: usize) -> u64 {
    if bucket < EXACT_BELOW as usize {
        return bucket as u64;
    }
    let index = (bucket - EXACT_BELOW as usize) as u64;
    let exponent = index / SUB_BUCKETS + 4;
    let sub = index % SUB_BUCKETS;
    (SUB_BUCKETS + sub) << (exponent - u64::from(SUB_BITS))
}

/// The largest duration bucket `bucket` holds.
fn last_of(bucket: usize) -> u64 {
    if bucket + 1 < BUCKETS {
        first_of(bucket + 1) - 1
    } else {
        u64::MAX
    }
}

/// In counts per coarse bucket (durations up to each bucket's bound, as the kernel side of
/// `demo top` keeps them), the bucket that holds the duration `fraction` (0 to 1) of them do not
/// exceed, the rank [`LatencyHistogram::percentile_ns`] uses too; `None` when every count is
/// 0. What it answers is the bucket's upper bound: the duration is at most that.
pub fn bucket_of_percentile(counts: &[u64], fraction: f64) -> Option<usize> {
    let count: u64 = counts.iter().sum();
    if count == 0 {
        return None;
    }
    // The rank of the duration asked for, from 1: at least one, at most all of them.
    let rank = ((fraction.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
    let mut seen = 0;
    counts.iter().position(|&in_bucket| {
        seen += in_bucket;
        seen >= rank
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_lands_in_the_bucket_that_holds_it() {
        for ns in (0..5000).chain([u64::MAX, 1 << 40, (1 << 40) - 1, 123_456_789]) {
            let bucket = bucket_of(ns);
            assert!(
                first_of(bucket) <= ns && ns <= last_of(bucket),
                "{ns} in {bucket}"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        // A bucket is at most an eighth of its lower end wide.
        let bucket = bucket_of(1_000_000);
        assert!(last_of(bucket) - first_of(bucket) < 1_000_000 / 8);
    }

    #[test]
    fn counts_total_and_maximum_are_exact() {
        let mut histogram = LatencyHistogram::default();
        for ns in [500, 1_500, 1_500, 2_000_000] {
            histogram.record(ns);
        }
        assert_eq!(histogram.count(), 4);
        assert_eq!(histogram.total_ns(), 2_003_500);
        assert_eq!(histogram.max_ns(), 2_000_000);
        let mut other = LatencyHistogram::default();
        other.record(7);
        other.merge(&histogram);
        assert_eq!((other.count(), other.max_ns()), (5, 2_000_000));
    }

    #[test]
    fn percentiles_are_the_upper_end_of_their_bucket_and_never_above_the_maximum() {
        let mut histogram = LatencyHistogram::default();
        assert_eq!(histogram.percentile_ns(0.5), None);
        for _ in 0..99 {
            histogram.record(1_000);
        }
        histogram.record(3_000_000);
        let p50 = histogram.percentile_ns(0.5).unwrap();
        assert!((1_000..1_000 + 1_000 / 8).contains(&p50), "{p50}");
        assert_eq!(histogram.percentile_ns(0.99), Some(p50));
        assert_eq!(histogram.percentile_ns(1.0), Some(3_000_000));
    }

    #[test]
    fn log2_buckets_cover_the_lowest_to_the_highest_duration_and_sum_to_the_count() {
        let mut histogram = LatencyHistogram::default();
        for ns in [1_000, 1_023, 1_024, 5_000] {
            histogram.record(ns);
        }
        let buckets = histogram.log2_buckets();
        let shown: Vec<_> = buckets
            .iter()
            .map(|b| (b.from_ns, b.to_ns, b.count))
            .collect();
        assert_eq!(
            shown,
            [
                (512, Some(1024), 2),
                (1024, Some(2048), 1),
                (2048, Some(4096), 0),
                (4096, Some(8192), 1)
            ]
        );
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 4);
        assert!(LatencyHistogram::default().log2_buckets().is_empty());
    }

    #[test]
    fn the_percentile_of_coarse_buckets_is_the_bucket_its_rank_falls_in() {
        assert_eq!(bucket_of_percentile(&[0, 0, 0], 0.99), None);
        // 100 durations: 98 in the first bucket, 1 each in the third and the last.
        let counts = [98, 0, 1, 0, 1];
        assert_eq!(bucket_of_percentile(&counts, 0.5), Some(0));
        assert_eq!(bucket_of_percentile(&counts, 0.98), Some(0));
        assert_eq!(bucket_of_percentile(&counts, 0.99), Some(2));
        assert_eq!(bucket_of_percentile(&counts, 1.0), Some(4));
        assert_eq!(bucket_of_percentile(&counts, 0.0), Some(0));
    }
}
