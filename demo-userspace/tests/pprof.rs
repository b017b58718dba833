//! `--format pprof`: the profile demo writes of a traced program and of a walk, read by the
//! real `go tool pprof` (Debian's golang-go): its faults by function, their time, its labels
//! and the executable's build ID. C program compiled at test time; root, real kernel.

mod common;

use std::{collections::BTreeMap, path::Path, process::Command};

use common::c_programs::compile_c;
use common::json::demo;

/// `main` maps 48 fresh pages and calls `load`, which calls `decode`, which writes one byte
/// to each page; neither is inlined, so each is a frame of its own.
const DECODE: &str = r#"
#include <sys/mman.h>
#define PAGES 48
__attribute__((noinline)) void decode(char *p, int pages) {
    for (int i = 0; i < pages; i++)
        p[i * 4096] = 1;
}
__attribute__((noinline)) void load(char *p) { decode(p, PAGES); }
int main(void) {
    char *p = mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    load(p);
    return 0;
}
"#;

const DEBUG_FLAGS: &[&str] = &["-g", "-O0", "-fno-omit-frame-pointer"];

/// What `go tool pprof ARGS PROFILE` did. Its temporary files and home are the test's
/// directory, and the tests ask it to symbolize nothing, so it fetches nothing.
fn run_pprof(args: &[&str], profile: &Path) -> std::process::Output {
    let dir = common::test_dir();
    Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(profile)
        .env("PPROF_TMPDIR", dir)
        .env("HOME", dir)
        .output()
        .expect("go: install Debian's golang-go; `cargo xtask test` installs it")
}

/// `go tool pprof ARGS PROFILE`'s standard output; it must succeed.
fn pprof(args: &[&str], profile: &Path) -> String {
    let output = run_pprof(args, profile);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "go tool pprof {args:?}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `-top`'s rows by function: flat and cum as printed (`48`, or `1.20ms` for a time).
fn top(profile: &Path, sample_index: &str) -> BTreeMap<String, (String, String)> {
    let text = pprof(
        &[
            "-top",
            "-symbolize=none",
            "-nodefraction=0",
            "-nodecount=1000",
            &format!("-sample_index={sample_index}"),
        ],
        profile,
    );
    assert!(
        text.contains(&format!("Type: {sample_index}\n")),
        "{sample_index}: {text}"
    );
    // A row is `flat flat% sum% cum cum% name`, the name last and possibly with spaces.
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let percent = |field: &str| field.ends_with('%');
            (fields.len() >= 6 && percent(fields[1]) && percent(fields[2]) && percent(fields[4]))
                .then(|| {
                    (
                        fields[5..].join(" "),
                        (fields[0].to_owned(), fields[3].to_owned()),
                    )
                })
        })
        .collect()
}

/// `-tags`'s values by label, each with its faults: `key: Total N` opens a label, and each
/// `N (P%): value` under it is one of its values.
fn tags(profile: &Path) -> BTreeMap<String, Vec<(f64, String)>> {
    let text = pprof(&["-tags", "-symbolize=none"], profile);
    let mut tags: BTreeMap<String, Vec<(f64, String)>> = BTreeMap::new();
    let mut key = None;
    for line in text.lines() {
        if let Some((name, _)) = line.trim().split_once(": Total ") {
            key = Some(name.to_owned());
            tags.entry(name.to_owned()).or_default();
        } else if let (Some(key), Some((count, value))) = (&key, line.split_once("): ")) {
            let count = count.split_whitespace().next().unwrap().parse().unwrap();
            tags.get_mut(key)
                .unwrap()
                .push((count, value.trim().to_owned()));
        }
    }
    tags
}

/// Traces `program` into a pprof profile with `args`, and returns the profile's path.
fn profile_of(program: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let profile = common::test_dir().join(format!("{name}.pb.gz"));
    let mut argv = vec!["trace", "--stacks", "--format", "pprof", "-o"];
    argv.push(profile.to_str().unwrap());
    argv.extend(args);
    argv.extend(["--", program.to_str().unwrap()]);
    demo(&argv);
    profile
}

