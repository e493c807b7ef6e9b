//! The import's CSV reading and its checks: any bytes, as any kind of file, read and checked
//! without a panic. The first byte picks the kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_core::import::{validate, Known};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, csv)) = data.split_first() else {
        return;
    };
    let batch = tally_fuzz::read(tally_fuzz::kind(kind), csv, false);
    let _ = validate(&batch, &Known::default(), tally_fuzz::now());
});
