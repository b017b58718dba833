//! The page-state model of a region, derived from fault events; the text report and the JSON
//! output both draw from it, so they cannot disagree.

use std::{collections::BTreeMap, ops::Range};

use serde::Serialize;

use crate::{model::access::Access, model::region::Location};

/// What the faults seen so far say about one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageState {
    /// No fault has touched it: not backed by memory.
    Untouched,
    /// First touched by a read: the kernel mapped the shared zero page, which RSS does not count.
    ZeroPage,
    /// Written: backed by a page of its own.
    Resident,
}

/// What first made a page present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum PageOrigin {
    /// It was present when the array was allocated (e.g. heap memory used before).
    BeforeWalk,
    /// A completed fault in `step` at byte `offset` (element `index`) of the array.
    Fault { step: u32, offset: i64, index: i64 },
    /// The kernel mapped it in `step` along with another page's fault, without a fault of
    /// its own.
    WithFault { step: u32, how: Companion },
}

/// How the kernel maps pages beside the one that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Companion {
    /// One fault mapped a whole transparent huge page.
    HugePage,
    /// A read fault on a file mapping mapped the neighbouring pages already in the page cache
    /// (fault-around, `fault_around_bytes`, 64 KiB by default).
    FaultAround,
}

/// Pages per chunk of the model: a 2 MiB huge page's worth of 4 KiB pages, so a chunk costs
/// about 600 bytes and a region's memory follows the pages touched, not the pages mapped.
const CHUNK_PAGES: u64 = 512;

/// The states of one run of `CHUNK_PAGES` pages, kept only while one of them is touched or
/// faulted in the current step.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chunk {
    states: [PageState; CHUNK_PAGES as usize],
    /// One bit a page: faulted in the current step.
    faulted: [u64; CHUNK_PAGES as usize / 64],
    /// How many of `states` are resident and zero page, so a count over whole chunks need
    /// not look at their pages.
    resident: u32,
    zero: u32,
}

impl Chunk {
    fn new() -> Box<Self> {
        Box::new(Self {
            states: [PageState::Untouched; CHUNK_PAGES as usize],
            faulted: [0; CHUNK_PAGES as usize / 64],
            resident: 0,
            zero: 0,
        })
    }

    /// Puts page `at` (within the chunk) in `state`, keeping the counts.
    fn set(&mut self, at: usize, state: PageState) {
        match self.states[at] {
            PageState::Resident => self.resident -= 1,
            PageState::ZeroPage => self.zero -= 1,
            PageState::Untouched => {}
        }
        match state {
            PageState::Resident => self.resident += 1,
            PageState::ZeroPage => self.zero += 1,
            PageState::Untouched => {}
        }
        self.states[at] = state;
    }

    fn faulted(&self, at: usize) -> bool {
        self.faulted[at / 64] & (1 << (at % 64)) != 0
    }

    /// Nothing to keep: every page untouched, none faulted in this step.
    fn is_empty(&self) -> bool {
        self.resident == 0 && self.zero == 0 && self.faulted.iter().all(|&bits| bits == 0)
    }
}

/// Per-page state of one region, what made each page present (when kept), and which pages
/// faulted in the current step.
///
/// The states are sparse: a region is a map of chunks of `CHUNK_PAGES` pages, and only chunks
/// with a touched page exist, so a 16 TiB `MAP_NORESERVE` mapping with two pages touched costs
/// two chunks, and every count, list and strip costs the chunks touched (and the glyphs drawn),
/// never the pages mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageModel {
    page_count: u64,
    /// Touched chunks by chunk number (page / `CHUNK_PAGES`); a chunk left with no touched
    /// page is removed, so equal models have equal maps.
    chunks: BTreeMap<u64, Box<Chunk>>,
    /// What first made each present page present, only when `keep_origins`: a walk's report
    /// asks for them, a trace's regions do not.
    origins: BTreeMap<u64, PageOrigin>,
    keep_origins: bool,
    /// A read maps the file's own page, not the zero page.
    file_backed: bool,
}

impl PageModel {
    /// A model that keeps what first made each page present, for a walk's small array.
    pub fn new(page_count: usize) -> Self {
        Self {
            keep_origins: true,
            ..Self::without_origins(page_count)
        }
    }

