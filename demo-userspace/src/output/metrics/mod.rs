//! `demo top --listen`: the counters of a scrape in the Prometheus text exposition format,
//! encoded by prometheus-client, and the HTTP endpoint that serves them.

mod server;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

pub use self::server::{BindError, HEADER_TIMEOUT, Listener, MAX_CONNECTIONS, bind, serve};
use crate::{
    kernel::probes::TopCounting,
    top::{
        Scrape,
        ledger::{Durations, Kind, Metric, Owner},
    },
};
use demo_common::top_time;

/// The `Content-Type` of [`exposition`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The value of the `comm`, `cgroup` and `pid` labels of the series that hold what passed
/// `--max-series`.
pub const OTHER: &str = "other";

/// `scrape` in the Prometheus text format (version 0.0.4).
pub fn exposition(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ScrapeCollector(scrape)));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

/// One scrape's counters, encoded as constant metrics.
#[derive(Debug)]
struct ScrapeCollector(Scrape);

/// A label set: name and value of each label.
type Labels = Vec<(&'static str, String)>;

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let scrape = &self.0;
        let ledger = &scrape.ledger;
        let per_pid = ledger.options().per_pid;
        let faults_help = match scrape.counting {
            TopCounting::PerFault { .. } => {
                "Page faults begun (the exceptions tracepoints, any outcome), by command, cgroup v2 path, access and mode"
            }
            TopCounting::KernelCounters { .. } => {
                "Page faults, the kernel's minor plus major counts (--counters-only: no access or mode), by command and cgroup v2 path"
            }
        };
        counters(
            &mut encoder,
            "demo_faults",
            faults_help,
            ledger
                .faults()
                .map(|(owner, kind, value)| (owner_labels(owner, per_pid, kind), value)),
        )?;
        counters(
            &mut encoder,
            "demo_minor_faults",
            "Minor faults, the kernel's own per-process count, by command and cgroup v2 path",
            ledger
                .minor()
                .map(|(owner, value)| (owner_labels(owner, per_pid, None), value)),
        )?;
        counters(
            &mut encoder,
            "demo_major_faults",
            "Major faults (the kernel had to read the page in, from a file or swap), the kernel's own per-process count, by command and cgroup v2 path",
            ledger
                .major()
                .map(|(owner, value)| (owner_labels(owner, per_pid, None), value)),
        )?;
        if ledger.is_timed() {
            let mut family = encoder.encode_descriptor(
                "demo_fault_duration_seconds",
                "Time of each completed page fault, from its start (the exceptions tracepoint) to its completion (the minor-faults or major-faults software event), by command, cgroup v2 path and class; log2 buckets from 1.024 us to 1.07 s",
                None,
                MetricType::Histogram,
            )?;
            for (owner, class, durations) in ledger.durations() {
                let mut labels = owner_labels(owner, per_pid, None);
                labels.push(("class", class.as_str().to_owned()));
                let buckets = histogram_buckets(durations);
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        durations.sum_ns as f64 / 1e9,
                        durations.count(),
                        &buckets,
                        None,
                    )?;
            }
        }
        let drops = &scrape.drops;
        let mut reasons = vec![
            ("process_map_full", drops.process_map_full),
            ("nested_fault", drops.nested),
            ("exit_map_full", drops.exit_map_full),
        ];
        if ledger.is_timed() {
            reasons.push(("fault_time_uncounted", drops.times));
        }
        counters(
            &mut encoder,
            "demo_dropped",
            "Faults or exits the kernel side could not count, by reason",
            reasons
                .into_iter()
                .map(|(reason, value)| (vec![("reason", reason.to_owned())], value)),
        )?;
        counters(
            &mut encoder,
            "demo_series_folded",
            "Processes whose counts of a metric went into its comm=\"other\" series, because the metric had --max-series series",
            Metric::ALL
                .into_iter()
                .filter(|&metric| metric != Metric::Durations || ledger.is_timed())
                .map(|metric| {
                    (
                        vec![("metric", family_name(metric).to_owned())],
                        ledger.folded(metric),
                    )
                }),
        )?;
        if let Some(programs) = &scrape.programs {
            counters(
                &mut encoder,
                "demo_program_runs",
                "Runs of each eBPF program of demo (kernel.bpf_stats_enabled is on)",
                programs
                    .iter()
                    .map(|runs| (vec![("program", runs.program.clone())], runs.runs)),
            )?;
            let mut seconds = encoder.encode_descriptor(
                "demo_program_run_seconds",
                "Time each eBPF program of demo ran in the kernel (kernel.bpf_stats_enabled is on)",
                None,
                MetricType::Counter,
            )?;
            for runs in programs {
                let labels = vec![("program", runs.program.clone())];
                ConstCounter::new(runs.run_time_ns as f64 / 1e9)
                    .encode(seconds.encode_family(&labels)?)?;
            }
        }
        let mut info = encoder.encode_descriptor(
            "demo_build_info",
            "Always 1: the version of demo serving these metrics, and what it counts",
            None,
            MetricType::Gauge,
        )?;
        let labels: Labels = vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            (
                "counting",
                match scrape.counting {
                    TopCounting::PerFault { .. } => "per_fault",
                    TopCounting::KernelCounters { .. } => "kernel_counters",
                }
                .to_owned(),
            ),
            ("per_pid", per_pid.to_string()),
            ("max_series", ledger.options().max_series.to_string()),
        ];
        ConstGauge::new(1_i64).encode(info.encode_family(&labels)?)?;
        Ok(())
    }
}

/// The name of a ledger metric's family as Prometheus shows it.
fn family_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Faults => "demo_faults_total",
        Metric::Minor => "demo_minor_faults_total",
        Metric::Major => "demo_major_faults_total",
        Metric::Durations => "demo_fault_duration_seconds",
    }
}

/// A series' buckets as prometheus-client takes them: each bucket's upper bound in seconds
/// with its own count (it sums them into `le` buckets), the last one `+Inf`.
fn histogram_buckets(durations: &Durations) -> Vec<(f64, u64)> {
    durations
        .buckets
        .iter()
        .enumerate()
        .map(|(bucket, &count)| {
            let bound = top_time::bound_ns(bucket).map_or(f64::INFINITY, |ns| ns as f64 / 1e9);
            (bound, count)
        })
        .collect()
}

/// Encodes the counter `name` (prometheus-client adds `_total`) with one sample per label set.
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The labels of a series: comm, cgroup, pid with `--per-pid`, and the access and mode of a
/// fault series when they are known.
fn owner_labels(owner: &Owner, per_pid: bool, kind: Kind) -> Labels {
    let (comm, cgroup, pid) = match owner {
        Owner::Process { comm, cgroup, pid } => (
            comm.clone(),
            cgroup.clone(),
            pid.map_or_else(|| OTHER.to_owned(), |pid| pid.to_string()),
        ),
        Owner::Other => (OTHER.to_owned(), OTHER.to_owned(), OTHER.to_owned()),
    };
    let mut labels = vec![("comm", comm), ("cgroup", cgroup)];
    if per_pid {
        labels.push(("pid", pid));
    }
    if let Some((access, mode)) = kind {
        labels.push(("access", access.as_str().to_owned()));
        labels.push(("mode", mode.as_str().to_owned()));
    }
    labels
}

#[cfg(test)]
mod tests;
