//! Rate limits on the endpoints that guess at secrets: sign-in (per client address and per
//! account) and the token endpoint (per client address and per app).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

/// Requests per minute allowed for each key (bursts up to the same number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in attempts per client address.
    pub sign_in_per_address: NonZeroU32,
    /// Sign-in attempts per account name.
    pub sign_in_per_account: NonZeroU32,
    /// Token-endpoint requests per client address.
    pub token_per_address: NonZeroU32,
    /// Token-endpoint requests per app.
    pub token_per_app: NonZeroU32,
}

impl Default for RateLimits {
    fn default() -> Self {
        let n = |v| NonZeroU32::new(v).expect("non-zero");
        Self {
            sign_in_per_address: n(30),
            sign_in_per_account: n(10),
            token_per_address: n(600),
            token_per_app: n(600),
        }
    }
}

/// The live limiters.
#[derive(Debug)]
pub struct Limiters {
    sign_in_address: DefaultKeyedRateLimiter<IpAddr>,
    sign_in_account: DefaultKeyedRateLimiter<String>,
    token_address: DefaultKeyedRateLimiter<IpAddr>,
    token_app: DefaultKeyedRateLimiter<String>,
}

impl Limiters {
    /// Limiters with the given budgets.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            sign_in_address: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                limits.sign_in_per_address,
            )),
            sign_in_account: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                limits.sign_in_per_account,
            )),
            token_address: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                limits.token_per_address,
            )),
            token_app: DefaultKeyedRateLimiter::keyed(Quota::per_minute(limits.token_per_app)),
        }
    }

    /// Whether a sign-in attempt from `address` for `account` may proceed. Both budgets are
    /// charged, so guessing one account from many addresses is limited too.
    pub fn allow_sign_in(&self, address: IpAddr, account: &str) -> bool {
        let by_address = self.sign_in_address.check_key(&address).is_ok();
        let by_account = self
            .sign_in_account
            .check_key(&account.to_lowercase())
            .is_ok();
        by_address && by_account
    }

    /// Whether another token-endpoint request from `address` may proceed.
    pub fn allow_token_from(&self, address: IpAddr) -> bool {
        self.token_address.check_key(&address).is_ok()
    }

    /// Whether another token-endpoint request by `app` may proceed.
    pub fn allow_token_for(&self, app: &str) -> bool {
        self.token_app.check_key(&app.to_owned()).is_ok()
    }

    /// Forgets keys idle long enough to be full again, bounding memory.
    pub fn forget_idle(&self) {
        self.sign_in_address.retain_recent();
        self.sign_in_account.retain_recent();
        self.token_address.retain_recent();
        self.token_app.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_budget_holds_across_addresses() {
        let limits = RateLimits {
            sign_in_per_account: NonZeroU32::new(3).unwrap(),
            ..RateLimits::default()
        };
        let l = Limiters::new(limits);
        let allowed = (0..10u8)
            .filter(|i| l.allow_sign_in(IpAddr::from([10, 0, 0, *i]), "Ada"))
            .count();
        assert_eq!(allowed, 3);
        assert!(l.allow_sign_in(IpAddr::from([10, 0, 0, 1]), "bob"));
    }
}
