//! The pprof sink (`--format pprof -o FILE`): counts the faults of a trace or a walk by stack
//! and labels, and writes at the end one gzipped `profile.proto`, the format `go tool pprof`,
//! Pyroscope and Parca read. Each sample is a stack, leaf first, with its number of faults
//! and, when the trace timed faults, their total time; its labels are the process (pid and
//! command) and the fault's class, access and region. prost encodes the messages.

mod profile;

use std::{
    collections::hash_map::Entry,
    io::{self, Write},
    sync::Arc,
    time::{Duration, SystemTime},
};

use flate2::{Compression, write::GzEncoder};
use prost::Message as _;
use rustc_hash::FxHashMap;

use self::profile::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
use super::{
    BatchWrite,
    code::base_name,
    folded::{cut_root, frames_of},
};
use crate::{
    kernel::symbols::{self, Code},
    model::region::Region,
    trace::{
        TraceOutput, TraceStart, TraceSummary,
        session::{Session, TraceEvent, TracedFault},
    },
    walk::{
        Reporter,
        plan::{Allocator, ScenarioName},
        scenario::{Summary, WalkResult},
        step_report::StepReport,
    },
};

/// What makes two faults one sample: the process and its command, the stack (the addresses of its frames'
/// shared code, which every fault at one address shares, so a stack is named without hashing
/// its text), the root a cut stack gets, and the fault's class, access and region.
#[derive(PartialEq, Eq, Hash)]
struct SampleKey {
    pid: u32,
    command: Option<Arc<str>>,
    frames: Vec<usize>,
    cut: Option<&'static str>,
    class: &'static str,
    access: &'static str,
    region: Option<Arc<str>>,
}

/// One sample's frames, innermost first, and what its faults weigh.
struct Weight {
    frames: Vec<Arc<Code>>,
    faults: i64,
    /// The timed faults' total duration; an untimed fault (an error fault never completes)
    /// adds nothing.
    nanoseconds: i64,
}

/// The faults seen so far, as samples.
#[derive(Default)]
struct FaultSamples {
    samples: FxHashMap<SampleKey, Weight>,
    /// Some fault carried its duration.
    timed: bool,
    /// The build IDs of the modules met, in hex, each read when a fault first named it.
    build_ids: BuildIds,
}

/// The build IDs of modules, read through a process that maps them while it is expected alive:
/// when one of its faults first names the module. Reading at the end, from the path in demo's
/// own mount namespace, would name the host's file for a container's process, or the new build
/// of a binary replaced during the trace; [`symbols::mapped_build_id`] reads only the file the
/// process provably maps.
#[derive(Default)]
struct BuildIds {
    /// By module path; a module whose every try failed has none.
    found: FxHashMap<String, String>,
    /// The processes already asked for each module that has no build ID yet, so that each is
    /// asked once: a process that could not give it (exited, replaced file) will not later.
    tried: FxHashMap<String, Vec<u32>>,
}

impl BuildIds {
    /// Reads `module`'s build ID through process `pid`, unless it is known or `pid` was asked.
    /// `[vdso]`, `[kernel]` and the like have no file to read an ID from.
    fn meet(&mut self, pid: u32, module: &str) {
        if !module.starts_with('/') || self.found.contains_key(module) {
            return;
        }
        match self.tried.get_mut(module) {
            Some(tried) if tried.contains(&pid) => return,
            Some(tried) => tried.push(pid),
            None => {
                self.tried.insert(module.to_owned(), vec![pid]);
            }
        }
        if let Some(id) = symbols::mapped_build_id(pid, std::path::Path::new(module)) {
            self.tried.remove(module);
            self.found.insert(module.to_owned(), hex(&id));
        }
    }
}

