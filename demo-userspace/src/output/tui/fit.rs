//! Text that fits its room in whole words: a line too long for its pane is shortened at a word
//! (marked `…`) or wrapped, and a line made of parts drops whole parts, never half a word.

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

/// `text` wrapped at words into lines of at most `width` columns.
pub fn wrapped(text: &str, width: usize) -> Vec<String> {
    textwrap::wrap(text, width.max(1))
        .into_iter()
        .map(|line| line.into_owned())
        .collect()
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
    fn wrapping_breaks_between_words() {
        assert_eq!(
            wrapped("step 5 the child killed by SIGSEGV", 20),
            ["step 5 the child", "killed by SIGSEGV"]
        );
    }
}
