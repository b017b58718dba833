//! Counts a trace's faults by the function that made them, and by function and region: which
//! code touched which array.

use std::{cmp::Ordering, sync::Arc};

use rustc_hash::FxHashMap;

use crate::kernel::symbols::Code;

/// How many (code, region) pairs are counted at most; a process that maps a new region in a
/// loop would otherwise grow the loader by an entry per region, for ever.
const MOST_PAIRS: usize = 1 << 16;

/// How many functions the summary lists.
pub const LISTED_FUNCTIONS: usize = 10;

/// How many (function, region) pairs the summary lists.
pub const LISTED_PAIRS: usize = 20;

/// The faults of one function, or of a module's code that no symbol names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionFaults {
    /// Null when no symbol names the code: then all of the module's such faults.
    pub symbol: Option<String>,
    pub module: Option<String>,
    /// The region the faults hit; only in `faults_by_function_and_region`.
    pub region: Option<String>,
    pub faults: u64,
}

/// One code address's faults on one region (or on none), with the region's name.
type Counted = (Arc<Code>, Option<Arc<str>>, u64);

/// Fault counts per code address and region, as the trace goes.
#[derive(Debug, Default)]
pub struct FunctionCounts {
    /// Keyed by the shared code's address (every fault at one instruction shares one) and the
    /// region id.
    counts: FxHashMap<(usize, Option<usize>), Counted>,
    /// Faults not counted because [`MOST_PAIRS`] was reached.
    pub uncounted: u64,
}

impl FunctionCounts {
    pub fn add(&mut self, code: &Arc<Code>, region: Option<(usize, &Arc<str>)>) {
        let key = (Arc::as_ptr(code) as usize, region.map(|(id, _)| id));
        if let Some((_, _, count)) = self.counts.get_mut(&key) {
            *count += 1;
        } else if self.counts.len() < MOST_PAIRS {
            let name = region.map(|(_, name)| Arc::clone(name));
            self.counts.insert(key, (Arc::clone(code), name, 1));
        } else {
            self.uncounted += 1;
        }
    }

    /// Every function with its faults, most first, and every (function, region) pair with a
    /// region, most first; ties in name order.
    pub fn summary(&self) -> (Vec<FunctionFaults>, Vec<FunctionFaults>) {
        let mut functions: FxHashMap<(Option<&str>, Option<&str>), u64> = FxHashMap::default();
        let mut pairs: FxHashMap<(Option<&str>, Option<&str>, &str), u64> = FxHashMap::default();
        for (code, region, count) in self.counts.values() {
            let function = (code.symbol.as_deref(), code.module.as_deref());
            *functions.entry(function).or_default() += count;
            if let Some(region) = region {
                *pairs.entry((function.0, function.1, region)).or_default() += count;
            }
        }
        let functions = functions
            .into_iter()
            .map(|((symbol, module), faults)| FunctionFaults {
                symbol: symbol.map(str::to_owned),
                module: module.map(str::to_owned),
                region: None,
                faults,
            });
        let pairs = pairs
            .into_iter()
            .map(|((symbol, module, region), faults)| FunctionFaults {
                symbol: symbol.map(str::to_owned),
                module: module.map(str::to_owned),
                region: Some(region.to_owned()),
                faults,
            });
        (most_first(functions), most_first(pairs))
    }
}

/// Most faults first; ties in natural order of the names (`mmap#2` before `mmap#10`).
fn most_first(rows: impl Iterator<Item = FunctionFaults>) -> Vec<FunctionFaults> {
    let mut rows: Vec<FunctionFaults> = rows.collect();
    rows.sort_by(|a, b| {
        b.faults.cmp(&a.faults).then_with(|| {
            [
                (&a.symbol, &b.symbol),
                (&a.module, &b.module),
                (&a.region, &b.region),
            ]
            .into_iter()
            .map(|(one, other)| match (one.as_deref(), other.as_deref()) {
                (Some(one), Some(other)) => natural_cmp(one, other),
                // A name comes before none.
                (one, other) => one.is_none().cmp(&other.is_none()),
            })
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
        })
    });
    rows
}

