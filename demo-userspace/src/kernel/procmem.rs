//! Reads what the kernel says about a process's memory: page presence (/proc/PID/pagemap),
//! per-VMA usage (/proc/PID/smaps), command names, stack limits and fault counters.

use demo_common::FaultCounters;
use procfs::process::{MMapPath, MemoryMap, PageInfo, Process, Stat};

/// Failure to read one of the /proc files of the target.
#[derive(Debug, thiserror::Error)]
#[error("read /proc/{pid}/{file}: {source}")]
pub struct ProcMemError {
    pid: i32,
    file: &'static str,
    source: procfs::ProcError,
}

fn open(pid: i32, file: &'static str) -> Result<Process, ProcMemError> {
    Process::new(pid).map_err(|source| ProcMemError { pid, file, source })
}

/// Every line of /proc/PID/maps.
pub(super) fn maps(pid: i32) -> Result<Vec<MemoryMap>, ProcMemError> {
    let maps = open(pid, "maps")?.maps().map_err(|source| ProcMemError {
        pid,
        file: "maps",
        source,
    })?;
    Ok(maps.0)
}

/// The name of a mapping as demo shows it: a file's whole path, or `[heap]`, `[anon]`, ….
pub(super) fn mapping_name(path: &MMapPath) -> String {
    match path {
        // The whole path, as perf trace names a dso: two files of one name stay apart.
        MMapPath::Path(path) => path.display().to_string(),
        MMapPath::Heap => "[heap]".to_owned(),
        MMapPath::Stack => "[stack]".to_owned(),
        MMapPath::TStack(tid) => format!("[stack:{tid}]"),
        MMapPath::Vdso => "[vdso]".to_owned(),
        MMapPath::Vvar => "[vvar]".to_owned(),
        MMapPath::Vsyscall => "[vsyscall]".to_owned(),
        MMapPath::Anonymous => "[anon]".to_owned(),
        MMapPath::Other(name) => format!("[{name}]"),
        other => format!("{other:?}"),
    }
}

/// The command name of a process (/proc/PID/comm), or `None` once it is gone.
pub fn command_name(pid: i32) -> Option<String> {
    Process::new(pid).ok()?.stat().ok().map(|stat| stat.comm)
}

/// What /proc/PID/pagemap and /proc/kpageflags say about one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePresence {
    /// Bit 63: the page is in RAM (its own page or the shared zero page).
    pub present: bool,
    /// Page frame number, readable as root; 0 when absent or hidden.
    pub pfn: u64,
    /// kpageflags says the frame is the shared zero page, which RSS does not count.
    pub zero: bool,
    /// Bit 61: a page of a file (or shared anonymous memory), not a private anonymous one.
    pub file: bool,
    /// kpageflags says the frame is part of a transparent huge page.
    pub huge: bool,
}

/// Reads pagemap entries for `count` pages starting at the page that holds `first_page_base`.
pub fn page_presence(
    pid: i32,
    first_page_base: u64,
    page_size: u64,
    count: u64,
) -> Result<Vec<PagePresence>, ProcMemError> {
    let error = |source| ProcMemError {
        pid,
        file: "pagemap",
        source,
    };
    let mut pagemap = open(pid, "pagemap")?.pagemap().map_err(error)?;
    let first = (first_page_base / page_size) as usize;
    let entries = pagemap
        .get_range_info(first..first + count as usize)
        .map_err(error)?;
    // kpageflags needs root, and only a frame number (which pagemap hides from others) needs
    // it: it is opened at the first present page with a frame number.
    let kpageflags_error = |source| ProcMemError {
        pid,
        file: "../kpageflags",
        source,
    };
    let mut kpageflags: Option<procfs::KPageFlags> = None;
    entries
        .into_iter()
        .map(|entry| {
            use procfs::{PhysicalPageFlags, process::MemoryPageFlags};
            let (present, pfn, file) = match entry {
                PageInfo::MemoryPage(flags) => (
                    flags.contains(MemoryPageFlags::PRESENT),
                    flags.get_page_frame_number().0,
                    flags.contains(MemoryPageFlags::FILE),
                ),
                PageInfo::SwapPage(_) => (false, 0, false),
            };
            let frame = if present && pfn != 0 {
                let flags = match &mut kpageflags {
                    Some(flags) => flags,
                    None => kpageflags.insert(procfs::KPageFlags::new().map_err(kpageflags_error)?),
                };
                flags
                    .get_info(procfs::process::Pfn(pfn))
                    .map_err(kpageflags_error)?
            } else {
                PhysicalPageFlags::empty()
            };
            Ok(PagePresence {
                present,
                pfn,
                zero: frame.contains(PhysicalPageFlags::ZERO_PAGE),
                file,
                huge: frame.contains(PhysicalPageFlags::THP),
            })
        })
        .collect()
}

/// The `pmap -x` columns of one VMA, from /proc/PID/smaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmaUsage {
    pub start: u64,
    pub end: u64,
    pub size_kib: u64,
    pub rss_kib: u64,
    pub dirty_kib: u64,
    /// smaps splits the resident pages by how many mappings map them: Shared when more than
    /// one does (another process, or another mapping of the same file), Private otherwise,
    /// whatever MAP_SHARED or MAP_PRIVATE said.
    pub shared_clean_kib: u64,
    pub shared_dirty_kib: u64,
    pub private_clean_kib: u64,
    pub private_dirty_kib: u64,
    /// Resident pages that are anonymous: in a file mapping, the copies private writes made.
    pub anonymous_kib: u64,
    /// Of those, the ones in transparent huge pages.
    pub anon_huge_kib: u64,
    pub perms: String,
    pub name: String,
}

