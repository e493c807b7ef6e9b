//! The license position, kept between requests. Computing it reads every recognised
//! installation and every session of each metering period — seconds on a 100,000-device
//! estate — while the answer changes only when the data does. So the last positions computed
//! are kept with the generation of the data they were read from (the store bumps it inside
//! every transaction that changes what a position reads), and served while it stands: a
//! dashboard, the applications list, an application's page and the API then cost a lookup.
//!
//! What agents observe — inventories, hardware, usage sessions — moves a generation of its own
//! (`observed`): on a site with many agents it moves every second, so a position kept for it
//! strictly would never be served. A kept position stands for new observations until it is
//! [`Positions::refresh`] old (the site's `position_refresh_secs`), the way license tools
//! reconcile on a schedule; a change a person makes (a license, an application, a status, the
//! org tree, an import) is followed at once.
//!
//! The generation is read *before* the data, so a change committed while a position is being
//! computed leaves it under an older generation and the next request computes again: a kept
//! position is never newer than the generation it is served under. One computation of the
//! whole subtree's positions runs at a time (and one narrowed to sites, beside it); requests
//! that arrive meanwhile wait for it and, for the same day and sites, share its answer instead
//! of starting their own, which also bounds the work a burst of requests can cause.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tally_api::{AppDetail, AppPosition};
use tally_core::SiteCode;
use tally_store::{Generations, Store};

use crate::compliance::{check_page, Computed};
use crate::reclaim::{ReclaimInputs, ReclaimList, ReclaimQuery};
use crate::Result;

/// How many days' positions are kept: today's and one other (an `as of` being browsed). Each
/// holds the estate's devices, users and every application's consumers — about the size of
/// the data the position reads — so the count stays small.
const DAYS_KEPT: usize = 2;

/// How many positions narrowed to a site (a parent's `?site=`, `--site`) are kept besides: a
/// license manager going through a child site's pages reads its positions again on every page,
/// each of which computed them before. Each holds the whole estate's devices, users and names
/// (only the consumers are the sites'), so they are kept apart from the whole subtree's and
/// computed under a lock of their own: a site's computation never holds up the dashboard's.
const SITES_KEPT: usize = 2;

/// What a kept value answers for: a day, over the whole subtree or the devices of some sites.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    as_of: NaiveDate,
    /// The sites narrowed to, sorted; `None` for all this site holds.
    sites: Option<Vec<SiteCode>>,
}

impl Key {
    fn whole(as_of: NaiveDate) -> Self {
        Self { as_of, sites: None }
    }

    fn narrowed(as_of: NaiveDate, sites: &[SiteCode]) -> Self {
        let mut sites = sites.to_vec();
        sites.sort();
        sites.dedup();
        Self {
            as_of,
            sites: Some(sites),
        }
    }
}

/// License positions and reclaim inputs computed, by day, each with the data generations it
/// was read at; and the last reclaim lists made from those inputs.
#[derive(Default)]
pub struct Positions {
    positions: Keeper<Computed>,
    /// Positions narrowed to a set of sites ([`SITES_KEPT`]).
    narrowed: Keeper<Computed>,
    reclaim: Keeper<ReclaimInputs>,
    lists: std::sync::Mutex<Vec<KeptList>>,
    /// How long a kept value stands for new observations alone; zero follows every one.
    refresh: Duration,
}

/// How many reclaim lists are kept: the dashboard's and a few filtered views.
const LISTS_KEPT: usize = 8;

/// A reclaim list with the query and the inputs it was made from (holding the inputs keeps
/// their address from being reused while the list is kept).
struct KeptList {
    query: ReclaimQuery,
    inputs: Arc<ReclaimInputs>,
    list: Arc<ReclaimList>,
}

/// One kind of thing computed from the store, kept per day with the generation it was read at.
struct Keeper<T> {
    kept: tokio::sync::Mutex<Vec<Kept<T>>>,
    computed: AtomicU64,
}

impl<T> Default for Keeper<T> {
    fn default() -> Self {
        Self {
            kept: tokio::sync::Mutex::default(),
            computed: AtomicU64::new(0),
        }
    }
}

struct Kept<T> {
    key: Key,
    generation: Generations,
    /// When the generation was read.
    read_at: Instant,
    value: Arc<T>,
}

