//! The ways the bench runs its workload: untraced, under demo as users run it, and under the
//! tools users compare it with. Each run gives the workload's own ns per fault and what the
//! tracer reports about itself.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::{
    cgroup::EmptyCgroup,
    kernel_cost::{self, ProgramCost},
};

mod perf;

/// One way of running the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Untraced,
    /// Untraced, with the other CPU kept busy, as the tracer keeps it during a trace.
    UntracedBusy,
    /// `demo top --counters-only`: no program per fault.
    TopCountersOnly,
    /// Programs that count nothing on the fault tracepoints: what the hook alone costs.
    Floor,
    /// `demo trace --format json -o FILE --durations --pid PID`, the defaults otherwise: each
    /// fault timed to its completion, off the CPU and in reclaim or compaction.
    Trace,
    /// The same with `--no-durations`: the fault programs alone.
    TraceNoDurations,
    /// The same with `--region none`.
    TraceNoRegions,
    /// The same with `--call-graph fp`: each fault's user stack walked by frame pointer in the
    /// kernel (`bpf_get_stack`), 32 frames at most.
    TraceCallGraphFp,
    /// The same with `--call-graph dwarf`: 8 KiB of each fault's user stack and its registers
    /// copied in the kernel, unwound by the loader with each module's unwind tables.
    TraceCallGraphDwarf,
    /// Untraced, while `demo trace --durations --pid` traces another process: what the
    /// programs that run for every process (on every fault, and with durations on every
    /// context switch, reclaim and compaction), which return at their first lookup, cost the
    /// rest.
    TraceOther,
    /// Untraced, while `demo trace --durations --cgroup` traces an empty cgroup: what the
    /// cgroup check (`bpf_current_task_under_cgroup`), which the programs make for every
    /// process in place of the target lookup, costs the rest.
    TraceOtherCgroup,
    /// `demo top --no-durations`: per-fault counting alone.
    Top,
    /// `demo top --durations`: each process's time in faults too.
    TopDurations,
    /// `demo top --listen --quiet --per-pid`, scraped every second as Prometheus would.
    TopListen,
    BpftraceCount,
    BpftracePrint,
    PerfTrace,
    /// `perf record -e page-faults -c 1 --call-graph dwarf`: perf's own copy of 8 KiB of user
    /// stack and the registers at every fault, unwound only when the file is read.
    PerfRecordDwarf,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Self::Untraced => "untraced, against untraced",
            Self::UntracedBusy => "untraced, other CPU busy",
            Self::TopCountersOnly => "demo top --counters-only",
            Self::Floor => "floor: empty fault programs",
            Self::Trace => "demo trace --durations",
            Self::TraceNoDurations => "demo trace --no-durations",
            Self::TraceNoRegions => "demo trace --region none",
            Self::TraceCallGraphFp => "demo trace --call-graph fp",
            Self::TraceCallGraphDwarf => "demo trace --call-graph dwarf",
            Self::TraceOther => "untraced, demo traces another",
            Self::TraceOtherCgroup => "untraced, demo traces a cgroup",
            Self::Top => "demo top --no-durations",
            Self::TopDurations => "demo top --durations",
            Self::TopListen => "demo top --listen --per-pid",
            Self::BpftraceCount => "bpftrace, count in kernel",
            Self::BpftracePrint => "bpftrace, printf to file",
            Self::PerfTrace => "perf trace -F min",
            Self::PerfRecordDwarf => "perf record --call-graph dwarf",
        }
    }

    /// Rows that run nothing per fault: they must land at 1.00, or the run cannot judge. The
    /// untraced row is an untraced run against the untraced runs around it: the noise itself.
    pub fn is_no_op(self) -> bool {
        matches!(
            self,
            Self::Untraced | Self::UntracedBusy | Self::TopCountersOnly
        )
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// The lower-quartile pass's ns per fault.
    pub ns_per_fault: f64,
    pub mean_ns_per_fault: f64,
    /// The guest handed memory back to its host, or the host stole CPU 0, during the loop.
    pub disturbed: bool,
    pub steal_ms: Option<u64>,
    pub lost: Option<u64>,
    pub loader_ns_per_event: Option<f64>,
    /// The loader's CPU after the attach over the stacks the summary counts.
    pub loader_ns_per_stack: Option<f64>,
    pub loader_peak_rss_kib: Option<u64>,
    /// `bpf_stats`: ns per run of the tracer's programs that start a fault.
    pub kernel_ns_per_run: Option<f64>,
    /// `bpf_stats`: every program of the tracer that ran, by name.
    pub programs: Vec<ProgramCost>,
}

