//! Quoting a requester's own words for the admins' emails and pages, so they cannot pass for ours.

/// Most lines of a requester's text that a dossier shows, and most characters per line and in all.
pub const QUOTE_MAX_LINES: usize = 20;
pub const QUOTE_MAX_LINE_CHARS: usize = 160;
pub const QUOTE_MAX_CHARS: usize = 500;

/// Characters that change how text *looks* without being visible: bidirectional overrides, embeddings
/// and isolates (which can reorder a line so that "gro.live" reads "evil.org"), and zero-width ones.
fn invisible(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A requester's free text made fit for a plain-text email, where nothing marks where it starts and
/// ends: split into lines (any line break, including U+2028/U+2029), control and invisible formatting
/// characters removed, tabs made spaces, runs of blank lines collapsed, and the whole capped. The
/// templates prefix every line with `> `, so no line of it can pass for a heading, a flag or a fact.
pub fn quote(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0;
    let mut shortened = false;
    let text = text.replace("\r\n", "\n");
    for raw in text.split(['\n', '\r', '\u{2028}', '\u{2029}', '\u{0085}', '\u{000B}', '\u{000C}']) {
        let cleaned: String = raw
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .filter(|c| !c.is_control() && !invisible(*c))
            .collect();
        let line = cleaned.trim_end();
        if line.trim().is_empty() {
            // One blank line at most, and none at the start.
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            continue;
        }
        if lines.len() >= QUOTE_MAX_LINES || total >= QUOTE_MAX_CHARS {
            shortened = true;
            break;
        }
        let room = QUOTE_MAX_LINE_CHARS.min(QUOTE_MAX_CHARS - total);
        let count = line.chars().count();
        if count > room {
            shortened = true;
        }
        let kept: String = line.chars().take(room).collect();
        total += kept.chars().count();
        lines.push(kept);
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if shortened {
        lines.push("[shortened by Lifeline]".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_loses_control_and_bidi_characters_blank_runs_and_excess() {
        let lines = quote("Hello\r\n\r\n\r\n\u{202E}gro.live\u{202C}\tnow\u{7}\u{2028}ACCOUNT STATUS\u{200B}\n\n");
        assert_eq!(lines, ["Hello", "", "gro.live now", "ACCOUNT STATUS"]);
        let long = quote(&"line\n".repeat(60));
        assert_eq!(long.len(), QUOTE_MAX_LINES + 1);
        assert_eq!(long.last().map(String::as_str), Some("[shortened by Lifeline]"));
        let wide = quote(&"w".repeat(QUOTE_MAX_LINE_CHARS + 50));
        assert_eq!(wide[0].chars().count(), QUOTE_MAX_LINE_CHARS);
        let many = quote(&vec!["x".repeat(150); 10].join("\n"));
        let total: usize = many.iter().take(many.len() - 1).map(|l| l.chars().count()).sum();
        assert_eq!(total, QUOTE_MAX_CHARS);
        assert!(quote(" \n\t\n").is_empty());
    }
}
