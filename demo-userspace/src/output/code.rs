//! How the sinks name code: `main+0x4c alloc.c:31` in text and the terminal view, a function
//! per frame in folded stacks. Symbols, files and module paths come from the traced programs,
//! so every name these functions return is escaped ([`super::escape`]).

use std::path::Path;

use super::escape::{escape, escape_owned};
use crate::kernel::symbols::Code;

/// `symbol+0xOFFSET file:line`, with the calls inlined there; `module+0xOFFSET` when no symbol
/// names the code; the address alone when no mapping holds it. Control characters are escaped.
pub fn describe(code: &Code) -> String {
    escape_owned(describe_raw(code))
}

fn describe_raw(code: &Code) -> String {
    let mut text = match (&code.symbol, &code.module) {
        (Some(symbol), _) => format!("{symbol}+{:#x}", code.offset),
        (None, Some(module)) => format!("{}+{:#x}", base_name(module), code.offset),
        (None, None) => format!("{:#x}", code.offset),
    };
    if let Some(place) = place(code.file.as_deref(), code.line) {
        text.push(' ');
        text.push_str(&place);
    }
    if !code.inlined.is_empty() {
        let calls: Vec<String> = code
            .inlined
            .iter()
            .map(|call| match place(call.file.as_deref(), call.line) {
                Some(place) => format!("{} {place}", call.symbol),
                None => call.symbol.clone(),
            })
            .collect();
        text.push_str(&format!(" (inlined: {})", calls.join(", ")));
    }
    text
}

/// `symbol+0xOFFSET (module)`: the function and the file that holds it, short enough for the
/// view's page panel; `module+0xOFFSET` when no symbol names the code; the address alone when
/// no mapping holds it. Escaped.
pub fn in_module(code: &Code) -> String {
    match (&code.symbol, &code.module) {
        (Some(symbol), Some(module)) => format!(
            "{}+{:#x} ({})",
            escape(symbol),
            code.offset,
            escape(base_name(module))
        ),
        _ => describe(&Code {
            file: None,
            line: None,
            inlined: Vec::new(),
            ..code.clone()
        }),
    }
}

/// The function alone, as the summary's tables name it: the symbol, or `(no symbol) module`,
/// escaped.
pub fn function(symbol: Option<&str>, module: Option<&str>) -> String {
    match (symbol, module) {
        (Some(symbol), _) => escape(symbol).into_owned(),
        (None, Some(module)) => format!("(no symbol) {}", escape(base_name(module))),
        (None, None) => "(no mapping)".to_owned(),
    }
}

/// A name as one frame of a folded stack: escaped, so it stays on its line, and with `:` for
/// `;`, which would split it in two. Spaces may stay: the count is the line's last field.
pub fn folded_name(name: &str) -> String {
    escape(name).replace(';', ":")
}

/// The frames one address stands for in a folded stack, outermost first: the function, then
/// each call inlined in it. Kernel functions end in `_[k]`, which flamegraph.pl colours.
pub fn folded_frames(code: &Code, frames: &mut Vec<String>) {
    let kernel = code.module.as_deref() == Some(crate::kernel::symbols::KERNEL_MODULE);
    let suffix = if kernel { "_[k]" } else { "" };
    let clean = |name: &str| format!("{}{suffix}", folded_name(name));
    match (&code.symbol, &code.module) {
        (Some(symbol), _) => {
            frames.push(clean(symbol));
            frames.extend(code.inlined.iter().map(|call| clean(&call.symbol)));
        }
        (None, Some(module)) => {
            frames.push(clean(&format!("{}+{:#x}", base_name(module), code.offset)))
        }
        (None, None) => frames.push(format!("{:#x}", code.offset)),
    }
}

fn place(file: Option<&str>, line: Option<u32>) -> Option<String> {
    match (file, line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (Some(file), None) => Some(file.to_owned()),
        (None, _) => None,
    }
}

/// A module's file name, without its directory.
pub fn base_name(module: &str) -> &str {
    Path::new(module)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::symbols::InlinedCall;

    fn main_at(offset: u64) -> Code {
        Code {
            module: Some("/tmp/alloc".to_owned()),
            symbol: Some("main".to_owned()),
            offset,
            file: Some("alloc.c".to_owned()),
            line: Some(31),
            inlined: Vec::new(),
            module_offset: None,
        }
    }

    #[test]
    fn names_code_as_perf_does_with_the_line() {
        assert_eq!(describe(&main_at(0x4c)), "main+0x4c alloc.c:31");
        let stripped = Code {
            module: Some("/usr/lib/libfoo.so.1".to_owned()),
            offset: 0x1234,
            ..Code::default()
        };
        assert_eq!(describe(&stripped), "libfoo.so.1+0x1234");
        assert_eq!(
            describe(&Code {
                offset: 0x10,
                ..Code::default()
            }),
            "0x10"
        );
        let inlined = Code {
            inlined: vec![InlinedCall {
                symbol: "fill".to_owned(),
                file: Some("fill.h".to_owned()),
                line: Some(5),
            }],
            ..main_at(0x4c)
        };
        assert_eq!(
            describe(&inlined),
            "main+0x4c alloc.c:31 (inlined: fill fill.h:5)"
        );
        let mut frames = Vec::new();
        folded_frames(&inlined, &mut frames);
        folded_frames(&stripped, &mut frames);
        assert_eq!(frames, ["main", "fill", "libfoo.so.1+0x1234"]);
    }

    #[test]
    fn names_from_the_program_are_escaped_in_every_form() {
        let hostile = Code {
            module: Some("/tmp/e\x1b]2;x\x07/lib\nfake.so".to_owned()),
            symbol: Some("f\x1b[2J;g\nh".to_owned()),
            offset: 0x10,
            file: Some("a\rb.c".to_owned()),
            line: Some(3),
            inlined: Vec::new(),
            module_offset: None,
        };
        assert_eq!(describe(&hostile), r"f\e[2J;g\nh+0x10 a\rb.c:3");
        assert_eq!(
            function(None, hostile.module.as_deref()),
            r"(no symbol) lib\nfake.so"
        );
        assert_eq!(function(hostile.symbol.as_deref(), None), r"f\e[2J;g\nh");
        let mut frames = Vec::new();
        folded_frames(&hostile, &mut frames);
        folded_frames(
            &Code {
                symbol: None,
                ..hostile.clone()
            },
            &mut frames,
        );
        assert_eq!(frames, [r"f\e[2J:g\nh", r"lib\nfake.so+0x10"]);
        for name in describe(&hostile).chars().chain(frames.concat().chars()) {
            assert!(!name.is_control(), "{name:?}");
        }
    }
}