impl<T> Kept<T> {
    /// Whether this value answers for `key` at `now`: nothing a person changes has moved,
    /// and what agents observed since is no older than `refresh` allows.
    fn serves(&self, key: &Key, now: Generations, refresh: Duration) -> bool {
        let then = self.generation;
        self.key == *key
            && (then.positions, then.evidence) == (now.positions, now.evidence)
            && (then.observed == now.observed || self.read_at.elapsed() < refresh)
    }
}

impl<T> Keeper<T> {
    /// The value for `key`: the kept one if the generations `which` picks have not moved
    /// since it was computed, else `compute`d now and kept, with at most `most` kept in all
    /// (the least recently served goes).
    async fn on<F, Fut>(
        &self,
        (store, refresh, most): (&dyn Store, Duration, usize),
        key: Key,
        which: fn(Generations) -> Generations,
        compute: F,
    ) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut kept = self.kept.lock().await;
        let read_at = Instant::now();
        let generation = which(store.generations().await?);
        if let Some(at) = kept
            .iter()
            .position(|k| k.serves(&key, generation, refresh))
        {
            kept[..=at].rotate_right(1);
            return Ok(kept[0].value.clone());
        }
        let value = Arc::new(compute().await?);
        self.computed.fetch_add(1, Ordering::Relaxed);
        kept.retain(|k| k.key != key);
        let fresh = Kept {
            key,
            generation,
            read_at,
            value: value.clone(),
        };
        kept.insert(0, fresh);
        kept.truncate(most);
        Ok(value)
    }
}

/// How often [`keep_warm`] looks at the data generations.
pub const WARM_CHECK: Duration = Duration::from_secs(5);

/// After computing, [`keep_warm`] rests this many times as long as the computation took, so
/// keeping positions warm costs at most a fifth of one core however large the estate.
const WARM_REST_FACTOR: u32 = 4;

/// Keeps today's position and reclaim inputs computed in the background: whenever what they
/// read changes (or what agents observe, once the kept ones are older than the refresh), they
/// are computed again before anyone asks, so the dashboard, the applications and the API
/// rarely wait for a computation — not after a license is added, an import, or a restart.
/// Runs until the service is dropped everywhere else.
pub async fn keep_warm(service: std::sync::Weak<crate::Service>, check: Duration) {
    let mut ticks = tokio::time::interval(check);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(service) = service.upgrade() else {
            return;
        };
        let started = Instant::now();
        let before = service.positions.computations() + service.positions.reclaim_reads();
        if let Err(e) = service.warm(chrono::Utc::now().date_naive()).await {
            tracing::warn!(error = %e, "cannot keep the license position warm; retrying");
            continue;
        }
        let after = service.positions.computations() + service.positions.reclaim_reads();
        drop(service);
        if after > before {
            let took = started.elapsed();
            tracing::debug!(?took, "license position computed ahead of its readers");
            tokio::time::sleep(took * WARM_REST_FACTOR).await;
        }
    }
}

/// A position reads only what the `positions` generation follows.
fn positions_only(g: Generations) -> Generations {
    Generations { evidence: 0, ..g }
}

impl Positions {
    /// Every position on `as_of`, kept or computed now.
    pub(crate) async fn on(&self, store: &dyn Store, as_of: NaiveDate) -> Result<Arc<Computed>> {
        let compute = || Computed::read(store, as_of, None);
        self.positions
            .on(
                (store, self.refresh, DAYS_KEPT),
                Key::whole(as_of),
                positions_only,
                compute,
            )
            .await
    }

    /// Every position on `as_of` over the devices of `sites`, kept or computed now.
    async fn within(
        &self,
        store: &dyn Store,
        as_of: NaiveDate,
        sites: &[SiteCode],
    ) -> Result<Arc<Computed>> {
        let compute = || async {
            let devices = crate::scope::devices_of(store, sites).await?;
            Computed::read_in(store, as_of, None, Some(&devices)).await
        };
        let key = Key::narrowed(as_of, sites);
        (self.narrowed)
            .on(
                (store, self.refresh, SITES_KEPT),
                key,
                positions_only,
                compute,
            )
            .await
    }

    /// Kept positions that stand for new inventory and usage until they are `refresh` old.
    pub fn refreshed_every(refresh: Duration) -> Self {
        Self {
            refresh,
            ..Self::default()
        }
    }

    /// How long a kept position stands for new inventory and usage alone.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// How many times positions were computed rather than served kept (for tests and logs).
    pub fn computations(&self) -> u64 {
        self.positions.computed.load(Ordering::Relaxed)
    }

    /// How many times positions narrowed to sites were computed rather than served kept.
    pub fn narrowed_computations(&self) -> u64 {
        self.narrowed.computed.load(Ordering::Relaxed)
    }

