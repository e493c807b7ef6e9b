//! The agent API's usage upload as the server reads it: any body decoded as a `UsageBatch`
//! (serde_json, as axum's `Json` does) and validated without a panic; a decoded batch
//! encodes and decodes back to itself, and a valid one becomes stored records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_core::wire::v1::UsageBatch;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = serde_json::from_slice::<UsageBatch>(data) else {
        return;
    };
    let text = serde_json::to_string(&batch).expect("a decoded batch encodes");
    let again: UsageBatch = serde_json::from_str(&text).expect("an encoded batch decodes");
    assert_eq!(again, batch, "the wire format round-trips");
    if batch.validate(tally_fuzz::now()).is_ok() {
        for record in &batch.records {
            let stored = record.to_record(1, 2, 3);
            assert!(stored.start_time <= stored.end_time);
        }
    }
});
