//! Integration tests of `demo top --listen`: the real counting programs in the running kernel,
//! scraped by a real Prometheus on loopback and checked by promtool. They need root.

mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::process::CommandExt as _,
    process::{Child, ChildStderr, Command, Stdio},
    time::{Duration, Instant},
};

use common::cgroup::TestCgroup;
use common::kernel::assert_nothing_of_ours_is_loaded;
use common::workload::start_workload;
use common::{DEMO, require_root};

/// `demo top --listen 127.0.0.1:0 --quiet ARGS`, with the address it printed.
struct Served {
    child: Child,
    stderr: BufReader<ChildStderr>,
    url: String,
}

impl Served {
    fn start(args: &[&str]) -> Self {
        let mut command = Command::new(DEMO);
        command
            .args(["top", "--listen", "127.0.0.1:0", "--quiet"])
            .args(args);
        Self::start_with(command)
    }

    /// Starts `command`, a `demo top --listen 127.0.0.1:0` (or a wrapper that runs one).
    fn start_with(mut command: Command) -> Self {
        require_root();
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("demo top: serving metrics at ")
            .unwrap_or_else(|| panic!("demo top did not say where it serves: {line:?}"))
            .to_owned();
        Self { child, stderr, url }
    }

    fn scrape(&self) -> String {
        let mut response = ureq::get(&self.url).call().unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        response.body_mut().read_to_string().unwrap()
    }

    /// The host and port, for a scrape config.
    fn target(&self) -> &str {
        self.url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap()
    }

    /// SIGTERM, a clean exit with nothing more said, and nothing of ours left in the kernel.
    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert!(self.child.wait().unwrap().success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).unwrap();
        assert_eq!(rest, "", "demo top said more on stderr");
        assert_nothing_of_ours_is_loaded();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample of an exposition: metric name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (label values as demo writes them: `\"`, `\\`
/// and `\n` escaped).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}').unwrap())),
                None => (series, BTreeMap::new()),
            };
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (_, '\\') => value.push(match chars.next().unwrap().1 {
                    'n' => '\n',
                    other => other,
                }),
                (at, '"') => break at,
                (_, other) => value.push(other),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end + 1..];
    }
    labels
}

/// The sum of the samples of `name` whose labels include every pair of `having`.
fn sum(samples: &[Sample], name: &str, having: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            having
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// A Prometheus server of the test's own on loopback, scraping `target` every second; killed
/// when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run prometheus (Debian's package; `cargo xtask test` installs it)");
        let prometheus = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let ready = format!("{}/-/ready", prometheus.base);
        wait_until("prometheus is ready", || ureq::get(&ready).call().is_ok());
        prometheus
    }

    /// The value of an instant query that returns one sample, or `None` when it returns none.
    fn value(&self, query: &str) -> Option<f64> {
        let text = ureq::get(&format!("{}/api/v1/query", self.base))
            .query("query", query)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["status"], "success", "{body}");
        let result = body["data"]["result"].as_array().unwrap();
        assert!(result.len() <= 1, "{query}: {body}");
        Some(result.first()?["value"][1].as_str()?.parse().unwrap())
    }

    /// Waits until `query` has a value of at least `least`, and returns it.
    fn wait_for(&self, query: &str, least: f64) -> f64 {
        let mut last = None;
        wait_until(&format!("{query} >= {least}"), || {
            last = self.value(query);
            last.is_some_and(|value| value >= least)
        });
        last.unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting until {what}");
}

