//! The lab stepped live: the seed's own `alloc_mmap` under `demo trace` in a real terminal
//! (tmux), one Enter at a time, as a student presses them. The program waits on `getchar()`
//! between steps, so a fault that shows before the next Enter was shown while it happened.
//! They need root (the programs load) and tmux.

mod common;

use std::time::Duration;

use common::tmux::trace_seed;

/// How late a step's lines may come after its Enter. The goal is about 100 ms: the loader
/// shows an idle thread's fault within about 70 ms (`QUIET_NS` and a poll) and flushes at
/// once. The rest is the margin of a busy two-core machine and of tmux. A line held back, in
/// a batch waiting to fill or a buffer flushed at exit, would not come before the next Enter
/// at all, as the program waits for it: the bound tells those apart from a slow machine.
const LATE: Duration = Duration::from_secs(1);

/// The name of the region that starts at `address` in the trace's text, if one does.
fn region_at(history: &str, address: &str) -> Option<String> {
    history.split("region ").skip(1).find_map(|rest| {
        let (name, rest) = rest.split_once(" = ")?;
        rest.starts_with(&format!("{address},"))
            .then(|| name.to_owned())
    })
}

#[test]
fn each_step_of_the_seed_program_shows_before_the_next_enter() {
    let pane = trace_seed("alloc_mmap_live", "", 200, 50);
    pane.wait_in_history("the trace's header", |s| s.contains("TIME_MS"));
    // The dynamic loader's faults show while the program waits for its first Enter.
    pane.wait_in_history("the dynamic loader's faults", |s| {
        s.contains("ld-linux-x86-64.so.2")
    });

    pane.keys(&["Enter"]);
    let (history, took) = pane.wait_in_history("the array's mmap", |s| {
        s.split("arr = ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|address| region_at(s, address).is_some())
    });
    assert!(took < LATE, "the mmap came {took:?} after Enter");
    let address = history
        .split("arr = ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let name = region_at(&history, address).unwrap();

    // arr[1500] and arr[1501] share page 1: the second touch does not fault.
    for (index, page, faults) in [(1500, 1, true), (1501, 1, false), (0, 0, true)] {
        pane.keys(&["Enter"]);
        let line = format!("{name}[{index}] page {page}");
        if faults {
            let (_, took) = pane.wait_in_history(&line, |s| s.contains(&line));
            assert!(took < LATE, "{line} came {took:?} after Enter");
        } else {
            // Longer than a fault takes to show, by the measure of the steps around it.
            std::thread::sleep(Duration::from_millis(500));
            assert!(!pane.history().contains(&line), "{}", pane.history());
        }
    }
    // The last step: the program touches arr[3000] and exits.
    pane.keys(&["Enter"]);
    let line = format!("{name}[3000] page 2");
    pane.wait_in_history(&line, |s| s.contains(&line));
    assert_eq!(pane.exit_status(), "0");
    let history = pane.history();
    // The fault lines, before the summary (whose slowest faults name some of them again).
    let history = history
        .split("\nregions (")
        .next()
        .unwrap_or(&history)
        .to_owned();
    // One fault per page the program touched, each once, in the order of the steps.
    let order: Vec<usize> = ["[1500] page 1", "[0] page 0", "[3000] page 2"]
        .iter()
        .map(|place| {
            let place = format!("{name}{place}");
            assert_eq!(history.matches(&place).count(), 1, "{place}:\n{history}");
            history.find(&place).unwrap()
        })
        .collect();
    assert!(order.is_sorted(), "{history}");
}