/// Usage of the VMA that holds `address`, or `None` when no VMA does.
pub fn vma_usage(pid: i32, address: u64) -> Result<Option<VmaUsage>, ProcMemError> {
    find_vma(pid, |map| {
        map.address.0 <= address && address < map.address.1
    })
}

/// Usage of the VMA named `name` (e.g. `[stack]`), or `None` when there is none.
pub fn named_vma_usage(pid: i32, name: &str) -> Result<Option<VmaUsage>, ProcMemError> {
    find_vma(pid, |map| mapping_name(&map.pathname) == name)
}

fn find_vma(
    pid: i32,
    wanted: impl Fn(&procfs::process::MemoryMap) -> bool,
) -> Result<Option<VmaUsage>, ProcMemError> {
    Ok(smaps(pid)?.find(|map| wanted(map)).map(|map| usage(&map)))
}

/// Usage of every VMA of the process, in address order: `pmap -x`'s rows.
pub fn process_vma_usage(pid: i32) -> Result<Vec<VmaUsage>, ProcMemError> {
    Ok(smaps(pid)?.map(|map| usage(&map)).collect())
}

/// The VMA of `vmas` that holds `first`, or else the one that holds `last`: a region's VMA (a
/// stack grows down into its region, so its VMA holds the region's last byte).
pub fn region_vma(vmas: &[VmaUsage], first: u64, last: u64) -> Option<&VmaUsage> {
    let holds = |vma: &VmaUsage, address: u64| vma.start <= address && address < vma.end;
    vmas.iter()
        .find(|vma| holds(vma, first))
        .or_else(|| vmas.iter().find(|vma| holds(vma, last)))
}

fn smaps(pid: i32) -> Result<impl Iterator<Item = procfs::process::MemoryMap>, ProcMemError> {
    let smaps = open(pid, "smaps")?.smaps().map_err(|source| ProcMemError {
        pid,
        file: "smaps",
        source,
    })?;
    Ok(smaps.into_iter())
}

fn usage(map: &procfs::process::MemoryMap) -> VmaUsage {
    let field = |key: &str| map.extension.map.get(key).copied().unwrap_or(0) / 1024;
    VmaUsage {
        start: map.address.0,
        end: map.address.1,
        size_kib: (map.address.1 - map.address.0) / 1024,
        rss_kib: field("Rss"),
        dirty_kib: field("Private_Dirty") + field("Shared_Dirty"),
        shared_clean_kib: field("Shared_Clean"),
        shared_dirty_kib: field("Shared_Dirty"),
        private_clean_kib: field("Private_Clean"),
        private_dirty_kib: field("Private_Dirty"),
        anonymous_kib: field("Anonymous"),
        anon_huge_kib: field("AnonHugePages"),
        perms: map.perms.as_str(),
        name: mapping_name(&map.pathname),
    }
}

/// Process `pid`'s RLIMIT_STACK soft limit in bytes, or `None` when unlimited or unreadable.
pub fn stack_limit(pid: i32) -> Option<u64> {
    match Process::new(pid)
        .ok()?
        .limits()
        .ok()?
        .max_stack_size
        .soft_limit
    {
        procfs::process::LimitValue::Value(bytes) => Some(bytes),
        procfs::process::LimitValue::Unlimited => None,
    }
}

/// Thread `tid` of process `pid`'s own fault counters now (/proc/PID/task/TID/stat), or `None`
/// when the thread is gone.
pub fn thread_fault_counters(pid: u32, tid: u32) -> Option<FaultCounters> {
    let stat = Process::new(pid as i32)
        .and_then(|process| process.task_from_tid(tid as i32))
        .and_then(|task| task.stat())
        .ok()?;
    Some(fault_counters_of(&stat))
}

/// The sum of the fault counters of process `pid`'s live threads (/proc/PID/task/*/stat), or
/// `None` once it is gone. Unlike the process's own stat, it leaves out threads that are gone.
pub fn live_threads_fault_counters(pid: u32) -> Option<FaultCounters> {
    let tasks = Process::new(pid as i32)
        .and_then(|process| process.tasks())
        .ok()?;
    let mut sum = FaultCounters::default();
    // A thread that exits while the directory is read is left out, as it would be a moment later.
    for stat in tasks.flatten().filter_map(|task| task.stat().ok()) {
        sum = sum.plus(fault_counters_of(&stat));
    }
    Some(sum)
}

/// The minor and major fault counters of a /proc stat file (a process's or a thread's).
pub fn fault_counters_of(stat: &Stat) -> FaultCounters {
    FaultCounters {
        minor: stat.minflt,
        major: stat.majflt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs unprivileged too: pagemap hides frame numbers from users, and kpageflags is then
    /// never opened.
    #[test]
    fn pagemap_and_smaps_see_a_written_page() {
        let page_size = procfs::page_size();
        let buffer = vec![1u8; page_size as usize * 4];
        let address = buffer.as_ptr() as u64;
        let pid = std::process::id() as i32;
        let base = address - address % page_size;
        let pages = page_presence(pid, base, page_size, 1).unwrap();
        assert!(pages[0].present);
        let vma = vma_usage(pid, address).unwrap().unwrap();
        assert!(vma.rss_kib >= 4, "{vma:?}");
        assert!(vma.start <= address && address < vma.end);
    }
}