impl FaultSamples {
    fn add(&mut self, traced: &TracedFault) {
        let frames = frames_of(&traced.code, traced.stack.as_ref());
        let fault = &traced.fault;
        let key = SampleKey {
            pid: fault.fault.pid,
            command: traced.command.clone(),
            frames: frames.iter().map(|c| Arc::as_ptr(c) as usize).collect(),
            cut: traced.stack.as_ref().and_then(cut_root),
            class: fault.class.as_str(),
            access: fault.fault.error_code.access().as_str(),
            region: traced.region.as_ref().map(|(_, name, _)| Arc::clone(name)),
        };
        // A sample's key holds its pid and frames, so only a new sample can name a module this
        // process has not been asked about: a repeated one costs no lookup per frame.
        let weight = match self.samples.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                for module in frames.iter().filter_map(|code| code.module.as_deref()) {
                    self.build_ids.meet(fault.fault.pid, module);
                }
                entry.insert(Weight {
                    frames,
                    faults: 0,
                    nanoseconds: 0,
                })
            }
        };
        weight.faults += 1;
        self.timed |= fault.timing.is_some();
        let nanoseconds = fault.timing.map_or(0, |timing| timing.duration_ns);
        weight.nanoseconds = (weight.nanoseconds).saturating_add_unsigned(nanoseconds);
    }

    /// The profile of the samples: with the fault time as a second value when `timed`, each
    /// process named by `command` from its pid and the command its faults carried (no name
    /// when it gives none), from `started` (the wall clock) for `duration`.
    fn profile(
        &self,
        timed: bool,
        command: impl Fn(u32, Option<&str>) -> Option<String>,
        started: SystemTime,
        duration: Duration,
    ) -> Profile {
        let mut tables = Tables {
            build_ids: self.build_ids.found.clone(),
            ..Tables::default()
        };
        let mut sample_type = vec![tables.value_type("faults", "count")];
        if timed {
            sample_type.push(tables.value_type("fault_time", "nanoseconds"));
        }
        let sample = (self.samples.iter())
            .map(|(key, weight)| {
                let mut location_id: Vec<u64> = (weight.frames.iter())
                    .map(|code| tables.location(code))
                    .collect();
                location_id.extend(key.cut.map(|root| tables.root(root)));
                let mut value = vec![weight.faults];
                if timed {
                    value.push(weight.nanoseconds);
                }
                Sample {
                    location_id,
                    value,
                    label: tables.labels(key, command(key.pid, key.command.as_deref())),
                }
            })
            .collect();
        let nanos = |duration: Duration| i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        let since_epoch = started.duration_since(SystemTime::UNIX_EPOCH);
        Profile {
            period_type: Some(sample_type[0]),
            period: 1,
            default_sample_type: tables.string("faults"),
            time_nanos: since_epoch.map_or(0, nanos),
            duration_nanos: nanos(duration),
            sample_type,
            sample,
            ..tables.into_profile()
        }
    }
}

/// A profile's tables as they are filled: each string, function, location and mapping once,
/// with the index or id the messages refer to it by (ids start at 1, as 0 means none).
struct Tables {
    strings: Vec<String>,
    string_ids: FxHashMap<String, i64>,
    functions: Vec<Function>,
    /// By name and file name (their string indexes).
    function_ids: FxHashMap<(i64, i64), u64>,
    locations: Vec<Location>,
    /// By the address of the shared code, which the samples hold while the tables are
    /// filled, so that no address is reused for another code meanwhile.
    location_ids: FxHashMap<usize, u64>,
    /// The roots of cut stacks, by name.
    root_ids: FxHashMap<&'static str, u64>,
    mappings: Vec<Mapping>,
    /// By module.
    mapping_ids: FxHashMap<String, u64>,
    /// The modules' build IDs in hex, as [`BuildIds`] read them during the trace.
    build_ids: FxHashMap<String, String>,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            // The format wants the empty string first, so that index 0 is no string.
            strings: vec![String::new()],
            string_ids: FxHashMap::from_iter([(String::new(), 0)]),
            functions: Vec::new(),
            function_ids: FxHashMap::default(),
            locations: Vec::new(),
            location_ids: FxHashMap::default(),
            root_ids: FxHashMap::default(),
            mappings: Vec::new(),
            mapping_ids: FxHashMap::default(),
            build_ids: FxHashMap::default(),
        }
    }
}

/// The next id of a table that holds `len` entries.
fn next_id(len: usize) -> u64 {
    len as u64 + 1
}

