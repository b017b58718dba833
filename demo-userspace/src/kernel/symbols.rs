//! Names the code behind an instruction address: its module, function, offset, source file,
//! line and inlined calls (blazesym), from the mapping the trace captured for the address, so
//! a process that has exited since is named as well as a live one.
//!
//! blazesym reads each module once and keeps it; every distinct (module, file offset) is
//! symbolized once and shared by every process that maps the module.

use std::{path::Path, sync::Arc};

use blazesym::symbolize::{
    CodeInfo, Input, Sym, Symbolized, Symbolizer,
    source::{Elf, Kernel, Source},
};
use rustc_hash::FxHashMap;

pub use super::{
    build_id::{build_id, mapped_build_id},
    stack_end::{EndCause, StackEnd},
};
use super::{
    mappings::{Mapping, MappingTable},
    unwind::Unwound,
};

/// Where kernel addresses start on x86-64 and arm64 (the top half of the address space).
const KERNEL_START: u64 = 0xffff_8000_0000_0000;

/// The module name given to kernel code.
pub const KERNEL_MODULE: &str = "[kernel]";

/// The code at one address: `symbol+offset` in `module`, with the source line when there is
/// debug information.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Code {
    /// The executable or library as a path, a memory mapping's name such as `[vdso]`, or
    /// `[kernel]`; null when no mapping holds the address.
    pub module: Option<String>,
    /// The function; null when the module has no symbol for the address (stripped).
    pub symbol: Option<String>,
    /// Bytes from the function's start; from the module's start (a file offset) when there is
    /// no symbol; the address itself when there is no module either.
    pub offset: u64,
    /// The source file's name, when the module has line information.
    pub file: Option<String>,
    /// The line in `file`: where the address is, or, when the compiler inlined a call there,
    /// the line of that call (the first of `inlined`).
    pub line: Option<u32>,
    /// Calls inlined at the address, outermost first; the last one holds the address itself.
    /// Left out when there are none.
    pub inlined: Vec<InlinedCall>,
    /// The address's offset in its module: the file offset in a mapped file, the offset in a
    /// mapping with no file; `None` for kernel code and an address in no mapping. A profile
    /// gives this as the address, the same in every process whatever the module's load
    /// address.
    pub module_offset: Option<u64>,
}

/// One function the compiler inlined where the address is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlinedCall {
    pub symbol: String,
    /// Where in it the address, or the next inlined call, is.
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl Code {
    /// The innermost function and line: the last inlined call, or the function itself.
    pub fn innermost(&self) -> (Option<&str>, Option<&str>, Option<u32>) {
        match self.inlined.last() {
            Some(call) => (Some(&call.symbol), call.file.as_deref(), call.line),
            None => (self.symbol.as_deref(), self.file.as_deref(), self.line),
        }
    }
}

/// What holds an instruction address, as the trace knows it.
#[derive(Clone, Copy, Debug)]
pub enum Site<'a> {
    /// A mapped file, at this offset in the file.
    File {
        path: &'a Arc<str>,
        offset: u64,
    },
    /// A mapping with no file to read (`[vdso]`, anonymous code), this far into it.
    Unnamed {
        name: &'a Arc<str>,
        offset: u64,
    },
    Kernel(u64),
    /// No mapping the trace knows of.
    Unmapped(u64),
}

/// True for an address in the kernel, which no mapping of a process holds.
pub fn is_kernel(address: u64) -> bool {
    address >= KERNEL_START
}

impl<'a> Site<'a> {
    /// The site of `address` in `mapping`, the mapping that held it when it ran.
    pub fn of(address: u64, mapping: Option<&'a Mapping>) -> Self {
        if is_kernel(address) {
            return Site::Kernel(address);
        }
        match mapping {
            Some(mapping) if mapping.name.starts_with('/') => Site::File {
                path: &mapping.name,
                offset: mapping.offset_of(address),
            },
            Some(mapping) => Site::Unnamed {
                name: &mapping.name,
                offset: address - mapping.start,
            },
            None => Site::Unmapped(address),
        }
    }
}

