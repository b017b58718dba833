//! A module's unwind tables (`.eh_frame` with `.eh_frame_hdr`, or `.debug_frame` from the file
//! or its separate debug file), read once per file and shared by every process that maps it.

use std::{
    fs::File,
    ops::Range,
    os::unix::fs::{FileExt as _, MetadataExt as _},
    path::{Path, PathBuf},
    sync::Arc,
};

use framehop::ExplicitModuleSectionInfo;
use object::{
    Endianness, ReadCache, ReadRef,
    elf::{
        ELF_NOTE_GNU, FileHeader64, NT_GNU_BUILD_ID, PF_X, PT_LOAD, SHF_COMPRESSED, SHT_NOBITS,
        SHT_NOTE,
    },
    read::elf::{FileHeader, ProgramHeader, SectionHeader, SectionTable},
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::kernel::mappings::Mapping;

/// Section bytes as framehop reads them: shared by every process's module of one file.
pub(super) type Bytes = Arc<[u8]>;

/// The name /proc gives the vDSO, the one module without a file that has unwind tables.
pub(super) const VDSO: &str = "[vdso]";

/// Where Debian, Ubuntu and Fedora install separate debug files, by build ID.
const DEBUG_ROOT: &str = "/usr/lib/debug";

/// One section: its address as the module states it, and its bytes.
#[derive(Debug)]
struct Section {
    svma: Range<u64>,
    bytes: Bytes,
}

/// One PT_LOAD segment's file part: where it sits in the file and in the module's addresses.
#[derive(Clone, Copy, Debug)]
struct Load {
    offset: u64,
    vaddr: u64,
    file_size: u64,
    executable: bool,
}

/// The call frame information framehop is given for a module: it reads one section only.
#[derive(Debug, Default)]
enum Cfi {
    EhFrame {
        eh_frame: Section,
        /// The index of `.eh_frame`; without it framehop indexes the section itself.
        eh_frame_hdr: Option<Section>,
    },
    DebugFrame(Bytes),
    #[default]
    None,
}

/// What framehop needs of a module: its unwind sections, and the segments that place the
/// module's addresses in a process.
#[derive(Debug, Default)]
pub(super) struct UnwindTables {
    cfi: Cfi,
    /// Addresses in CFI may count from these sections' starts.
    text_svma: Option<Range<u64>>,
    got_svma: Option<Range<u64>>,
    loads: Vec<Load>,
}

impl UnwindTables {
    /// The module has tables to find a caller with; without them framehop follows frame
    /// pointers.
    pub(super) fn any(&self) -> bool {
        !matches!(self.cfi, Cfi::None)
    }

    /// The module's load bias in a process that maps it at `mapping`: its address minus the
    /// address the module states, from the PT_LOAD segment that holds the mapping's offset
    /// (the executable one when two share a page).
    pub(super) fn bias(&self, mapping: &Mapping) -> Option<u64> {
        let holds = |load: &&Load| {
            load.offset & !(PAGE - 1) <= mapping.file_offset
                && mapping.file_offset < load.offset + load.file_size
        };
        let load = (self.loads.iter().filter(holds)).max_by_key(|load| load.executable)?;
        Some(
            mapping
                .start
                .wrapping_sub(mapping.file_offset)
                .wrapping_add(load.offset)
                .wrapping_sub(load.vaddr),
        )
    }

    /// The sections as framehop takes them; the bytes are shared, not copied.
    pub(super) fn section_info(&self) -> ExplicitModuleSectionInfo<Bytes> {
        let mut info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: self.text_svma.clone(),
            got_svma: self.got_svma.clone(),
            ..ExplicitModuleSectionInfo::default()
        };
        match &self.cfi {
            Cfi::EhFrame {
                eh_frame,
                eh_frame_hdr,
            } => {
                info.eh_frame_svma = Some(eh_frame.svma.clone());
                info.eh_frame = Some(Arc::clone(&eh_frame.bytes));
                info.eh_frame_hdr_svma = eh_frame_hdr.as_ref().map(|s| s.svma.clone());
                info.eh_frame_hdr = eh_frame_hdr.as_ref().map(|s| Arc::clone(&s.bytes));
            }
            Cfi::DebugFrame(bytes) => info.debug_frame = Some(Arc::clone(bytes)),
            Cfi::None => {}
        }
        info
    }
}

const PAGE: u64 = 4096;

/// A file as the loader finds it at a path: two paths to one file, or a file replaced at one
/// path, are told apart without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

