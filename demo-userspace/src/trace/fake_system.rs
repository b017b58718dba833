//! A fake of the system a session reads, for tests that need no root: each process's mappings,
//! command name and threads' fault counters held in memory, code named `module+offset` from
//! the mappings the session hands over, and an exec'd image's code mapped where it says.

use std::{cell::RefCell, collections::HashMap, rc::Rc, sync::Arc};

use demo_common::FaultCounters;

use crate::{
    kernel::{
        mappings::{Mapping, MappingSource, MappingTable, Query},
        symbols::{
            Code, EndCause, KERNEL_MODULE, Site, Stack, StackEnd, StackFrame, in_code, marked,
            unwound_addresses,
        },
        system_view::SystemView,
        unwind::{Unwound, UnwoundFrame},
    },
    model::events::{ExecImage, RawStack, StackCopy},
};

/// What the fake kernel says now, per process; a process it does not hold is gone.
#[derive(Debug, Default)]
struct State {
    maps: HashMap<u32, Vec<Mapping>>,
    commands: HashMap<u32, String>,
    counters: HashMap<(u32, u32), FaultCounters>,
    /// How often the session asked for one VMA, and for the maps whole.
    queries: u64,
    whole_reads: u64,
    /// The processes whose address space the session said ended, in order.
    ended: Vec<u32>,
    /// Processes that exited and are not reaped: named, but with no address space.
    zombies: std::collections::HashSet<u32>,
}

/// A handle on the fake: the test keeps one to change what the kernel says while the session
/// holds another as its [`SystemView`].
#[derive(Clone, Debug, Default)]
pub struct FakeSystem(Rc<RefCell<State>>);

impl FakeSystem {
    /// A view for a session, sharing this fake's state.
    pub fn view(&self) -> Box<dyn SystemView> {
        Box::new(self.clone())
    }

    /// Process `pid` runs `command`, with no mappings yet.
    pub fn process(&self, pid: u32, command: &str) {
        let mut state = self.0.borrow_mut();
        state.maps.entry(pid).or_default();
        state.commands.insert(pid, command.to_owned());
    }

    /// The kernel maps `[start, end)` in `pid` as `name`, at `file_offset` in its file.
    pub fn map(&self, pid: u32, start: u64, end: u64, name: &str, file_offset: u64) {
        self.map_as(pid, start, end, name, file_offset, "rw-p");
    }

    /// Like [`Self::map`], the code of a file: executable.
    pub fn map_code(&self, pid: u32, start: u64, end: u64, name: &str, file_offset: u64) {
        self.map_as(pid, start, end, name, file_offset, "r-xp");
    }

    fn map_as(&self, pid: u32, start: u64, end: u64, name: &str, file_offset: u64, perms: &str) {
        let mapping = Mapping {
            start,
            end,
            perms: perms.to_owned(),
            name: name.into(),
            file_offset,
            captured: false,
        };
        let mut state = self.0.borrow_mut();
        let maps = state.maps.entry(pid).or_default();
        maps.retain(|m| m.end <= start || end <= m.start);
        maps.push(mapping);
        maps.sort_by_key(|m| m.start);
    }

    /// The kernel unmaps every mapping of `pid` that starts in `[start, end)`.
    pub fn unmap(&self, pid: u32, start: u64, end: u64) {
        if let Some(maps) = self.0.borrow_mut().maps.get_mut(&pid) {
            maps.retain(|m| !(start..end).contains(&m.start));
        }
    }

    /// Process `pid` execs `command`: its mappings are the new image's alone.
    pub fn exec(&self, pid: u32, command: &str) {
        self.0.borrow_mut().maps.insert(pid, Vec::new());
        self.process(pid, command);
    }

    /// Process `pid` is gone: /proc has nothing of it any more.
    pub fn gone(&self, pid: u32) {
        let mut state = self.0.borrow_mut();
        state.maps.remove(&pid);
        state.commands.remove(&pid);
        state.counters.retain(|&(p, _), _| p != pid);
    }

    /// Process `pid` exited and is not reaped yet: /proc still names it, its maps show nothing,
    /// and a query finds its address space gone.
    pub fn zombie(&self, pid: u32) {
        let mut state = self.0.borrow_mut();
        state.maps.insert(pid, Vec::new());
        state.zombies.insert(pid);
    }

    /// Thread `tid` of `pid` has these fault counters now.
    pub fn counters(&self, pid: u32, tid: u32, minor: u64, major: u64) {
        let counters = FaultCounters { minor, major };
        self.0.borrow_mut().counters.insert((pid, tid), counters);
    }

    /// (VMA queries, whole reads) the session made so far.
    pub fn asked(&self) -> (u64, u64) {
        let state = self.0.borrow();
        (state.queries, state.whole_reads)
    }

    /// The processes whose address space the session let go, in order.
    pub fn ended(&self) -> Vec<u32> {
        self.0.borrow().ended.clone()
    }
}

