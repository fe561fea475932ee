//! A call's video bitrate cap: a token bucket of one second's worth of
//! bits. An access unit that does not fit is dropped, and the caller then
//! waits for the next keyframe (a picture predicted from a dropped one
//! would decode to garbage). A cap of 0 means none.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RateCap {
    bits_per_second: u64,
    /// Bits that may still go now.
    tokens: f64,
    refilled: Option<Instant>,
}

impl RateCap {
    pub fn new(bits_per_second: u64) -> RateCap {
        RateCap {
            bits_per_second,
            tokens: bits_per_second as f64,
            refilled: None,
        }
    }

    /// Whether `bytes` may go at `now`; they are counted if so.
    pub fn allow(&mut self, bytes: usize, now: Instant) -> bool {
        if self.bits_per_second == 0 {
            return true;
        }
        let rate = self.bits_per_second as f64;
        if let Some(then) = self.refilled {
            let elapsed = now.saturating_duration_since(then).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(rate);
        }
        self.refilled = Some(now);
        let bits = bytes as f64 * 8.0;
        if bits > self.tokens {
            return false;
        }
        self.tokens -= bits;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn holds_to_the_rate_over_a_second_and_no_cap_lets_all_through() {
        let mut cap = RateCap::new(800_000);
        let t = Instant::now();
        // 90 frames of 5 kB in three seconds: 1.2 Mbit/s against 0.8,
        // which lets 3 s of bits through plus the 1 s burst.
        let allowed = (0..90)
            .filter(|i| cap.allow(5_000, t + Duration::from_millis(33 * i)))
            .count();
        assert!((75..=80).contains(&allowed), "{allowed}");
        let mut none = RateCap::new(0);
        assert!((0..1000).all(|_| none.allow(1 << 20, t)));
    }
}