impl Tables {
    fn string(&mut self, text: &str) -> i64 {
        if let Some(&index) = self.string_ids.get(text) {
            return index;
        }
        let index = self.strings.len() as i64;
        self.strings.push(text.to_owned());
        self.string_ids.insert(text.to_owned(), index);
        index
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> ValueType {
        ValueType {
            r#type: self.string(kind),
            unit: self.string(unit),
        }
    }

    fn function(&mut self, name: &str, file: Option<&str>) -> u64 {
        let key = (self.string(name), self.string(file.unwrap_or_default()));
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = next_id(self.functions.len());
        self.functions.push(Function {
            id,
            name: key.0,
            system_name: key.0,
            filename: key.1,
            start_line: 0,
        });
        self.function_ids.insert(key, id);
        id
    }

    fn line(&mut self, name: &str, file: Option<&str>, line: Option<u32>) -> Line {
        Line {
            function_id: self.function(name, file),
            line: line.map_or(0, i64::from),
            column: 0,
        }
    }

    /// The location of `code`: its module's mapping, its offset in the module as the address,
    /// and its lines innermost first, each inlined call before the function it was inlined in.
    fn location(&mut self, code: &Arc<Code>) -> u64 {
        let shared = Arc::as_ptr(code) as usize;
        if let Some(&id) = self.location_ids.get(&shared) {
            return id;
        }
        let line = match &code.symbol {
            Some(symbol) => {
                let mut lines: Vec<Line> = (code.inlined.iter().rev())
                    .map(|call| self.line(&call.symbol, call.file.as_deref(), call.line))
                    .collect();
                lines.push(self.line(symbol, code.file.as_deref(), code.line));
                lines
            }
            // Code no symbol names is named as the text output names it.
            None => {
                let name = match &code.module {
                    Some(module) => format!("{}+{:#x}", base_name(module), code.offset),
                    None => format!("{:#x}", code.offset),
                };
                vec![self.line(&name, None, None)]
            }
        };
        let id = next_id(self.locations.len());
        let mapping_id = code
            .module
            .as_deref()
            .map_or(0, |module| self.mapping(module, code));
        self.locations.push(Location {
            id,
            mapping_id,
            // Code in no mapping is known by its address alone.
            address: code.module_offset.unwrap_or(if code.module.is_none() {
                code.offset
            } else {
                0
            }),
            line,
            is_folded: false,
        });
        self.location_ids.insert(shared, id);
        id
    }

    /// The pseudo-location a stack cut short has as its root, `[truncated]` and the like.
    fn root(&mut self, root: &'static str) -> u64 {
        if let Some(&id) = self.root_ids.get(root) {
            return id;
        }
        let id = next_id(self.locations.len());
        let line = vec![self.line(root, None, None)];
        self.locations.push(Location {
            id,
            line,
            ..Location::default()
        });
        self.root_ids.insert(root, id);
        id
    }

    /// The mapping of `module`, made the first time with its build ID when one was read, and
    /// marked with what `code` from it knows. Its addresses are file offsets in the module, so
    /// it spans every address from 0.
    fn mapping(&mut self, module: &str, code: &Code) -> u64 {
        let id = match self.mapping_ids.get(module) {
            Some(&id) => id,
            None => {
                let id = next_id(self.mappings.len());
                let build_id = match self.build_ids.get(module) {
                    Some(hex) => {
                        let hex = hex.clone();
                        self.string(&hex)
                    }
                    None => 0,
                };
                let filename = self.string(module);
                self.mappings.push(Mapping {
                    id,
                    memory_start: 0,
                    memory_limit: u64::MAX,
                    file_offset: 0,
                    filename,
                    build_id,
                    ..Mapping::default()
                });
                self.mapping_ids.insert(module.to_owned(), id);
                id
            }
        };
        let mapping = &mut self.mappings[id as usize - 1];
        mapping.has_functions |= code.symbol.is_some();
        mapping.has_filenames |= code.file.is_some();
        mapping.has_line_numbers |= code.line.is_some();
        mapping.has_inline_frames |= !code.inlined.is_empty();
        id
    }

    /// A sample's labels: its process (pid, and command when known), and its faults' class,
    /// access and region (none when they hit no region).
    fn labels(&mut self, key: &SampleKey, command: Option<String>) -> Vec<Label> {
        let mut labels = vec![Label {
            key: self.string("pid"),
            num: i64::from(key.pid),
            num_unit: self.string("pid"),
            ..Label::default()
        }];
        let text = |tables: &mut Self, name: &str, value: &str| Label {
            key: tables.string(name),
            str: tables.string(value),
            ..Label::default()
        };
        if let Some(command) = command {
            labels.push(text(self, "comm", &command));
        }
        labels.push(text(self, "class", key.class));
        labels.push(text(self, "access", key.access));
        if let Some(region) = &key.region {
            labels.push(text(self, "region", region));
        }
        labels
    }

    /// The tables as a profile's. pprof takes the first mapping for the program's, and names
    /// the profile by it: the first module that is a file and no shared library goes first
    /// (the heuristic pprof applies to the profiles it converts), not the dynamic loader
    /// whose faults come first. Ids stay as they are: messages refer to mappings by id.
    fn into_profile(mut self) -> Profile {
        let strings = &self.strings;
        let program = (self.mappings.iter()).position(|mapping| {
            let file = &strings[mapping.filename as usize];
            file.starts_with('/') && !is_shared_library(base_name(file))
        });
        if let Some(program) = program {
            let mapping = self.mappings.remove(program);
            self.mappings.insert(0, mapping);
        }
        Profile {
            mapping: self.mappings,
            location: self.locations,
            function: self.functions,
            string_table: self.strings,
            ..Profile::default()
        }
    }
}

/// True for a shared library's file name: `.so` at its end or before a version
/// (`libc.so.6`, `ld-linux-x86-64.so.2`, `libfoo.so_1`).
fn is_shared_library(name: &str) -> bool {
    name.match_indices(".so")
        .any(|(at, _)| matches!(name.as_bytes().get(at + 3), None | Some(b'.' | b'_')))
}

/// Lowercase hex, as pprof and build-id tools show a build ID.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes `profile` gzipped, as the format wants it on disk.
fn write(out: &mut impl BatchWrite, profile: &Profile) -> io::Result<()> {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&profile.encode_to_vec())?;
    let mut bytes = gzip.finish()?;
    out.write_batch(&mut bytes)?;
    out.flush()
}

