//! Rate limits on the endpoints that guess at secrets: sign-in, the device page and the token
//! endpoint. Each budget is charged so that nobody can spend someone else's:
//!
//! - every attempt is charged to the caller's **address** (what one machine may try);
//! - a **failed** attempt is charged to the caller's address's failure budget, and a failed
//!   sign-in also to the account's much larger failure budget, which never refuses: past it,
//!   attempts on that account are answered after a short pause (a gentle backoff), so guessing
//!   from many addresses slows down while the owner still signs in;
//! - per-account and per-client budgets are charged only **after** the password or the client's
//!   credential is verified, so only their holder can spend them; a public client (no secret,
//!   e.g. `uplink-connector`) has one budget per address, so a flood with its client id from
//!   one address never refuses a valid refresh from another.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::HubMetrics;

/// Budgets per minute (each may be spent at once, then refills evenly over the minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in attempts (and device codes typed) per client address, charged before the
    /// password is checked.
    pub sign_in_per_address: NonZeroU32,
    /// Successful sign-ins (and device codes typed) per account, charged after the password
    /// (or the session) is verified.
    pub sign_in_per_account: NonZeroU32,
    /// Failed sign-ins per account before each further attempt on it waits
    /// [`RateLimits::sign_in_backoff`]. Never refuses.
    pub sign_in_failures_per_account: NonZeroU32,
    /// The pause before a sign-in on an account past its failure budget is checked.
    pub sign_in_backoff: Duration,
    /// Token-endpoint requests per client address.
    pub token_per_address: NonZeroU32,
    /// Failed token-endpoint requests (bad client credential, invalid or spent grant) per client
    /// address; an address past it is refused before its request is looked at.
    pub token_failures_per_address: NonZeroU32,
    /// Token-endpoint requests per app once its credential is verified; for a public app, per
    /// app and client address.
    pub token_per_app: NonZeroU32,
}

impl Default for RateLimits {
    fn default() -> Self {
        let n = |v| NonZeroU32::new(v).expect("non-zero");
        Self {
            sign_in_per_address: n(30),
            sign_in_per_account: n(10),
            sign_in_failures_per_account: n(100),
            sign_in_backoff: Duration::from_secs(2),
            token_per_address: n(600),
            token_failures_per_address: n(60),
            token_per_app: n(600),
        }
    }
}

/// One keyed budget: a token bucket per key holding up to `capacity`, refilling `capacity`
/// per minute. Keys whose bucket is full again are forgotten by [`Budget::retain_recent`].
#[derive(Debug)]
struct Budget<K> {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    fn per_minute(n: NonZeroU32) -> Self {
        let capacity = f64::from(n.get());
        Self {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The key's level now, refilled for the time since it was last touched.
    fn level(&self, bucket: Option<&(f64, Instant)>, now: Instant) -> f64 {
        match bucket {
            None => self.capacity,
            Some((level, at)) => {
                let refill = now.saturating_duration_since(*at).as_secs_f64() * self.per_second;
                (level + refill).min(self.capacity)
            }
        }
    }

    /// Whether `key` has something left, without spending it.
    fn has(&self, key: &K) -> bool {
        let buckets = self.buckets.lock().expect("rate limit lock poisoned");
        self.level(buckets.get(key), Instant::now()) >= 1.0
    }

    /// Spends one if `key` has it; whether it had.
    fn take(&self, key: &K) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limit lock poisoned");
        let level = self.level(buckets.get(key), now);
        let had = level >= 1.0;
        buckets.insert(key.clone(), (if had { level - 1.0 } else { level }, now));
        had
    }

    fn retain_recent(&self) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limit lock poisoned");
        buckets.retain(|_, bucket| self.level(Some(bucket), now) < self.capacity);
    }
}

/// Whose budget a token-endpoint request spends once its client is verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    /// A confidential app or a connector with a credential: its own.
    Client(String),
    /// A public app: its id from one address.
    PublicFrom(String, IpAddr),
}

/// The live budgets.
#[derive(Debug)]
pub struct Limiters {
    backoff: Duration,
    sign_in_address: Budget<IpAddr>,
    sign_in_account: Budget<String>,
    sign_in_failures: Budget<String>,
    token_address: Budget<IpAddr>,
    token_failures: Budget<IpAddr>,
    token_client: Budget<ClientKey>,
    /// Where refusals are counted (`uplink_hub_rate_limited_total`).
    metrics: Arc<HubMetrics>,
}

impl Limiters {
    /// Limiters with the given budgets, counting refusals in `metrics`.
    pub fn counted_in(limits: RateLimits, metrics: Arc<HubMetrics>) -> Self {
        Self {
            metrics,
            backoff: limits.sign_in_backoff,
            sign_in_address: Budget::per_minute(limits.sign_in_per_address),
            sign_in_account: Budget::per_minute(limits.sign_in_per_account),
            sign_in_failures: Budget::per_minute(limits.sign_in_failures_per_account),
            token_address: Budget::per_minute(limits.token_per_address),
            token_failures: Budget::per_minute(limits.token_failures_per_address),
            token_client: Budget::per_minute(limits.token_per_app),
        }
    }

