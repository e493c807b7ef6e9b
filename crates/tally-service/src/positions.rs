//! The license position, kept between requests. Computing it reads every recognised
//! installation and every session of each metering period — seconds on a 100,000-device
//! estate — while the answer changes only when the data does. So the last positions computed
//! are kept with the generation of the data they were read from (the store bumps it inside
//! every transaction that changes what a position reads), and served while it stands: a
//! dashboard, the applications list, an application's page and the API then cost a lookup.
//!
//! The generation is read *before* the data, so a change committed while a position is being
//! computed leaves it under an older generation and the next request computes again: a kept
//! position is never newer than the generation it is served under. One computation runs at a
//! time; requests that arrive meanwhile wait for it and share its answer instead of starting
//! their own, which also bounds the work a burst of requests can cause.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::NaiveDate;
use tally_api::{AppDetail, AppPosition};
use tally_store::Store;

use crate::compliance::{check_page, Computed};
use crate::Result;

/// How many days' positions are kept: today's and one other (an `as of` being browsed). Each
/// holds the estate's devices, users and every application's consumers — about the size of
/// the data the position reads — so the count stays small.
const DAYS_KEPT: usize = 2;

/// Positions computed, by day, each with the data generation it was read at.
#[derive(Default)]
pub struct Positions {
    kept: tokio::sync::Mutex<Vec<Kept>>,
    computed: AtomicU64,
}

struct Kept {
    as_of: NaiveDate,
    generation: i64,
    positions: Arc<Computed>,
}

impl Positions {
    /// Every application's positions on `as_of`: the kept ones if the data has not changed
    /// since they were computed, else computed now and kept.
    pub(crate) async fn on(&self, store: &dyn Store, as_of: NaiveDate) -> Result<Arc<Computed>> {
        let mut kept = self.kept.lock().await;
        let generation = store.positions_generation().await?;
        if let Some(k) = kept
            .iter()
            .find(|k| k.as_of == as_of && k.generation == generation)
        {
            return Ok(k.positions.clone());
        }
        let positions = Arc::new(Computed::read(store, as_of, None).await?);
        self.computed.fetch_add(1, Ordering::Relaxed);
        kept.retain(|k| k.as_of != as_of);
        kept.insert(
            0,
            Kept {
                as_of,
                generation,
                positions: positions.clone(),
            },
        );
        kept.truncate(DAYS_KEPT);
        Ok(positions)
    }

    /// How many times positions were computed rather than served kept (for tests and logs).
    pub fn computations(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }
}

impl crate::Service {
    /// Every application's position on `as_of` (or only the one named `only`), summarised,
    /// as [`crate::compliance::compute`] gives it, from the kept positions when the data has
    /// not changed since.
    pub async fn positions(
        &self,
        as_of: NaiveDate,
        only: Option<&str>,
    ) -> Result<Vec<AppPosition>> {
        let computed = self.positions.on(self.store(), as_of).await?;
        computed.summaries(only)
    }

    /// One application's position in detail, as [`crate::compliance::detail`] gives it, from
    /// the kept positions when the data has not changed since.
    pub async fn position_detail(
        &self,
        as_of: NaiveDate,
        app: &str,
        (limit, offset): (i64, i64),
    ) -> Result<AppDetail> {
        check_page(limit, offset)?;
        let computed = self.positions.on(self.store(), as_of).await?;
        computed.detail(app, (limit, offset))
    }

    /// The kept positions, for their counters.
    pub fn kept_positions(&self) -> &Positions {
        &self.positions
    }
}