/// Compares names as people count: runs of digits by their value, the rest as text, so
/// `mmap#2` comes before `mmap#10` and `mmap#100`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let (run_a, rest_a) = leading_run(a);
        let (run_b, rest_b) = leading_run(b);
        let digits = |run: &str| run.starts_with(|c: char| c.is_ascii_digit());
        let order = if digits(run_a) && digits(run_b) {
            let (value_a, value_b) = (run_a.trim_start_matches('0'), run_b.trim_start_matches('0'));
            (value_a.len().cmp(&value_b.len()))
                .then_with(|| value_a.cmp(value_b))
                .then_with(|| run_a.len().cmp(&run_b.len()))
        } else {
            run_a.cmp(run_b)
        };
        if order.is_ne() {
            return order;
        }
        (a, b) = (rest_a, rest_b);
    }
}

/// The first run of `text` that is all digits or has none, and what follows it.
fn leading_run(text: &str) -> (&str, &str) {
    let digit = text.starts_with(|c: char| c.is_ascii_digit());
    let end = text
        .find(|c: char| c.is_ascii_digit() != digit)
        .unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(symbol: Option<&str>, offset: u64) -> Arc<Code> {
        Arc::new(Code {
            module: Some("/bin/prog".to_owned()),
            symbol: symbol.map(str::to_owned),
            offset,
            ..Code::default()
        })
    }

    /// A service's thousands of regions, tied at one fault each, read `mmap#2` before
    /// `mmap#10` and `mmap#100`, as people count; and a name without a number stays in text
    /// order.
    #[test]
    fn ties_are_in_natural_order_of_their_names() {
        let fill = code(Some("fill"), 4);
        let names: Vec<Arc<str>> = [
            "mmap#1000",
            "mmap#10",
            "malloc#3",
            "mmap#2",
            "mmap#100",
            "mmap#1",
        ]
        .into_iter()
        .map(Arc::from)
        .collect();
        let mut counts = FunctionCounts::default();
        for (id, name) in names.iter().enumerate() {
            counts.add(&fill, Some((id, name)));
        }
        let (_, pairs) = counts.summary();
        let regions: Vec<&str> = pairs
            .iter()
            .filter_map(|row| row.region.as_deref())
            .collect();
        assert_eq!(
            regions,
            [
                "malloc#3",
                "mmap#1",
                "mmap#2",
                "mmap#10",
                "mmap#100",
                "mmap#1000"
            ]
        );
        assert_eq!(natural_cmp("a007", "a7"), Ordering::Greater);
        assert_eq!(natural_cmp("a7", "a7"), Ordering::Equal);
        assert_eq!(natural_cmp("mmap#9", "mmap#10x"), Ordering::Less);
        assert_eq!(natural_cmp("main", "malloc"), "main".cmp("malloc"));
    }

    #[test]
    fn offsets_of_one_function_count_together_and_pairs_need_a_region() {
        let (fill_a, fill_b, main, stripped) = (
            code(Some("fill"), 4),
            code(Some("fill"), 9),
            code(Some("main"), 1),
            code(None, 0x1234),
        );
        let array: Arc<str> = "mmap#1".into();
        let mut counts = FunctionCounts::default();
        for _ in 0..3 {
            counts.add(&fill_a, Some((1, &array)));
        }
        counts.add(&fill_b, Some((1, &array)));
        counts.add(&main, None);
        counts.add(&stripped, None);
        counts.add(&main, None);
        let (functions, pairs) = counts.summary();
        let named: Vec<(Option<&str>, u64)> = functions
            .iter()
            .map(|row| (row.symbol.as_deref(), row.faults))
            .collect();
        assert_eq!(named, [(Some("fill"), 4), (Some("main"), 2), (None, 1)]);
        assert_eq!(
            pairs,
            [FunctionFaults {
                symbol: Some("fill".to_owned()),
                module: Some("/bin/prog".to_owned()),
                region: Some("mmap#1".to_owned()),
                faults: 4
            }]
        );
    }
}