    /// A sign-in attempt (or a typed device code) from `address`: spends the address's budget,
    /// before anything is checked. Whether it may proceed.
    pub fn allow_attempt_from(&self, address: IpAddr) -> bool {
        self.counted(self.sign_in_address.take(&address), "sign_in_address")
    }

    /// `allowed`, counting a refusal by `limit`.
    fn counted(&self, allowed: bool, limit: &str) -> bool {
        if !allowed {
            self.metrics.rate_limited(limit);
        }
        allowed
    }

    /// How long a sign-in on `account` waits before its password is checked: nothing, unless
    /// the account's failure budget is spent (someone is guessing), then the backoff. The
    /// owner's right password still signs in, a little later.
    pub fn sign_in_backoff(&self, account: &str) -> Duration {
        if self.sign_in_failures.has(&account.to_lowercase()) {
            Duration::ZERO
        } else {
            self.metrics.rate_limited("sign_in_backoff");
            self.backoff
        }
    }

    /// A wrong password for `account`: charged to the account's failure budget (the address
    /// paid for the attempt already).
    pub fn sign_in_failed(&self, account: &str) {
        self.sign_in_failures.take(&account.to_lowercase());
    }

    /// A verified sign-in (or a device code typed in a verified session) of `account`: spends
    /// the account's own budget. Whether it may proceed.
    pub fn allow_verified_account(&self, account: &str) -> bool {
        self.counted(
            self.sign_in_account.take(&account.to_lowercase()),
            "sign_in_account",
        )
    }

    /// A token-endpoint request from `address`, before anything is checked: spends the
    /// address's budget, and is refused when the address has no failures left. Whether it may
    /// proceed.
    pub fn allow_token_from(&self, address: IpAddr) -> bool {
        let allowed = self.token_failures.has(&address) && self.token_address.take(&address);
        self.counted(allowed, "token_address")
    }

    /// A token-endpoint request that failed (a bad client credential, a grant that is not
    /// valid): charged to the caller's address only.
    pub fn token_failed(&self, address: IpAddr) {
        self.token_failures.take(&address);
    }

    /// A token-endpoint request by a client whose credential is verified: spends that client's
    /// budget. A public client (`confidential` false) has no credential, so its budget is per
    /// address. Whether it may proceed.
    pub fn allow_token_for(&self, client_id: &str, confidential: bool, address: IpAddr) -> bool {
        let key = if confidential {
            ClientKey::Client(client_id.to_owned())
        } else {
            ClientKey::PublicFrom(client_id.to_owned(), address)
        };
        self.counted(self.token_client.take(&key), "token_client")
    }

    /// Forgets keys idle long enough to be full again, bounding memory.
    pub fn forget_idle(&self) {
        self.sign_in_address.retain_recent();
        self.sign_in_account.retain_recent();
        self.sign_in_failures.retain_recent();
        self.token_address.retain_recent();
        self.token_failures.retain_recent();
        self.token_client.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn failures_slow_an_account_down_but_never_refuse_it() {
        let l = Limiters::counted_in(RateLimits {
            sign_in_failures_per_account: n(3),
            ..RateLimits::default()
        }, Arc::default());
        for i in 0..10u8 {
            assert!(l.allow_attempt_from(IpAddr::from([10, 0, 0, i])));
            l.sign_in_failed("Ada");
        }
        assert_eq!(
            l.sign_in_backoff("ada"),
            RateLimits::default().sign_in_backoff
        );
        assert_eq!(l.sign_in_backoff("bob"), Duration::ZERO);
        assert!(l.allow_verified_account("ada"), "the owner still gets in");
    }

    #[test]
    fn an_address_spends_only_its_own_budget() {
        let l = Limiters::counted_in(RateLimits {
            sign_in_per_address: n(3),
            token_failures_per_address: n(2),
            ..RateLimits::default()
        }, Arc::default());
        let (attacker, owner) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert_eq!((0..5).filter(|_| l.allow_attempt_from(attacker)).count(), 3);
        assert!(l.allow_attempt_from(owner));
        l.token_failed(attacker);
        l.token_failed(attacker);
        assert!(!l.allow_token_from(attacker));
        assert!(l.allow_token_from(owner));
    }

    #[test]
    fn a_public_client_is_budgeted_per_address() {
        let l = Limiters::counted_in(RateLimits {
            token_per_app: n(2),
            ..RateLimits::default()
        }, Arc::default());
        let (flood, owner) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert_eq!(
            (0..5)
                .filter(|_| l.allow_token_for("uplink-connector", false, flood))
                .count(),
            2
        );
        assert!(l.allow_token_for("uplink-connector", false, owner));
        // A confidential client's budget is its own, wherever it calls from.
        assert!(l.allow_token_for("conf", true, flood));
        assert!(l.allow_token_for("conf", true, owner));
        assert!(!l.allow_token_for("conf", true, owner));
    }

    #[test]
    fn idle_full_buckets_are_forgotten() {
        let l = Limiters::counted_in(RateLimits::default(), Arc::default());
        assert!(l.allow_attempt_from(IpAddr::from([10, 0, 0, 1])));
        l.forget_idle();
        assert_eq!(l.sign_in_address.buckets.lock().unwrap().len(), 1);
    }
}
