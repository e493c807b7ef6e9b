//! What the fuzz targets share: reading an import file's rows the way `tally import` reads
//! them (`crates/tally/src/import.rs`, `Source::csv_rows` and `Source::json_rows`: the binary
//! crate's reader cannot be linked here, so its few lines of csv and serde_json set-up are
//! repeated; what they feed, the row types' deserialisers and the batch checks, is
//! `tally-core`'s own), and a plain reference for the version-pattern matcher.

use serde::de::DeserializeOwned;
use tally_core::import::{Batch, Kind, Origin, Pool, Row, Rows};

/// The clock the checks run at: fixed (1 June 2026), so a crash found replays the same way.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_780_315_200, 0).expect("a valid time")
}

/// The kind of import file a fuzz input stands for, from its first byte.
pub fn kind(byte: u8) -> Kind {
    Kind::ALL[byte as usize % Kind::ALL.len()]
}

/// What both import targets run on one input: its first byte picks the kind, the rest is read
/// as one file of that kind (JSON or CSV) and the batch checked, which must never panic.
pub fn read_and_check(data: &[u8], json: bool) {
    let Some((&byte, file)) = data.split_first() else {
        return;
    };
    let batch = read(kind(byte), file, json);
    let _ = tally_core::import::validate(&batch, &tally_core::import::Known::default(), now());
}

/// Reads `data` as one import file of `kind` (CSV or JSON) into a batch, as `tally import`
/// does: rows that cannot be read are skipped (the importer reports them), names are shared
/// through a pool.
pub fn read(kind: Kind, data: &[u8], json: bool) -> Batch {
    let mut batch = Batch::default();
    let mut pool = Pool::default();
    let b = &mut batch;
    match kind {
        Kind::OrgNodes => rows(data, json, &mut pool, &mut b.org_nodes),
        Kind::Devices => rows(data, json, &mut pool, &mut b.devices),
        Kind::Users => rows(data, json, &mut pool, &mut b.users),
        Kind::Applications => rows(data, json, &mut pool, &mut b.applications),
        Kind::Installations => rows(data, json, &mut pool, &mut b.installations),
        Kind::UsageSessions => rows(data, json, &mut pool, &mut b.sessions),
        Kind::Licenses => rows(data, json, &mut pool, &mut b.licenses),
        Kind::CustomValues => rows(data, json, &mut pool, &mut b.custom_values),
    }
    batch
}

fn rows<T: DeserializeOwned + Row>(data: &[u8], json: bool, pool: &mut Pool, into: &mut Rows<T>) {
    let mut keep = |line: usize, mut row: T| {
        row.share_names(pool);
        let file = if json { "fuzz.json" } else { "fuzz.csv" };
        into.push((
            Origin {
                file: file.into(),
                line,
            },
            row,
        ));
    };
    if json {
        // An array of objects, each element read as a value first, then as the row.
        let Ok(values) = serde_json::from_slice::<Vec<serde_json::Value>>(data) else {
            return;
        };
        for (i, value) in values.into_iter().enumerate() {
            if let Ok(row) = serde_json::from_value::<T>(value) {
                keep(i + 1, row);
            }
        }
        return;
    }
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(data);
    let Ok(headers) = csv.headers().cloned() else {
        return;
    };
    for record in csv.records().flatten() {
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if let Ok(row) = record.deserialize::<T>(Some(&headers)) {
            keep(line, row);
        }
    }
}

/// What `tally_core::rules::version_matches` must answer, by the textbook dynamic programme:
/// `*` any run, `?` one character, case ignored, an empty pattern matching everything.
pub fn version_matches_reference(pattern: &str, version: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = version.to_lowercase().chars().collect();
    // m[j]: the pattern so far matches the first j characters of the version.
    let mut m = vec![false; v.len() + 1];
    m[0] = true;
    for &c in &p {
        let mut next = vec![false; v.len() + 1];
        if c == '*' {
            let mut any = false;
            for j in 0..=v.len() {
                any |= m[j];
                next[j] = any;
            }
        } else {
            for j in 1..=v.len() {
                next[j] = m[j - 1] && (c == '?' || c == v[j - 1]);
            }
        }
        m = next;
    }
    m[v.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_matcher_knows_the_basics() {
        assert!(version_matches_reference("", "anything"));
        assert!(version_matches_reference("1.*", "1.2.3"));
        assert!(version_matches_reference("1.?", "1.2"));
        assert!(!version_matches_reference("1.?", "1.23"));
        assert!(version_matches_reference("*", ""));
        assert!(!version_matches_reference("?", ""));
        assert!(version_matches_reference("A*b", "aXXB"));
    }

    #[test]
    fn a_csv_file_is_read_into_its_kind() {
        let batch = read(Kind::Devices, b"host_name, cores\nh1, 4\n,\n", false);
        assert_eq!(batch.devices.len(), 2);
        assert_eq!(batch.devices[0].1.cores, Some(4));
    }
}