#[test]
fn go_pprof_reads_the_faults_of_decode_under_load_and_main_with_their_time() {
    let program = compile_c("decode", DECODE, DEBUG_FLAGS);
    let profile = profile_of(&program, "decode", &["--durations"]);

    let faults = top(&profile, "faults");
    let row = |rows: &BTreeMap<String, (String, String)>, name: &str| {
        rows.get(name)
            .unwrap_or_else(|| panic!("no row for {name}: {rows:#?}"))
            .clone()
    };
    assert_eq!(row(&faults, "decode").0, "48", "{faults:#?}");
    for caller in ["load", "main"] {
        let cum: u64 = row(&faults, caller).1.parse().unwrap();
        assert!(cum >= 48, "{caller}: {faults:#?}");
    }
    // The time is printed with its unit, `1.20ms`; decode's faults took some.
    let time = top(&profile, "fault_time");
    let decode_time = row(&time, "decode").0;
    let amount: f64 = (decode_time.trim_end_matches(|c: char| c.is_ascii_alphabetic()))
        .parse()
        .unwrap_or_else(|_| panic!("decode's time {decode_time}: {time:#?}"));
    assert!(amount > 0.0, "{time:#?}");

    let tags = tags(&profile);
    let has = |key: &str, value: &str| tags[key].iter().any(|(_, v)| v == value);
    assert!(has("comm", "decode"), "{tags:#?}");
    assert!(has("class", "minor"), "{tags:#?}");
    assert!(has("access", "write"), "{tags:#?}");
    assert!(tags.contains_key("pid"), "{tags:#?}");
    // The 48 pages are one region (`mmap#N`, numbered after ld.so's mappings).
    assert!(
        (tags["region"].iter()).any(|(count, name)| *count == 48.0 && name.starts_with("mmap#")),
        "{tags:#?}"
    );

    // The executable's mapping carries its build ID, as the object crate reads its notes.
    let bytes = std::fs::read(&program).unwrap();
    let build_id: String = object::Object::build_id(&object::File::parse(&*bytes).unwrap())
        .unwrap()
        .expect("Debian's cc links with a build ID")
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let raw = pprof(&["-raw", "-symbolize=none"], &profile);
    let mappings = raw.split("Mappings\n").nth(1).unwrap_or_default();
    assert!(
        (mappings.lines())
            .any(|line| line.contains(program.to_str().unwrap()) && line.contains(&build_id)),
        "no mapping of {} with build ID {build_id}: {raw}",
        program.display()
    );
}

/// Without durations the profile has the faults alone: pprof knows no `fault_time`.
#[test]
fn without_durations_the_profile_claims_no_time() {
    let program = compile_c("decode_untimed", DECODE, DEBUG_FLAGS);
    let profile = profile_of(&program, "decode_untimed", &["--no-durations"]);
    assert_eq!(top(&profile, "faults")["decode"].0, "48");
    let output = run_pprof(
        &["-top", "-symbolize=none", "-sample_index=fault_time"],
        &profile,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("must be one of: [faults]"), "{stderr}");
}

/// A walk's profile names its child `demo alloc mmap`, and pprof reads its faults: the
/// walk's three faults on its array are the ones in its region, `arr`. A walk times its
/// faults, so the profile has their time too.
#[test]
fn go_pprof_reads_a_walks_profile() {
    let profile = common::test_dir().join("alloc_mmap.pb.gz");
    demo(&[
        "alloc",
        "mmap",
        "--stacks",
        "--format",
        "pprof",
        "-o",
        profile.to_str().unwrap(),
    ]);
    let rows = top(&profile, "faults");
    assert!(!rows.is_empty(), "{rows:#?}");
    let tags = tags(&profile);
    let values = |key: &str| -> Vec<&str> { tags[key].iter().map(|(_, v)| v.as_str()).collect() };
    assert_eq!(values("comm"), ["demo alloc mmap"], "{tags:#?}");
    assert_eq!(tags["region"], [(3.0, "arr".to_owned())], "{tags:#?}");

    let time = top(&profile, "fault_time");
    let amounts: Vec<f64> = (time.values())
        .map(|(flat, _)| {
            (flat.trim_end_matches(|c: char| c.is_ascii_alphabetic()))
                .parse()
                .unwrap_or_else(|_| panic!("time {flat}: {time:#?}"))
        })
        .collect();
    assert!(amounts.iter().any(|&amount| amount > 0.0), "{time:#?}");
}
