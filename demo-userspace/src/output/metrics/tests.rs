//! The exposition of a known scrape, as Prometheus reads it.

use demo_common::{FaultCounters, TopTimes, top_time};

use super::*;
use crate::{
    kernel::probes::{ProgramRuns, TopDrops},
    top::ledger::{CgroupReading, Ledger, Reading, SeriesOptions},
};

fn scrape(per_pid: bool, counting: TopCounting) -> Scrape {
    let split = matches!(counting, TopCounting::PerFault { .. });
    let timed = matches!(
        counting,
        TopCounting::PerFault {
            durations: true,
            ..
        }
    );
    let mut ledger = Ledger::new(
        SeriesOptions {
            per_pid,
            max_series: 16,
        },
        split,
    )
    .timed(timed);
    let readings: Vec<Reading> = (0..12)
        .map(|n| Reading {
            pid: 100 + n,
            comm: if n == 0 {
                "say \"hi\"".to_owned()
            } else {
                "worker".to_owned()
            },
            cgroup: CgroupReading::Path("/system.slice/ssh.service".to_owned()),
            split: split.then_some([[10, 20 + u64::from(n), 0], [1, 2, 0]]),
            accounted: Some(FaultCounters {
                minor: 30,
                major: u64::from(n % 2),
            }),
            times: timed.then(|| times(n)),
        })
        .collect();
    ledger.absorb(&readings);
    Scrape {
        ledger,
        counting,
        drops: TopDrops {
            process_map_full: 3,
            nested: 1,
            exit_map_full: 0,
            times: 2,
            pages_evicted: 0,
        },
        programs: Some(vec![ProgramRuns {
            program: "top_fault_user".to_owned(),
            runs: 1000,
            run_time_ns: 250_000,
        }]),
    }
}

#[test]
fn per_pid_exposition_folds_past_the_cap_and_escapes_commands() {
    let text = exposition(scrape(
        true,
        TopCounting::PerFault {
            pages: false,
            durations: false,
        },
    ))
    .unwrap();
    insta::assert_snapshot!(text);
    for family in [
        "demo_faults_total",
        "demo_minor_faults_total",
        "demo_major_faults_total",
    ] {
        let series = text
            .lines()
            .filter(|line| line.starts_with(&format!("{family}{{")))
            .count();
        assert!(series <= 16, "{family} has {series} series");
    }
}

/// Process `n`'s timed faults: 30 minor ones of 1.5 µs, and for odd `n` a major one of 3 ms.
fn times(n: u32) -> TopTimes {
    let mut times = TopTimes {
        faults: [30, u64::from(n % 2)],
        total_ns: [30 * 1500, u64::from(n % 2) * 3_000_000],
        ..TopTimes::default()
    };
    times.buckets[0][top_time::bucket_of(1500)] = 30;
    times.buckets[1][top_time::bucket_of(3_000_000)] = u64::from(n % 2);
    times
}

#[test]
fn durations_are_a_histogram_per_class_with_bounded_buckets() {
    let text = exposition(scrape(
        false,
        TopCounting::PerFault {
            pages: false,
            durations: true,
        },
    ))
    .unwrap();
    insta::assert_snapshot!(text);
    let minor = "comm=\"worker\",cgroup=\"/system.slice/ssh.service\",class=\"minor\"";
    let line = |series: &str| {
        text.lines()
            .find(|line| line.starts_with(series))
            .unwrap_or_else(|| panic!("{series} in {text}"))
            .to_owned()
    };
    // The 11 workers share one series: 330 faults of 1.5 µs, in the bucket up to 2.048 µs.
    assert_eq!(
        line(&format!("demo_fault_duration_seconds_count{{{minor}}}")),
        format!("demo_fault_duration_seconds_count{{{minor}}} 330")
    );
    assert!(
        line(&format!(
            "demo_fault_duration_seconds_bucket{{{minor},le=\"1.024e-06\"}}"
        ))
        .ends_with(" 0")
    );
    assert!(
        line(&format!(
            "demo_fault_duration_seconds_bucket{{{minor},le=\"2.048e-06\"}}"
        ))
        .ends_with(" 330")
    );
    assert!(
        line(&format!(
            "demo_fault_duration_seconds_bucket{{{minor},le=\"+Inf\"}}"
        ))
        .ends_with(" 330")
    );
    let buckets = text
        .lines()
        .filter(|line| line.starts_with(&format!("demo_fault_duration_seconds_bucket{{{minor},")))
        .count();
    assert_eq!(buckets, top_time::BUCKETS);
}

#[test]
fn counters_only_exposition_has_no_access_or_mode() {
    let text = exposition(scrape(
        false,
        TopCounting::KernelCounters {
            empty_fault_programs: false,
        },
    ))
    .unwrap();
    insta::assert_snapshot!(text);
    assert!(!text.contains("access="), "{text}");
}
