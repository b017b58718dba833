//! Finds where the running kernel keeps what leads from a task to a mapped file's identity and
//! path, and to a new image's memory layout, from its BTF type information.

use btf_rs::Btf;
use demo_common::FileLayout;

use super::task_layout::{TaskLayoutError, member_offset};

/// Reads the offsets the mapping-capture programs follow from the kernel's BTF.
pub fn of_kernel(btf: &Btf) -> Result<FileLayout, TaskLayoutError> {
    let at = |strukt, member| member_offset(btf, strukt, member);
    let mm = |member| at("mm_struct", member);
    Ok(FileLayout {
        task_files: at("task_struct", "files")?,
        task_mm: at("task_struct", "mm")?,
        files_fdt: at("files_struct", "fdt")?,
        fdtable_max_fds: at("fdtable", "max_fds")?,
        fdtable_fd: at("fdtable", "fd")?,
        file_path: at("file", "f_path")?,
        file_inode: at("file", "f_inode")?,
        path_mnt: at("path", "mnt")?,
        path_dentry: at("path", "dentry")?,
        inode_ino: at("inode", "i_ino")?,
        inode_sb: at("inode", "i_sb")?,
        super_block_dev: at("super_block", "s_dev")?,
        dentry_parent: at("dentry", "d_parent")?,
        dentry_name: at("dentry", "d_name")?,
        qstr_name: at("qstr", "name")?,
        mount_parent: at("mount", "mnt_parent")?,
        mount_mountpoint: at("mount", "mnt_mountpoint")?,
        mount_mnt: at("mount", "mnt")?,
        vfsmount_root: at("vfsmount", "mnt_root")?,
        mm_exe_file: mm("exe_file")?,
        mm_layout: [
            mm("start_code")?,
            mm("end_code")?,
            mm("start_data")?,
            mm("end_data")?,
            mm("start_brk")?,
            mm("start_stack")?,
        ],
        mm_saved_auxv: mm("saved_auxv")?,
        vma_bounds: [
            at("vm_area_struct", "vm_start")?,
            at("vm_area_struct", "vm_end")?,
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{kernel::task_layout::running_kernel_btf, model::events::ImageLayout};

    /// The offsets of this machine's kernel, against what its source declares: `struct path` is
    /// `{ mnt, dentry }`; `mount` begins with a hash node (two pointers), then `mnt_parent`,
    /// `mnt_mountpoint` and the embedded `vfsmount`, whose first member is `mnt_root`; `qstr`
    /// is a 64-bit hash and length, then the name; `mm_struct`'s code, data, brk and stack
    /// fields sit inside an anonymous structure, in that order, `end_code` right after
    /// `start_code`; `file`'s `f_path` is in an anonymous union after its inode.
    #[test]
    fn the_running_kernel_has_the_fields_where_its_source_puts_them() {
        let layout = of_kernel(&running_kernel_btf().unwrap()).unwrap();
        assert_eq!((layout.path_mnt, layout.path_dentry), (0, 8));
        assert_eq!(
            (
                layout.mount_parent,
                layout.mount_mountpoint,
                layout.mount_mnt
            ),
            (16, 24, 32)
        );
        assert_eq!(layout.vfsmount_root, 0);
        assert_eq!(layout.qstr_name, 8);
        let mm = ImageLayout::from(layout.mm_layout);
        let (start_code, end_code, start_data) = (mm.start_code, mm.end_code, mm.start_data);
        let (end_data, start_brk, start_stack) = (mm.end_data, mm.start_brk, mm.start_stack);
        assert!(start_code > 0, "{layout:?}");
        assert_eq!(end_code, start_code + 8);
        assert!(
            start_data > end_code && end_data == start_data + 8,
            "{layout:?}"
        );
        assert!(
            start_brk > end_data && start_stack > start_brk,
            "{layout:?}"
        );
        assert!(layout.mm_saved_auxv > start_stack, "{layout:?}");
        assert!(layout.file_path > layout.file_inode, "{layout:?}");
        assert_eq!(layout.fdtable_fd, 8);
        assert!(layout.dentry_name > layout.dentry_parent, "{layout:?}");
        // `vm_area_struct` opens with `vm_start` and `vm_end`.
        assert_eq!(layout.vma_bounds, [0, 8]);
    }
}
