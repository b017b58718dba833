//! The exposition of a known scrape, as Prometheus reads it.

use demo_common::FaultCounters;

use super::*;
use crate::{
    kernel::probes::{ProgramRuns, TopDrops},
    top::ledger::{CgroupReading, Ledger, Reading, SeriesOptions},
};

fn scrape(per_pid: bool, counting: TopCounting) -> Scrape {
    let split = matches!(counting, TopCounting::PerFault { .. });
    let mut ledger = Ledger::new(
        SeriesOptions {
            per_pid,
            max_series: 16,
        },
        split,
    );
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
    let text = exposition(scrape(true, TopCounting::PerFault { pages: false })).unwrap();
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
