//! A file as the kernel holds it, read at the moment it is mapped: the file behind a
//! descriptor of the current task, its identity (device and inode) and its path, walked from
//! its dentry up through the mounts to the root of the mount namespace. Every read is a
//! `bpf_probe_read_kernel` at an offset the loader took from the kernel's BTF.

use core::{ffi::c_void, ptr::addr_of_mut};

use aya_ebpf::helpers::{bpf_probe_read_kernel, generated::bpf_probe_read_kernel_str};
use demo_common::{
    CapturedPath, FileIdentity, FileLayout, MAX_PATH_STEPS, PATH_BYTES, PATH_COMPONENT_BYTES,
};

/// Where the running kernel keeps the fields followed here; the loader sets it from the
/// kernel's BTF before loading.
#[unsafe(no_mangle)]
static FILE_LAYOUT: FileLayout = FileLayout {
    task_files: 0,
    task_mm: 0,
    files_fdt: 0,
    fdtable_max_fds: 0,
    fdtable_fd: 0,
    file_path: 0,
    file_inode: 0,
    path_mnt: 0,
    path_dentry: 0,
    inode_ino: 0,
    inode_sb: 0,
    super_block_dev: 0,
    dentry_parent: 0,
    dentry_name: 0,
    qstr_name: 0,
    mount_parent: 0,
    mount_mountpoint: 0,
    mount_mnt: 0,
    vfsmount_root: 0,
    mm_exe_file: 0,
    mm_layout: [0; 6],
    mm_saved_auxv: 0,
    vma_bounds: [0; 2],
};

/// One offset of [`FILE_LAYOUT`]. The volatile read keeps it a load from the read-only data
/// the loader filled, instead of the zero the compiler would fold in from the initializer.
#[inline(always)]
pub(crate) fn offset(field: &'static u64) -> u64 {
    // SAFETY: a reference to a field of a static, valid and aligned.
    unsafe { core::ptr::read_volatile(field) }
}

/// The layout, for naming its fields at the call sites.
#[inline(always)]
pub(crate) fn layout() -> &'static FileLayout {
    &FILE_LAYOUT
}

/// Reads the `T` at kernel address `address`; `None` where the kernel says it cannot be read.
#[inline(always)]
pub(crate) fn read<T>(address: u64) -> Option<T> {
    // SAFETY: `bpf_probe_read_kernel` checks the address and fails rather than fault.
    unsafe { bpf_probe_read_kernel(address as *const T) }.ok()
}

/// The `struct file` behind descriptor `fd` of `task` (a kernel `task_struct` address), or
/// `None` when it has none. The descriptor table is read with helper calls: a load at a
/// variable index through a typed kernel pointer is not allowed.
#[inline(always)]
pub(crate) fn file_of_fd(task: u64, fd: u64) -> Option<u64> {
    let l = layout();
    let files = read::<u64>(task + offset(&l.task_files))?;
    let table = read::<u64>(files + offset(&l.files_fdt))?;
    let max_fds = read::<u32>(table + offset(&l.fdtable_max_fds))?;
    if fd >= u64::from(max_fds) {
        return None;
    }
    let descriptors = read::<u64>(table + offset(&l.fdtable_fd))?;
    let file = read::<u64>(descriptors + fd * 8)?;
    (file != 0).then_some(file)
}

/// The device and inode of `file` (a kernel `struct file` address); zero where unreadable.
#[inline(always)]
pub(crate) fn identity(file: u64) -> FileIdentity {
    let l = layout();
    let inode = read::<u64>(file + offset(&l.file_inode)).unwrap_or(0);
    let superblock = read::<u64>(inode + offset(&l.inode_sb)).unwrap_or(0);
    FileIdentity {
        device: read::<u32>(superblock + offset(&l.super_block_dev)).unwrap_or(0),
        _padding: 0,
        inode: read::<u64>(inode + offset(&l.inode_ino)).unwrap_or(0),
    }
}

/// Writes `file`'s path into `out`, a [`CapturedPath`] in a reserved record: its components
/// leaf first, each ending in a NUL, and whether the walk reached the namespace's root.
///
/// The walk is d_path's: up the dentries to the root of their mount, then from the mountpoint
/// in the parent mount, until a mount that is its own parent. A dentry that is its own parent
/// below its mount's root belongs to no directory (a pipe, a memfd): that path is incomplete.
///
/// # Safety
/// `out` points at a whole, writable [`CapturedPath`].
#[inline(always)]
pub(crate) unsafe fn capture_path(file: u64, out: *mut CapturedPath) {
    let l = layout();
    let path = file + offset(&l.file_path);
    let mut dentry = read::<u64>(path + offset(&l.path_dentry)).unwrap_or(0);
    let mut vfsmount = read::<u64>(path + offset(&l.path_mnt)).unwrap_or(0);
    let mount_mnt = offset(&l.mount_mnt);
    let mut mount = vfsmount.wrapping_sub(mount_mnt);
    // SAFETY: `out` is a whole CapturedPath (the caller's promise).
    let bytes = unsafe { addr_of_mut!((*out).bytes) }.cast::<u8>();
    let mut used: usize = 0;
    let mut complete = 0;
    for _ in 0..MAX_PATH_STEPS {
        // Always true (a component is read only below PATH_COMPONENT_BYTES, and is at most that
        // long), but said to the verifier: the walks that reach this point by different
        // branches then look alike to it, and it checks one instead of every combination,
        // which made loading take a third of a second per program that walks a path.
        used &= PATH_BYTES - 1;
        let Some(root) = read::<u64>(vfsmount + offset(&l.vfsmount_root)) else {
            break;
        };
        if dentry == root {
            let Some(parent) = read::<u64>(mount + offset(&l.mount_parent)) else {
                break;
            };
            if parent == mount {
                complete = 1;
                break;
            }
            let Some(mountpoint) = read::<u64>(mount + offset(&l.mount_mountpoint)) else {
                break;
            };
            dentry = mountpoint;
            mount = parent;
            vfsmount = parent + mount_mnt;
            continue;
        }
        let Some(parent) = read::<u64>(dentry + offset(&l.dentry_parent)) else {
            break;
        };
        if parent == dentry || used >= PATH_COMPONENT_BYTES {
            break;
        }
        let Some(name) = read::<u64>(dentry + offset(&l.dentry_name) + offset(&l.qstr_name)) else {
            break;
        };
        // SAFETY: the component starts in the first PATH_COMPONENT_BYTES of the buffer (the
        // mask only says so to the verifier) and is at most PATH_COMPONENT_BYTES long, so it
        // ends inside PATH_BYTES; the helper fails rather than fault on the source.
        let read = unsafe {
            bpf_probe_read_kernel_str(
                bytes
                    .add(used & (PATH_COMPONENT_BYTES - 1))
                    .cast::<c_void>(),
                PATH_COMPONENT_BYTES as u32,
                name as *const c_void,
            )
        };
        if read <= 0 {
            break;
        }
        used += read as usize;
        dentry = parent;
    }
    // SAFETY: as above.
    unsafe {
        addr_of_mut!((*out).len).write(used as u32);
        addr_of_mut!((*out).complete).write(complete);
    }
}
