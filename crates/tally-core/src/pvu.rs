//! IBM's Processor Value Unit table: the PVUs each core of a processor needs, by processor
//! family and the number of sockets of the server. The table ships as data
//! (`data/pvu.csv`) so that it can be read and corrected without reading code; a device's own
//! `pvu_per_core` overrides it.
//!
//! IBM keys its rows by the most sockets the *server model* takes; inventory only knows the
//! sockets populated, which is never more. A two-socket server with one processor fitted is
//! therefore rated as a one-socket server, which is why the override exists.

use std::sync::OnceLock;

const TABLE: &str = include_str!("../data/pvu.csv");

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvuRow {
    /// Lower-case words that must all appear in the processor's model name.
    pub words: Vec<String>,
    /// The most sockets this row covers; `None` for any number.
    pub max_sockets: Option<u32>,
    pub pvu_per_core: i64,
}

/// The table shipped with Tally.
pub fn table() -> &'static [PvuRow] {
    static ROWS: OnceLock<Vec<PvuRow>> = OnceLock::new();
    ROWS.get_or_init(|| parse(TABLE).expect("data/pvu.csv is checked by the tests"))
}

/// Parses the table's CSV form; the error names the line at fault.
pub fn parse(text: &str) -> Result<Vec<PvuRow>, String> {
    let mut rows = Vec::new();
    let lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut lines = lines.filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, "words,max_sockets,pvu_per_core")) => {}
        other => return Err(format!("expected the header line, found {other:?}")),
    }
    for (number, line) in lines {
        rows.push(parse_row(line).map_err(|e| format!("line {number}: {e}"))?);
    }
    Ok(rows)
}

fn parse_row(line: &str) -> Result<PvuRow, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [words, sockets, pvu] = fields[..] else {
        return Err(format!("expected 3 fields, found {}", fields.len()));
    };
    let words = words_of(words);
    if words.is_empty() {
        return Err("words: empty".into());
    }
    let max_sockets = match sockets {
        "*" => None,
        n => Some(
            n.parse()
                .map_err(|_| format!("max_sockets: {n:?} is not a number or *"))?,
        ),
    };
    let pvu_per_core = pvu
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("pvu_per_core: {pvu:?} is not a positive number"))?;
    Ok(PvuRow {
        words,
        max_sockets,
        pvu_per_core,
    })
}

/// Lower-case alphanumeric words, with the trademark marks `(R)` and `(TM)` dropped.
fn words_of(text: &str) -> Vec<String> {
    text.to_ascii_lowercase()
        .replace("(r)", " ")
        .replace("(tm)", " ")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The PVUs per core of a processor named `model` in a server with `sockets` sockets, from
/// `rows`; `None` when no row knows the processor.
pub fn lookup_in(rows: &[PvuRow], model: &str, sockets: u32) -> Option<i64> {
    let words = words_of(model);
    let sockets = sockets.max(1);
    rows.iter()
        .filter(|row| row.words.iter().all(|w| words.contains(w)))
        .filter(|row| row.max_sockets.is_none_or(|max| sockets <= max))
        .min_by_key(|row| row.max_sockets.unwrap_or(u32::MAX))
        .map(|row| row.pvu_per_core)
}

/// [`lookup_in`] the shipped table.
pub fn lookup(model: &str, sockets: u32) -> Option<i64> {
    lookup_in(table(), model, sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses() {
        let rows = parse(TABLE).unwrap();
        assert!(rows.len() >= 20, "{} rows", rows.len());
    }

    #[test]
    fn xeon_is_rated_by_the_sockets_of_the_server() {
        let model = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz";
        assert_eq!(lookup(model, 1), Some(70));
        assert_eq!(lookup(model, 2), Some(70));
        assert_eq!(lookup(model, 4), Some(100));
        assert_eq!(lookup(model, 8), Some(120));
    }

    #[test]
    fn names_as_proc_cpuinfo_gives_them() {
        assert_eq!(lookup("AMD EPYC 7763 64-Core Processor", 2), Some(70));
        assert_eq!(lookup("AMD EPYC", 1), Some(70));
        assert_eq!(
            lookup("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz", 1),
            Some(70)
        );
        assert_eq!(
            lookup("POWER9 (architected), altivec supported", 16),
            Some(120)
        );
        assert_eq!(
            lookup("Quad-Core AMD Opteron(tm) Processor 2374 HE", 2),
            Some(50)
        );
    }

    #[test]
    fn an_unknown_processor_has_no_rating() {
        assert_eq!(lookup("ARMv8 Processor rev 1 (v8l)", 1), None);
        assert_eq!(lookup("", 1), None);
        // "core" alone is not Intel Core: the vendor's word must be there too.
        assert_eq!(lookup("AMD Ryzen 7 5800X 8-Core Processor", 1), Some(70));
        assert_eq!(lookup("Some 8-Core Processor", 1), None);
    }

    #[test]
    fn a_bad_table_names_the_line() {
        let err = parse("words,max_sockets,pvu_per_core\nintel xeon,two,70\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("max_sockets"),
            "{err}"
        );
        let err = parse("words,max_sockets,pvu_per_core\nintel xeon,2,0\n").unwrap_err();
        assert!(err.contains("pvu_per_core"), "{err}");
        assert!(parse("intel xeon,2,70\n").is_err());
    }
}