/// Whether an address is the instruction that ran, or a return address on the stack, whose
/// call is the instruction before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum At {
    Instruction,
    ReturnAddress,
}

/// One frame of a user stack: its address and the code there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFrame {
    pub address: u64,
    pub code: Arc<Code>,
    /// `--call-graph dwarf`: the frame's module has no unwind tables, so its caller (the next
    /// frame) was found by frame pointer and may be wrong.
    pub no_unwind_info: bool,
}

/// A fault's user stack as demo names it: the instruction that ran, then the return addresses
/// in code, innermost first, and where the frame-pointer walk left code, when it did. It derefs
/// to the frames alone, so whatever reads it as frames never sees what the walk read past code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stack {
    pub frames: Vec<StackFrame>,
    pub end: Option<StackEnd>,
}

/// No process maps at or above this address: x86-64's five-level paging gives user space 56
/// bits of address, arm64 at most 52.
const USER_END: u64 = 1 << 56;

impl std::ops::Deref for Stack {
    type Target = [StackFrame];

    fn deref(&self) -> &[StackFrame] {
        &self.frames
    }
}

impl<'a> IntoIterator for &'a Stack {
    type Item = &'a StackFrame;
    type IntoIter = std::slice::Iter<'a, StackFrame>;

    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

/// The user addresses of a stack up to the first return address that is not in an executable
/// mapping of `maps`, and that one, where the stack ends, with why. A return address is always
/// in code; a walk that followed a frame pointer a function without one left behind reads
/// data. The first address is never cut: it is the instruction that ran, wherever it was (an
/// instruction fetch from memory that is not executable faults there, and its stack must say
/// where).
pub fn in_code<'s>(addresses: &'s [u64], maps: &MappingTable) -> (&'s [u64], Option<StackEnd>) {
    let mut finder = maps.finder();
    let mut not_code = |address: u64| {
        if address >= USER_END {
            return Some(EndCause::NoUserAddress);
        }
        match finder.find(address) {
            Some(mapping) if mapping.perms.as_bytes().get(2) == Some(&b'x') => None,
            Some(_) => Some(EndCause::NotExecutable),
            None => Some(EndCause::MappingUnknown),
        }
    };
    let end = (addresses.iter().enumerate().skip(1))
        .find_map(|(at, &address)| not_code(address).map(|why| (at, why)));
    match end {
        Some((at, why)) => (
            &addresses[..at],
            Some(StackEnd {
                address: addresses[at],
                why,
            }),
        ),
        None => (addresses, None),
    }
}

/// The addresses of `unwound`'s frames, innermost first.
pub fn unwound_addresses(unwound: &Unwound) -> Vec<u64> {
    unwound.frames.iter().map(|frame| frame.address).collect()
}

/// `stack`, named from `unwound`'s frames for a fault at `ip`, with what the unwinder knew:
/// the frames it found without unwind tables, and where the copy cut the stack.
pub fn marked(unwound: &Unwound, ip: u64, mut stack: Stack) -> Stack {
    // A kernel-mode fault's stack starts with the kernel instruction, then the unwound frames.
    let user = usize::from(is_kernel(ip));
    for (frame, unwound) in stack.frames.iter_mut().skip(user).zip(&unwound.frames) {
        frame.no_unwind_info = !unwound.unwind_tables;
    }
    // A stack cut at a return address outside code ended there; else where the copy ended
    // it, if it did.
    stack.end = stack.end.or(unwound.end);
    stack
}

/// One module's code, by offset and by whether the address ran or is returned to.
type CodesAt = FxHashMap<(u64, At), Arc<Code>>;

/// How many shared names of modules [`Symbols`] keeps before it lets them go.
const KEPT_SHARED_NAMES: usize = 4096;

