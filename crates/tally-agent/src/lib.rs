//! Tally's metering agent, shaped like a Vector pipeline: sources → transforms → sinks.
//!
//! - source: a process [`watcher`] (netlink or `/proc` polling) on its own thread;
//! - transform: the [`meter`], matching programs against the [`policy`]'s rules and running
//!   `tally-core`'s usage-record state machine;
//! - durable buffer: the [`spool`], written with the metering state at each checkpoint;
//! - sinks: the [`uploader`], a task of its own that drains the spool to the server and
//!   deletes only what the server acknowledged, and the inventory sender.
//!
//! [`config`] says how it runs, [`enrolment`] who it is to the server, [`run`] wires it
//! together. Only the watcher and the meter are on the path of a process event; nothing there
//! waits for the server.

pub mod api;
pub mod config;
pub mod enrolment;
pub mod identity;
pub mod inventory;
pub mod meter;
pub mod policy;
pub mod procfs;
pub mod run;
pub mod spool;
pub mod uploader;
pub mod watcher;

pub use config::AgentConfig;
pub use run::run;
