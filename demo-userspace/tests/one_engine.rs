//! The seed's `alloc_mmap`, compiled from the seed's C, traced with `demo trace`, and the walk
//! `demo alloc mmap` that plays the same steps: both must say the same of arr[1500], arr[0] and
//! arr[3000] (the page, the class, the access and the mapping), since one engine resolves both.
//! They need root and fail (never skip) without.

mod common;

use std::process::Stdio;

use common::c_programs::{SEED, compile_c};
use common::json::{demo, json_lines, of_kind, trace_to_file};
use serde_json::Value;

/// What both commands must say of one access: index, page, class, access and mapping.
type Attribution = (i64, u64, String, String, String);

/// The faults in the one region of 20000 bytes, in order, as attributions.
fn attributions(lines: &[Value]) -> Vec<Attribution> {
    let regions: Vec<&Value> = of_kind(lines, "region")
        .into_iter()
        .filter(|region| region["size"] == 20000)
        .collect();
    assert_eq!(regions.len(), 1, "regions of 20000 bytes: {regions:?}");
    assert_eq!(regions[0]["elem_size"], 4);
    assert_eq!(regions[0]["origin"], "mmap");
    let name = &regions[0]["name"];
    of_kind(lines, "fault")
        .into_iter()
        .filter(|fault| &fault["region"] == name)
        .map(|fault| {
            let text = |key: &str| fault[key].as_str().unwrap().to_owned();
            (
                fault["index"].as_i64().unwrap(),
                fault["page"].as_u64().unwrap(),
                text("class"),
                text("access"),
                text("mapping"),
            )
        })
        .collect()
}

/// What the seed says: arr[1500] is in page 1, arr[0] in page 0, arr[3000] in page 2, each a
/// first write to a fresh anonymous page (arr[1501] shares arr[1500]'s page and does not fault).
fn expected() -> Vec<Attribution> {
    [(1500, 1), (0, 0), (3000, 2)]
        .into_iter()
        .map(|(index, page)| {
            (
                index,
                page,
                "minor".to_owned(),
                "write".to_owned(),
                "[anon]".to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_seed_program_traced_and_the_walk_attribute_each_access_alike() {
    let program = compile_c("alloc_mmap", SEED, &["-DMMAP"]);
    let steps = common::test_dir().join("alloc_mmap_steps");
    std::fs::write(&steps, "\n\n\n\n\n").unwrap();
    let traced = trace_to_file(
        "alloc_mmap",
        &["--elem-size", "4"],
        &[program.as_os_str()],
        &[],
        Stdio::from(std::fs::File::open(&steps).unwrap()),
    );
    let summary = &of_kind(&traced, "summary")[0];
    assert_eq!(summary["child"], "exited with status 0");
    assert_eq!(summary["lost"], 0);

    let walked = json_lines(&demo(&["alloc", "mmap", "--format", "json"]));
    assert_eq!(of_kind(&walked, "summary")[0]["lost"], 0);

    let from_trace = attributions(&traced);
    let from_walk = attributions(&walked);
    assert_eq!(from_trace, expected(), "demo trace");
    assert_eq!(from_walk, expected(), "demo alloc mmap");
    assert_eq!(from_trace, from_walk);
}