    /// A model of the page states alone, for the regions of a trace; it costs nothing until a
    /// page is touched.
    pub fn without_origins(page_count: usize) -> Self {
        Self {
            page_count: page_count as u64,
            chunks: BTreeMap::new(),
            origins: BTreeMap::new(),
            keep_origins: false,
            file_backed: false,
        }
    }

    /// The model of a file mapping when `file_backed`, where a read fault maps a page of the
    /// file's page cache, not the zero page.
    pub fn file_backed(mut self, file_backed: bool) -> Self {
        self.file_backed = file_backed;
        self
    }

    /// How many pages the model holds.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Starts a new step: earlier faults stay in the state, but no longer count as recent.
    pub fn begin_step(&mut self) {
        for chunk in self.chunks.values_mut() {
            chunk.faulted.fill(0);
        }
        self.chunks.retain(|_, chunk| !chunk.is_empty());
    }

    /// The chunk of `page` and the page's place in it, made when missing; `None` past the end.
    fn chunk_mut(&mut self, page: u64) -> Option<(&mut Chunk, usize)> {
        (page < self.page_count).then(|| {
            let chunk = self
                .chunks
                .entry(page / CHUNK_PAGES)
                .or_insert_with(Chunk::new);
            (&mut **chunk, (page % CHUNK_PAGES) as usize)
        })
    }

    /// Applies one completed fault on `page`. Pages outside the model (past the end) are
    /// ignored, because the kernel backs nothing there.
    pub fn apply_fault(&mut self, page: u64, access: Access, origin: PageOrigin) {
        let file_backed = self.file_backed;
        let Some((chunk, at)) = self.chunk_mut(page) else {
            return;
        };
        let state = match (access, chunk.states[at]) {
            (Access::Read | Access::Exec, PageState::Untouched) if file_backed => {
                PageState::Resident
            }
            (Access::Read | Access::Exec, PageState::Untouched) => PageState::ZeroPage,
            (Access::Read | Access::Exec, kept) => kept,
            // Without the error code the access could have been a write; a page of its own is
            // the conservative guess, which the kernel check shows when it is wrong.
            (Access::Write | Access::Unknown, _) => PageState::Resident,
        };
        chunk.set(at, state);
        chunk.faulted[at / 64] |= 1 << (at % 64);
        if self.keep_origins {
            self.origins.entry(page).or_insert(origin);
        }
    }

    /// Applies a completed fault of `step` (0 outside a walk) at `location` in the region.
    pub fn apply_at(&mut self, location: &Location, access: Access, step: u32) {
        self.apply_fault(
            location.page,
            access,
            PageOrigin::Fault {
                step,
                offset: location.offset,
                index: location.index,
            },
        );
    }

    /// Takes on pages the kernel shows present that no fault explains: memory the process had
    /// touched before the walk began, as a reused heap has.
    pub fn adopt_present(&mut self, resident: &[u64], zero: &[u64]) {
        for (pages, state) in [(resident, PageState::Resident), (zero, PageState::ZeroPage)] {
            self.adopt(pages, state, PageOrigin::BeforeWalk);
        }
    }

    /// Takes on `pages`, which the kernel mapped in `step` along with a fault elsewhere, `how`.
    pub fn adopt_with_fault(&mut self, pages: &[u64], step: u32, how: Companion) {
        self.adopt(
            pages,
            PageState::Resident,
            PageOrigin::WithFault { step, how },
        );
    }

    /// Puts the untouched ones of `pages` in `state`, made present by `origin`; pages past
    /// the region are ignored.
    fn adopt(&mut self, pages: &[u64], state: PageState, origin: PageOrigin) {
        for &page in pages {
            if self.state(page) != Some(PageState::Untouched) {
                continue;
            }
            if let Some((chunk, at)) = self.chunk_mut(page) {
                chunk.set(at, state);
            }
            if self.keep_origins {
                self.origins.insert(page, origin);
            }
        }
    }

