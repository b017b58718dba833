//! Text that fits its room in whole words: a line too long for its pane is shortened at a word
//! (marked `…`) or wrapped, a line made of parts drops whole parts, never half a word, and a
//! number too wide for its column takes a unit and fewer digits, never spills over.

use textwrap::core::display_width;

/// `text` if it fits in `width` columns; else its words that fit, then `…`.
pub fn words(text: &str, width: usize) -> String {
    if display_width(text) <= width {
        return text.to_owned();
    }
    let room = width.saturating_sub(1);
    let options = textwrap::Options::new(room.max(1)).break_words(false);
    let first = textwrap::wrap(text, options)
        .into_iter()
        .next()
        .unwrap_or_default();
    if display_width(&first) > room {
        // One word longer than the room: nothing whole fits.
        return "…".repeat(width.min(1));
    }
    format!("{}…", first.trim_end())
}

/// `text` if it fits in `width` columns; else as many of its first characters as fit, then `…`:
/// for one long name (a file's), which has no word to end at.
pub fn clipped(text: &str, width: usize) -> String {
    if display_width(text) <= width {
        return text.to_owned();
    }
    let mut kept = String::new();
    for c in text.chars() {
        if display_width(&kept) + display_width(c.encode_utf8(&mut [0; 4])) + 1 > width {
            break;
        }
        kept.push(c);
    }
    if width == 0 {
        return kept;
    }
    kept + "…"
}

/// `n` in at most `width` columns (at least 4): as it is when it fits, else in the smallest
/// unit of thousands, millions, … (`k`, `M`, `G`, `T`, `P`, `E`) that fits, with as many
/// decimals as fit, rounded toward zero, so the label never says more than the number.
pub fn number(n: i64, width: usize) -> String {
    let plain = n.to_string();
    if plain.len() <= width {
        return plain;
    }
    let sign = if n < 0 { "-" } else { "" };
    let magnitude = u128::from(n.unsigned_abs());
    let mut scale = 1u128;
    for unit in ["k", "M", "G", "T", "P", "E"] {
        scale *= 1000;
        let whole = (magnitude / scale).to_string();
        let used = sign.len() + whole.len() + unit.len();
        if used > width {
            continue;
        }
        // Room for a point and at least one decimal, else the whole part alone.
        let decimals = width.saturating_sub(used + 1).min(scale.ilog10() as usize);
        if decimals == 0 {
            return format!("{sign}{whole}{unit}");
        }
        let fraction = magnitude % scale / 10u128.pow(scale.ilog10() - decimals as u32);
        return format!("{sign}{whole}.{fraction:0decimals$}{unit}");
    }
    // Only a width under 4 gets here: nothing whole fits.
    "…".to_owned()
}