/// `demo trace --format pprof`.
pub struct PprofTrace<W> {
    out: W,
    samples: FaultSamples,
    /// The wall clock when the trace started.
    started: SystemTime,
}

impl<W: BatchWrite> PprofTrace<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            samples: FaultSamples::default(),
            started: SystemTime::now(),
        }
    }
}

impl<W: BatchWrite> TraceOutput for PprofTrace<W> {
    fn started(&mut self, _start: &TraceStart) -> io::Result<()> {
        self.started = SystemTime::now();
        Ok(())
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        if let TraceEvent::Fault(traced) = event {
            self.samples.add(traced);
        }
        Ok(())
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        // Without durations there is no time to give: a second value would claim zero.
        let profile = self.samples.profile(
            summary.durations.is_some(),
            |pid, command| {
                command
                    .or_else(|| session.command_of(pid))
                    .map(str::to_owned)
            },
            self.started,
            self.started.elapsed().unwrap_or_default(),
        );
        write(&mut self.out, &profile)
    }
}

/// `demo alloc --format pprof`: every walk of the run in one profile, written when the last
/// ends; each walk's child is named by the command that ran it, e.g. `demo alloc mmap`.
pub struct PprofReporter<W> {
    out: W,
    samples: FaultSamples,
    started: SystemTime,
    /// The walk each child ran.
    walks: FxHashMap<u32, ScenarioName>,
}

impl<W: BatchWrite> PprofReporter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            samples: FaultSamples::default(),
            started: SystemTime::now(),
            walks: FxHashMap::default(),
        }
    }
}

impl<W: BatchWrite> Reporter for PprofReporter<W> {
    fn region(&mut self, _: ScenarioName, _: Allocator, _: &Region) -> io::Result<()> {
        Ok(())
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        self.walks.insert(step.pid, step.scenario);
        for fault in &step.faults {
            self.samples.add(fault);
        }
        Ok(())
    }

    fn summary(&mut self, _summary: &Summary) -> io::Result<()> {
        Ok(())
    }

    fn comparison(&mut self, _walks: &[WalkResult]) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let walks = &self.walks;
        // A walk's faults are timed whenever the kernel timed them: the time is given when
        // any fault carried its duration.
        let profile = self.samples.profile(
            self.samples.timed,
            // The command that ran the walk, not its child's name.
            |pid, _| (walks.get(&pid)).map(|walk| format!("demo alloc {}", walk.as_str())),
            self.started,
            self.started.elapsed().unwrap_or_default(),
        );
        write(&mut self.out, &profile)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::{
        kernel::symbols::InlinedCall,
        model::{access::ErrorCode, classify::FaultClass},
        output::fixtures::{self, fault, region, timed, unwound_stack},
    };