/// Every module's tables the loader read, by file and by build ID, and the files that could not
/// be read, so none is read twice.
#[derive(Debug)]
pub(super) struct TablesCache {
    /// `None`: the file could not be read as ELF.
    by_file: FxHashMap<FileKey, Option<Arc<UnwindTables>>>,
    by_build_id: FxHashMap<Box<[u8]>, Arc<UnwindTables>>,
    /// Paths that could not be opened, asked again never.
    missing: FxHashSet<Arc<str>>,
    /// Read from the loader's own memory on first need: the kernel maps one vDSO image into
    /// every 64-bit process.
    vdso: Option<Option<Arc<UnwindTables>>>,
    debug_root: PathBuf,
    /// Files opened and parsed, the debug files among them.
    pub(super) files_read: u64,
}

impl Default for TablesCache {
    fn default() -> Self {
        Self::with_debug_root(DEBUG_ROOT.into())
    }
}

impl TablesCache {
    /// A cache that looks for separate debug files under `debug_root` (`.build-id/xx/yy.debug`).
    pub(super) fn with_debug_root(debug_root: PathBuf) -> Self {
        Self {
            by_file: FxHashMap::default(),
            by_build_id: FxHashMap::default(),
            missing: FxHashSet::default(),
            vdso: None,
            debug_root,
            files_read: 0,
        }
    }

    /// The tables of the module mapped at `mapping` (a file, or the vDSO), or `None` when it
    /// cannot be read.
    pub(super) fn tables(&mut self, mapping: &Mapping) -> Option<Arc<UnwindTables>> {
        if &*mapping.name == VDSO {
            return self.vdso();
        }
        if self.missing.contains(&mapping.name) {
            return None;
        }
        let opened = File::open(&*mapping.name).and_then(|file| Ok((file.metadata()?, file)));
        let Ok((meta, file)) = opened else {
            self.missing.insert(Arc::clone(&mapping.name));
            return None;
        };
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        };
        if let Some(known) = self.by_file.get(&key) {
            return known.clone();
        }
        let tables = self.read_file(&file);
        self.by_file.insert(key, tables.clone());
        tables
    }

    fn read_file(&mut self, file: &File) -> Option<Arc<UnwindTables>> {
        self.files_read += 1;
        let cache = ReadCache::new(file);
        let elf = Elf::parse(&cache)?;
        let build_id = elf.build_id();
        if let Some(id) = &build_id
            && let Some(known) = self.by_build_id.get(&**id)
        {
            return Some(Arc::clone(known));
        }
        let debug_frame = elf.section(b".debug_frame").map(|section| section.bytes);
        let debug_frame = debug_frame.or_else(|| self.debug_frame(build_id.as_deref()?));
        let tables = Arc::new(elf.tables(debug_frame));
        if let Some(id) = build_id {
            self.by_build_id.insert(id.into(), Arc::clone(&tables));
        }
        Some(tables)
    }

    /// The `.debug_frame` of the separate debug file of the module with build ID `id`, when that
    /// file is installed and is the module's.
    fn debug_frame(&mut self, id: &[u8]) -> Option<Bytes> {
        let file = File::open(debug_file_path(&self.debug_root, id)?).ok()?;
        self.files_read += 1;
        let cache = ReadCache::new(&file);
        let elf = Elf::parse(&cache)?;
        if elf.build_id().as_deref() != Some(id) {
            return None;
        }
        elf.section(b".debug_frame").map(|section| section.bytes)
    }

    fn vdso(&mut self) -> Option<Arc<UnwindTables>> {
        self.vdso
            .get_or_insert_with(|| {
                let image = own_vdso()?;
                Elf::parse(&*image).map(|elf| Arc::new(elf.tables(None)))
            })
            .clone()
    }
}

/// `DEBUG_ROOT/.build-id/xx/yyyy.debug`, where `xxyyyy` is the build ID in hex.
fn debug_file_path(root: &Path, id: &[u8]) -> Option<PathBuf> {
    let (first, rest) = id.split_first()?;
    let rest: String = rest.iter().map(|byte| format!("{byte:02x}")).collect();
    Some(
        root.join(".build-id")
            .join(format!("{first:02x}"))
            .join(format!("{rest}.debug")),
    )
}

/// The loader's own vDSO image, read through /proc/self/mem from where its maps place it.
fn own_vdso() -> Option<Vec<u8>> {
    let own = crate::kernel::mappings::MappingTable::read(std::process::id() as i32).ok()?;
    let vdso = own.mappings().find(|m| &*m.name == VDSO)?;
    let mut image = vec![0; usize::try_from(vdso.end - vdso.start).ok()?];
    File::open("/proc/self/mem")
        .and_then(|mem| mem.read_exact_at(&mut image, vdso.start))
        .ok()?;
    Some(image)
}

