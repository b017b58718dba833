//! Checks what the kernel still holds of ours after demo ended.

use std::time::Duration;

/// Our programs and maps still in the kernel, by the names the embedded object gives them.
pub fn ours_loaded() -> Vec<String> {
    let ours = demo::kernel::probes::object_names().expect("parse the embedded eBPF object");
    let programs = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| ours.programs.contains(name));
    let maps = aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter_map(|m| m.name_as_str().map(str::to_owned))
        .filter(|name| ours.maps.contains(name));
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