    /// The text at `index` of the profile's string table.
    fn text(profile: &Profile, index: i64) -> &str {
        &profile.string_table[usize::try_from(index).unwrap()]
    }

    /// The names of a sample's frames, leaf first, each location's lines innermost first.
    fn names(profile: &Profile, sample: &Sample) -> Vec<String> {
        let function = |id: u64| profile.function.iter().find(|f| f.id == id).unwrap();
        (sample.location_id.iter())
            .flat_map(|&id| &profile.location.iter().find(|l| l.id == id).unwrap().line)
            .map(|line| text(profile, function(line.function_id).name).to_owned())
            .collect()
    }

    /// A sample's labels as `key=value`, numbers with their unit.
    fn labels(profile: &Profile, sample: &Sample) -> Vec<String> {
        (sample.label.iter())
            .map(|label| match label.str {
                0 => format!(
                    "{}={}{}",
                    text(profile, label.key),
                    label.num,
                    text(profile, label.num_unit)
                ),
                str => format!("{}={}", text(profile, label.key), text(profile, str)),
            })
            .collect()
    }

    /// What the fixtures fault as: three timed writes of the workload child in the walk's
    /// region, an error fault there, a read outside any region with a stack the copy cut short,
    /// and a read in a function with a call inlined in it, whose record carried its command.
    fn samples() -> FaultSamples {
        let region = region();
        let write = fault(region.start, 6, "[anon]", &region);
        let mut samples = FaultSamples::default();
        for ns in [1_000, 2_000, 3_500] {
            samples.add(&timed(write.clone(), ns, 0));
        }
        let mut error = write.clone();
        error.fault.class = FaultClass::Error;
        samples.add(&error);
        let mut cut = fault(0x10, 4, "[anon]", &region);
        cut.code = Arc::clone(&write.code);
        let mut stack = unwound_stack();
        // The symbolizer gives every fault at one address the same code.
        stack.frames[0].code = Arc::clone(&write.code);
        cut.stack = Some(stack);
        samples.add(&cut);
        let mut inlined = fault(0x10, 4, "[anon]", &region);
        inlined.code = Arc::new(Code {
            module: Some("/tmp/prog".to_owned()),
            symbol: Some("load".to_owned()),
            offset: 4,
            file: Some("prog.c".to_owned()),
            line: Some(10),
            inlined: vec![InlinedCall {
                symbol: "decode".to_owned(),
                file: Some("decode.h".to_owned()),
                line: Some(3),
            }],
            module_offset: Some(0x1234),
        });
        inlined.fault.fault.error_code = ErrorCode(demo_common::ERROR_CODE_UNKNOWN);
        inlined.command = Some(Arc::from("decode"));
        samples.add(&inlined);
        samples
    }

    fn built(timed: bool) -> Profile {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        samples().profile(
            timed,
            // A process whose command is unknown gets no `comm` label.
            |pid, command| command.map(|command| format!("{command}:{pid}")),
            started,
            Duration::from_millis(5),
        )
    }

    /// The bytes the sink writes are gzip, and decode to the very profile it built: its
    /// string table starts with the empty string, and every id is nonzero, unique, and names
    /// an entry that exists.
    #[test]
    fn the_written_profile_decodes_to_the_one_built() {
        let profile = built(true);
        let mut written = Vec::new();
        write(&mut written, &profile).unwrap();
        assert_eq!(written[..2], [0x1f, 0x8b], "gzip's magic");
        let mut encoded = Vec::new();
        flate2::read::GzDecoder::new(&*written)
            .read_to_end(&mut encoded)
            .unwrap();
        assert_eq!(Profile::decode(&*encoded).unwrap(), profile);

        assert_eq!(profile.string_table[0], "");
        let unique = |ids: Vec<u64>| {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert!(!ids.contains(&0) && sorted.len() == ids.len(), "{ids:?}");
            ids
        };
        let functions = unique(profile.function.iter().map(|f| f.id).collect());
        let locations = unique(profile.location.iter().map(|l| l.id).collect());
        let mappings = unique(profile.mapping.iter().map(|m| m.id).collect());
        for location in &profile.location {
            assert!(location.mapping_id == 0 || mappings.contains(&location.mapping_id));
            assert!(!location.line.is_empty(), "{location:?}");
            for line in &location.line {
                assert!(functions.contains(&line.function_id), "{line:?}");
            }
        }
        for sample in &profile.sample {
            assert_eq!(sample.value.len(), profile.sample_type.len());
            assert!(sample.location_id.iter().all(|id| locations.contains(id)));
        }
        let strings = profile.string_table.len() as i64;
        let mut indexes = vec![profile.default_sample_type];
        indexes.extend(profile.function.iter().flat_map(|f| [f.name, f.filename]));
        indexes.extend(
            profile
                .mapping
                .iter()
                .flat_map(|m| [m.filename, m.build_id]),
        );
        assert!(indexes.iter().all(|&index| (0..strings).contains(&index)));
    }

