//! `--call-graph dwarf`: finds a fault's callers from the user registers and the top of the
//! user stack that the kernel side copied, with each module's unwind tables (`.eh_frame`,
//! `.debug_frame`), as perf's `--call-graph dwarf` does after the fact.

use std::{cell::Cell, sync::Arc};

use demo_common::MAX_STACK_DEPTH;
use framehop::{
    FrameAddress, Module, Unwinder as _,
    x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64},
};
use rustc_hash::FxHashMap;

use self::tables::{Bytes, TablesCache, VDSO};
use crate::{
    kernel::{
        mappings::{Mapping, MappingTable},
        stack_end::{EndCause, StackEnd},
    },
    model::events::StackCopy,
};

mod tables;
#[cfg(test)]
mod tests;

/// One frame the unwinder found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnwoundFrame {
    /// The faulting instruction for the first frame, a return address for the others.
    pub address: u64,
    /// The frame's module had unwind tables to find its caller with. Without them the caller
    /// after this frame was found by its frame pointer, and may be wrong.
    pub unwind_tables: bool,
}

/// The frames of one stack, innermost first, and where it was cut: `end` is
/// [`EndCause::Truncated`] when the next caller's frame lies past the copy's requested length
/// (`--stack-bytes`), and [`EndCause::Unreadable`] when it lies in memory the kernel side could
/// not read; its address is the stack address the unwinder needed. `None`: the unwinder found
/// no caller beyond the last frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwound {
    pub frames: Vec<UnwoundFrame>,
    pub end: Option<StackEnd>,
}

/// What the unwinder did so far, for the summary and the bench.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnwindStats {
    /// Stacks unwound.
    pub stacks: u64,
    /// Frames found, in all of them.
    pub frames: u64,
    /// Module files (and separate debug files) opened and parsed: each at most once.
    pub files_read: u64,
    /// Times a process's modules were placed anew, after its code mappings changed.
    pub module_rebuilds: u64,
}

/// Unwinds copied user stacks. It keeps each module's unwind tables, read once per file, and
/// each process's modules, rebuilt when its mappings change.
#[derive(Default)]
pub struct Unwinder {
    tables: TablesCache,
    processes: FxHashMap<u32, Process>,
    /// One cache of unwind rules for every process: framehop keys its entries by the modules'
    /// generation, which differs between processes and after every rebuild.
    cache: CacheX86_64,
    stats: UnwindStats,
}