/// Symbolizes addresses and remembers every answer.
pub struct Symbols {
    symbolizer: Symbolizer,
    /// Each module's code (a module: a file's path, or a mapping's name), by offset: every
    /// distinct (module, offset) is symbolized once, for every process that maps it.
    modules: Vec<CodesAt>,
    /// The modules by name.
    by_name: FxHashMap<Arc<str>, usize>,
    /// The modules by the address of a mapping's shared name, the entry holding the name so
    /// that its address names it while the entry lives: a lookup hashes one word, where the
    /// name's text would be hashed and compared for every frame of every fault.
    by_shared_name: FxHashMap<usize, (Arc<str>, usize)>,
    kernel: FxHashMap<(u64, At), Arc<Code>>,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols")
            .field("modules", &self.modules.len())
            .field("kernel", &self.kernel.len())
            .finish_non_exhaustive()
    }
}

impl Default for Symbols {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbols {
    pub fn new() -> Self {
        Self {
            // A module is read once: one that changes on disk while traced is not read again.
            symbolizer: Symbolizer::builder().enable_auto_reload(false).build(),
            modules: Vec::new(),
            by_name: FxHashMap::default(),
            by_shared_name: FxHashMap::default(),
            kernel: FxHashMap::default(),
        }
    }

    /// The code at `site`.
    pub fn code(&mut self, site: Site<'_>, at: At) -> Arc<Code> {
        match site {
            Site::File { path, offset } => {
                if let Some(code) = self.known_at(path, offset, at) {
                    return code;
                }
                let source = Source::Elf(Elf::new(Path::new(&**path)));
                let code = Arc::new(Code {
                    module_offset: Some(offset),
                    ..self
                        .symbolize(&source, Input::FileOffset(offset), at)
                        .unwrap_or_else(|| unnamed(path, offset))
                });
                self.remember(path, offset, at, &code);
                code
            }
            Site::Unnamed { name, offset } => {
                if let Some(code) = self.known_at(name, offset, at) {
                    return code;
                }
                let code = Arc::new(Code {
                    module_offset: Some(offset),
                    ..unnamed(name, offset)
                });
                self.remember(name, offset, at, &code);
                code
            }
            Site::Kernel(address) => {
                if let Some(code) = self.kernel.get(&(address, at)) {
                    return Arc::clone(code);
                }
                let source = Source::Kernel(Kernel::default());
                let code = Arc::new(
                    self.symbolize(&source, Input::AbsAddr(address), at)
                        .map(|code| Code {
                            module: Some(KERNEL_MODULE.to_owned()),
                            ..code
                        })
                        .unwrap_or_else(|| unnamed(KERNEL_MODULE, address)),
                );
                self.kernel.insert((address, at), Arc::clone(&code));
                code
            }
            Site::Unmapped(address) => Arc::new(Code {
                offset: address,
                ..Code::default()
            }),
        }
    }

    fn known_at(&mut self, module: &Arc<str>, offset: u64, at: At) -> Option<Arc<Code>> {
        let index = self.module_index(module);
        self.modules[index].get(&(offset, at)).map(Arc::clone)
    }

    fn remember(&mut self, module: &Arc<str>, offset: u64, at: At, code: &Arc<Code>) {
        let index = self.module_index(module);
        self.modules[index].insert((offset, at), Arc::clone(code));
    }

    /// Where `module`'s code is kept: found by its shared name's address, else by its name
    /// (a mapping read again has a new shared name), else made.
    fn module_index(&mut self, module: &Arc<str>) -> usize {
        let shared = Arc::as_ptr(module).cast::<u8>() as usize;
        if let Some(&(_, index)) = self.by_shared_name.get(&shared) {
            return index;
        }
        let index = match self.by_name.get(&**module) {
            Some(&index) => index,
            None => {
                self.modules.push(CodesAt::default());
                self.by_name
                    .insert(Arc::clone(module), self.modules.len() - 1);
                self.modules.len() - 1
            }
        };
        // Each read of a process's maps makes new shared names; past this many, the old ones
        // are let go (the code stays, by name).
        if self.by_shared_name.len() >= KEPT_SHARED_NAMES {
            self.by_shared_name.clear();
        }
        self.by_shared_name
            .insert(shared, (Arc::clone(module), index));
        index
    }