/// Runs `demo top --listen` beside a real Prometheus; a workload in a cgroup of its own touches
/// 65,536 pages and exits, and PromQL finds all its faults in its series, which outlive it.
#[test]
fn prometheus_scrapes_every_fault_of_a_workload_into_its_cgroups_series() {
    require_root();
    let stats = "/proc/sys/kernel/bpf_stats_enabled";
    let stats_before = std::fs::read_to_string(stats).unwrap();
    std::fs::write(stats, "1").unwrap();
    let cgroup = TestCgroup::new("demo-metrics");
    let demo = Served::start(&["--per-pid", "--interval", "0.5"]);
    let prometheus = Prometheus::start(demo.target());
    let mut workload = start_workload();
    cgroup.add(workload.pid);
    let (minor, major) = workload.touch();
    assert!(minor >= 65_536, "the workload's own rusage: {minor}");
    let pid = workload.pid.to_string();
    workload.finish();

    let series = format!(
        "comm=\"top_workload\",cgroup=\"{}\",pid=\"{pid}\"",
        cgroup.path
    );
    let writes = prometheus.wait_for(
        &format!("demo_faults_total{{{series},access=\"write\",mode=\"user\"}}"),
        65_536.0,
    );
    let all = prometheus.wait_for(&format!("sum(demo_faults_total{{{series}}})"), writes);
    assert!(all >= 65_536.0, "{all}");
    prometheus.wait_for(
        &format!("demo_minor_faults_total{{{series}}}"),
        minor as f64,
    );
    assert_eq!(prometheus.value("up{job=\"demo\"}"), Some(1.0));

    // The process is gone, and its series stays, as the last reading left it.
    let text = demo.scrape();
    let exposed = samples(&text);
    let labels = [
        ("comm", "top_workload"),
        ("cgroup", cgroup.path.as_str()),
        ("pid", pid.as_str()),
    ];
    assert!(sum(&exposed, "demo_faults_total", &labels) >= 65_536.0);
    assert!(sum(&exposed, "demo_minor_faults_total", &labels) >= minor as f64);
    assert!(sum(&exposed, "demo_major_faults_total", &labels) >= major as f64);
    assert!(
        sum(
            &exposed,
            "demo_program_runs_total",
            &[("program", "top_fault_user")]
        ) > 0.0
    );
    assert_eq!(sum(&exposed, "demo_dropped_total", &[]), 0.0, "{text}");
    assert_eq!(
        sum(&exposed, "demo_build_info", &[("per_pid", "true")]),
        1.0
    );
    promtool_accepts(&text);
    std::fs::write(stats, stats_before).unwrap();
    drop(prometheus);
    demo.stop();
}

/// With --durations, a real Prometheus finds every completed fault of a workload timed in
/// demo_fault_duration_seconds: as many as the faults its series counts, which all completed,
/// at least its 65,536 touches as minor faults, and a p99 that histogram_quantile answers from
/// the rate of its buckets.
#[test]
fn prometheus_takes_the_p99_of_a_workloads_fault_durations() {
    require_root();
    let demo = Served::start(&["--per-pid", "--interval", "0.5", "--durations"]);
    let prometheus = Prometheus::start(demo.target());
    let mut workload = start_workload();
    let pid = workload.pid.to_string();
    // A sample of the series before the touching, so that its rate has an increase to see.
    let series = format!("pid=\"{pid}\"");
    let count = format!("sum(demo_fault_duration_seconds_count{{{series}}})");
    prometheus.wait_for(&count, 1.0);
    let (minor, _) = workload.touch();
    assert!(minor >= 65_536, "the workload's own rusage: {minor}");
    workload.finish();

    let minor_series = format!("demo_fault_duration_seconds_count{{{series},class=\"minor\"}}");
    let timed_minor = prometheus.wait_for(&format!("sum({minor_series})"), minor as f64);
    // Once both are final, every fault the tracepoint saw is timed: none failed.
    let faults = format!("sum(demo_faults_total{{{series}}})");
    let mut last = (None, None);
    wait_until("the timed faults equal the faults begun", || {
        last = (prometheus.value(&count), prometheus.value(&faults));
        last.0.is_some() && last.0 == last.1
    });
    assert!(last.0.unwrap() >= timed_minor);
    let seconds = prometheus
        .value(&format!("sum(demo_fault_duration_seconds_sum{{{series}}})"))
        .unwrap();
    assert!(seconds > 0.0, "{seconds}");
    let p99 = prometheus
        .value(&format!(
            "histogram_quantile(0.99, sum by (le) (rate(demo_fault_duration_seconds_bucket{{{series}}}[5m])))"
        ))
        .unwrap();
    assert!(p99.is_finite() && p99 > 0.0, "{p99}");

    let text = demo.scrape();
    let exposed = samples(&text);
    let minor_buckets = exposed
        .iter()
        .filter(|s| s.name == "demo_fault_duration_seconds_bucket")
        .filter(|s| s.labels["pid"] == pid && s.labels["class"] == "minor")
        .count();
    assert_eq!(minor_buckets, 22, "{text}");
    assert_eq!(sum(&exposed, "demo_dropped_total", &[]), 0.0, "{text}");
    promtool_accepts(&text);
    eprintln!(
        "{pid}: {} faults timed, {timed_minor} minor, {seconds} s in all, p99 at most {p99} s",
        last.0.unwrap()
    );
    drop(prometheus);
    demo.stop();
}