impl std::fmt::Debug for Unwinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwinder")
            .field("processes", &self.processes.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Unwinder {
    /// The frames of `copy`, a stack of process `pid`, whose mappings are `maps`.
    pub fn unwind(&mut self, pid: u32, copy: &StackCopy, maps: &MappingTable) -> Unwound {
        let process = self.processes.entry(pid).or_default();
        if process.version != Some(maps.version()) {
            process.version = Some(maps.version());
            if process.place(maps, &mut self.tables) {
                self.stats.module_rebuilds += 1;
            }
        }
        let sp = copy.regs.sp;
        // The address of the last read that failed, in the step the unwinder is taking.
        let failed = Cell::new(None);
        let mut read_stack =
            |address: u64| (copy.word_at(address)).ok_or_else(|| failed.set(Some(address)));
        let (ip, unwinder) = (copy.regs.ip, &process.unwinder);
        let regs = UnwindRegsX86_64::new(ip, sp, copy.regs.bp);
        let mut frames = unwinder.iter_frames(ip, regs, &mut self.cache, &mut read_stack);
        // Room for most stacks, so that the vector grows at most once.
        let mut found = Vec::with_capacity(32);
        let mut end = None;
        // As deep as the kernel's frame-pointer walk goes; a frame past that is said to be.
        loop {
            failed.set(None);
            match frames.next() {
                Ok(Some(frame)) if found.len() == MAX_STACK_DEPTH => {
                    end = Some(StackEnd {
                        address: frame.address(),
                        why: EndCause::DepthLimit,
                    });
                    break;
                }
                Ok(Some(frame)) => found.push(UnwoundFrame {
                    address: frame.address(),
                    unwind_tables: process.has_tables(frame),
                }),
                Ok(None) => break,
                // framehop ends with an error in normal operation too (a frame pointer that does
                // not lead up the stack); only a read it needed and could not make is a cut.
                Err(_) => {
                    end = failed.get().and_then(|address| cut_at(address, copy, maps));
                    break;
                }
            }
        }
        self.stats.stacks += 1;
        self.stats.frames += found.len() as u64;
        Unwound { frames: found, end }
    }

    /// An unwinder that looks for separate debug files under `debug_root`.
    #[cfg(test)]
    fn with_debug_root(debug_root: std::path::PathBuf) -> Self {
        Self {
            tables: TablesCache::with_debug_root(debug_root),
            ..Self::default()
        }
    }

    /// Forgets process `pid`'s modules: it exited. The tables of its files stay, for other
    /// processes that map them.
    pub fn forget_process(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// What the unwinder did since it was made.
    pub fn stats(&self) -> UnwindStats {
        UnwindStats {
            files_read: self.tables.files_read,
            ..self.stats
        }
    }
}

/// Why the stack ends where the unwinder failed to read `address`: in the pages at the stack
/// pointer that the kernel could not read (unreadable), past the copy's requested length
/// (truncated: a longer copy would reach it), or past where the kernel could read (unreadable).
/// A read below the stack pointer is no cut (framehop tries one in an epilogue), nor one past
/// the main thread's first frame where the copy stopped, nor one past the end of the mapping
/// that holds the stack pointer: no longer copy would reach a caller there, so the frame before
/// led the unwinder astray.
fn cut_at(address: u64, copy: &StackCopy, maps: &MappingTable) -> Option<StackEnd> {
    let sp = copy.regs.sp;
    if address < sp {
        return None;
    }
    let cut = |why| Some(StackEnd { address, why });
    if address - sp < u64::from(copy.skipped) {
        return cut(EndCause::Unreadable);
    }
    let copied_end = sp.saturating_add(copy.bytes.len() as u64);
    if address.saturating_add(8) <= copied_end
        || copy.at_top
        || maps.find(sp).is_some_and(|stack| address >= stack.end)
    {
        return None;
    }
    if address.saturating_add(8) > sp.saturating_add(u64::from(copy.requested)) {
        return cut(EndCause::Truncated);
    }
    cut(EndCause::Unreadable)
}

/// A module placed in one process: a mapping of code and, when its file could be read and has
/// tables that place the mapping, framehop's module.
#[derive(Clone)]
struct Placed {
    start: u64,
    end: u64,
    file_offset: u64,
    name: Arc<str>,
    module: Option<Module<Bytes>>,
}

impl Placed {
    fn same_place(&self, mapping: &Mapping) -> bool {
        self.start == mapping.start
            && self.end == mapping.end
            && self.file_offset == mapping.file_offset
            && self.name == mapping.name
    }
}

/// One process's modules, as its mappings placed them when they last changed.
#[derive(Default)]
struct Process {
    /// The version of the mapping table the modules were checked against.
    version: Option<u64>,
    /// By start address.
    placed: Vec<Placed>,
    /// The ranges of the placed modules that have tables, by start address: what every frame
    /// asks, kept apart from the modules so that the search reads little memory.
    with_tables: Vec<std::ops::Range<u64>>,
    unwinder: UnwinderX86_64<Bytes>,
}

impl Process {
    /// Places the modules of `maps`' code mappings; returns whether they changed. A module
    /// that stayed in place is kept as it was, so a change of the table elsewhere (a heap that
    /// grew) costs one pass over the mappings.
    fn place(&mut self, maps: &MappingTable, tables: &mut TablesCache) -> bool {
        let code = || maps.mappings().filter(|m| is_code(m));
        let mut placed = self.placed.iter();
        if code().all(|m| placed.next().is_some_and(|p| p.same_place(m))) && placed.next().is_none()
        {
            return false;
        }
        let old = std::mem::take(&mut self.placed);
        self.placed = code()
            .map(|mapping| {
                let kept = old
                    .binary_search_by_key(&mapping.start, |p| p.start)
                    .ok()
                    .map(|i| &old[i])
                    .filter(|p| p.same_place(mapping));
                kept.cloned().unwrap_or_else(|| place(mapping, tables))
            })
            .collect();
        self.unwinder = UnwinderX86_64::new();
        for module in self.placed.iter().filter_map(|p| p.module.clone()) {
            self.unwinder.add_module(module);
        }
        self.with_tables = (self.placed.iter())
            .filter(|p| p.module.is_some())
            .map(|p| p.start..p.end)
            .collect();
        true
    }

    /// The frame's module has unwind tables.
    fn has_tables(&self, frame: FrameAddress) -> bool {
        let address = frame.address_for_lookup();
        let i = self.with_tables.partition_point(|r| r.start <= address);
        i.checked_sub(1)
            .is_some_and(|i| address < self.with_tables[i].end)
    }
}

/// A mapping whose code framehop can be given tables for: executable, of a file or the vDSO.
fn is_code(mapping: &Mapping) -> bool {
    mapping.perms.as_bytes().get(2) == Some(&b'x')
        && (mapping.name.starts_with('/') || &*mapping.name == VDSO)
}

fn place(mapping: &Mapping, tables: &mut TablesCache) -> Placed {
    let module = (tables.tables(mapping).filter(|t| t.any()))
        .and_then(|t| Some((t.bias(mapping)?, t)))
        .map(|(bias, t)| {
            Module::new(
                mapping.name.to_string(),
                mapping.start..mapping.end,
                bias,
                t.section_info(),
            )
        });
    Placed {
        start: mapping.start,
        end: mapping.end,
        file_offset: mapping.file_offset,
        name: Arc::clone(&mapping.name),
        module,
    }
}
