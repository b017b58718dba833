//! The one redaction of what a run measures, for snapshots of demo's text: a duration as
//! demo writes it (`812 ns`, `1.4 µs`, `12 µs`, `1.9 ms`, `2.3 s`) and a share of one (`89%`)
//! differ from run to run, while the sentences around them must not. So does where a fault's
//! time went: a minor fault the scheduler preempted has time off the CPU, another none, so the
//! split after a fault's duration, `(1.7 ms off CPU)`, is left out.

/// The units demo writes a duration in.
const UNITS: [&str; 4] = ["ns", "µs", "ms", "s"];

/// The parts of a fault's split, after its duration.
const SPLIT: [&str; 4] = [
    "off CPU",
    "in reclaim",
    "in compaction",
    "time off CPU not known",
];

/// `text` with each duration written `<time>`, each percentage `<share>`, and each fault's
/// split left out.
pub fn measured(text: &str) -> String {
    without_splits(&durations(text))
}

/// `text` without the ` (<time> off CPU, <time> in reclaim)` after a duration.
fn without_splits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<time> (") {
        let open = at + "<time> ".len();
        out.push_str(&rest[..open - 1]);
        let inside = &rest[open + 1..];
        let split = inside.split_once(')').filter(|(parts, _)| {
            parts.split(", ").all(|part| {
                SPLIT.contains(&part) || SPLIT.contains(&part.trim_start_matches("<time> "))
            })
        });
        match split {
            Some((_, after)) => rest = after,
            None => {
                out.push(' ');
                rest = &rest[open..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` with each duration written `<time>` and each percentage `<share>`.
fn durations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        // A digit inside a word (`arr2`, `0x1f`) starts no number.
        let inside_word = out
            .chars()
            .chain(rest[..start].chars())
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '.');
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if inside_word {
            out.push_str(number);
            rest = after;
            continue;
        }
        if let Some(after) = after.strip_prefix('%') {
            out.push_str("<share>");
            rest = after;
            continue;
        }
        let unit = after.strip_prefix(' ').and_then(|tail| {
            UNITS.into_iter().find(|unit| {
                tail.strip_prefix(unit)
                    .is_some_and(|end| !end.starts_with(|c: char| c.is_alphanumeric()))
            })
        });
        match unit {
            Some(unit) => {
                out.push_str("<time>");
                rest = &after[1 + unit.len()..];
            }
            None => {
                out.push_str(number);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
