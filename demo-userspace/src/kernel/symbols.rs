//! Names the code behind an instruction address of a traced process: its module, function,
//! offset, source file and line, from the process's own mappings (blazesym), once per distinct
//! (process, address). The process must still be mapped when an address is first asked for;
//! a traced command is held at its exit until its records are read, so it is.

use std::{path::Path, sync::Arc};

use blazesym::{
    Pid,
    normalize::{Normalizer, UserMeta},
    symbolize::{Input, Symbolized, Symbolizer, source::Process, source::Source},
};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// The code at one address: `symbol+offset` in `module`, with the source line when there is
/// debug information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Code {
    /// The executable or library, as a path; null when no mapping holds the address.
    pub module: Option<String>,
    /// The function; null when the module has no symbol for the address (stripped).
    pub symbol: Option<String>,
    /// Bytes from the function's start, or from the module's start (a file offset) when there
    /// is no symbol, or the address itself when there is no module either.
    pub offset: u64,
    /// The source file's name, when the module has line information.
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// Symbolizes addresses and remembers every answer.
#[derive(Default)]
pub struct Symbols {
    symbolizer: Symbolizer,
    normalizer: Normalizer,
    known: FxHashMap<(u32, u64), Arc<Code>>,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols")
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// The code at `address` in process `pid`.
    pub fn code(&mut self, pid: u32, address: u64) -> Arc<Code> {
        if let Some(code) = self.known.get(&(pid, address)) {
            return Arc::clone(code);
        }
        let code = Arc::new(
            self.symbolize(pid, address)
                .unwrap_or_else(|| self.in_module(pid, address)),
        );
        self.known.insert((pid, address), Arc::clone(&code));
        code
    }

    /// The function that holds `address`, when a symbol of the module does. A symbol whose
    /// known size ends before the address is the nearest one, not the function: it is not
    /// taken (a stripped library's exported neighbour).
    fn symbolize(&self, pid: u32, address: u64) -> Option<Code> {
        let source = Source::Process(Process::new(Pid::from(pid)));
        let symbolized = self
            .symbolizer
            .symbolize_single(&source, Input::AbsAddr(address))
            .ok()?;
        let Symbolized::Sym(sym) = symbolized else {
            return None;
        };
        if sym.size.is_some_and(|size| sym.offset >= size) {
            return None;
        }
        let code_info = sym.code_info.as_deref();
        Some(Code {
            module: sym
                .module
                .as_deref()
                .map(|module| Path::new(module).display().to_string()),
            symbol: Some(sym.name.to_string()),
            offset: sym.offset as u64,
            file: code_info.map(|info| Path::new(&*info.file).display().to_string()),
            line: code_info.and_then(|info| info.line),
        })
    }

    /// `module+offset` for an address no symbol names.
    fn in_module(&self, pid: u32, address: u64) -> Code {
        let normalized = self
            .normalizer
            .normalize_user_addrs(Pid::from(pid), &[address])
            .ok()
            .and_then(|output| {
                let (offset, meta) = *output.outputs.first()?;
                match output.meta.get(meta)? {
                    UserMeta::Elf(elf) => Some((elf.path.display().to_string(), offset)),
                    _ => None,
                }
            });
        let (module, offset) = match normalized {
            Some((module, offset)) => (Some(module), offset),
            None => (None, address),
        };
        Code {
            module,
            symbol: None,
            offset,
            file: None,
            line: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_with_a_known_name() -> u64 {
        a_function_with_a_known_name as fn() -> u64 as usize as u64
    }

    /// Runs unprivileged: a process may read its own maps and binary.
    #[test]
    fn names_a_function_of_this_test_with_its_file_and_line() {
        let mut symbols = Symbols::new();
        let address = a_function_with_a_known_name() + 1;
        let code = symbols.code(std::process::id(), address);
        let symbol = code.symbol.as_deref().unwrap_or_default();
        assert!(symbol.ends_with("a_function_with_a_known_name"), "{code:?}");
        assert_eq!(code.offset, 1);
        assert_eq!(code.file.as_deref(), Some("symbols.rs"), "{code:?}");
        assert!(code.line.is_some(), "{code:?}");
        let exe = std::env::current_exe().unwrap();
        assert_eq!(code.module.as_deref(), exe.to_str());
        assert!(Arc::ptr_eq(
            &code,
            &symbols.code(std::process::id(), address)
        ));
    }

    #[test]
    fn an_address_in_no_mapping_has_no_module() {
        let code = Symbols::new().code(std::process::id(), 8);
        assert_eq!(
            *code,
            Code {
                module: None,
                symbol: None,
                offset: 8,
                file: None,
                line: None
            }
        );
    }
}