/// `text` wrapped at words into lines of at most `width` columns. A word too long for a line
/// of its own (a Rust or C++ function's path) breaks after one of its `::`, and only a part
/// with no such place to break is cut mid-way.
pub fn wrapped(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_inclusive(' ') {
        if display_width(format!("{line}{word}").trim_end()) <= width {
            line.push_str(word);
            continue;
        }
        if display_width(word.trim_end()) <= width {
            // Whole on the next line.
            push_line(&mut lines, &mut line);
            line.push_str(word);
            continue;
        }
        for piece in word.split_inclusive("::") {
            if display_width(format!("{line}{piece}").trim_end()) > width {
                push_line(&mut lines, &mut line);
            }
            line.push_str(piece);
            // A piece wider than a line: whole lines of it, the rest carried on.
            while display_width(line.trim_end()) > width {
                let cut = line
                    .char_indices()
                    .map(|(at, c)| at + c.len_utf8())
                    .take_while(|&end| display_width(&line[..end]) <= width)
                    .last()
                    .unwrap_or(line.len());
                lines.push(line[..cut].to_owned());
                line = line[cut..].to_owned();
            }
        }
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// Ends `line`, when it holds anything, and starts an empty one.
fn push_line(lines: &mut Vec<String>, line: &mut String) {
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    line.clear();
}

/// The parts that fit in `width` columns, joined by `separator` in their given order. Parts are
/// kept in the order of `keep_first` (indices, most important first) while they fit.
pub fn parts(parts: &[String], separator: &str, width: usize, keep_first: &[usize]) -> String {
    let mut kept = vec![false; parts.len()];
    let mut used = 0;
    for &index in keep_first {
        let Some(part) = parts.get(index) else {
            continue;
        };
        let extra = display_width(part)
            + if used == 0 {
                0
            } else {
                display_width(separator)
            };
        if used + extra <= width {
            kept[index] = true;
            used += extra;
        }
    }
    parts
        .iter()
        .zip(kept)
        .filter(|(_, kept)| *kept)
        .map(|(part, _)| part.as_str())
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_shortened_at_a_word() {
        assert_eq!(
            words("the child exited with status 0", 40),
            "the child exited with status 0"
        );
        assert_eq!(
            words("the child exited with status 0", 20),
            "the child exited…"
        );
        assert_eq!(words("unbreakable", 5), "…");
    }

    #[test]
    fn parts_drop_whole_parts_by_importance_and_keep_their_order() {
        let all = [
            "demo alloc mmap",
            "0/s",
            "3 faults",
            "the child exited with status 0",
        ]
        .map(str::to_owned);
        assert_eq!(
            parts(&all, " | ", 80, &[3, 2, 1, 0]),
            "demo alloc mmap | 0/s | 3 faults | the child exited with status 0"
        );
        assert_eq!(
            parts(&all, " | ", 45, &[3, 2, 1, 0]),
            "3 faults | the child exited with status 0"
        );
    }

    #[test]
    fn wide_numbers_take_a_unit_and_keep_to_their_column() {
        assert_eq!(number(0, 7), "0");
        assert_eq!(number(9_999_999, 7), "9999999");
        assert_eq!(number(10_000_000, 7), "10000k");
        assert_eq!(number(3_436_052_480, 7), "3436.0M");
        assert_eq!(number(13_744_209_920, 7), "13744M");
        assert_eq!(number(17_592_186_040_320, 7), "17592G");
        assert_eq!(number(-12_345_678, 7), "-12345k");
        assert_eq!(number(i64::MAX, 7), "9223.3P");
        assert_eq!(number(i64::MIN, 7), "-9223P");
        assert_eq!(number(123_456, 4), "123k");
        for n in [0, 1, 999, 12_345_678_901, -987_654_321, i64::MAX, i64::MIN] {
            for width in 4..12 {
                assert!(number(n, width).chars().count() <= width, "{n} in {width}");
            }
        }
    }

    #[test]
    fn a_long_name_wraps_after_its_colons() {
        assert_eq!(
            wrapped(
                "step 4 write minor by demo::walk::workload::child::State::perform+0x2a (demo)",
                38
            ),
            [
                "step 4 write minor by demo::walk::",
                "workload::child::State::perform+0x2a",
                "(demo)"
            ]
        );
        assert_eq!(wrapped("see main+0x4c", 20), ["see main+0x4c"]);
        assert_eq!(wrapped("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrapped("", 10), [""]);
    }

    #[test]
    fn a_long_name_is_clipped_with_a_mark() {
        assert_eq!(clipped("libc.so.6", 14), "libc.so.6");
        assert_eq!(clipped("ld-linux-x86-64.so.2", 14), "ld-linux-x86-…");
        assert_eq!(clipped("ld-linux-x86-64.so.2", 1), "…");
    }

    #[test]
    fn wrapping_breaks_between_words() {
        assert_eq!(
            wrapped("step 5 the child killed by SIGSEGV", 20),
            ["step 5 the child", "killed by SIGSEGV"]
        );
    }
}