    /// Faults of one stack and labels are one sample that counts them and adds up their
    /// time; the error fault is a sample of its own and adds no time. The labels name the
    /// process, the class, the access and the region, which a fault outside every region
    /// does not have.
    #[test]
    fn a_sample_counts_its_faults_and_their_time_under_its_labels() {
        let profile = built(true);
        let types: Vec<(&str, &str)> = (profile.sample_type.iter())
            .map(|t| (text(&profile, t.r#type), text(&profile, t.unit)))
            .collect();
        assert_eq!(types, [("faults", "count"), ("fault_time", "nanoseconds")]);
        assert_eq!(text(&profile, profile.default_sample_type), "faults");
        assert_eq!(profile.time_nanos, 1_700_000_000_000_000_000);
        assert_eq!(profile.duration_nanos, 5_000_000);
        let mut found: Vec<(Vec<String>, Vec<String>, Vec<i64>)> = (profile.sample.iter())
            .map(|s| (names(&profile, s), labels(&profile, s), s.value.clone()))
            .collect();
        found.sort();
        let perform = "demo::walk::workload::child::State::perform";
        let region = region().name;
        let strings = |texts: &[&str]| texts.iter().map(|&t| t.to_owned()).collect::<Vec<_>>();
        assert_eq!(
            found,
            [
                (
                    strings(&["decode", "load"]),
                    strings(&[
                        "pid=100pid",
                        "comm=decode:100",
                        "class=minor",
                        "access=unknown"
                    ]),
                    vec![1, 0]
                ),
                (
                    strings(&[perform]),
                    strings(&[
                        "pid=100pid",
                        "class=error",
                        "access=write",
                        &format!("region={region}")
                    ]),
                    vec![1, 0]
                ),
                (
                    strings(&[perform]),
                    strings(&[
                        "pid=100pid",
                        "class=minor",
                        "access=write",
                        &format!("region={region}")
                    ]),
                    vec![3, 6_500]
                ),
                (
                    strings(&[perform, "_int_malloc", "[truncated]"]),
                    strings(&["pid=100pid", "class=minor", "access=read"]),
                    vec![1, 0]
                ),
            ]
        );
    }

    /// Without durations a profile has one value, the faults, and never claims zero time.
    /// Faults that carried their duration make the samples timed, as a walk's profile asks;
    /// untimed ones alone do not.
    #[test]
    fn without_durations_each_sample_has_its_faults_alone() {
        assert!(samples().timed);
        let region = region();
        let mut untimed = FaultSamples::default();
        untimed.add(&fault(region.start, 6, "[anon]", &region));
        assert!(!untimed.timed);
        let profile = built(false);
        assert_eq!(profile.sample_type.len(), 1);
        let mut values: Vec<Vec<i64>> = profile.sample.iter().map(|s| s.value.clone()).collect();
        values.sort();
        assert_eq!(values, [[1], [1], [1], [3]]);
    }

    /// A location is one shared code: its address the module offset, its lines innermost
    /// first with their files, in the mapping of its module, which says what the code knew.
    /// The root of a cut stack has no mapping.
    #[test]
    fn a_location_has_its_module_offset_and_its_inlined_lines() {
        let profile = built(true);
        let file = |id: u64| {
            let function = profile.function.iter().find(|f| f.id == id).unwrap();
            text(&profile, function.filename)
        };
        let lines = |location: &Location| -> Vec<(String, i64)> {
            (location.line.iter())
                .map(|line| (file(line.function_id).to_owned(), line.line))
                .collect()
        };
        let by_address = |address| {
            (profile.location.iter())
                .find(|l| l.address == address && l.mapping_id != 0)
                .unwrap()
        };
        let load = by_address(0x1234);
        assert_eq!(
            lines(load),
            [("decode.h".to_owned(), 3), ("prog.c".to_owned(), 10)]
        );
        let mapping = &profile.mapping[load.mapping_id as usize - 1];
        assert_eq!(text(&profile, mapping.filename), "/tmp/prog");
        assert_eq!((mapping.memory_start, mapping.memory_limit), (0, u64::MAX));
        assert!(mapping.has_functions && mapping.has_inline_frames);
        let perform = by_address(fixtures::code().module_offset.unwrap());
        assert_eq!(lines(perform), [("child.rs".to_owned(), 88)]);
        // Each of the two faulting codes and the frames of the cut stack are one location.
        assert_eq!(profile.location.len(), 4, "{:?}", profile.location);
        let root = (profile.location.iter())
            .find(|l| l.mapping_id == 0)
            .unwrap();
        assert_eq!((root.address, lines(root)), (0, vec![(String::new(), 0)]));
    }

    /// The program's mapping goes first, before the loader and libc that faulted before it;
    /// the ids the locations refer to stay.
    #[test]
    fn the_program_is_the_first_mapping() {
        let mut tables = Tables::default();
        let code = |module: &str| {
            Arc::new(Code {
                module: Some(module.to_owned()),
                ..Code::default()
            })
        };
        let modules = [
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "[vdso]",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/tmp/so.d/decode",
            "/tmp/other",
        ];
        // Kept while the tables are filled, as a sample keeps its frames: a location is
        // known by its code's address.
        let codes: Vec<Arc<Code>> = modules.iter().map(|m| code(m)).collect();
        let ids: Vec<u64> = codes.iter().map(|c| tables.location(c)).collect();
        let profile = tables.into_profile();
        let files: Vec<(u64, &str)> = (profile.mapping.iter())
            .map(|m| (m.id, text(&profile, m.filename)))
            .collect();
        assert_eq!(
            files,
            [
                (4, modules[3]),
                (1, modules[0]),
                (2, modules[1]),
                (3, modules[2]),
                (5, modules[4])
            ]
        );
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert!(is_shared_library("libfoo.so") && !is_shared_library("a.sock"));
    }

    /// A module's build ID is read through the process whose fault first names it: this
    /// process maps its libc, which has one (Debian builds it so). The fixtures' pid 100 maps no
    /// `/tmp/prog`, and `[vdso]` is no file, so their mappings have none rather than whatever a
    /// file at that path now holds.
    #[test]
    fn a_mapping_carries_the_build_id_of_the_file_its_process_maps() {
        let libc = crate::kernel::build_id::own_libc();
        let libc = libc.as_str();
        let expected = symbols::build_id(std::path::Path::new(libc)).map(|id| hex(&id));
        assert_eq!(expected.as_ref().map(String::len), Some(40), "{libc}");
        let region = region();
        let mut samples = samples();
        for module in [libc, "[vdso]"] {
            let mut own = fault(region.start, 6, "[anon]", &region);
            own.fault.fault.pid = std::process::id();
            own.code = Arc::new(Code {
                module: Some(module.to_owned()),
                module_offset: Some(0x40),
                ..Code::default()
            });
            samples.add(&own);
        }
        let profile = samples.profile(false, |_, _| None, SystemTime::UNIX_EPOCH, Duration::ZERO);
        let build_id = |file: &str| {
            let mapping = (profile.mapping.iter())
                .find(|m| text(&profile, m.filename) == file)
                .unwrap_or_else(|| panic!("no mapping of {file}"));
            Some(text(&profile, mapping.build_id)).filter(|id| !id.is_empty())
        };
        assert_eq!(build_id(libc), expected.as_deref());
        assert_eq!(build_id("/tmp/prog"), None);
        assert_eq!(build_id("[vdso]"), None);
        // A sample whose process has no known command has no `comm` label.
        assert!(
            (profile.sample.iter())
                .all(|s| labels(&profile, s).iter().all(|l| !l.starts_with("comm=")))
        );
        assert_eq!(hex(&[0x0a, 0xff, 0x00]), "0aff00");
    }
}
