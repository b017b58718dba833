//! The help and the man pages of the installed binary say the same: every option a command's
//! `--help` lists is in its man page, and the man page lists no other. Needs no root.

mod common;

use std::{collections::BTreeSet, process::Command};

use common::DEMO;

/// The `--long` options of a help text or a roff page: words that start with `--`, roff's
/// `\-` read as `-` and its font changes as spaces. Only the lines that introduce an option
/// count: in the help they start with spaces and a dash, in the page they follow `.TP`.
fn options(text: &str, roff: bool) -> BTreeSet<String> {
    let mut text = text.replace("\\-", "-");
    for font in ["\\fB", "\\fI", "\\fR"] {
        text = text.replace(font, " ");
    }
    let lines: Vec<&str> = text.lines().collect();
    let introducing: Vec<&str> = if roff {
        lines
            .windows(2)
            .filter(|pair| pair[0] == ".TP")
            .map(|pair| pair[1])
            .collect()
    } else {
        lines
            .into_iter()
            .filter(|line| line.trim_start().starts_with('-') && line.starts_with("  "))
            .collect()
    };
    introducing
        .iter()
        .flat_map(|line| {
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|word| word.starts_with("--") && word.len() > 2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run(args: &[&str]) -> String {
    let output = Command::new(DEMO).args(args).output().unwrap();
    assert!(output.status.success(), "demo {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_commands_man_page_lists_the_options_its_help_lists() {
    for command in [
        None,
        Some("alloc"),
        Some("trace"),
        Some("top"),
        Some("completions"),
    ] {
        let mut help = Vec::from_iter(command);
        help.push("--help");
        let mut man = vec!["__man"];
        man.extend(command);
        let (help, man) = (options(&run(&help), false), options(&run(&man), true));
        assert!(!help.is_empty(), "{command:?}");
        assert_eq!(help, man, "demo {command:?}");
    }
}

/// The options every command shares are defined on demo, not on trace, so its page has them
/// only if they are copied in; `--wide` is among them because trace's report is 80 columns
/// wide and `--wide` is the way to ask for the full line.
#[test]
fn the_trace_page_has_the_shared_options_and_wide() {
    let man = options(&run(&["__man", "trace"]), true);
    for option in [
        "--format", "--output", "--stacks", "--tui", "--source", "--wide",
    ] {
        assert!(man.contains(option), "{option}: {man:?}");
    }
}
