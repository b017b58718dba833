//! `demo top`: its counts into a report, the view, or only the metrics endpoint, which runs
//! beside them when it listens.

use anyhow::Context as _;

use super::{Top, TopSink, report_file, view};
use crate::{
    kernel::{cgroup::CgroupScope, privileges::RunAs, probes::TopProbes},
    output::{self, metrics, tui},
    top,
};

/// Runs demo top into its sink until its duration ends or it is stopped.
pub(super) async fn run(counting: Top, run_as: Option<RunAs>) -> anyhow::Result<()> {
    // Bound before anything is loaded, so a port in use fails at once.
    let listener = match counting.listen {
        Some(address) => Some(metrics::bind(address).await?),
        None => None,
    };
    let Top {
        options,
        fault_category,
        sink,
        ..
    } = counting;
    match sink {
        TopSink::Report(report) => {
            // Opened before anything is loaded, so a file demo may not write fails at once.
            let out = report_file::open(&report.to, run_as)?;
            let group = options.group;
            let top = start(options, &fault_category, listener.as_ref())?;
            let mut output = output::top::output(report.format.into(), out, group);
            serve(&top, listener, output.as_mut()).await
        }
        TopSink::Quiet => {
            let top = start(options, &fault_category, listener.as_ref())?;
            serve(&top, listener, output::top::silent().as_mut()).await
        }
        TopSink::View => {
            let app =
                tui::app(tui::app::Mode::Top, "demo top").with_top(options.count, options.sort);
            let top = start(options, &fault_category, listener.as_ref())?;
            let (sender, events) = tui::channel();
            let mut output = tui::ViewTop(sender.clone());
            let work = serve(&top, listener, &mut output);
            view::follow(tui::run_view(app, sender, events, None, work).await?)
        }
    }
}

/// Loads demo top's programs and starts it; with a metrics endpoint, says where it listens,
/// once every count it serves is being counted.
fn start(
    options: top::TopOptions,
    fault_category: &str,
    listener: Option<&metrics::Listener>,
) -> anyhow::Result<top::Top> {
    let cgroup = options.cgroup.as_ref().map(CgroupScope::dir);
    let probes = TopProbes::load(fault_category, options.counting(), cgroup)?;
    let top = top::Top::start(options, probes)?;
    if let Some(listener) = listener {
        let bound = listener
            .local_addr()
            .context("read the address the metrics endpoint listens on")?;
        eprintln!("demo top: serving metrics at http://{bound}/metrics");
    }
    Ok(top)
}

/// Runs demo top, and beside it the metrics endpoint when it listens; the endpoint stops when
/// top does.
async fn serve(
    top: &top::Top,
    listener: Option<metrics::Listener>,
    out: &mut dyn top::TopOutput,
) -> anyhow::Result<()> {
    match (listener, top.metrics()) {
        (Some(listener), Some(source)) => tokio::select! {
            done = top.run(out) => done,
            served = metrics::serve(listener, source) => served,
        },
        _ => top.run(out).await,
    }
}