    /// The code of a fault at `ip` and, with `--stacks`, of each frame of its stack, innermost
    /// first: the faulting instruction (in the kernel, for a kernel-mode fault, then the user
    /// instruction that entered it), then return addresses, up to the first return address in
    /// no executable mapping ([`in_code`]); named from `maps`, the process's mappings when it
    /// faulted.
    pub fn fault_code(
        &mut self,
        ip: u64,
        stack: Option<&[u64]>,
        maps: &MappingTable,
    ) -> (Arc<Code>, Option<Stack>) {
        let code = self.code(Site::of(ip, maps.find(ip)), At::Instruction);
        let stack = stack.map(|addresses| {
            let (frames, end) = in_code(addresses, maps);
            // A fault in kernel mode (a copy to user memory in a syscall) ran kernel code; the
            // user stack starts where the syscall was made, so the kernel instruction comes
            // first.
            let kernel = is_kernel(ip).then(|| StackFrame {
                address: ip,
                code: Arc::clone(&code),
                no_unwind_info: false,
            });
            let ats = std::iter::once(At::Instruction).chain(std::iter::repeat(At::ReturnAddress));
            let mut finder = maps.finder();
            let user = frames.iter().zip(ats).map(|(&address, at)| StackFrame {
                address,
                code: self.code(Site::of(address, finder.find(address)), at),
                no_unwind_info: false,
            });
            Stack {
                frames: kernel.into_iter().chain(user).collect(),
                end,
            }
        });
        (code, stack)
    }

    /// The code of a fault at `ip` and of each frame of its `unwound` stack (`--call-graph
    /// dwarf`), as [`Self::fault_code`] names a walked one, with what the unwinder knew: the
    /// frames it found without unwind tables, and where the copy cut the stack.
    pub fn unwound_fault_code(
        &mut self,
        ip: u64,
        unwound: &Unwound,
        maps: &MappingTable,
    ) -> (Arc<Code>, Option<Stack>) {
        let (code, stack) = self.fault_code(ip, Some(&unwound_addresses(unwound)), maps);
        (code, stack.map(|stack| marked(unwound, ip, stack)))
    }

    /// The function that holds the address, when a symbol of the module does. A symbol whose
    /// known size ends before the address is the nearest one, not the function: it is not
    /// taken (a stripped library's exported neighbour). A return address is looked up one
    /// byte back, in the call, and reported as itself.
    fn symbolize(&self, source: &Source<'_>, input: Input<u64>, at: At) -> Option<Code> {
        let back = u64::from(at == At::ReturnAddress);
        let input = input.map(|address| address.saturating_sub(back));
        let sym = self.lookup(source, input)?;
        match (sym.size, source) {
            (Some(size), _) => (sym.offset < size).then(|| to_code(&sym, back)),
            // blazesym's DWARF reader names a function whose code lies in several ranges (glibc's
            // `pthread_create`, with a `.cold` part split off) but gives it address 0 and no
            // size, so its offset would be the file offset. Such a function, or an ELF symbol
            // without a size, is named by the module's own symbol tables instead, only when
            // their symbol has a size that holds the address; its lines are still DWARF's.
            (None, Source::Elf(elf)) if elf.debug_syms => {
                let mut tables = elf.clone();
                tables.debug_syms = false;
                let named = self.lookup(&Source::Elf(tables), input)?;
                named
                    .size
                    .is_some_and(|size| named.offset < size)
                    .then(|| Code {
                        symbol: Some(named.name.to_string()),
                        offset: named.offset as u64 + back,
                        ..to_code(&sym, back)
                    })
            }
            (None, Source::Elf(_)) => None,
            // kallsyms gives no sizes, but it lists every function of the kernel, so the symbol
            // before an address is the function that holds it.
            (None, _) => Some(to_code(&sym, back)),
        }
    }

