//! The agent's reader of the kernel's process-connector datagrams, compiled from the agent's
//! own source file (it needs only libc, so the fuzz build skips the agent's other crates): any
//! datagram is read without a panic, and every event comes from a message of its own, at
//! least a netlink header long.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/tally-agent/src/watcher/netlink.rs"]
mod netlink;

fuzz_target!(|data: &[u8]| {
    let events = netlink::parse(data);
    assert!(
        events.len() <= data.len() / 16,
        "{} events from {} bytes",
        events.len(),
        data.len()
    );
});