/// The files and sizes every run uses.
pub struct Setup<'a> {
    pub demo: &'a Path,
    pub touch: &'a Path,
    pub dir: &'a Path,
    pub pages: u64,
    pub passes: u64,
}

impl Setup<'_> {
    fn faults(&self) -> u64 {
        self.pages * self.passes
    }
}

/// The workload process every mode measures: one process, one region of memory, kept hot, so
/// that no row is slower or faster for the pages it happened to get.
pub struct Workload {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Workload {
    /// Starts the workload on CPU 0 and waits until it holds its memory.
    pub fn start(setup: &Setup) -> anyhow::Result<Self> {
        let mut child = pinned("0", setup.touch)
            .args([setup.pages.to_string(), setup.passes.to_string()])
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start the bench workload")?;
        let mut stdout = BufReader::new(child.stdout.take().context("the workload's stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("the workload did not get ready: {line:?}");
        }
        Ok(Self { child, stdout })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One timed run.
    fn measure(&mut self, setup: &Setup) -> anyhow::Result<Sample> {
        writeln!(
            self.child.stdin.as_mut().context("the workload's stdin")?,
            "go"
        )?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        measured(line.as_bytes(), setup)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workload runs on CPU 0 and every tracer on CPU 1, so they never compete for a CPU and
/// the workload does not migrate.
fn pinned(cpu: &str, program: &Path) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-c", cpu]).arg(program);
    command
}

pub fn run(mode: Mode, setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    match mode {
        Mode::Untraced => workload.measure(setup),
        Mode::UntracedBusy => {
            let mut spinner = pinned("1", Path::new("sh"))
                .args(["-c", "while :; do :; done"])
                .spawn()?;
            let sample = workload.measure(setup);
            spinner.kill()?;
            spinner.wait()?;
            sample
        }
        Mode::Trace
        | Mode::TraceNoDurations
        | Mode::TraceNoRegions
        | Mode::TraceCallGraphFp
        | Mode::TraceCallGraphDwarf
        | Mode::TraceOther
        | Mode::TraceOtherCgroup => trace(mode, setup, workload),
        Mode::Top | Mode::TopDurations | Mode::TopCountersOnly | Mode::Floor => {
            top(mode, setup, workload)
        }
        Mode::TopListen => top_listen(setup, workload),
        Mode::BpftraceCount | Mode::BpftracePrint => bpftrace(mode, setup, workload),
        Mode::PerfTrace => perf::trace(setup, workload),
        Mode::PerfRecordDwarf => perf::record_dwarf(setup, workload),
    }
}

fn trace(mode: Mode, setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    let out = setup.dir.join("trace.json");
    let _ = std::fs::remove_file(&out);
    let extra: &[&str] = match mode {
        // Durations named, not left to the default, so that the row measures them whichever
        // default the release has.
        Mode::Trace | Mode::TraceOther | Mode::TraceOtherCgroup => &["--durations"],
        Mode::TraceNoDurations => &["--no-durations"],
        Mode::TraceNoRegions => &["--region", "none"],
        Mode::TraceCallGraphFp => &["--call-graph", "fp"],
        Mode::TraceCallGraphDwarf => &["--call-graph", "dwarf"],
        _ => &[],
    };
    // For TraceOther, a sleeping process is traced and the workload runs untraced beside it.
    let mut other = match mode {
        Mode::TraceOther => Some(Command::new("sleep").arg("600").spawn()?),
        _ => None,
    };
    // For TraceOtherCgroup, an empty cgroup is traced instead.
    let cgroup = match mode {
        Mode::TraceOtherCgroup => Some(EmptyCgroup::new("demo-bench")?),
        _ => None,
    };
    let traced = other.as_ref().map_or(workload.pid(), Child::id);
    let mut tracer = pinned("1", setup.demo);
    tracer
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .args(extra);
    match &cgroup {
        Some(cgroup) => tracer.arg("--cgroup").arg(cgroup.path()),
        None => tracer.args(["--pid", &traced.to_string()]),
    };
    let mut tracer = tracer.spawn()?;
    wait_for_file(&out, &mut tracer)?;
    let sample = workload.measure(setup)?;
    stop(&mut tracer)?;
    if let Some(other) = &mut other {
        other.kill()?;
        other.wait()?;
    }
    let summary = last_json_line(&out)?;
    let programs = programs_in(&summary);
    Ok(Sample {
        lost: summary["lost"].as_u64(),
        loader_ns_per_event: loader_ns_per_event(&summary),
        loader_ns_per_stack: loader_ns_per_stack(&summary),
        loader_peak_rss_kib: summary["loader"]["peak_rss_kib"].as_u64(),
        kernel_ns_per_run: kernel_cost::fault_ns_per_run(&programs),
        programs,
        ..sample
    })
}

/// The summary's loader CPU after the attach, over the records it delivered.
pub fn loader_ns_per_event(summary: &Value) -> Option<f64> {
    let records: u64 = summary["records"]
        .as_object()?
        .values()
        .filter_map(|count| count["delivered"].as_u64())
        .sum();
    loader_ns_per(summary, records)
}

/// The summary's loader CPU after the attach, over the stacks it counted (`stacks.stacks`):
/// with `--call-graph dwarf`, what the loader spends on each fault whose stack it unwinds,
/// names and writes. `None` without stacks.
fn loader_ns_per_stack(summary: &Value) -> Option<f64> {
    loader_ns_per(summary, summary["stacks"]["stacks"].as_u64()?)
}

/// The summary's loader CPU after the attach, in ns, over `count`; `None` when `count` is 0.
fn loader_ns_per(summary: &Value, count: u64) -> Option<f64> {
    let cpu_ms = summary["loader"]["cpu_ms"].as_u64()?
        - summary["loader"]["attach_cpu_ms"].as_u64().unwrap_or(0);
    (count > 0).then(|| cpu_ms as f64 * 1e6 / count as f64)
}

/// The programs that ran, from the summary's `kernel_programs` (full names, from each program's
/// fdinfo; none unless `kernel.bpf_stats_enabled` was 1).
fn programs_in(summary: &Value) -> Vec<ProgramCost> {
    summary["kernel_programs"]
        .as_array()
        .map(|programs| {
            programs
                .iter()
                .map(|p| ProgramCost {
                    name: p["program"].as_str().unwrap_or("").to_owned(),
                    runs: p["runs"].as_u64().unwrap_or(0),
                    run_time_ns: p["run_time_ns"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn last_json_line(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(text.lines().last().unwrap_or("{}"))
        .with_context(|| format!("read the last line of {}", path.display()))
}

fn top(mode: Mode, setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    let out = setup.dir.join("top.json");
    let _ = std::fs::remove_file(&out);
    let counting: &[&str] = match mode {
        // Named either way, so that the rows measure the same whichever default the release has.
        Mode::Top => &["--no-durations"],
        Mode::TopDurations => &["--durations"],
        Mode::TopCountersOnly => &["--counters-only"],
        Mode::Floor => &["--counters-only", "--debug-empty-fault-programs"],
        _ => &[],
    };
    let before = kernel_cost::loaded_ids()?;
    // The default interval, as users run it; the first line comes at once.
    let mut top = pinned("1", setup.demo)
        .args(["top", "--format", "json", "--output"])
        .arg(&out)
        .args(counting)
        .spawn()?;
    wait_for_file(&out, &mut top)?;
    let sample = workload.measure(setup)?;
    let programs = kernel_cost::new_programs(&before)?;
    stop(&mut top)?;
    let dropped = std::fs::read_to_string(&out)?
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|interval| interval["dropped"].as_u64())
        .max();
    Ok(Sample {
        lost: dropped,
        kernel_ns_per_run: kernel_cost::fault_ns_per_run(&programs),
        programs,
        ..sample
    })
}

/// `demo top --listen` as a service runs it, with a scrape every second (Prometheus' usual
/// interval is longer), so that the reads at scrape time are in the cost.
fn top_listen(setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    let before = kernel_cost::loaded_ids()?;
    let mut top = pinned("1", setup.demo)
        .args(["top", "--listen", "127.0.0.1:0", "--quiet", "--per-pid"])
        .stderr(Stdio::piped())
        .spawn()?;
    // Kept open until demo top stops, so that nothing it says later finds the pipe closed.
    let mut stderr = BufReader::new(top.stderr.take().context("demo top's stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    let Some(url) = line.trim().strip_prefix("demo top: serving metrics at ") else {
        stop(&mut top)?;
        bail!("demo top --listen did not say where it serves: {line:?}");
    };
    let url = url.to_owned();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let (url, done) = (url.clone(), std::sync::Arc::clone(&done));
        std::thread::spawn(move || -> anyhow::Result<u32> {
            let mut scrapes = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                scrape(&url)?;
                scrapes += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            Ok(scrapes)
        })
    };
    let sample = workload.measure(setup);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let scraped = scraper
        .join()
        .map_err(|_| anyhow::anyhow!("the scraper panicked"))?;
    let programs = kernel_cost::new_programs(&before);
    let last = scrape(&url);
    stop(&mut top)?;
    drop(stderr);
    let (sample, scraped, last, programs) = (sample?, scraped?, last?, programs?);
    if scraped == 0 {
        bail!("demo top --listen was never scraped during the run");
    }
    Ok(Sample {
        lost: Some(dropped_in(&last)),
        kernel_ns_per_run: kernel_cost::fault_ns_per_run(&programs),
        programs,
        ..sample
    })
}

fn scrape(url: &str) -> anyhow::Result<String> {
    ureq::get(url)
        .call()
        .and_then(|mut response| response.body_mut().read_to_string())
        .with_context(|| format!("scrape {url}"))
}

/// The sum of `demo_dropped_total` in an exposition.
fn dropped_in(exposition: &str) -> u64 {
    exposition
        .lines()
        .filter(|line| line.starts_with("demo_dropped_total{"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

fn bpftrace(mode: Mode, setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    let pid = workload.pid();
    let out = setup.dir.join("bpftrace.txt");
    let _ = std::fs::remove_file(&out);
    let program = match mode {
        Mode::BpftraceCount => {
            format!("tracepoint:exceptions:page_fault_user /pid == {pid}/ {{ @faults = count(); }}")
        }
        _ => format!(
            "tracepoint:exceptions:page_fault_user /pid == {pid}/ {{ printf(\"%d %d %lx %lx %d\\n\", pid, tid, args->address, args->ip, args->error_code); }}"
        ),
    };
    let before = kernel_cost::loaded_ids()?;
    // bpftrace writes "Attaching 1 probe..." to its -o file once it is attached.
    let mut tracer = pinned("1", &which("bpftrace")?)
        .arg("-o")
        .arg(&out)
        .args(["-e", &program])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_for_text(&out, "Attaching", &mut tracer)?;
    let sample = workload.measure(setup)?;
    let programs = kernel_cost::new_programs(&before)?;
    stop(&mut tracer)?;
    let lost = std::fs::read_to_string(&out)
        .ok()
        .map(|text| lost_in(&text));
    Ok(Sample {
        kernel_ns_per_run: kernel_cost::fault_ns_per_run(&programs),
        programs,
        lost: if mode == Mode::BpftracePrint {
            lost
        } else {
            None
        },
        ..sample
    })
}

/// The events a tool says it lost: perf's "LOST n events!" and bpftrace's "Lost n events".
fn lost_in(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| {
            let lower = line.to_ascii_lowercase();
            let rest = lower.split("lost ").nth(1)?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// A tool's absolute path: bpftrace 0.17 finds two `taskset`s when given a bare name.
fn which(tool: &str) -> anyhow::Result<std::path::PathBuf> {
    let output = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if path.is_empty() {
        bail!("{tool} is not installed; `cargo xtask setup` installs it");
    }
    Ok(path.into())
}

/// The workload's line: ns per fault (its lower-quartile pass), KiB handed back to the host,
/// steal ticks of CPU 0, and the mean over all passes.
pub fn measured(stdout: &[u8], setup: &Setup) -> anyhow::Result<Sample> {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .rev()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let ns_per_fault: f64 = fields.next()?.parse().ok()?;
            let handed_back_kib: i64 = fields.next()?.parse().ok()?;
            let steal_ticks: i64 = fields.next()?.parse().ok()?;
            let mean_ns: f64 = fields.next()?.parse().ok()?;
            // USER_HZ is 100 on Linux: a tick is 10 ms.
            let steal_ms = u64::try_from(steal_ticks).ok().map(|ticks| ticks * 10);
            let loop_ms = mean_ns * setup.faults() as f64 / 1e6;
            let stolen = steal_ms.is_some_and(|ms| ms as f64 > 0.02 * loop_ms);
            Some(Sample {
                ns_per_fault,
                mean_ns_per_fault: mean_ns,
                disturbed: handed_back_kib > 0 || stolen,
                steal_ms,
                ..Sample::default()
            })
        })
        .with_context(|| format!("the workload printed no ns per fault: {text}"))
}

/// Waits until demo wrote its first line, i.e. its probes are attached.
pub fn wait_for_file(path: &Path, child: &mut Child) -> anyhow::Result<Duration> {
    wait_for_text(path, "", child)
}

/// Waits until `path` holds `text` (anything, when empty).
fn wait_for_text(path: &Path, text: &str, child: &mut Child) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(path).is_ok_and(|got| !got.is_empty() && got.contains(text)) {
            return Ok(start.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            let mut error = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut error);
            }
            bail!("the tracer ended before it attached: {status} {error}");
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the tracer did not attach within 30 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stops a tracer as Ctrl-C would, so it detaches and writes its summary.
pub fn stop(child: &mut Child) -> anyhow::Result<()> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    child.wait()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_counts_are_read_from_perf_and_bpftrace_lines() {
        assert_eq!(lost_in("x\nLOST 1234 events!\nfoo\nLOST 6 events!\n"), 1240);
        assert_eq!(lost_in("Attaching 1 probe...\nLost 17 events\n"), 17);
        assert_eq!(lost_in("1 2 7f 55 6\n"), 0);
    }

    #[test]
    fn the_loader_cpu_after_the_attach_is_divided_by_records_and_by_stacks() {
        let summary = serde_json::json!({
            "loader": {"cpu_ms": 900, "attach_cpu_ms": 100, "peak_rss_kib": 50_000},
            "records": {
                "fault_user_stack": {"delivered": 390_000, "dropped": 0},
                "process": {"delivered": 10_000, "dropped": 0},
            },
            "stacks": {"call_graph": {"mode": "dwarf"}, "stacks": 320_000, "truncated": 0},
        });
        assert_eq!(loader_ns_per_event(&summary), Some(2000.0));
        assert_eq!(loader_ns_per_stack(&summary), Some(2500.0));
        // Without --stacks, the summary's `stacks` is null.
        let without = serde_json::json!({
            "loader": {"cpu_ms": 900, "attach_cpu_ms": 100},
            "records": {"fault": {"delivered": 400_000, "dropped": 0}},
            "stacks": null,
        });
        assert_eq!(loader_ns_per_event(&without), Some(2000.0));
        assert_eq!(loader_ns_per_stack(&without), None);
    }

    #[test]
    fn drops_are_summed_over_reasons_from_an_exposition() {
        let text = "# TYPE demo_dropped_total counter\ndemo_dropped_total{reason=\"a\"} 3\ndemo_dropped_total{reason=\"b\"} 4\ndemo_faults_total{comm=\"x\"} 9\n";
        assert_eq!(dropped_in(text), 7);
    }
}