/// A 64-bit ELF file's headers, read without reading the rest of it.
struct Elf<'data, R: ReadRef<'data>> {
    data: R,
    endian: Endianness,
    header: &'data FileHeader64<Endianness>,
    sections: SectionTable<'data, FileHeader64<Endianness>, R>,
}

impl<'data, R: ReadRef<'data>> Elf<'data, R> {
    fn parse(data: R) -> Option<Self> {
        let header = FileHeader64::<Endianness>::parse(data).ok()?;
        let endian = header.endian().ok()?;
        let sections = header.sections(endian, data).ok()?;
        Some(Self {
            data,
            endian,
            header,
            sections,
        })
    }

    /// The GNU build ID note's bytes.
    fn build_id(&self) -> Option<Vec<u8>> {
        let notes = (self.sections.iter())
            .filter(|section| section.sh_type(self.endian) == SHT_NOTE)
            .filter_map(|section| section.notes(self.endian, self.data).ok().flatten());
        for mut notes in notes {
            while let Ok(Some(note)) = notes.next() {
                if note.name() == ELF_NOTE_GNU && note.n_type(self.endian) == NT_GNU_BUILD_ID {
                    return Some(note.desc().to_vec());
                }
            }
        }
        None
    }

    /// The section named `name` with its bytes, when the file holds them uncompressed (a
    /// separate debug file keeps only the headers of the sections it does not carry).
    fn section(&self, name: &[u8]) -> Option<Section> {
        let (_, header) = self.sections.section_by_name(self.endian, name)?;
        if header.sh_type(self.endian) == SHT_NOBITS
            || header.sh_flags(self.endian) & u64::from(SHF_COMPRESSED) != 0
        {
            return None;
        }
        let bytes = header.data(self.endian, self.data).ok()?;
        let start = header.sh_addr(self.endian);
        (!bytes.is_empty()).then(|| Section {
            svma: start..start + header.sh_size(self.endian),
            bytes: bytes.into(),
        })
    }

    fn svma(&self, name: &[u8]) -> Option<Range<u64>> {
        let (_, header) = self.sections.section_by_name(self.endian, name)?;
        let start = header.sh_addr(self.endian);
        Some(start..start + header.sh_size(self.endian))
    }

    /// The file's tables, with `debug_frame` (its own, or its debug file's): framehop reads one
    /// section, so the one that describes more functions. A program built without
    /// asynchronous unwind tables has `.debug_frame` for its own code, and an `.eh_frame` that
    /// holds only what the C runtime's start files brought (`_start`, or nothing).
    fn tables(&self, debug_frame: Option<Bytes>) -> UnwindTables {
        let loads = (self.header.program_headers(self.endian, self.data).ok())
            .unwrap_or_default()
            .iter()
            .filter(|segment| segment.p_type(self.endian) == PT_LOAD)
            .map(|segment| Load {
                offset: segment.p_offset(self.endian),
                vaddr: segment.p_vaddr(self.endian),
                file_size: segment.p_filesz(self.endian),
                executable: segment.p_flags(self.endian) & PF_X != 0,
            })
            .collect();
        let eh_frame = self.section(b".eh_frame");
        let in_eh_frame = eh_frame
            .as_ref()
            .map_or(0, |s| fde_count(&s.bytes, Kind::EhFrame));
        let in_debug_frame = debug_frame
            .as_ref()
            .map_or(0, |b| fde_count(b, Kind::DebugFrame));
        let cfi = match (eh_frame, debug_frame) {
            (Some(eh_frame), _) if in_eh_frame > 0 && in_eh_frame >= in_debug_frame => {
                Cfi::EhFrame {
                    eh_frame,
                    eh_frame_hdr: self.section(b".eh_frame_hdr"),
                }
            }
            (_, Some(debug_frame)) if in_debug_frame > 0 => Cfi::DebugFrame(debug_frame),
            _ => Cfi::None,
        };
        UnwindTables {
            cfi,
            text_svma: self.svma(b".text"),
            got_svma: self.svma(b".got"),
            loads,
        }
    }
}

/// Which section a CFI walk reads: they mark a CIE apart from an FDE differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    EhFrame,
    DebugFrame,
}