    /// Forgets the pages from `first` for `count`, which a syscall took away (MADV_DONTNEED,
    /// munmap): the next access faults as on a page never touched. It costs the chunks touched
    /// in that range, however long the range.
    pub fn forget(&mut self, first: u64, count: u64) {
        let end = first.saturating_add(count).min(self.page_count);
        if first >= end {
            return;
        }
        for (&index, chunk) in self
            .chunks
            .range_mut(first / CHUNK_PAGES..=(end - 1) / CHUNK_PAGES)
        {
            let (from, to) = within(index, first..end);
            for at in from..to {
                chunk.set(at, PageState::Untouched);
            }
        }
        self.chunks.retain(|_, chunk| !chunk.is_empty());
        let gone: Vec<u64> = self.origins.range(first..end).map(|(&p, _)| p).collect();
        for page in gone {
            self.origins.remove(&page);
        }
    }

    /// What first made `page` present, if anything has.
    pub fn origin(&self, page: u64) -> Option<PageOrigin> {
        self.origins.get(&page).copied()
    }

    /// The state of `page`, or `None` past the region.
    pub fn state(&self, page: u64) -> Option<PageState> {
        (page < self.page_count).then(|| {
            self.chunks
                .get(&(page / CHUNK_PAGES))
                .map_or(PageState::Untouched, |chunk| {
                    chunk.states[(page % CHUNK_PAGES) as usize]
                })
        })
    }

    /// Pages with memory of their own, which is what RSS counts.
    pub fn resident_pages(&self) -> Vec<u64> {
        self.pages_in(PageState::Resident)
    }

    /// Pages mapped to the shared zero page.
    pub fn zero_pages(&self) -> Vec<u64> {
        self.pages_in(PageState::ZeroPage)
    }

    /// How many pages are resident, without listing them.
    pub fn resident_count(&self) -> u64 {
        self.chunks
            .values()
            .map(|chunk| u64::from(chunk.resident))
            .sum()
    }

    /// How many of `pages` are resident and how many are the zero page; pages past the region
    /// count as neither.
    pub fn counts_in(&self, pages: Range<u64>) -> (u64, u64) {
        let end = pages.end.min(self.page_count);
        if pages.start >= end {
            return (0, 0);
        }
        let mut counts = (0, 0);
        for (&index, chunk) in self
            .chunks
            .range(pages.start / CHUNK_PAGES..=(end - 1) / CHUNK_PAGES)
        {
            let (from, to) = within(index, pages.start..end);
            if to - from == CHUNK_PAGES as usize {
                counts.0 += u64::from(chunk.resident);
                counts.1 += u64::from(chunk.zero);
                continue;
            }
            for &state in &chunk.states[from..to] {
                match state {
                    PageState::Resident => counts.0 += 1,
                    PageState::ZeroPage => counts.1 += 1,
                    PageState::Untouched => {}
                }
            }
        }
        counts
    }

    /// The touched pages in order, each with its state and whether it faulted in this step.
    fn touched(&self) -> impl Iterator<Item = (u64, PageState, bool)> + '_ {
        self.chunks.iter().flat_map(|(&index, chunk)| {
            (0..CHUNK_PAGES as usize).filter_map(move |at| {
                let (state, recent) = (chunk.states[at], chunk.faulted(at));
                (state != PageState::Untouched || recent).then_some((
                    index * CHUNK_PAGES + at as u64,
                    state,
                    recent,
                ))
            })
        })
    }

    fn pages_in(&self, wanted: PageState) -> Vec<u64> {
        self.touched()
            .filter(|&(_, state, _)| state == wanted)
            .map(|(page, _, _)| page)
            .collect()
    }

    /// One glyph per page: `*` faulted in this step, `#` resident, `0` zero page, `.` untouched.
    /// It is as long as the region, so it is for a walk's array; a trace asks for
    /// [`settled_strip`](Self::settled_strip) in a fixed width.
    pub fn strip(&self) -> String {
        self.glyphs(true)
    }

    /// One glyph per page, with this step's `*` marks when `recent`.
    fn glyphs(&self, recent: bool) -> String {
        let mut glyphs = vec![PageState::Untouched.glyph(); self.page_count as usize];
        for (page, state, faulted) in self.touched() {
            glyphs[page as usize] = if recent && faulted {
                '*'
            } else {
                state.glyph()
            };
        }
        glyphs.into_iter().collect()
    }

    /// The strip in at most `width` glyphs as the pages are now, without this step's `*` marks:
    /// what a trace shows at its end.
    pub fn settled_strip(&self, width: usize) -> String {
        if self.page_count <= width as u64 {
            self.glyphs(false)
        } else {
            self.strip_scaled(width)
        }
    }
}

