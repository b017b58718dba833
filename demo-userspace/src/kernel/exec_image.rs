//! The file mappings of a new image, rebuilt from what the kernel side captured at exec and
//! the program headers of the files: the executable at the load bias its entry point gives,
//! and its interpreter at AT_BASE. The kernel made these mappings itself, with no mmap to
//! capture, and a short-lived program is often gone before /proc could be read.

use std::{
    fs::File,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::PathBuf,
    sync::Arc,
};

use object::{
    Endianness, ReadCache,
    elf::{FileHeader64, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD},
    read::elf::{FileHeader, ProgramHeader},
};

use super::mappings::{Mapping, perms};
use crate::model::events::{CapturedFile, ExecImage};

const PAGE: u64 = 4096;

/// One PT_LOAD segment's file part.
#[derive(Debug)]
struct Load {
    vaddr: u64,
    file_size: u64,
    offset: u64,
    flags: u32,
}

/// What the mappings of an ELF file need of it.
#[derive(Debug)]
struct ElfImage {
    entry: u64,
    loads: Vec<Load>,
    interpreter: Option<PathBuf>,
}

/// The mappings the kernel made for `image`: the vDSO, and the executable's and its
/// interpreter's file parts, unless the executable's path is not known, or the file there now
/// is not the one the kernel ran (another device or inode), or is not a 64-bit ELF file.
pub fn image_mappings(image: &ExecImage) -> Vec<Mapping> {
    let mut mappings = elf_mappings(image);
    if image.vdso != 0
        && let Some(size) = vdso_size()
    {
        mappings.push(Mapping {
            start: image.vdso,
            end: image.vdso + size,
            perms: "r-xp".to_owned(),
            name: VDSO.into(),
            file_offset: 0,
            captured: true,
        });
    }
    mappings
}

/// The file parts of the executable and its interpreter (see [`image_mappings`]).
fn elf_mappings(image: &ExecImage) -> Vec<Mapping> {
    let Some(path) = &image.exe.path else {
        return Vec::new();
    };
    let Some(exe) = open_same(path, &image.exe).and_then(|file| read_elf(&file)) else {
        return Vec::new();
    };
    let bias = image.entry.wrapping_sub(exe.entry);
    let mut mappings = file_mappings(&exe, path, bias);
    // The interpreter is the one the executable names, as the kernel opened it; its identity
    // was not captured, so the path is resolved as the kernel resolved it at exec.
    if image.interpreter_base != 0
        && let Some(interpreter) = &exe.interpreter
        && let Ok(resolved) = std::fs::canonicalize(interpreter)
        && let Some(elf) = File::open(&resolved).ok().and_then(|file| read_elf(&file))
    {
        let name: Arc<str> = resolved.display().to_string().into();
        mappings.extend(file_mappings(&elf, &name, image.interpreter_base));
    }
    mappings
}

/// The name /proc gives the vDSO.
const VDSO: &str = "[vdso]";

/// The vDSO's size: the kernel maps the same image into every 64-bit process, so the loader's
/// own shows it; read once.
fn vdso_size() -> Option<u64> {
    static SIZE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let own = super::mappings::MappingTable::read(std::process::id() as i32).ok()?;
        own.mappings()
            .find(|m| &*m.name == VDSO)
            .map(|m| m.end - m.start)
    })
}

/// The file at `path`, when it is the one the kernel captured.
fn open_same(path: &str, captured: &CapturedFile) -> Option<File> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let same = libc::major(meta.dev()) == captured.device.major
        && libc::minor(meta.dev()) == captured.device.minor
        && meta.ino() == captured.inode;
    same.then_some(file)
}

/// The program headers of a 64-bit ELF file, read without reading the rest of it.
fn read_elf(file: &File) -> Option<ElfImage> {
    let cache = ReadCache::new(file);
    let header = FileHeader64::<Endianness>::parse(&cache).ok()?;
    let endian = header.endian().ok()?;
    let mut image = ElfImage {
        entry: header.e_entry(endian),
        loads: Vec::new(),
        interpreter: None,
    };
    for segment in header.program_headers(endian, &cache).ok()? {
        match segment.p_type(endian) {
            PT_LOAD if segment.p_filesz(endian) > 0 => image.loads.push(Load {
                vaddr: segment.p_vaddr(endian),
                file_size: segment.p_filesz(endian),
                offset: segment.p_offset(endian),
                flags: segment.p_flags(endian),
            }),
            PT_INTERP => {
                let bytes = segment.data(endian, &cache).ok()?;
                let name = bytes.split(|&b| b == 0).next().unwrap_or_default();
                image.interpreter = Some(PathBuf::from(std::ffi::OsStr::from_bytes(name)));
            }
            _ => {}
        }
    }
    Some(image)
}

