//! Per-source rate limits, so a scanner sweeping the SIP port or a client
//! reconnecting in a loop costs sono little and disturbs nobody else: SIP
//! requests no dialog owns per source address, RTMP connects per address,
//! REST calls per token (`[limits]`). Each is a token bucket per key
//! (`rate` a second, `burst` at once), sans-I/O: keys and time in,
//! verdicts out.
//!
//! Memory stays bounded whatever the sources: past [`MAX_KEYS`] keys the
//! idle buckets (full again) are forgotten, and if that is not enough, new
//! sources share one bucket until some are. A refused source is logged
//! once a minute with how many it sent meanwhile, not once per request.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sources tracked one by one.
pub const MAX_KEYS: usize = 65_536;
/// A refused source is logged at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// What to do with a request over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; `log` is `Some(refused since the last line)` when
    /// this source is due a log line.
    Refused {
        log: Option<u64>,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    refused_unlogged: u64,
    logged_at: Option<Instant>,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, Bucket>,
    /// The bucket new keys share while the map is full.
    overflow: Option<Bucket>,
    /// When idle buckets were last forgotten: at most once a second, so a
    /// flood of new sources does not buy a scan of the map each.
    swept_at: Option<Instant>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` requests a second per key, up to `burst` at once; a rate of
    /// 0 turns the limit off.
    pub fn new(rate: u32, burst: u32) -> RateLimiter<K> {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            overflow: None,
            swept_at: None,
        }
    }

    pub fn is_off(&self) -> bool {
        self.rate == 0.0
    }

    /// One request from `key` at `now`.
    pub fn check(&mut self, key: &K, now: Instant) -> Verdict {
        if self.is_off() {
            return Verdict::Allowed;
        }
        let (rate, burst) = (self.rate, self.burst);
        let sweep_due = self
            .swept_at
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if sweep_due && !self.buckets.contains_key(key) && self.buckets.len() >= MAX_KEYS {
            self.swept_at = Some(now);
            self.forget_idle(now);
        }
        let fresh = Bucket {
            tokens: burst,
            at: now,
            refused_unlogged: 0,
            logged_at: None,
        };
        let bucket = if self.buckets.contains_key(key) || self.buckets.len() < MAX_KEYS {
            self.buckets.entry(key.clone()).or_insert(fresh)
        } else {
            self.overflow.get_or_insert(fresh)
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Allowed;
        }
        bucket.refused_unlogged += 1;
        let due = bucket
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        let log = due.then(|| {
            bucket.logged_at = Some(now);
            std::mem::take(&mut bucket.refused_unlogged)
        });
        Verdict::Refused { log }
    }

    /// Sources tracked one by one now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Forgets buckets that have filled up again: their sources are as
    /// good as new.
    fn forget_idle(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }
}

/// The limits of one sono, shared by every actor and HTTP worker.
#[derive(Debug)]
pub struct Limits {
    sip: Mutex<RateLimiter<IpAddr>>,
    rtmp: Mutex<RateLimiter<IpAddr>>,
    rest: Mutex<RateLimiter<String>>,
    exempt_loopback: bool,
    exempt: Vec<ipnet::IpNet>,
}

/// Which limit refused something (the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Sip,
    Rtmp,
    Rest,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Limit::Sip => "sip",
            Limit::Rtmp => "rtmp",
            Limit::Rest => "rest",
        }
    }
}

impl Limits {
    pub fn new(s: &crate::settings::LimitsSettings) -> Limits {
        Limits {
            sip: Mutex::new(RateLimiter::new(s.sip_requests_per_second, s.sip_burst)),
            rtmp: Mutex::new(RateLimiter::new(s.rtmp_connects_per_second, s.rtmp_burst)),
            rest: Mutex::new(RateLimiter::new(s.rest_calls_per_second, s.rest_burst)),
            exempt_loopback: s.exempt_loopback,
            exempt: s.exempt.clone(),
        }
    }

    /// Whether a request, connect or call from `source` (REST: keyed by
    /// its token, or the address without one) may go on; a refusal is
    /// counted in `metrics` and logged once a minute per source.
    pub fn allow(
        &self,
        limit: Limit,
        source: IpAddr,
        token: Option<&str>,
        metrics: &crate::metrics::Metrics,
    ) -> bool {
        match self.check(limit, source, token) {
            Verdict::Allowed => true,
            Verdict::Refused { log } => {
                let index = match limit {
                    Limit::Sip => 0,
                    Limit::Rtmp => 1,
                    Limit::Rest => 2,
                };
                crate::metrics::Metrics::add(&metrics.rate_limited[index], 1);
                if let Some(refused) = log {
                    tracing::warn!(limit = limit.label(), %source, refused,
                        "over the per-source limit ([limits]); refused (logged once a minute)");
                }
                false
            }
        }
    }

    /// A request, connect or call from `source` (an address; REST: the
    /// token, or the address without one) under `limit`.
    pub fn check(&self, limit: Limit, source: IpAddr, token: Option<&str>) -> Verdict {
        if self.exempt_loopback && source.is_loopback()
            || self.exempt.iter().any(|net| net.contains(&source))
        {
            return Verdict::Allowed;
        }
        let now = Instant::now();
        let lock = |m: &Mutex<RateLimiter<IpAddr>>| {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .check(&source, now)
        };
        match limit {
            Limit::Sip => lock(&self.sip),
            Limit::Rtmp => lock(&self.rtmp),
            Limit::Rest => {
                let key = token.map_or_else(|| source.to_string(), str::to_owned);
                self.rest
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .check(&key, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10, 5);
        let allowed = (0..20)
            .filter(|_| l.check(&"a", t0) == Verdict::Allowed)
            .count();
        assert_eq!(allowed, 5, "the burst");
        // 10 a second: one more every 100 ms.
        assert_eq!(l.check(&"a", t0 + 50 * MS), Verdict::Refused { log: None });
        assert_eq!(l.check(&"a", t0 + 100 * MS), Verdict::Allowed);
        // Another source has its own bucket.
        assert_eq!(l.check(&"b", t0), Verdict::Allowed);
    }

    #[test]
    fn a_refused_source_is_logged_once_a_minute_with_its_count() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1, 1);
        assert_eq!(l.check(&1, t0), Verdict::Allowed);
        assert_eq!(l.check(&1, t0), Verdict::Refused { log: Some(1) });
        for _ in 0..9 {
            assert_eq!(l.check(&1, t0 + MS), Verdict::Refused { log: None });
        }
        // A minute on: one line for the nine since.
        let later = t0 + LOG_EVERY;
        let _ = l.check(&1, later); // a token came back meanwhile
        assert_eq!(l.check(&1, later), Verdict::Refused { log: Some(10) });
    }

    #[test]
    fn off_allows_everything_and_memory_stays_bounded() {
        let t0 = Instant::now();
        let mut off = RateLimiter::new(0, 0);
        assert!((0..1000).all(|i| off.check(&i, t0) == Verdict::Allowed));
        assert!(off.is_empty());

        let mut l = RateLimiter::new(1, 1);
        for i in 0..MAX_KEYS as u32 + 1000 {
            let _ = l.check(&i, t0);
        }
        assert_eq!(
            l.len(),
            MAX_KEYS,
            "new sources beyond the bound share a bucket"
        );
        // The overflow bucket is one: a flood of new sources is limited as one.
        assert!(matches!(l.check(&u32::MAX, t0), Verdict::Refused { .. }));
        // Once the tracked ones are idle again, new sources get their own.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(l.check(&(u32::MAX - 1), later), Verdict::Allowed);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn exempt_networks_are_never_limited() {
        let settings = crate::settings::LimitsSettings {
            sip_requests_per_second: 1,
            sip_burst: 1,
            exempt: vec!["10.200.0.2/32".parse().unwrap()],
            ..Default::default()
        };
        let limits = Limits::new(&settings);
        let proxy: IpAddr = "10.200.0.2".parse().unwrap();
        let other: IpAddr = "10.200.0.9".parse().unwrap();
        assert!((0..100).all(|_| limits.check(Limit::Sip, proxy, None) == Verdict::Allowed));
        assert_eq!(limits.check(Limit::Sip, other, None), Verdict::Allowed);
        assert!(matches!(
            limits.check(Limit::Sip, other, None),
            Verdict::Refused { .. }
        ));
    }
}