/// How many FDEs (one per described function, or range of one) `bytes` holds. Each entry is
/// its length (32 bits, or `0xffffffff` then 64 bits), then an id: 0 in `.eh_frame` and all
/// ones in `.debug_frame` for a CIE, anything else for an FDE. A zero length ends `.eh_frame`.
fn fde_count(bytes: &[u8], kind: Kind) -> usize {
    let word = |at: usize, size: usize| -> Option<u64> {
        let field = bytes.get(at..at.checked_add(size)?)?;
        Some(match size {
            4 => u64::from(u32::from_le_bytes(field.try_into().ok()?)),
            _ => u64::from_le_bytes(field.try_into().ok()?),
        })
    };
    let (mut at, mut count) = (0usize, 0);
    while let Some(length) = word(at, 4) {
        let (length, size) = match length {
            0 => break,
            0xffff_ffff => match word(at + 4, 8) {
                Some(length) => (length, 8),
                None => break,
            },
            length => (length, 4),
        };
        let body = at + 4 + if size == 8 { 8 } else { 0 };
        let Some(id) = word(body, size) else { break };
        let cie = match kind {
            Kind::EhFrame => id == 0,
            Kind::DebugFrame => id == u64::MAX >> (64 - 8 * size),
        };
        count += usize::from(!cie);
        let Some(next) = usize::try_from(length)
            .ok()
            .and_then(|l| body.checked_add(l))
        else {
            break;
        };
        at = next;
    }
    count
}

#[cfg(test)]
mod tests {
    //! The tables of this process's own modules, and the count of FDEs in sections made by hand.

    use super::*;
    use crate::kernel::mappings::MappingTable;

    /// This process's executable mapping that holds `address`.
    fn code_mapping(address: u64) -> Mapping {
        let maps = MappingTable::read(std::process::id() as i32).unwrap();
        maps.find(address).unwrap().clone()
    }

    /// The load bias the dynamic linker gave the module that holds `address`.
    fn linker_bias(address: u64) -> u64 {
        // SAFETY: dladdr fills `info` and keeps no pointer to it.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        assert_ne!(unsafe { libc::dladdr(address as *const _, &mut info) }, 0);
        info.dli_fbase as u64
    }

    #[test]
    fn places_libc_and_this_executable_where_the_dynamic_linker_did() {
        let in_libc = libc::qsort as *const () as u64;
        let own = places_libc_and_this_executable_where_the_dynamic_linker_did as *const () as u64;
        let mut cache = TablesCache::default();
        for address in [in_libc, own] {
            let mapping = code_mapping(address);
            let tables = cache.tables(&mapping).expect("the module's tables");
            assert!(tables.any(), "{mapping:?}");
            assert!(matches!(
                tables.cfi,
                Cfi::EhFrame {
                    eh_frame_hdr: Some(_),
                    ..
                }
            ));
            assert_eq!(
                tables.bias(&mapping),
                Some(linker_bias(address)),
                "{mapping:?}"
            );
        }
        // Each read once (with its separate debug file, when installed): a second ask is
        // answered from the cache.
        let read = cache.files_read;
        assert!((2..=4).contains(&read), "{read}");
        cache.tables(&code_mapping(in_libc)).unwrap();
        cache.tables(&code_mapping(own)).unwrap();
        assert_eq!(cache.files_read, read);
    }

    #[test]
    fn reads_the_vdso_from_the_loaders_own_memory() {
        let maps = MappingTable::read(std::process::id() as i32).unwrap();
        let vdso = maps.mappings().find(|m| &*m.name == VDSO).unwrap();
        let tables = TablesCache::default()
            .tables(vdso)
            .expect("the vDSO's tables");
        assert!(matches!(
            tables.cfi,
            Cfi::EhFrame {
                eh_frame_hdr: Some(_),
                ..
            }
        ));
        assert_eq!(tables.bias(vdso), Some(vdso.start));
    }

    /// One entry: its 32-bit length, its id, and `body` bytes of content.
    fn entry(id: u32, body: usize) -> Vec<u8> {
        let length = (4 + body) as u32;
        [length.to_le_bytes(), id.to_le_bytes()]
            .concat()
            .into_iter()
            .chain(std::iter::repeat_n(0, body))
            .collect()
    }

    #[test]
    fn counts_the_fdes_of_either_section() {
        // A CIE, then two FDEs that point back to it, then the terminator.
        let eh_frame = [entry(0, 12), entry(20, 20), entry(48, 20), vec![0; 4]].concat();
        assert_eq!(fde_count(&eh_frame, Kind::EhFrame), 2);
        // What a library built without unwind tables keeps: the terminator alone.
        assert_eq!(fde_count(&[0; 4], Kind::EhFrame), 0);
        let debug_frame = [
            entry(u32::MAX, 12),
            entry(0, 20),
            entry(0, 20),
            entry(0, 20),
        ]
        .concat();
        assert_eq!(fde_count(&debug_frame, Kind::DebugFrame), 3);
        // An entry that runs past the section's end is counted, and ends the walk.
        assert_eq!(fde_count(&entry(0, 20)[..10], Kind::DebugFrame), 1);
    }
}
