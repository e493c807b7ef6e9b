//! The rules' version patterns (`*`, `?`, any case) against a plain dynamic-programming
//! reference: the same answer for every pattern and version, and no panic. The input is the
//! pattern, a NUL, then the version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_core::rules::version_matches;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, version) = text.split_once('\0').unwrap_or((text, ""));
    assert_eq!(
        version_matches(pattern, version),
        tally_fuzz::version_matches_reference(pattern, version),
        "pattern {pattern:?}, version {version:?}"
    );
});
