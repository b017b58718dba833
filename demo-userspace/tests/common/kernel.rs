//! Checks what the kernel still holds of ours after demo ended.

use std::time::Duration;

/// Names the kernel shows for our programs (truncated to 15 characters) and maps.
const OUR_PROGRAMS: [&str; 5] = [
    "page_fault_",
    "heap_",
    "top_",
    "sys_enter_mmap",
    "task_newtask",
];
const OUR_MAPS: [&str; 11] = [
    "TARGETS",
    "EVENTS",
    "DROPS",
    "SUBMITTED",
    "TOP_COUNTS",
    "TOP_RECENT",
    "TOP_EXITS",
    "PAGE_COUNTS",
    "TOP_CONFIG",
    "TOP_COUNTERS",
    "AYA_LOGS",
];

/// Our programs and maps still in the kernel.
fn ours_loaded() -> Vec<String> {
    let programs = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| OUR_PROGRAMS.iter().any(|ours| name.starts_with(ours)));
    let maps = aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter_map(|m| m.name_as_str().map(str::to_owned))
        .filter(|name| OUR_MAPS.contains(&name.as_str()));
    programs.chain(maps).collect()
}

/// The kernel frees programs and maps after an RCU grace period once their last file
/// descriptor closes, so this waits for that (a few milliseconds here) before it fails.
pub fn assert_nothing_of_ours_is_loaded() {
    for _ in 0..500 {
        if ours_loaded().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("still loaded 5 s after demo ended: {:?}", ours_loaded());
}