fn promtool_accepts(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian's prometheus package; `cargo xtask test` installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a shell in `cgroup` from its start that runs `/bin/true` `count` times, calling `during`
/// every 50 ms while it runs; returns how many times, and the shell's rusage, which holds its
/// own faults and those of the children it waited for.
fn churn(cgroup: &TestCgroup, count: u32, mut during: impl FnMut()) -> (u32, libc::rusage) {
    let procs = cgroup.procs();
    let mut shell = Command::new("sh");
    shell.args([
        "-c",
        &format!("i=0; while [ $i -lt {count} ]; do /bin/true; i=$((i+1)); done"),
    ]);
    // SAFETY: only write(2) through std::fs between fork and exec, moving the child into the
    // cgroup before it runs the shell, so that every process of the churn is in it.
    unsafe {
        shell.pre_exec(move || std::fs::write(&procs, "0"));
    }
    #[expect(
        clippy::zombie_processes,
        reason = "wait4 reaps it, for the rusage that Child::wait does not give"
    )]
    let shell = shell.spawn().unwrap();
    let mut calls = 0;
    loop {
        during();
        calls += 1;
        let mut status = 0;
        // SAFETY: a zeroed rusage is valid, and wait4 fills it for our own child.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; WNOHANG returns at once.
        let reaped =
            unsafe { libc::wait4(shell.id() as i32, &mut status, libc::WNOHANG, &mut rusage) };
        if reaped > 0 {
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
            return (calls, rusage);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every minor and major fault of 500 short-lived processes, and of the shell that ran them,
/// is in their cgroup's series, exactly as the kernel counted them, though demo reads the
/// counters while the processes come and go; with the programs per fault, and without.
#[test]
fn every_fault_of_short_lived_processes_is_in_their_cgroups_series() {
    for counting in [&[][..], &["--counters-only"][..]] {
        let cgroup = TestCgroup::new("demo-exact");
        let demo = Served::start(&[counting, &["--interval", "0.2"]].concat());
        let (scrapes, rusage) = churn(&cgroup, 500, || drop(demo.scrape()));
        assert!(
            scrapes >= 3,
            "only {scrapes} scrapes while the processes ran"
        );
        // Two intervals: the last exits are read.
        std::thread::sleep(Duration::from_millis(600));
        let text = demo.scrape();
        let exposed = samples(&text);
        let in_cgroup = [("cgroup", cgroup.path.as_str())];
        let series: Vec<&str> = exposed
            .iter()
            .filter(|s| s.name == "demo_minor_faults_total" && s.labels["cgroup"] == cgroup.path)
            .map(|s| s.labels["comm"].as_str())
            .collect();
        assert_eq!(series, ["sh", "true"], "{counting:?}\n{text}");
        let minor = sum(&exposed, "demo_minor_faults_total", &in_cgroup);
        let major = sum(&exposed, "demo_major_faults_total", &in_cgroup);
        assert_eq!(minor, rusage.ru_minflt as f64, "{counting:?}\n{text}");
        assert_eq!(major, rusage.ru_majflt as f64, "{counting:?}\n{text}");
        if !counting.is_empty() {
            let faults = sum(&exposed, "demo_faults_total", &in_cgroup);
            assert_eq!(faults, minor + major, "{text}");
        }
        assert_eq!(sum(&exposed, "demo_dropped_total", &[]), 0.0, "{text}");
        demo.stop();
    }
}

/// While 2,000 short-lived processes come and go in a cgroup, no metric ever has more than
/// --max-series series, no series ever goes down, and the folds are counted; afterwards every
/// fault of the shell and its children is in the cgroup's series or in "other".
#[test]
fn series_stay_under_max_series_while_2000_processes_come_and_go() {
    const MAX: usize = 40;
    let cgroup = TestCgroup::new("demo-churn");
    let demo = Served::start(&["--per-pid", "--max-series", "40", "--interval", "0.2"]);
    let mut previous: BTreeMap<(String, BTreeMap<String, String>), f64> = BTreeMap::new();
    let mut check = |text: &str| {
        let exposed = samples(text);
        for family in [
            "demo_faults_total",
            "demo_minor_faults_total",
            "demo_major_faults_total",
        ] {
            let series = exposed.iter().filter(|s| s.name == family).count();
            assert!(series <= MAX, "{family} has {series} series:\n{text}");
        }
        for sample in exposed {
            let key = (sample.name.clone(), sample.labels.clone());
            if let Some(&before) = previous.get(&key) {
                assert!(sample.value >= before, "{key:?} went down from {before}");
            }
            previous.insert(key, sample.value);
        }
    };
    let (scrapes, rusage) = churn(&cgroup, 2000, || check(&demo.scrape()));
    assert!(
        scrapes >= 5,
        "only {scrapes} scrapes while the processes ran"
    );
    // Two intervals: the last exits are read and reported.
    std::thread::sleep(Duration::from_millis(600));
    let text = demo.scrape();
    check(&text);
    let exposed = samples(&text);
    // The shell, and the children it waited for, all in the cgroup from their start.
    let minor = rusage.ru_minflt as f64;
    let in_cgroup = sum(
        &exposed,
        "demo_minor_faults_total",
        &[("cgroup", &cgroup.path)],
    );
    let other = sum(&exposed, "demo_minor_faults_total", &[("comm", "other")]);
    assert!(in_cgroup <= minor, "{in_cgroup} > {minor}");
    assert!(
        in_cgroup + other >= minor,
        "{in_cgroup} + {other} < {minor}"
    );
    // Each of the 2,001 processes has a series of its own, or folded: at least those without.
    let own = exposed
        .iter()
        .filter(|s| s.name == "demo_minor_faults_total" && s.labels["cgroup"] == cgroup.path)
        .count();
    assert!(own < MAX, "{own}");
    let folded = sum(
        &exposed,
        "demo_series_folded_total",
        &[("metric", "demo_minor_faults_total")],
    );
    assert!(folded >= (2001 - own) as f64, "{folded} < 2001 - {own}");
    assert_eq!(sum(&exposed, "demo_dropped_total", &[]), 0.0, "{text}");
    promtool_accepts(&text);
    demo.stop();
}

/// With --counters-only, the faults are the kernel's minor plus major, by comm and cgroup only.
#[test]
fn counters_only_exports_the_kernels_counts_without_access_or_mode() {
    let cgroup = TestCgroup::new("demo-counters");
    let demo = Served::start(&["--counters-only", "--interval", "0.5"]);
    let mut workload = start_workload();
    cgroup.add(workload.pid);
    let (minor, _) = workload.touch();
    workload.finish();
    std::thread::sleep(Duration::from_millis(1200));
    let text = demo.scrape();
    let exposed = samples(&text);
    let faults: Vec<&Sample> = exposed
        .iter()
        .filter(|s| s.name == "demo_faults_total" && s.labels["cgroup"] == cgroup.path)
        .collect();
    assert_eq!(faults.len(), 1, "{text}");
    let keys: Vec<&str> = faults[0].labels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["cgroup", "comm"]);
    assert_eq!(faults[0].labels["comm"], "top_workload");
    let of_workload = [("cgroup", cgroup.path.as_str())];
    let counted = sum(&exposed, "demo_minor_faults_total", &of_workload)
        + sum(&exposed, "demo_major_faults_total", &of_workload);
    assert_eq!(faults[0].value, counted);
    assert!(counted >= minor as f64, "{counted} < {minor}");
    assert_eq!(
        sum(
            &exposed,
            "demo_build_info",
            &[("counting", "kernel_counters")]
        ),
        1.0
    );
    promtool_accepts(&text);
    demo.stop();
}

/// The systemd unit the README shows, with the value of each `Key=` of it.
struct Unit {
    text: String,
}

impl Unit {
    fn from_readme() -> Self {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let start = readme
            .find("```ini\n# /etc/systemd/system/demo-top.service\n")
            .expect("the README shows the unit");
        let text = readme[start..]
            .lines()
            .skip(1)
            .take_while(|line| *line != "```")
            .map(|line| format!("{line}\n"))
            .collect();
        Self { text }
    }

    fn value(&self, key: &str) -> &str {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("the unit has no {key}="))
    }

    /// `setpriv`'s names of a capability list: `CAP_BPF CAP_PERFMON` is `+bpf,+perfmon`.
    fn setpriv_caps(&self, key: &str) -> String {
        let caps: Vec<String> = self
            .value(key)
            .split_whitespace()
            .map(|cap| format!("+{}", cap.strip_prefix("CAP_").unwrap().to_lowercase()))
            .collect();
        format!("-all,{}", caps.join(","))
    }
}

