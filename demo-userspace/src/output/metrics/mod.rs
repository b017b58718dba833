//! `demo top --listen`: the counters of a scrape in the Prometheus text exposition format,
//! encoded by prometheus-client, and the HTTP endpoint that serves them.

mod server;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

pub use self::server::{BindError, HEADER_TIMEOUT, Listener, MAX_CONNECTIONS, bind, serve};
use crate::{
    kernel::probes::TopCounting,
    top::{
        Scrape,
        ledger::{Kind, Metric, Owner},
    },
};

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
        let drops = &scrape.drops;
        counters(
            &mut encoder,
            "demo_dropped",
            "Faults or exits the kernel side could not count, by reason",
            [
                ("process_map_full", drops.process_map_full),
                ("nested_fault", drops.nested),
                ("exit_map_full", drops.exit_map_full),
            ]
            .map(|(reason, value)| (vec![("reason", reason.to_owned())], value)),
        )?;
        counters(
            &mut encoder,
            "demo_series_folded",
            "Processes whose counts of a metric went into its comm=\"other\" series, because the metric had --max-series series",
            Metric::ALL.map(|metric| {
                (
                    vec![("metric", format!("{}_total", metric_name(metric)))],
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

/// The metric name of a ledger metric, without `_total`.
fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Faults => "demo_faults",
        Metric::Minor => "demo_minor_faults",
        Metric::Major => "demo_major_faults",
    }
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
