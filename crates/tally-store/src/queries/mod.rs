//! The queries both backends share, one file per aggregate, each implementing that aggregate's
//! trait. This module is compiled once under `sqlite/` and once under `postgres/`; `Db` and
//! `DbStore` (and the constants below) are the including backend's, so each query is written
//! once and type-checked against both databases.

use super::{Db, DbStore, BEGIN_WRITE, NAME};

mod agents;
mod audit;
mod export;
mod import;
mod info;
mod inventory;
mod licensing;
mod rules;
mod sites;
mod summaries;
mod usage;
