//! Per-credential request-rate limits. One agent stuck in a loop, or one script with an
//! operator token, must not take the server from everyone else: each credential gets its own
//! budget (a token bucket: a burst, refilled at a steady rate), and a request over it is
//! answered 429 with `Retry-After`, which Tally's agent honours.
//!
//! Limits are per credential, not per address: a thousand agents behind one NAT are a thousand
//! budgets, and one credential cannot escape its budget by changing address. Requests without
//! valid credentials are refused before they are counted, so they cannot spend anyone's budget.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;
use crate::ApiError;

/// Who is asking: the key of a budget.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// An agent, by its id.
    Agent(&'a str),
    /// An operator token, by its id.
    Operator(i64),
}

/// Every credential's budget, by kind of credential.
pub struct RateLimits {
    agents: Option<DefaultKeyedRateLimiter<String>>,
    operators: Option<DefaultKeyedRateLimiter<i64>>,
    checks: AtomicU64,
}

/// How often (in checks) budgets that are full again are forgotten, so the map holds only the
/// credentials active in the last minute or so, not every agent that ever called.
const FORGET_EVERY: u64 = 10_000;

/// A budget of `per_minute` requests, with a burst of the same size; `0` means no limit.
fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let per_minute = NonZeroU32::new(per_minute)?;
    Some(RateLimiter::keyed(Quota::per_minute(per_minute)))
}

impl RateLimits {
    pub fn new(limits: &Limits) -> Self {
        Self {
            agents: limiter(limits.agent_requests_per_minute),
            operators: limiter(limits.operator_requests_per_minute),
            checks: AtomicU64::new(0),
        }
    }

    /// Spends one request of `caller`'s budget, or says how long to wait for the next.
    pub fn check(&self, caller: Caller<'_>) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.forget_idle();
        }
        let refused = match caller {
            Caller::Agent(id) => match &self.agents {
                Some(limiter) => limiter.check_key(&id.to_string()).err(),
                None => None,
            },
            Caller::Operator(id) => match &self.operators {
                Some(limiter) => limiter.check_key(&id).err(),
                None => None,
            },
        };
        let Some(not_until) = refused else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Err(too_many(caller, wait))
    }

    fn forget_idle(&self) {
        if let Some(l) = &self.agents {
            l.retain_recent();
        }
        if let Some(l) = &self.operators {
            l.retain_recent();
        }
    }
}

/// The 429: whole seconds to wait, rounded up, and what the limit is for.
fn too_many(caller: Caller<'_>, wait: Duration) -> ApiError {
    let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry_after_secs = retry_after_secs.max(1);
    let whose = match caller {
        Caller::Agent(_) => "this agent (agent_requests_per_minute)",
        Caller::Operator(_) => "this token (operator_requests_per_minute)",
    };
    ApiError::TooManyRequests {
        message: format!("too many requests from {whose}; retry after {retry_after_secs} s"),
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(agents: u32, operators: u32) -> Limits {
        Limits {
            agent_requests_per_minute: agents,
            operator_requests_per_minute: operators,
            ..Limits::default()
        }
    }

    #[test]
    fn a_credential_over_its_budget_waits_and_others_do_not() {
        let limits = RateLimits::new(&limits(3, 0));
        for _ in 0..3 {
            limits.check(Caller::Agent("a")).unwrap();
        }
        match limits.check(Caller::Agent("a")) {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}"),
            other => panic!("expected 429, got {other:?}"),
        }
        limits.check(Caller::Agent("b")).unwrap();
        for _ in 0..1000 {
            limits.check(Caller::Operator(1)).unwrap();
        }
    }
}
