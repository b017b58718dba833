//! The page-state model of a region, derived from fault events alone; the text report and the
//! terminal view both draw from it, so they cannot disagree.

use serde::Serialize;

use crate::access::Access;

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

/// Per-page state of one region plus which pages faulted in the current step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageModel {
    states: Vec<PageState>,
    faulted_this_step: Vec<bool>,
}

impl PageModel {
    pub fn new(page_count: usize) -> Self {
        Self {
            states: vec![PageState::Untouched; page_count],
            faulted_this_step: vec![false; page_count],
        }
    }

    /// Starts a new step: earlier faults stay in the state, but no longer count as recent.
    pub fn begin_step(&mut self) {
        self.faulted_this_step.fill(false);
    }

    /// Applies one completed fault on `page`. Pages outside the model (e.g. past the end) are
    /// ignored, because the kernel backs nothing there.
    pub fn apply_fault(&mut self, page: u64, access: Access) {
        let Ok(page) = usize::try_from(page) else {
            return;
        };
        let Some(state) = self.states.get_mut(page) else {
            return;
        };
        *state = match (access, *state) {
            (Access::Read | Access::Exec, PageState::Untouched) => PageState::ZeroPage,
            (Access::Read | Access::Exec, kept) => kept,
            (Access::Write, _) => PageState::Resident,
        };
        self.faulted_this_step[page] = true;
    }

    /// Pages that are mapped to something (their own page or the zero page), in order.
    pub fn mapped_pages(&self) -> Vec<u64> {
        self.pages_where(|state| state != PageState::Untouched)
    }

    fn pages_where(&self, keep: impl Fn(PageState) -> bool) -> Vec<u64> {
        (0u64..)
            .zip(&self.states)
            .filter(|&(_, &state)| keep(state))
            .map(|(page, _)| page)
            .collect()
    }

    /// One glyph per page: `*` faulted in this step, `#` resident, `0` zero page, `.` untouched.
    pub fn strip(&self) -> String {
        self.states
            .iter()
            .zip(&self.faulted_this_step)
            .map(|(state, &recent)| match (recent, state) {
                (true, _) => '*',
                (false, PageState::Resident) => '#',
                (false, PageState::ZeroPage) => '0',
                (false, PageState::Untouched) => '.',
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_walk_fills_pages_one_two_and_zero() {
        let mut model = PageModel::new(5);
        model.begin_step();
        model.apply_fault(1, Access::Write);
        assert_eq!(model.strip(), ".*...");
        model.begin_step();
        model.apply_fault(0, Access::Write);
        assert_eq!(model.strip(), "*#...");
        model.begin_step();
        assert_eq!(model.strip(), "##...");
        assert_eq!(model.mapped_pages(), vec![0, 1]);
    }

    #[test]
    fn a_read_maps_the_zero_page_until_a_write() {
        let mut model = PageModel::new(2);
        model.apply_fault(1, Access::Read);
        assert_eq!(model.mapped_pages(), vec![1]);
        model.begin_step();
        assert_eq!(model.strip(), ".0");
        model.apply_fault(1, Access::Write);
        model.begin_step();
        assert_eq!(model.strip(), ".#");
    }

    #[test]
    fn faults_past_the_model_change_nothing() {
        let mut model = PageModel::new(1);
        model.apply_fault(5, Access::Write);
        assert_eq!(model.strip(), ".");
    }
}
