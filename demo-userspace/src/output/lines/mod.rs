//! Every JSON line demo writes, as one tagged type per command (`kind` names the variant), and
//! the JSON Schema of them all, which is committed as `demo-userspace/lines.schema.json`.
//!
//! The wire format is this directory's alone: the line types borrow from the commands' and the
//! kernel layer's types, which derive nothing of serde or schemars, so renaming a field there
//! cannot change the schema. A line type that stands for a domain type keeps that type's name
//! in the schema (`#[schemars(rename)]`).

mod code;
mod comparison;
mod durations;
mod fault;
mod fault_time;
mod kernel_view;
mod plan;
mod stacks;
mod top;
mod trace;
mod trace_start;
mod trace_summary;
mod walk;

#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

pub use comparison::{ComparisonLine, SummaryLine};
pub use fault::CodeJson;
pub use top::IntervalLine;
pub use trace::{ProcessLine, RegionEndLine, RegionSummaryLine, SCENARIO};
pub use trace_start::TraceStartLine;
pub use trace_summary::TraceSummaryLine;
pub use walk::{FaultLine, RegionLine, SignalLine, StepLine, SyscallLine};

/// A line of `demo alloc` (and of `demo` alone).
#[derive(Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WalkLine<'a> {
    Region(RegionLine<'a>),
    Fault(FaultLine<'a>),
    Syscall(SyscallLine<'a>),
    Signal(SignalLine<'a>),
    // Boxed: a step line is several times the size of the others.
    Step(Box<StepLine<'a>>),
    Summary(SummaryLine<'a>),
    Comparison(ComparisonLine<'a>),
}

/// A line of `demo trace`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceLine<'a> {
    /// The first line: what is traced, once the probes are attached.
    Trace(TraceStartLine<'a>),
    Region(RegionLine<'a>),
    RegionEnd(RegionEndLine<'a>),
    Process(ProcessLine),
    Fault(FaultLine<'a>),
    Syscall(SyscallLine<'a>),
    Signal(SignalLine<'a>),
    RegionSummary(RegionSummaryLine<'a>),
    Summary(TraceSummaryLine<'a>),
}

/// A line of `demo top`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TopLine<'a> {
    Top(IntervalLine<'a>),
}

/// Any line of any command: what the committed schema describes.
#[derive(JsonSchema)]
#[expect(
    dead_code,
    reason = "only its schema is used; no line is built as this type"
)]
#[serde(untagged)]
enum Line<'a> {
    Walk(WalkLine<'a>),
    Trace(TraceLine<'a>),
    Top(TopLine<'a>),
}

/// The JSON Schema every line of demo's JSON output satisfies. It describes what demo writes
/// (serde's serialize side: a field that is `null` is still there) and admits no field that the
/// types do not declare.
pub fn schema() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<Line<'static>>();
    schema.insert(
        "title".to_owned(),
        "A line of demo's JSON Lines output".into(),
    );
    let mut schema = schema.to_value();
    let targets = variant_targets(&schema);
    if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
        for (name, def) in defs.iter_mut() {
            close_objects(def, !targets.contains(name));
        }
    }
    schema
}

/// The definitions a tagged line's variant refers to: their objects are closed by the variant,
/// which adds `kind` beside them.
fn variant_targets(schema: &Value) -> Vec<String> {
    let defs = schema.get("$defs").and_then(Value::as_object);
    ["WalkLine", "TraceLine", "TopLine"]
        .iter()
        .filter_map(|line| defs?.get(*line)?.get("oneOf")?.as_array())
        .flatten()
        .filter_map(|variant| variant.get("$ref")?.as_str())
        .filter_map(|target| target.strip_prefix("#/$defs/"))
        .map(str::to_owned)
        .collect()
}

/// Forbids undeclared fields in every object below `schema`, and in `schema` itself when
/// `this_too`. A tagged variant (`kind` beside a `$ref`) takes `unevaluatedProperties`, which
/// sees the fields of the definition it refers to; `additionalProperties` would not.
fn close_objects(schema: &mut Value, this_too: bool) {
    let Some(object) = schema.as_object_mut() else {
        if let Some(items) = schema.as_array_mut() {
            items.iter_mut().for_each(|item| close_objects(item, true));
        }
        return;
    };
    if this_too && object.contains_key("properties") {
        let key = if object.contains_key("$ref") {
            "unevaluatedProperties"
        } else {
            "additionalProperties"
        };
        object.entry(key).or_insert(Value::Bool(false));
    }
    for (key, child) in object.iter_mut() {
        // The names under `properties` are fields, not schemas of objects.
        if key == "properties" {
            if let Some(fields) = child.as_object_mut() {
                fields
                    .values_mut()
                    .for_each(|field| close_objects(field, true));
            }
        } else {
            close_objects(child, true);
        }
    }
}