/// The part of `pages` that lies in chunk `index`, as offsets within the chunk.
fn within(index: u64, pages: Range<u64>) -> (usize, usize) {
    let base = index * CHUNK_PAGES;
    (
        (pages.start.max(base) - base) as usize,
        (pages.end.min(base + CHUNK_PAGES) - base) as usize,
    )
}

impl PageState {
    /// The state's glyph in a page strip: `#` resident, `0` zero page, `.` untouched.
    fn glyph(self) -> char {
        match self {
            Self::Resident => '#',
            Self::ZeroPage => '0',
            Self::Untouched => '.',
        }
    }
}

impl PageModel {
    /// The strip in at most `width` glyphs. When pages outnumber glyphs, each glyph stands for
    /// a run of pages: `#` all resident, `+` some resident or zero, `0` all zero, `.` none.
    /// It costs the glyphs and the chunks touched, not the pages.
    pub fn strip_scaled(&self, width: usize) -> String {
        let pages = self.page_count;
        if pages <= width as u64 {
            return self.strip();
        }
        let per_glyph = pages.div_ceil(width.max(1) as u64);
        (0..pages.div_ceil(per_glyph))
            .map(|glyph| {
                let first = glyph * per_glyph;
                let run = first..(first + per_glyph).min(pages);
                let len = run.end - run.start;
                match self.counts_in(run) {
                    (r, _) if r == len => '#',
                    (0, z) if z == len => '0',
                    (0, 0) => '.',
                    _ => '+',
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy as _;

    use super::*;

    #[test]
    fn forgotten_pages_fault_as_new_and_companions_keep_their_origin() {
        let mut model = PageModel::new(4);
        model.apply_fault(
            0,
            Access::Write,
            PageOrigin::Fault {
                step: 2,
                offset: 0,
                index: 0,
            },
        );
        model.adopt_with_fault(&[1, 2, 9], 2, Companion::HugePage);
        assert_eq!(model.resident_pages(), [0, 1, 2]);
        assert_eq!(
            model.origin(1),
            Some(PageOrigin::WithFault {
                step: 2,
                how: Companion::HugePage
            })
        );
        model.forget(1, 10);
        assert_eq!(model.resident_pages(), [0]);
        assert_eq!(model.origin(2), None);
        model.apply_fault(
            1,
            Access::Read,
            PageOrigin::Fault {
                step: 3,
                offset: 4096,
                index: 1024,
            },
        );
        assert_eq!(model.zero_pages(), [1]);
    }

    fn at(step: u32, index: i64) -> PageOrigin {
        PageOrigin::Fault {
            step,
            offset: index * 4,
            index,
        }
    }

    #[test]
    fn the_seed_walk_fills_pages_one_two_and_zero() {
        let mut model = PageModel::new(5);
        model.begin_step();
        model.apply_fault(1, Access::Write, at(2, 1500));
        assert_eq!(model.strip(), ".*...");
        model.begin_step();
        model.apply_fault(0, Access::Write, at(4, 0));
        assert_eq!(model.strip(), "*#...");
        model.begin_step();
        assert_eq!(model.strip(), "##...");
        assert_eq!(model.resident_pages(), vec![0, 1]);
        assert_eq!(model.origin(1), Some(at(2, 1500)));
        assert_eq!(model.origin(3), None);
    }

    #[test]
    fn a_read_maps_the_zero_page_until_a_write() {
        let mut model = PageModel::new(2);
        model.apply_fault(1, Access::Read, at(2, 1024));
        assert_eq!(model.zero_pages(), vec![1]);
        assert!(model.resident_pages().is_empty());
        model.begin_step();
        assert_eq!(model.strip(), ".0");
        model.apply_fault(1, Access::Write, at(3, 1024));
        assert_eq!(model.resident_pages(), vec![1]);
        assert!(model.zero_pages().is_empty());
        assert_eq!(
            model.origin(1),
            Some(at(2, 1024)),
            "the first fault stays the origin"
        );
    }

    #[test]
    fn pages_present_before_the_walk_are_adopted_once() {
        let mut model = PageModel::new(3);
        model.apply_fault(0, Access::Write, at(1, -4));
        model.adopt_present(&[0, 2, 9], &[1]);
        assert_eq!(model.origin(0), Some(at(1, -4)));
        assert_eq!(model.origin(2), Some(PageOrigin::BeforeWalk));
        assert_eq!(model.zero_pages(), vec![1]);
        assert_eq!(model.resident_pages(), vec![0, 2]);
    }

    #[test]
    fn large_models_share_glyphs() {
        let mut model = PageModel::new(10);
        for page in 0..4 {
            model.apply_fault(page, Access::Write, at(1, 0));
        }
        model.apply_fault(5, Access::Read, at(1, 0));
        model.begin_step();
        assert_eq!(model.strip_scaled(10), "####.0....");
        assert_eq!(model.strip_scaled(5), "##+..");
    }

    #[test]
    fn a_model_without_origins_keeps_the_states() {
        let mut model = PageModel::without_origins(2);
        model.apply_fault(1, Access::Write, at(1, 1024));
        model.adopt_present(&[0], &[]);
        assert_eq!(model.resident_pages(), vec![0, 1]);
        assert_eq!(model.origin(1), None);
    }

    #[test]
    fn faults_past_the_model_change_nothing() {
        let mut model = PageModel::new(1);
        model.apply_fault(5, Access::Write, at(7, 5121));
        assert_eq!(model.strip(), ".");
    }

    #[test]
    fn a_16_tib_model_costs_the_pages_touched() {
        // 16 TiB of 4 KiB pages, two of them touched, far apart.
        let pages = 1u64 << 32;
        let mut model = PageModel::without_origins(pages as usize);
        model.apply_fault(3, Access::Write, at(0, 0));
        model.apply_fault(pages - 1, Access::Read, at(0, 0));
        assert_eq!(model.chunks.len(), 2, "one chunk per touched page");
        assert_eq!(model.resident_pages(), [3]);
        assert_eq!(model.zero_pages(), [pages - 1]);
        assert_eq!(model.resident_count(), 1);
        assert_eq!(model.counts_in(0..pages), (1, 1));
        assert_eq!(model.counts_in(4..pages - 1), (0, 0));
        assert_eq!(model.state(pages - 1), Some(PageState::ZeroPage));
        assert_eq!(model.state(pages), None);
        assert_eq!(
            model.settled_strip(8),
            "+......+",
            "a glyph for each eighth, the touched ones marked"
        );
        model.forget(0, u64::MAX);
        assert_eq!(model.settled_strip(4), "....");
        model.begin_step();
        assert!(model.chunks.is_empty(), "nothing touched, nothing kept");
    }

    /// The model as it was before it was sparse: a state and a mark for every page.
    #[derive(Clone, Debug)]
    struct Dense {
        states: Vec<PageState>,
        faulted: Vec<bool>,
        origins: Vec<Option<PageOrigin>>,
    }

    impl Dense {
        fn apply(&mut self, page: u64, access: Access, origin: PageOrigin) {
            let Some(state) = self.states.get_mut(page as usize) else {
                return;
            };
            *state = match (access, *state) {
                (Access::Read | Access::Exec, PageState::Untouched) => PageState::ZeroPage,
                (Access::Read | Access::Exec, kept) => kept,
                (Access::Write | Access::Unknown, _) => PageState::Resident,
            };
            self.origins[page as usize].get_or_insert(origin);
            self.faulted[page as usize] = true;
        }

        fn adopt(&mut self, pages: &[u64], state: PageState, origin: PageOrigin) {
            for &page in pages {
                if self.states.get(page as usize) == Some(&PageState::Untouched) {
                    self.states[page as usize] = state;
                    self.origins[page as usize] = Some(origin);
                }
            }
        }

        fn forget(&mut self, first: u64, count: u64) {
            let len = self.states.len() as u64;
            for page in first.min(len)..first.saturating_add(count).min(len) {
                self.states[page as usize] = PageState::Untouched;
                self.origins[page as usize] = None;
            }
        }

        fn strip_scaled(&self, width: usize) -> String {
            let per_glyph = self.states.len().div_ceil(width);
            self.states
                .chunks(per_glyph)
                .map(|run| {
                    let resident = run.iter().filter(|&&s| s == PageState::Resident).count();
                    let zero = run.iter().filter(|&&s| s == PageState::ZeroPage).count();
                    match (resident, zero) {
                        (r, _) if r == run.len() => '#',
                        (0, z) if z == run.len() => '0',
                        (0, 0) => '.',
                        _ => '+',
                    }
                })
                .collect()
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Fault(u64, bool),
        Adopt(Vec<u64>, bool),
        Forget(u64, u64),
        Step,
    }

    fn op(pages: u64) -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Pages a little past the end too, which both must ignore.
        let page = 0..pages + 3;
        prop_oneof![
            4 => (page.clone(), any::<bool>()).prop_map(|(p, w)| Op::Fault(p, w)),
            1 => (proptest::collection::vec(page.clone(), 0..8), any::<bool>())
                .prop_map(|(ps, r)| Op::Adopt(ps, r)),
            1 => (page, 0..pages).prop_map(|(f, c)| Op::Forget(f, c)),
            1 => Just(Op::Step),
        ]
    }

    proptest::proptest! {
        /// The sparse model says what the dense one said, page by page, in lists, counts and
        /// strips, whatever the faults, adoptions, forgetting and steps.
        #[test]
        fn the_sparse_model_agrees_with_a_state_per_page(
            (pages, ops, widths) in (1u64..2000).prop_flat_map(|pages| (
                proptest::strategy::Just(pages),
                proptest::collection::vec(op(pages), 0..60),
                proptest::collection::vec(1usize..100, 3),
            ))
        ) {
            let mut model = PageModel::new(pages as usize);
            let mut dense = Dense {
                states: vec![PageState::Untouched; pages as usize],
                faulted: vec![false; pages as usize],
                origins: vec![None; pages as usize],
            };
            for (n, op) in ops.into_iter().enumerate() {
                let origin = at(n as u32, n as i64);
                match op {
                    Op::Fault(page, write) => {
                        let access = if write { Access::Write } else { Access::Read };
                        model.apply_fault(page, access, origin);
                        dense.apply(page, access, origin);
                    }
                    Op::Adopt(list, resident) => {
                        if resident {
                            model.adopt_with_fault(&list, n as u32, Companion::HugePage);
                            dense.adopt(&list, PageState::Resident, PageOrigin::WithFault {
                                step: n as u32,
                                how: Companion::HugePage,
                            });
                        } else {
                            model.adopt_present(&[], &list);
                            dense.adopt(&list, PageState::ZeroPage, PageOrigin::BeforeWalk);
                        }
                    }
                    Op::Forget(first, count) => {
                        model.forget(first, count);
                        dense.forget(first, count);
                    }
                    Op::Step => {
                        model.begin_step();
                        dense.faulted.fill(false);
                    }
                }
            }
            for page in 0..pages + 2 {
                let i = page as usize;
                proptest::prop_assert_eq!(model.state(page), dense.states.get(i).copied());
                proptest::prop_assert_eq!(model.origin(page), dense.origins.get(i).copied().flatten());
            }
            let list = |wanted| (0u64..).zip(&dense.states)
                .filter(|&(_, &s)| s == wanted).map(|(p, _)| p).collect::<Vec<_>>();
            proptest::prop_assert_eq!(model.resident_pages(), list(PageState::Resident));
            proptest::prop_assert_eq!(model.zero_pages(), list(PageState::ZeroPage));
            proptest::prop_assert_eq!(model.resident_count(), list(PageState::Resident).len() as u64);
            let strip: String = dense.states.iter().zip(&dense.faulted)
                .map(|(&s, &f)| if f { '*' } else { s.glyph() }).collect();
            proptest::prop_assert_eq!(model.strip(), strip);
            for width in widths {
                let settled = if pages as usize <= width {
                    dense.states.iter().map(|s| s.glyph()).collect()
                } else {
                    dense.strip_scaled(width)
                };
                proptest::prop_assert_eq!(model.settled_strip(width), settled);
            }
        }
    }
}