/// The README's systemd unit is one systemd accepts, and with only the capabilities it gives,
/// its command serves the workload's faults.
#[test]
fn the_readmes_service_unit_is_valid_and_its_two_capabilities_are_enough() {
    require_root();
    let unit = Unit::from_readme();
    let exec = unit.value("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[0], "/usr/local/bin/demo", "{exec}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-top.service");
    std::fs::write(&path, unit.text.replace(args[0], DEMO)).unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let mut setpriv = Command::new("setpriv");
    setpriv
        .arg(format!(
            "--bounding-set={}",
            unit.setpriv_caps("CapabilityBoundingSet")
        ))
        .arg(format!(
            "--inh-caps={}",
            unit.setpriv_caps("AmbientCapabilities")
        ))
        .arg(format!(
            "--ambient-caps={}",
            unit.setpriv_caps("AmbientCapabilities")
        ))
        .arg("--no-new-privs")
        .arg("--")
        .arg(DEMO)
        // The unit's own address may be taken on this host; port 0 takes a free one.
        .args(args[1..].iter().map(|arg| {
            if arg.starts_with("127.0.0.1:") {
                "127.0.0.1:0"
            } else {
                arg
            }
        }));
    let cgroup = TestCgroup::new("demo-service");
    let demo = Served::start_with(setpriv);
    let mut workload = start_workload();
    cgroup.add(workload.pid);
    let (minor, _) = workload.touch();
    let pid = workload.pid;
    let status = std::fs::read_to_string(format!("/proc/{}/status", demo.child.id())).unwrap();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_owned();
    // CAP_PERFMON is 38 and CAP_BPF 39.
    assert_eq!(u64::from_str_radix(&effective, 16).unwrap(), 0b11 << 38);
    let text = demo.scrape();
    workload.finish();
    let writes = sum(
        &samples(&text),
        "demo_faults_total",
        &[
            ("comm", "top_workload"),
            ("cgroup", &cgroup.path),
            ("access", "write"),
            ("mode", "user"),
        ],
    );
    assert!(
        writes >= minor as f64,
        "{writes} < {minor} (pid {pid})\n{text}"
    );
    demo.stop();
}

/// A bad address is bad input (2); a port in use, one sentence and status 1; the metrics
/// options need --listen.
#[test]
fn a_bad_address_or_a_port_in_use_gets_one_sentence() {
    require_root();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (args, code, says) in [
        (vec!["--listen", "nonsense"], 2, "invalid socket address"),
        (
            vec!["--listen", "192.0.2.1:9464"],
            2,
            "no interface of this machine",
        ),
        (
            vec!["--listen", &format!("127.0.0.1:{port}")],
            1,
            "the port is in use",
        ),
        (vec!["--per-pid"], 2, "--listen"),
        (vec!["--quiet"], 2, "--listen"),
        (
            vec!["--listen", "127.0.0.1:0", "--quiet", "--format", "json"],
            2,
            "--quiet shows no intervals",
        ),
    ] {
        let output = Command::new(DEMO)
            .arg("top")
            .args(&args)
            .args(["--duration", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if code == 1 || args.contains(&"192.0.2.1:9464") {
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    drop(taken);
    assert_nothing_of_ours_is_loaded();
}

/// Descriptors other than sockets that demo may hold beyond those it held at rest: the files
/// its interval loop may have open at the moment of a count, reading /proc (a process's
/// directory and its stat file) or rescanning the cgroup tree (a directory per level).
const READING_MARGIN: usize = 8;

/// How many descriptors `pid` has open: all of them, and the sockets among them.
fn descriptors(pid: u32) -> (usize, usize) {
    let mut all = 0;
    let mut sockets = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        all += 1;
        // A descriptor closed since the directory was read has no link left.
        if std::fs::read_link(entry.unwrap().path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        {
            sockets += 1;
        }
    }
    (all, sockets)
}

/// The most sockets and descriptors demo held over `counts`.
fn most(counts: impl IntoIterator<Item = (usize, usize)>) -> (usize, usize) {
    counts.into_iter().fold((0, 0), |(all, sockets), (a, s)| {
        (all.max(a), sockets.max(s))
    })
}

/// 2,000 idle connections: demo keeps the newest MAX_CONNECTIONS (closing the oldest idle one
/// for each new one) and never holds more sockets than at rest plus the cap and the one being
/// accepted, a scrape is still answered, and after the header timeout demo has closed every one
/// of them.
#[test]
fn a_flood_of_idle_connections_is_capped_and_closed_after_the_header_timeout() {
    use demo::output::metrics::{HEADER_TIMEOUT, MAX_CONNECTIONS};
    use std::{io::Read as _, net::TcpStream};

    const FLOOD: usize = 2_000;
    require_root();
    // The flood's sockets, and the test's own descriptors, must fit under the test's limit.
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let wanted = (FLOOD as u64 + 1024).min(hard);
    if soft < wanted {
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, wanted, hard)
            .unwrap();
    }
    let demo = Served::start(&[]);
    let pid = demo.child.id();
    promtool_accepts(&demo.scrape());
    let (all_at_rest, sockets_at_rest) = descriptors(pid);
    // Each connection is one socket; past the cap, a new one is accepted before the idle one it
    // replaces is closed.
    let socket_bound = sockets_at_rest + MAX_CONNECTIONS + 1;
    let all_bound = all_at_rest + MAX_CONNECTIONS + 1 + READING_MARGIN;
    let check = |counts: Vec<(usize, usize)>, when: &str| {
        let (all, sockets) = most(counts);
        assert!(
            sockets <= socket_bound && all <= all_bound,
            "{when}: demo held {sockets} sockets and {all} descriptors; at rest \
             {sockets_at_rest} and {all_at_rest}, bounds {socket_bound} and {all_bound}"
        );
    };
    let address: std::net::SocketAddr = demo.target().parse().unwrap();

    let mut counts = Vec::new();
    let mut flood = Vec::with_capacity(FLOOD);
    for n in 0..FLOOD {
        flood.push(TcpStream::connect_timeout(&address, Duration::from_secs(10)).unwrap());
        if n % 100 == 99 {
            counts.push(descriptors(pid));
        }
    }
    // Demo has taken every connection from its backlog once exactly the cap of them are open:
    // the first FLOOD - MAX_CONNECTIONS were closed to make room (end of file), the newest wait.
    // The newest were accepted moments ago, far from their header timeout, even though the
    // flood itself can take seconds (a connect the full backlog dropped is retried after 1 s).
    for stream in &flood {
        stream.set_nonblocking(true).unwrap();
    }
    let is_open = |stream: &&TcpStream| {
        let mut byte = [0];
        matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    let mut open = usize::MAX;
    for _ in 0..20 {
        counts.push(descriptors(pid));
        open = flood.iter().filter(is_open).count();
        if open == MAX_CONNECTIONS {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        open, MAX_CONNECTIONS,
        "connections left open after the flood"
    );
    assert!(
        flood[FLOOD - MAX_CONNECTIONS..].iter().all(|s| is_open(&s)),
        "demo closed one of the newest connections rather than the oldest"
    );
    counts.push(descriptors(pid));
    check(counts, "during the flood");

    // A scrape on a new connection closes the oldest idle one and is answered.
    let text = demo.scrape();
    promtool_accepts(&text);
    assert!(text.contains("demo_build_info{"), "{text}");
    assert_eq!(flood.iter().filter(is_open).count(), MAX_CONNECTIONS - 1);
    check(vec![descriptors(pid)], "after the scrape");

    // Every connection demo kept is closed by it once the header timeout has passed, with
    // nothing sent: a blocking read returns end of file.
    std::thread::sleep(HEADER_TIMEOUT);
    for stream in &mut flood {
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
    }
    assert!(descriptors(pid).1 <= sockets_at_rest);
    drop(flood);
    promtool_accepts(&demo.scrape());
    demo.stop();
}