/// The file part of each loaded segment of `elf`, mapped at `bias`: from the segment's page
/// to the page that holds its last file byte (the rest of a segment is anonymous memory).
fn file_mappings(elf: &ElfImage, name: &str, bias: u64) -> Vec<Mapping> {
    let name: Arc<str> = name.into();
    elf.loads
        .iter()
        .map(|load| {
            let start = bias.wrapping_add(load.vaddr);
            let prot = [
                (PF_R, libc::PROT_READ),
                (PF_W, libc::PROT_WRITE),
                (PF_X, libc::PROT_EXEC),
            ]
            .iter()
            .filter(|(flag, _)| load.flags & flag != 0)
            .fold(0, |prot, (_, bit)| prot | *bit as u64);
            Mapping {
                start: start & !(PAGE - 1),
                end: start.wrapping_add(load.file_size).wrapping_add(PAGE - 1) & !(PAGE - 1),
                perms: perms(prot, false),
                name: Arc::clone(&name),
                file_offset: load.offset & !(PAGE - 1),
                captured: true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{
        kernel::mappings::MappingTable,
        model::events::{DeviceNumber, ImageLayout},
    };

    /// `path` as the kernel would name it in a capture.
    fn captured(path: &Path) -> CapturedFile {
        let meta = std::fs::metadata(path).unwrap();
        CapturedFile {
            device: DeviceNumber {
                major: libc::major(meta.dev()),
                minor: libc::minor(meta.dev()),
            },
            inode: meta.ino(),
            path: Some(path.display().to_string().into()),
        }
    }

    /// This test process's own image, from its auxiliary vector and executable, as a capture
    /// at its exec would give it.
    fn own_image() -> ExecImage {
        let auxv = std::fs::read("/proc/self/auxv").unwrap();
        let words: Vec<u64> = auxv
            .chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
            .collect();
        let entry = |kind: u64| {
            words
                .chunks_exact(2)
                .find(|pair| pair[0] == kind)
                .map_or(0, |pair| pair[1])
        };
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        ExecImage {
            pid: std::process::id(),
            exe: captured(&exe),
            layout: ImageLayout::default(),
            interpreter_base: entry(7),
            program_headers: entry(3),
            entry: entry(9),
            vdso: entry(33),
            stack: None,
            command: String::new(),
        }
    }

    /// Every mapping rebuilt for this process names each of its pages as /proc/self/maps
    /// does, with the same file offset; the executable and the interpreter are both there.
    #[test]
    fn the_image_rebuilt_from_the_capture_is_what_proc_shows() {
        let image = own_image();
        let mappings = image_mappings(&image);
        let proc = MappingTable::read(std::process::id() as i32).unwrap();
        let exe = image.exe.path.clone().unwrap();
        assert!(mappings.iter().any(|m| m.name == exe), "{mappings:#?}");
        assert!(
            mappings.iter().any(|m| m.name.contains("ld-linux")),
            "{mappings:#?}"
        );
        assert!(mappings.iter().any(|m| &*m.name == VDSO), "{mappings:#?}");
        for mapping in &mappings {
            for page in (mapping.start..mapping.end).step_by(PAGE as usize) {
                let there = proc.find(page).unwrap();
                assert_eq!(
                    (&*there.name, there.offset_of(page)),
                    (&*mapping.name, mapping.offset_of(page)),
                    "page {page:#x} of {mapping:?}"
                );
            }
        }
    }

    /// A file at the path that is not the one the kernel ran gives no mappings at all.
    #[test]
    fn another_file_at_the_path_is_not_believed() {
        let mut image = own_image();
        image.exe.inode += 1;
        assert_eq!(elf_mappings(&image), []);
    }
}
