//! The walks' text wrapped at words for an 80-column terminal: a number stays with its unit
//! (`4 MiB`, `1.4 µs`) and with the word that names it (`step 2`, `page 5`), and no wrapped
//! text ends on a line of one word. The text report and `--interactive`'s prompt both wrap
//! here.

/// The width of the walks' text report and of the prompt.
pub const COLUMNS: usize = 80;

/// A no-break space: textwrap breaks lines at ASCII spaces only, so two words joined by it
/// stay on one line; it is written back as a space.
const GLUE: char = '\u{a0}';

/// Units a number is kept with.
const UNITS: [&str; 11] = [
    "bytes", "KiB", "MiB", "GiB", "pages", "page", "calls", "ns", "µs", "ms", "s",
];
/// Words kept with the number after them.
const NAMING: [&str; 6] = ["step", "steps", "page", "pages", "child", "parent"];

/// `text` in lines of at most `width` columns, the first after `first`, the others after
/// `rest` (indents of spaces, or any prefix). A word longer than a line is cut.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let glued = glue(text);
    let options = textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut lines: Vec<String> = textwrap::wrap(&glued, options)
        .into_iter()
        .map(|line| line.into_owned())
        .collect();
    no_lone_last_word(&mut lines, width, rest.chars().count());
    lines
        .into_iter()
        .map(|line| line.replace(GLUE, " "))
        .collect()
}

/// Joins the words of `text` that read as one phrase with [`GLUE`].
fn glue(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut glued = String::with_capacity(text.len());
    for (i, word) in words.iter().enumerate() {
        glued.push_str(word);
        if let Some(next) = words.get(i + 1) {
            glued.push(if belong_together(word, next) {
                GLUE
            } else {
                ' '
            });
        }
    }
    glued
}

/// True for `4 MiB`, `(4 MiB`, `step 2`, `page 5)`: a number and its unit, or a word and the
/// number it names; and for either side of an assignment's `=`.
fn belong_together(word: &str, next: &str) -> bool {
    let bare = |word: &str| {
        word.trim_start_matches('(')
            .trim_end_matches([',', '.', ';', ':', ')'])
            .to_owned()
    };
    let number = |word: &str| {
        let word = bare(word);
        !word.is_empty() && word.starts_with(|c: char| c.is_ascii_digit())
    };
    // An assignment reads as one: `arr = mmap(NULL,` never ends a line at `=`.
    if word == "=" || next == "=" {
        return true;
    }
    // Punctuation after the first word ends the phrase: `step 2, page 5` is two.
    !word.ends_with([',', ';', ':', '.', ')'])
        && ((number(word) && UNITS.contains(&bare(next).as_str()))
            || (NAMING.contains(&bare(word).as_str()) && number(next)))
}

/// Moves the last word of the line before a last line of one word down to it, when it fits,
/// so no line holds a word alone.
fn no_lone_last_word(lines: &mut [String], width: usize, indent: usize) {
    let [.., before, last] = lines else {
        return;
    };
    if last.chars().skip(indent).any(|c| c == ' ') {
        return;
    }
    let Some((kept, moved)) = before.rsplit_once(' ') else {
        return;
    };
    if kept.chars().count() <= indent || kept.trim().is_empty() {
        return;
    }
    let word = last.chars().skip(indent).collect::<String>();
    let joined = format!("{}{moved} {word}", " ".repeat(indent));
    if joined.chars().count() > width {
        return;
    }
    *before = kept.trim_end().to_owned();
    *last = joined;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_stays_with_its_unit_and_the_word_naming_it() {
        let text = "arr = 2 MiB of mmap(MAP_PRIVATE|MAP_ANONYMOUS) at a 2 MiB boundary (4 MiB \
                    mapped, the rest unmapped)";
        let lines = wrap(text, 80, "step 1  ", "        ");
        assert_eq!(
            lines,
            [
                "step 1  arr = 2 MiB of mmap(MAP_PRIVATE|MAP_ANONYMOUS) at a 2 MiB boundary",
                "        (4 MiB mapped, the rest unmapped)"
            ]
        );
        let lines = wrap(
            "no fault: page 3 was already present, mapped by fault-around in step 2",
            80,
            "  why       ",
            "            ",
        );
        assert_eq!(
            lines,
            [
                "  why       no fault: page 3 was already present, mapped by fault-around",
                "            in step 2"
            ]
        );
    }

    #[test]
    fn no_line_holds_one_word_alone() {
        let lines = wrap(
            "huge page: 1 fault, 512 pages resident: the kernel mapped a whole 2 MiB page at \
             once (kpageflags THP on 512 pages, smaps AnonHugePages 2048 KiB)",
            80,
            "  lesson    ",
            "            ",
        );
        for line in &lines {
            assert!(line.chars().count() <= 80, "{lines:#?}");
            assert!(line.trim().contains(' '), "{lines:#?}");
        }
        let widow = wrap("aaaa bbbb cccc", 9, "", "");
        assert_eq!(widow, ["aaaa", "bbbb cccc"]);
    }

    #[test]
    fn glue_joins_only_phrases() {
        assert_eq!(
            glue("in step 2, page 5) is"),
            "in step\u{a0}2, page\u{a0}5) is"
        );
        assert_eq!(glue("(4 MiB mapped"), "(4\u{a0}MiB mapped");
        assert_eq!(glue("pages 0-3, 5 and 9"), "pages\u{a0}0-3, 5 and 9");
        assert_eq!(glue("the step is done"), "the step is done");
        assert_eq!(
            glue("; arr = mmap(NULL, 4"),
            "; arr\u{a0}=\u{a0}mmap(NULL, 4"
        );
    }
}
