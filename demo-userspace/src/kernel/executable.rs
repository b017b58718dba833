//! What a target's executable file says about what demo cannot see in it: a statically linked
//! program has no libc.so for the heap uprobes, and a 32-bit program's memory syscalls are
//! compat syscalls, which have no syscall tracepoints.

use std::path::Path;

use object::{Object as _, ObjectKind};

/// A part of a program's behaviour that demo's probes do not reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unseen {
    /// A static binary's malloc is its own copy, not libc.so's, so heap blocks are not found.
    StaticHeap,
    /// A 32-bit program's mmap2, munmap, brk, mremap and madvise are compat syscalls, which
    /// raise no `syscalls:` tracepoint: its memory syscalls and mmap regions are not seen.
    CompatSyscalls,
}

impl Unseen {
    /// The sentence a report prints for it.
    pub fn says(self) -> &'static str {
        match self {
            Self::StaticHeap => {
                "heap blocks: not seen, the program is statically linked and its malloc is not libc.so's"
            }
            Self::CompatSyscalls => {
                "memory syscalls and mmap regions: not seen, a 32-bit program's syscalls raise no syscall tracepoints"
            }
        }
    }
}

/// What demo will not see of the program in the ELF file `path` (an unreadable or non-ELF file
/// says nothing: a script's interpreter is what runs).
pub fn unseen_in(path: &Path) -> Vec<Unseen> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(file) = object::File::parse(&*bytes) else {
        return Vec::new();
    };
    let mut unseen = Vec::new();
    if !file.is_64() {
        unseen.push(Unseen::CompatSyscalls);
    }
    if matches!(file.kind(), ObjectKind::Executable | ObjectKind::Dynamic)
        && !has_interpreter(&file)
    {
        unseen.push(Unseen::StaticHeap);
    }
    unseen
}

/// A dynamically linked program names its loader (PT_INTERP); a static one, even a static PIE,
/// does not.
fn has_interpreter(file: &object::File<'_>) -> bool {
    use object::read::elf::{ElfFile, ProgramHeader as _};
    fn interp<E: object::read::elf::FileHeader<Endian = object::Endianness>>(
        elf: &ElfFile<'_, E>,
    ) -> bool {
        let endian = elf.endian();
        elf.elf_program_headers()
            .iter()
            .any(|header| header.p_type(endian) == object::elf::PT_INTERP)
    }
    match file {
        object::File::Elf32(elf) => interp(elf),
        object::File::Elf64(elf) => interp(elf),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_64_bit_program_hides_nothing() {
        // The test binary itself is a dynamically linked 64-bit program.
        let me = std::env::current_exe().unwrap();
        assert_eq!(unseen_in(&me), Vec::new());
    }

    /// The smallest i386 executable header: ELF32, little-endian, ET_EXEC, EM_386, no program
    /// or section headers (so no PT_INTERP either).
    fn i386_static_header() -> Vec<u8> {
        let mut header = vec![0u8; 52];
        header[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1]);
        header[16..18].copy_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
        header[18..20].copy_from_slice(&3u16.to_le_bytes()); // e_machine: EM_386
        header[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
        header[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
        header[42..44].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
        header[46..48].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
        header
    }

    #[test]
    fn a_32_bit_static_program_hides_its_syscalls_and_its_heap() {
        let dir = std::env::temp_dir().join(format!("demo-elf32-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("i386");
        std::fs::write(&path, i386_static_header()).unwrap();
        let unseen = unseen_in(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(unseen, vec![Unseen::CompatSyscalls, Unseen::StaticHeap]);
    }

    #[test]
    fn what_is_not_an_elf_file_says_nothing() {
        assert_eq!(unseen_in(Path::new("/etc/hostname")), Vec::new());
        assert_eq!(unseen_in(Path::new("/nonexistent/program")), Vec::new());
    }
}