    /// What blazesym says is at `input` of `source`, when it names a symbol.
    fn lookup<'s>(&'s self, source: &Source<'_>, input: Input<u64>) -> Option<Sym<'s>> {
        match self.symbolizer.symbolize_single(source, input).ok()? {
            Symbolized::Sym(sym) => Some(sym),
            Symbolized::Unknown(_) => None,
        }
    }
}

fn to_code(sym: &Sym<'_>, back: u64) -> Code {
    let (file, line) = location(sym.code_info.as_deref());
    Code {
        module: sym
            .module
            .as_deref()
            .map(|module| Path::new(module).display().to_string()),
        symbol: Some(sym.name.to_string()),
        offset: sym.offset as u64 + back,
        file,
        line,
        inlined: sym
            .inlined
            .iter()
            .map(|call| {
                let (file, line) = location(call.code_info.as_ref());
                InlinedCall {
                    symbol: call.name.to_string(),
                    file,
                    line,
                }
            })
            .collect(),
        module_offset: None,
    }
}

fn location(info: Option<&CodeInfo<'_>>) -> (Option<String>, Option<u32>) {
    (
        info.map(|info| Path::new(&*info.file).display().to_string()),
        info.and_then(|info| info.line),
    )
}

/// `module+offset`, for an address no symbol names.
fn unnamed(module: &str, offset: u64) -> Code {
    Code {
        module: Some(module.to_owned()),
        offset,
        ..Code::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::mappings::MappingTable;

    #[inline(never)]
    fn a_function_with_a_known_name() -> u64 {
        a_function_with_a_known_name as fn() -> u64 as usize as u64
    }

    /// Runs unprivileged: a process may read its own maps and binary.
    #[test]
    fn names_a_function_of_this_test_with_its_file_and_line() {
        let maps = MappingTable::read(std::process::id() as i32).unwrap();
        let address = a_function_with_a_known_name() + 1;
        let mut symbols = Symbols::new();
        let site = Site::of(address, maps.find(address));
        let code = symbols.code(site, At::Instruction);
        let symbol = code.symbol.as_deref().unwrap_or_default();
        assert!(symbol.ends_with("a_function_with_a_known_name"), "{code:?}");
        assert_eq!(code.offset, 1);
        assert_eq!(code.file.as_deref(), Some("symbols.rs"), "{code:?}");
        assert!(code.line.is_some(), "{code:?}");
        let exe = std::env::current_exe().unwrap();
        assert_eq!(code.module.as_deref(), exe.to_str());
        let Site::File { offset, .. } = site else {
            panic!("this test's code is in its file: {site:?}")
        };
        assert_eq!(code.module_offset, Some(offset), "{code:?}");
        assert!(Arc::ptr_eq(&code, &symbols.code(site, At::Instruction)));
        // A return address one byte in is the function's own first instruction, looked up at
        // the byte before it, and still reported at its offset.
        let returning = symbols.code(site, At::ReturnAddress);
        assert_eq!(returning.symbol, code.symbol);
        assert_eq!(returning.offset, 1);
    }

    /// Where this process's libc has `name`.
    fn libc_address(name: &std::ffi::CStr) -> u64 {
        // SAFETY: dlsym only reads the NUL-terminated name; RTLD_DEFAULT searches every loaded
        // object.
        let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        assert!(!address.is_null(), "{name:?} is in libc");
        address as u64
    }

    /// The code at `address` of this process's libc, from its mappings now.
    fn libc_code(address: u64) -> Arc<Code> {
        let maps = MappingTable::read(std::process::id() as i32).unwrap();
        let site = Site::of(address, maps.find(address));
        assert!(matches!(site, Site::File { .. }), "{site:?}");
        Symbols::new().code(site, At::Instruction)
    }

    /// Runs unprivileged. glibc's `pthread_create` has a `.cold` part, so its DWARF entry has
    /// address ranges and no single start: blazesym named it `__pthread_create_2_1` at the
    /// library's start (offset 0x89390 for this offset 16), where perf says
    /// `pthread_create+16`.
    #[test]
    fn a_function_in_several_ranges_is_named_with_its_offset_from_its_start() {
        let code = libc_code(libc_address(c"pthread_create") + 16);
        assert_eq!(
            (code.symbol.as_deref(), code.offset),
            (Some("pthread_create"), 16),
            "{code:?}"
        );
        assert!(
            code.module
                .as_deref()
                .is_some_and(|m| m.contains("libc.so")),
            "{code:?}"
        );
    }

    /// `setvbuf`, `_IO_setvbuf` (perf's choice) and glibc's internal `__GI__IO_setvbuf` are one
    /// function; whichever name is given is an exported one at the same address, with the
    /// offset from it.
    #[test]
    fn setvbuf_is_named_by_an_exported_alias_with_its_offset() {
        let start = libc_address(c"setvbuf");
        let code = libc_code(start + 5);
        let symbol = std::ffi::CString::new(code.symbol.clone().expect("a symbol")).unwrap();
        assert_eq!(libc_address(&symbol), start, "{code:?}");
        assert_eq!(code.offset, 5, "{code:?}");
    }

    #[test]
    fn an_address_in_no_mapping_has_no_module() {
        let code = Symbols::new().code(Site::of(8, None), At::Instruction);
        assert_eq!(
            *code,
            Code {
                offset: 8,
                ..Code::default()
            }
        );
    }

    /// A process's code, its heap, and nothing else.
    fn code_and_heap() -> MappingTable {
        let mapping = Mapping::at;
        MappingTable::from_mappings([
            mapping(0x40_0000, 0x40_2000, "r-xp", "/bin/app"),
            mapping(0x60_0000, 0x62_1000, "rw-p", "[heap]"),
        ])
    }

    /// The walk ends at the first return address outside code, and says what is known there:
    /// data, no user address at all, or no mapping known (the process gone, its maps unread).
    /// The first address, the instruction that ran, stays even in memory that is not code.
    #[test]
    fn a_stack_ends_where_code_ends_and_says_why_but_keeps_the_instruction_that_ran() {
        let maps = code_and_heap();
        let end = |address, why| Some(StackEnd { address, why });
        let cases: [(&[u64], &[u64], Option<StackEnd>); 6] = [
            (
                &[0x40_0100, 0x60_0010, 0x40_0200],
                &[0x40_0100],
                end(0x60_0010, EndCause::NotExecutable),
            ),
            (
                &[0x40_0100, 0x40_0800, 0x6176_5f6d_6172_6170],
                &[0x40_0100, 0x40_0800],
                end(0x6176_5f6d_6172_6170, EndCause::NoUserAddress),
            ),
            (
                &[0x40_0100, 0x7f00_0000_1000, 0x40_0200],
                &[0x40_0100],
                end(0x7f00_0000_1000, EndCause::MappingUnknown),
            ),
            // A jump into the heap: the instruction fetch there faults, and is frame 0.
            (
                &[0x60_0010, 0x40_0100, 0x60_0020],
                &[0x60_0010, 0x40_0100],
                end(0x60_0020, EndCause::NotExecutable),
            ),
            (&[0x9000_0000], &[0x9000_0000], None),
            (&[], &[], None),
        ];
        for (walked, kept, ended) in cases {
            assert_eq!(in_code(walked, &maps), (kept, ended), "{walked:x?}");
        }
    }

    #[test]
    fn a_mapping_without_a_file_gives_its_name_and_offset() {
        let name: Arc<str> = "[vdso]".into();
        let mapping = Mapping {
            start: 0x7000,
            end: 0x9000,
            perms: "r-xp".into(),
            name,
            file_offset: 0,
            captured: false,
        };
        let code = Symbols::new().code(Site::of(0x7123, Some(&mapping)), At::Instruction);
        assert_eq!(code.module.as_deref(), Some("[vdso]"));
        assert_eq!((code.symbol.as_deref(), code.offset), (None, 0x123));
    }
}
