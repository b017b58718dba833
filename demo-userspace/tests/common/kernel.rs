//! Checks what the kernel still holds of ours after demo ended.

use std::{sync::OnceLock, time::Duration};

use demo::kernel::probes::ObjectNames;

/// The names of the embedded object's programs and maps, parsed once: the check below asks for
/// them every 10 ms.
fn our_names() -> &'static ObjectNames {
    static NAMES: OnceLock<ObjectNames> = OnceLock::new();
    NAMES.get_or_init(|| {
        demo::kernel::probes::object_names().expect("parse the embedded eBPF object")
    })
}

/// Our programs and maps still in the kernel, by the names the embedded object gives them.
pub fn ours_loaded() -> Vec<String> {
    let ours = our_names();
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
