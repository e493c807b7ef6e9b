//! Output escaping: stored text comes from agents and imports, which are untrusted, so every
//! place Tally shows it to a person or writes it to a CSV file passes it through here first.
//!
//! - [`controls`]: control characters (C0, DEL, C1) and the invisible characters that reorder
//!   text (bidi marks, embeddings, overrides and isolates; line and paragraph separators) are
//!   shown as `\u{1b}`, so an agent cannot clear an admin's screen, recolour it, fake lines or
//!   reorder what a table shows. Everything else, backslashes included, is left as it is.
//! - [`csv_cell`]: the same, and a cell a spreadsheet would run as a formula (starting with
//!   `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as OWASP advises for
//!   CSV injection; a cell that is a plain number (`-12.50`, `+3`, `1e5`) is a number to every
//!   spreadsheet, never a formula, and is left alone so that negative figures stay figures.
//!
//! JSON output never goes through here: a JSON string is exact, and its readers are programs.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` changes how a terminal or a text view shows what surrounds it.
pub fn is_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'              // C0, including tab, newline and ESC
        | '\u{7f}'..='\u{9f}'           // DEL and C1 (CSI is U+009B)
        | '\u{61c}'                     // Arabic letter mark
        | '\u{200e}' | '\u{200f}'       // left-to-right and right-to-left marks
        | '\u{2028}'..='\u{202e}'       // line/paragraph separators, embeddings, overrides
        | '\u{2066}'..='\u{2069}'       // isolates
    )
}

/// `text` with every [`is_control`] character written as `\u{hex}`; borrowed when there is
/// none (the usual case).
pub fn controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The characters a spreadsheet reads as the start of a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV cell's text, safe to open in a spreadsheet: controls escaped as [`controls`] does,
/// and a leading `'` before a cell that would start a formula (unless it is a plain number).
/// Quoting for the CSV syntax itself is the writer's job.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    let formula = text.starts_with(FORMULA_START) && !is_plain_number(text);
    match (formula, controls(text)) {
        (true, escaped) => Cow::Owned(format!("'{escaped}")),
        (false, escaped) => escaped,
    }
}

/// A decimal number as spreadsheets read one: an optional sign, digits with at most one
/// decimal point, and an optional exponent (`-12.50`, `+3`, `.5`, `1e-3`).
fn is_plain_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, frac)) => {
            (digits(whole) || whole.is_empty())
                && (digits(frac) || frac.is_empty())
                && !(whole.is_empty() && frac.is_empty())
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_sent() {
        assert_eq!(
            controls("\u{1b}[2J\u{1b}[31mPWN\u{1b}[0m"),
            "\\u{1b}[2J\\u{1b}[31mPWN\\u{1b}[0m"
        );
        assert_eq!(controls("a\tb\nc\rd\u{0}"), "a\\u{9}b\\u{a}c\\u{d}d\\u{0}");
        assert_eq!(controls("del\u{7f} csi\u{9b}"), "del\\u{7f} csi\\u{9b}");
        assert_eq!(controls("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(
            controls("\u{2066}x\u{2069}\u{200f}"),
            "\\u{2066}x\\u{2069}\\u{200f}"
        );
        // Ordinary text, accents, CJK, emoji and backslashes are untouched and not copied.
        for plain in ["laptop-1", "Müller", "東京", "🙂", r"C:\Program Files", ""] {
            assert!(matches!(controls(plain), Cow::Borrowed(p) if p == plain));
        }
    }

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        let link = r#"=HYPERLINK("http://evil.example/h","host")"#;
        assert_eq!(csv_cell(link), format!("'{link}"));
        for formula in [
            "+1+1",
            "-1+cmd|' /C calc'!A0",
            "@SUM(A1)",
            "-",
            "+",
            "-e5",
            "--1",
        ] {
            assert_eq!(csv_cell(formula), format!("'{formula}"), "{formula}");
        }
        assert_eq!(csv_cell("\t=1"), "'\\u{9}=1");
        assert_eq!(csv_cell("\r=1"), "'\\u{d}=1");
        for number in ["-12.50", "+3", "-0", "-.5", "-5.", "1e5", "-1E-3", "42"] {
            assert_eq!(csv_cell(number), number, "{number}");
        }
        // Only the start matters: a formula sign inside a cell is text.
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell("laptop-1"), "laptop-1");
        assert_eq!(csv_cell("x\u{1b}y"), "x\\u{1b}y");
    }
}
