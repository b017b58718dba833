//! perf's rows: `perf trace -F min` and `perf record -e page-faults -c 1 --call-graph dwarf`,
//! each attached by pid to the same workload as every other row, each with the events it lost.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::{Sample, Setup, Workload, lost_in, pinned, stop, which};

/// How long perf is given to attach: neither perf trace nor perf record says when it is ready.
const PERF_ATTACH: Duration = Duration::from_millis(1500);

/// `perf trace -F min --no-syscalls -o FILE -p PID`: a line per fault; what it lost, it says in
/// the file ("LOST n events!").
pub fn trace(setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    let out = setup.dir.join("perf-trace.txt");
    let sample = measured_under(
        &["trace", "-F", "min", "--no-syscalls"],
        &out,
        setup,
        workload,
    )?;
    let lost = std::fs::read_to_string(&out)
        .ok()
        .map(|text| lost_in(&text));
    Ok(Sample { lost, ..sample })
}

/// `perf record -e page-faults -c 1 --call-graph dwarf -o FILE -p PID`: a sample at every
/// fault, with the registers and 8 KiB of user stack (perf's default), as
/// `demo trace --call-graph dwarf` copies them. What it lost comes from `perf report` of the
/// file afterwards.
pub fn record_dwarf(setup: &Setup, workload: &mut Workload) -> anyhow::Result<Sample> {
    let data = setup.dir.join("perf-record.data");
    let sample = measured_under(
        &[
            "record",
            "-e",
            "page-faults",
            "-c",
            "1",
            "--call-graph",
            "dwarf",
        ],
        &data,
        setup,
        workload,
    )?;
    let lost = match lost_samples(&data) {
        Ok(lost) => Some(lost),
        Err(error) => {
            eprintln!("xtask: perf record's lost samples are unknown: {error:#}");
            None
        }
    };
    // Over 8 KiB a fault, gigabytes a run: removed now, so that its writeback does not land in
    // the runs after it.
    std::fs::remove_file(&data).with_context(|| format!("remove {}", data.display()))?;
    Ok(Sample { lost, ..sample })
}

/// One run of the workload under `perf ARGS -o OUT -p PID`, quiet, given `PERF_ATTACH` to
/// attach, and stopped as Ctrl-C would after the run.
fn measured_under(
    args: &[&str],
    out: &Path,
    setup: &Setup,
    workload: &mut Workload,
) -> anyhow::Result<Sample> {
    let _ = std::fs::remove_file(out);
    let mut perf = pinned("1", &which("perf")?)
        .args(args)
        .arg("-o")
        .arg(out)
        .args(["-p", &workload.pid().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start perf {}", args.join(" ")))?;
    std::thread::sleep(PERF_ATTACH);
    if let Some(status) = perf.try_wait()? {
        bail!("perf {} ended before the run: {status}", args[0]);
    }
    let sample = workload.measure(setup);
    stop(&mut perf)?;
    sample
}

/// The samples the kernel dropped because perf's buffer was full, as `perf report` totals them
/// in its header: perf record reads each event's count of them at its end (`PERF_FORMAT_LOST`)
/// and writes it into the file. `--sort comm -g none` keeps the report from unwinding the
/// stacks, so it only reads the file.
fn lost_samples(data: &Path) -> anyhow::Result<u64> {
    let output = Command::new(which("perf")?)
        .args(["report", "-i"])
        .arg(data)
        .args(["--stdio", "--sort", "comm", "-g", "none"])
        .stderr(Stdio::null())
        .output()
        .context("run perf report")?;
    let report = String::from_utf8_lossy(&output.stdout);
    total_lost_samples(&report).with_context(|| {
        format!(
            "perf report -i {} ({}) printed no \"Total Lost Samples\"",
            data.display(),
            output.status
        )
    })
}

/// The count in perf report's `# Total Lost Samples: N` line.
fn total_lost_samples(report: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|line| line.strip_prefix("# Total Lost Samples:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_samples_are_read_from_perf_reports_header() {
        let report = "# To display the perf.data header info, please use --header/--header-only options.\n#\n#\n# Total Lost Samples: 81234\n#\n# Samples: 180K of event 'page-faults'\n# Event count (approx.): 180766\n";
        assert_eq!(total_lost_samples(report), Some(81234));
        assert_eq!(
            total_lost_samples("#\n# Total Lost Samples: 0\n#\n"),
            Some(0)
        );
        assert_eq!(
            total_lost_samples("# Samples: 180K of event 'page-faults'\n"),
            None
        );
    }
}
