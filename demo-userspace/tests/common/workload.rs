//! A C workload that faults 65,536 pages when told, with its own rusage as the reference
//! count, for the tests of `demo top` and its metrics.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Child, Command, Stdio},
};

use super::c_programs::compile_c;

/// Maps 65,536 pages, says its pid, touches them all when told, reports its own rusage, then
/// waits for stdin to close.
const WORKLOAD: &str = r#"
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
int main(void) {
    char *area = mmap(NULL, 65536L * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("%d\n", getpid());
    fflush(stdout);
    getchar();
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    for (long i = 0; i < 65536; i++) area[i * 4096] = 1;
    getrusage(RUSAGE_SELF, &after);
    printf("%ld %ld\n", after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt);
    fflush(stdout);
    getchar();
    return 0;
}
"#;

pub struct Workload {
    pub child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    pub pid: u64,
}

pub fn start_workload() -> Workload {
    let program = compile_c("top_workload", WORKLOAD, &["-O2"]);
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = lines.next().unwrap().unwrap().parse().unwrap();
    Workload { child, lines, pid }
}

impl Workload {
    /// Touches the pages; returns the workload's own minor and major fault counts for it.
    pub fn touch(&mut self) -> (u64, u64) {
        writeln!(self.child.stdin.as_mut().unwrap()).unwrap();
        let line = self.lines.next().unwrap().unwrap();
        let mut counts = line.split(' ').map(|n| n.parse().unwrap());
        (counts.next().unwrap(), counts.next().unwrap())
    }

    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}
