//! The page-state model of a region, derived from fault events; the text report and the JSON
//! output both draw from it, so they cannot disagree.

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

/// Per-page state of one region, what made each page present (when kept), and which pages
/// faulted in the current step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageModel {
    states: Vec<PageState>,
    /// Empty when origins are not kept: 32 bytes a page is too dear for the gigabyte regions a
    /// trace can see, and only a walk's report asks for them.
    origins: Vec<Option<PageOrigin>>,
    faulted_this_step: Vec<bool>,
    /// A read maps the file's own page, not the zero page.
    file_backed: bool,
}

impl PageModel {
    /// A model that keeps what first made each page present, for a walk's small array.
    pub fn new(page_count: usize) -> Self {
        Self {
            origins: vec![None; page_count],
            ..Self::without_origins(page_count)
        }
    }

    /// A model of the page states alone, two bytes a page, for the regions of a trace.
    pub fn without_origins(page_count: usize) -> Self {
        Self {
            states: vec![PageState::Untouched; page_count],
            origins: Vec::new(),
            faulted_this_step: vec![false; page_count],
            file_backed: false,
        }
    }

    /// The model of a file mapping when `file_backed`, where a read fault maps a page of the
    /// file's page cache, not the zero page.
    pub fn file_backed(mut self, file_backed: bool) -> Self {
        self.file_backed = file_backed;
        self
    }

    /// Starts a new step: earlier faults stay in the state, but no longer count as recent.
    pub fn begin_step(&mut self) {
        self.faulted_this_step.fill(false);
    }

    /// Applies one completed fault on `page`. Pages outside the model (past the end) are
    /// ignored, because the kernel backs nothing there.
    pub fn apply_fault(&mut self, page: u64, access: Access, origin: PageOrigin) {
        let Some(page) = usize::try_from(page)
            .ok()
            .filter(|&p| p < self.states.len())
        else {
            return;
        };
        let state = &mut self.states[page];
        *state = match (access, *state) {
            (Access::Read | Access::Exec, PageState::Untouched) if self.file_backed => {
                PageState::Resident
            }
            (Access::Read | Access::Exec, PageState::Untouched) => PageState::ZeroPage,
            (Access::Read | Access::Exec, kept) => kept,
            // Without the error code the access could have been a write; a page of its own is
            // the conservative guess, which the kernel check shows when it is wrong.
            (Access::Write | Access::Unknown, _) => PageState::Resident,
        };
        if let Some(kept @ None) = self.origins.get_mut(page) {
            *kept = Some(origin);
        }
        self.faulted_this_step[page] = true;
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
            let Some(page) = usize::try_from(page)
                .ok()
                .filter(|&p| p < self.states.len())
            else {
                continue;
            };
            if self.states[page] == PageState::Untouched {
                self.states[page] = state;
                if let Some(kept) = self.origins.get_mut(page) {
                    *kept = Some(origin);
                }
            }
        }
    }

    /// Forgets the pages from `first` for `count`, which a syscall took away (MADV_DONTNEED,
    /// munmap): the next access faults as on a page never touched.
    pub fn forget(&mut self, first: u64, count: u64) {
        let len = self.states.len() as u64;
        for page in first.min(len)..first.saturating_add(count).min(len) {
            self.states[page as usize] = PageState::Untouched;
            if let Some(kept) = self.origins.get_mut(page as usize) {
                *kept = None;
            }
        }
    }

    /// What first made `page` present, if anything has.
    pub fn origin(&self, page: u64) -> Option<PageOrigin> {
        usize::try_from(page)
            .ok()
            .and_then(|page| self.origins.get(page).copied().flatten())
    }

    /// The state of `page`, or `None` past the region.
    pub fn state(&self, page: u64) -> Option<PageState> {
        usize::try_from(page)
            .ok()
            .and_then(|page| self.states.get(page).copied())
    }

    /// True when `page` faulted in the current step (false past the region).
    pub fn faulted_now(&self, page: u64) -> bool {
        usize::try_from(page)
            .ok()
            .and_then(|page| self.faulted_this_step.get(page).copied())
            .unwrap_or(false)
    }

    /// Pages with memory of their own, which is what RSS counts.
    pub fn resident_pages(&self) -> Vec<u64> {
        self.pages_in(PageState::Resident)
    }

    /// Pages mapped to the shared zero page.
    pub fn zero_pages(&self) -> Vec<u64> {
        self.pages_in(PageState::ZeroPage)
    }

    fn pages_in(&self, wanted: PageState) -> Vec<u64> {
        (0u64..)
            .zip(&self.states)
            .filter(|&(_, &state)| state == wanted)
            .map(|(page, _)| page)
            .collect()
    }

    /// One glyph per page: `*` faulted in this step, `#` resident, `0` zero page, `.` untouched.
    pub fn strip(&self) -> String {
        self.states
            .iter()
            .zip(&self.faulted_this_step)
            .map(|(&state, &recent)| if recent { '*' } else { state.glyph() })
            .collect()
    }

    /// The strip in at most `width` glyphs as the pages are now, without this step's `*` marks:
    /// what a trace shows at its end.
    pub fn settled_strip(&self, width: usize) -> String {
        if self.states.len() <= width {
            self.states.iter().map(|state| state.glyph()).collect()
        } else {
            self.strip_scaled(width)
        }
    }
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
    pub fn strip_scaled(&self, width: usize) -> String {
        let pages = self.states.len();
        if pages <= width {
            return self.strip();
        }
        let per_glyph = pages.div_ceil(width.max(1));
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

#[cfg(test)]
mod tests {
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
}
