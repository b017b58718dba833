//! `demo alloc`: the walks, into a report or the view, one after the other; and `--list`.

use std::io;

use anyhow::Context as _;

use super::{Alloc, EventSink, probes, report_file, view};
use crate::{
    kernel::privileges::RunAs,
    output::{self, tui},
    walk::{
        self,
        plan::{ScenarioName, WalkPlan},
        scenario::{self, EnterPacer, NoPause, Tracing},
    },
};

/// `demo alloc --list`: every walk with one line on what it teaches.
pub(super) fn list_walks(mut out: impl io::Write) -> anyhow::Result<()> {
    for scenario in ScenarioName::ALL {
        let teaches = walk::lessons::lesson(scenario).teaches();
        writeln!(out, "{:<15}{}", scenario.as_str(), teaches).context("write the list of walks")?;
    }
    out.flush().context("write the list of walks")
}

/// Runs the walks of `alloc` into its sink.
pub(super) async fn run(alloc: Alloc, run_as: Option<RunAs>) -> anyhow::Result<()> {
    let report = match alloc.sink {
        EventSink::Report(report) => report,
        EventSink::View => return run_in_view(&alloc.plans, &alloc.probes, run_as).await,
    };
    // Opened before anything is loaded, so a file demo may not write fails at once.
    let out = report_file::open(&report.to, run_as)?;
    let (mut probes, mut reader) = probes::load(&alloc.probes)?;
    let mut reporter = output::reporter(report.format, out);
    let tracing = Tracing {
        probes: &mut probes,
        reader: &mut reader,
        run_as,
    };
    if alloc.interactive {
        run_walks(
            &alloc.plans,
            tracing,
            &mut EnterPacer::new(),
            reporter.as_mut(),
        )
        .await
    } else {
        run_walks(&alloc.plans, tracing, &mut NoPause, reporter.as_mut()).await
    }
}

/// Runs the walks behind the full-screen view, which paces their steps, until the user quits.
async fn run_in_view(
    plans: &[WalkPlan],
    options: &crate::kernel::probes::ProbeOptions,
    run_as: Option<RunAs>,
) -> anyhow::Result<()> {
    let (mut probes, mut reader) = probes::load(options)?;
    let (sender, events) = tui::channel();
    let (requests, paced) = tokio::sync::mpsc::unbounded_channel();
    let mut pacer = tui::ViewPacer(paced);
    let mut reporter = tui::ViewReporter(sender.clone());
    let tracing = Tracing {
        probes: &mut probes,
        reader: &mut reader,
        run_as,
    };
    let title = format!("demo alloc {}", plans[0].scenario.as_str());
    let work = run_walks(plans, tracing, &mut pacer, &mut reporter);
    let app = tui::app(tui::app::Mode::Alloc, &title);
    view::follow(tui::run_view(app, sender, events, Some(requests), work).await?)
}

/// Runs each walk in turn, then compares them when there are several.
async fn run_walks(
    plans: &[WalkPlan],
    tracing: Tracing<'_>,
    pacer: &mut impl scenario::Pacer,
    reporter: &mut dyn walk::Reporter,
) -> anyhow::Result<()> {
    let Tracing {
        probes,
        reader,
        run_as,
    } = tracing;
    let mut results = Vec::new();
    for plan in plans {
        let tracing = Tracing {
            probes,
            reader,
            run_as,
        };
        let walked = scenario::run_walk(plan, tracing, pacer, reporter).await;
        results.push(walked.with_context(|| format!("run the {} walk", plan.scenario.as_str()))?);
    }
    if results.len() > 1 {
        reporter.comparison(&results)?;
    }
    reporter.finish()?;
    Ok(())
}