impl MappingSource for FakeSystem {
    fn query_mapping(&mut self, pid: u32, address: u64) -> Query {
        let mut state = self.0.borrow_mut();
        state.queries += 1;
        let Some(maps) = state
            .maps
            .get(&pid)
            .filter(|_| !state.zombies.contains(&pid))
        else {
            return Query::Gone;
        };
        maps.iter()
            .find(|m| m.start <= address && address < m.end)
            .map_or(Query::Unmapped, |m| Query::Found(m.clone()))
    }

    fn read_mappings(&mut self, pid: u32) -> Option<MappingTable> {
        let mut state = self.0.borrow_mut();
        state.whole_reads += 1;
        let maps = state.maps.get(&pid)?;
        Some(MappingTable::from_mappings(maps.iter().cloned()))
    }

    fn address_space_ended(&mut self, pid: u32) {
        self.0.borrow_mut().ended.push(pid);
    }
}

impl SystemView for FakeSystem {
    fn command_name(&mut self, pid: u32) -> Option<String> {
        self.0.borrow().commands.get(&pid).cloned()
    }

    fn thread_fault_counters(&self, pid: u32, tid: u32) -> Option<FaultCounters> {
        self.0.borrow().counters.get(&(pid, tid)).copied()
    }

    fn live_threads_fault_counters(&self, pid: u32) -> Option<FaultCounters> {
        let state = self.0.borrow();
        state.commands.contains_key(&pid).then(|| {
            state
                .counters
                .iter()
                .filter(|((p, _), _)| *p == pid)
                .fold(FaultCounters::default(), |sum, (_, &counters)| {
                    sum.plus(counters)
                })
        })
    }

    fn fault_code(
        &mut self,
        _pid: u32,
        ip: u64,
        stack: Option<&RawStack>,
        maps: &MappingTable,
    ) -> (Arc<Code>, Option<Stack>) {
        let code = |address: u64| Arc::new(module_offset(Site::of(address, maps.find(address))));
        // The stack ends where the live symbols end it: at the first return address not in code.
        let named = |addresses: &[u64]| {
            let (frames, end) = in_code(addresses, maps);
            Stack {
                frames: frames
                    .iter()
                    .map(|&address| StackFrame {
                        address,
                        code: code(address),
                        no_unwind_info: false,
                    })
                    .collect(),
                end,
            }
        };
        let stack = stack.map(|stack| match stack {
            RawStack::Frames(addresses) => named(addresses),
            RawStack::Copied(copy) => {
                let unwound = fake_unwind(copy);
                marked(&unwound, ip, named(&unwound_addresses(&unwound)))
            }
        });
        (code(ip), stack)
    }

    /// The executable's code, from file offset 0, over the pages from `start_code` to
    /// `end_code`: what an ELF file whose first loaded segment is its code gives.
    fn image_mappings(&mut self, image: &ExecImage) -> Vec<Mapping> {
        let Some(path) = &image.exe.path else {
            return Vec::new();
        };
        vec![Mapping {
            start: image.layout.start_code & !0xfff,
            end: (image.layout.end_code + 0xfff) & !0xfff,
            perms: "r-xp".to_owned(),
            name: Arc::clone(path),
            file_offset: 0,
            captured: true,
        }]
    }
}

/// `module+offset` for a site, as the live symbols name code without a symbol.
fn module_offset(site: Site<'_>) -> Code {
    let (module, offset) = match site {
        Site::File { path, offset } => (Some(path.to_string()), offset),
        Site::Unnamed { name, offset } => (Some(name.to_string()), offset),
        Site::Kernel(address) => (Some(KERNEL_MODULE.to_owned()), address),
        Site::Unmapped(address) => (None, address),
    };
    Code {
        module,
        offset,
        ..Code::default()
    }
}

/// The fake's unwinder: a copied stack's bytes are its return addresses, after the registers'
/// ip, up to a 0 that marks the outermost frame. A copy with no 0 was cut where it ends: by its
/// length (truncated), or, when it is short, by memory the kernel could not read; a copy whose
/// first bytes were skipped is cut at once, at the stack pointer (unreadable), where the first
/// return address would be. Every frame has unwind tables but those at addresses with the top
/// bit of the low byte set (`0x…80`), so that tests can name frames without them.
fn fake_unwind(copy: &StackCopy) -> Unwound {
    let words: Vec<u64> = copy
        .bytes
        .chunks_exact(8)
        .map(|word| u64::from_ne_bytes(word.try_into().unwrap_or_default()))
        .collect();
    let readable = if copy.skipped > 0 { 0 } else { words.len() };
    let outermost = words[..readable].iter().position(|&word| word == 0);
    let frames = std::iter::once(copy.regs.ip)
        .chain(words[..outermost.unwrap_or(readable)].iter().copied())
        .map(|address| UnwoundFrame {
            address,
            unwind_tables: address & 0x80 == 0,
        })
        .collect();
    let end = outermost.is_none().then(|| match copy.skipped {
        0 => StackEnd {
            address: copy.regs.sp + copy.bytes.len() as u64,
            why: if copy.short() {
                EndCause::Unreadable
            } else {
                EndCause::Truncated
            },
        },
        _ => StackEnd {
            address: copy.regs.sp,
            why: EndCause::Unreadable,
        },
    });
    Unwound { frames, end }
}
