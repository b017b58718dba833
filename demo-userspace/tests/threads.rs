//! A trace's cost follows the work, not the thread count: a program that starts 2,000 threads,
//! 500 alive at a time, each touching 64 fresh pages of its own mapping, is traced with every
//! touch reported once, named as /proc names its mapping. Each thread's stack is a new mmap
//! and mprotect, which once made the loader read the whole maps file again per thread. Root,
//! real kernel.

mod common;

use std::{collections::BTreeMap, os::unix::fs::PermissionsExt};

use common::c_programs::compile_c;
use common::json::{of_kind, trace_to_file};
use common::test_dir;

const THREADS: usize = 2000;
const PAGES: u64 = 64;

/// Starts THREADS threads, BATCH alive at a time (each batch waits at a barrier until all of it
/// has touched its pages, so the maps hold every thread's stack and mapping at once); writes
/// each thread's mapping and tid to the file named by argv[1].
const THREADS_C: &str = r#"
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define BATCH 500

static pthread_barrier_t batch_alive;
static unsigned long bases[THREADS];
static pid_t tids[THREADS];

static void *touch(void *arg) {
    long i = (long)arg;
    long page = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    for (long p = 0; p < PAGES; p++)
        ((volatile char *)pages)[p * page] = 1;
    bases[i] = (unsigned long)pages;
    tids[i] = gettid();
    pthread_barrier_wait(&batch_alive);
    /* The memory goes back; the mapping stays. */
    madvise(pages, PAGES * page, MADV_DONTNEED);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: threads FILE\n");
        return 2;
    }
    pthread_t threads[BATCH];
    for (long first = 0; first < THREADS; first += BATCH) {
        pthread_barrier_init(&batch_alive, NULL, BATCH + 1);
        for (long i = 0; i < BATCH; i++) {
            if (pthread_create(&threads[i], NULL, touch, (void *)(first + i)) != 0) {
                fprintf(stderr, "pthread_create failed\n");
                return 1;
            }
        }
        pthread_barrier_wait(&batch_alive);
        for (long i = 0; i < BATCH; i++)
            pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&batch_alive);
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    for (long i = 0; i < THREADS; i++)
        fprintf(out, "%lx %d\n", bases[i], tids[i]);
    return fclose(out) != 0;
}
"#;

#[test]
fn two_thousand_threads_have_every_touch_named_once() {
    let threads = format!("-DTHREADS={THREADS}");
    let pages = format!("-DPAGES={PAGES}");
    let program = compile_c("threads", THREADS_C, &["-pthread", &threads, &pages]);
    // The program runs as the invoking user under sudo: the file it writes is made for it.
    let touched = test_dir().join("threads.touched");
    std::fs::write(&touched, "").unwrap();
    std::fs::set_permissions(&touched, std::fs::Permissions::from_mode(0o666)).unwrap();
    let lines = trace_to_file(
        "threads",
        &[],
        &[program.as_os_str(), touched.as_os_str()],
        &[],
        std::process::Stdio::null(),
    );

    // Every page each thread touched, with the thread that touched it.
    let page_size = procfs::page_size();
    let mut expected = BTreeMap::new();
    for line in std::fs::read_to_string(&touched).unwrap().lines() {
        let (base, tid) = line.split_once(' ').unwrap();
        let base = u64::from_str_radix(base, 16).unwrap();
        let tid: u64 = tid.parse().unwrap();
        for page in 0..PAGES {
            expected.insert(base + page * page_size, tid);
        }
    }
    assert_eq!(expected.len(), THREADS * PAGES as usize);

    // The touching threads' faults on those pages: each page once, by its own thread, named
    // [anon] as /proc names an anonymous private mapping. (An address may have held an earlier
    // batch's thread stack, freed since, whose faults were other threads'.)
    let mut touches: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for fault in of_kind(&lines, "fault") {
        let address = u64::from_str_radix(
            fault["address"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let page = address - address % page_size;
        if expected.get(&page) == fault["tid"].as_u64().as_ref() {
            let mapping = fault["mapping"].as_str().unwrap().to_owned();
            touches.entry(page).or_default().push(mapping);
        }
    }
    assert_eq!(
        touches.values().map(Vec::len).sum::<usize>(),
        THREADS * PAGES as usize
    );
    assert_eq!(
        touches.len(),
        THREADS * PAGES as usize,
        "touched pages with no fault"
    );
    let named: BTreeMap<&str, usize> =
        touches
            .values()
            .flatten()
            .fold(BTreeMap::new(), |mut counts, name| {
                *counts.entry(name.as_str()).or_default() += 1;
                counts
            });
    assert_eq!(
        named,
        BTreeMap::from([("[anon]", THREADS * PAGES as usize)])
    );
}