    /// How many times the reclaim list's inputs were read rather than served kept.
    pub fn reclaim_reads(&self) -> u64 {
        self.reclaim.computed.load(Ordering::Relaxed)
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

    /// [`Self::positions`] over the devices of `sites` only, as
    /// [`crate::compliance::compute_in`] gives it, kept like the whole subtree's.
    pub async fn positions_in(
        &self,
        as_of: NaiveDate,
        only: Option<&str>,
        sites: &[SiteCode],
    ) -> Result<Vec<AppPosition>> {
        let computed = self.positions.within(self.store(), as_of, sites).await?;
        computed.summaries(only)
    }

    /// [`Self::position_detail`] over the devices of `sites` only, as
    /// [`crate::compliance::detail_in`] gives it, kept like the whole subtree's.
    pub async fn position_detail_in(
        &self,
        as_of: NaiveDate,
        app: &str,
        (limit, offset): (i64, i64),
        sites: &[SiteCode],
    ) -> Result<AppDetail> {
        check_page(limit, offset)?;
        let computed = self.positions.within(self.store(), as_of, sites).await?;
        computed.detail(app, (limit, offset))
    }

    /// The reclaim list `query` asks for, as [`crate::reclaim::reclaim`] gives it, from inputs
    /// kept while neither what a position reads nor the usage evidence has changed.
    pub async fn reclaim(&self, query: &ReclaimQuery) -> Result<ReclaimList> {
        Ok(self.reclaim_shared(query).await?.as_ref().clone())
    }

    /// The reclaim list `query` asks for with `limit` idle installations after the first
    /// `offset` (its totals still of them all), copying only that page out of the kept list.
    pub async fn reclaim_page(
        &self,
        query: &ReclaimQuery,
        (limit, offset): (i64, i64),
    ) -> Result<ReclaimList> {
        check_page(limit, offset)?;
        let list = self.reclaim_shared(query).await?;
        let page = (list.idle.iter())
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(ReclaimList {
            idle: page,
            idle_value: list.idle_value.clone(),
            no_usage_data: list.no_usage_data.clone(),
            ..*list
        })
    }

    /// The reclaim list `query` asks for, shared with the kept lists rather than copied: for
    /// readers that total or page it (an estate's idle list runs to many thousand rows).
    pub async fn reclaim_shared(&self, query: &ReclaimQuery) -> Result<Arc<ReclaimList>> {
        let inputs = self.reclaim_inputs(query.as_of).await?;
        let kept = |k: &KeptList| k.query == *query && Arc::ptr_eq(&k.inputs, &inputs);
        let lists = &self.positions.lists;
        if let Some(k) = lists.lock().expect("lists").iter().find(|k| kept(k)) {
            return Ok(k.list.clone());
        }
        let list = Arc::new(inputs.list(query)?);
        let mut lists = lists.lock().expect("lists");
        lists.retain(|k| k.query != *query);
        let fresh = KeptList {
            query: query.clone(),
            inputs,
            list: list.clone(),
        };
        lists.insert(0, fresh);
        lists.truncate(LISTS_KEPT);
        Ok(list)
    }

    /// When each application was last used on `device`, by name, as the reclaim list on
    /// `as_of` sees it (sessions and metering summaries), from the kept reclaim inputs.
    pub async fn last_use_on(
        &self,
        as_of: NaiveDate,
        device: i64,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        Ok(self.reclaim_inputs(as_of).await?.last_use_on(device))
    }

    /// Today's positions and reclaim inputs, computed now unless the kept ones still stand.
    async fn warm(&self, today: NaiveDate) -> Result<()> {
        self.positions.on(self.store(), today).await?;
        self.reclaim_inputs(today).await?;
        Ok(())
    }

    /// The reclaim list's inputs on `as_of`, kept while neither what a position reads nor the
    /// usage evidence has changed.
    async fn reclaim_inputs(&self, as_of: NaiveDate) -> Result<Arc<ReclaimInputs>> {
        let store = self.store();
        let compute = || ReclaimInputs::read(store, as_of, None);
        let refresh = self.positions.refresh;
        (self.positions.reclaim)
            .on(
                (store, refresh, DAYS_KEPT),
                Key::whole(as_of),
                |g| g,
                compute,
            )
            .await
    }

    /// The kept positions, for their counters.
    pub fn kept_positions(&self) -> &Positions {
        &self.positions
    }
}
