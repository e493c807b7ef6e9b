//! The import's CSV reading and its checks: any bytes, as any kind of file, read and checked
//! without a panic. The first byte picks the kind.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tally_fuzz::read_and_check(data, false));
