//! Per-child restart backoff: exponential, jittered, capped, reset after stable uptime.
//!
//! This is the only module that touches the `backoff` crate (flagged unmaintained upstream; it
//! only computes delays here). Backoff is counted apart from intensity: it spaces the restarts
//! of one child, intensity bounds the restarts of the whole supervisor.

use std::time::Duration;

use backoff::backoff::Backoff;

/// How long to wait before restarting a child, as a function of its consecutive restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffPolicy {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    reset_after: Duration,
}

impl BackoffPolicy {
    /// Restart immediately, every time (OTP's behaviour).
    pub fn none() -> Self {
        Self {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            multiplier: 1.0,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        }
    }

    /// Exponential from `initial`, doubling, capped at `max`, 20 % jitter, reset after the
    /// child has been up for `max` × 4 (at least 1 s).
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            multiplier: 2.0,
            jitter: 0.2,
            reset_after: (max * 4).max(Duration::from_secs(1)),
        }
    }

    /// Growth factor between consecutive delays (at least 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier.max(1.0);
        self
    }

    /// Random spread around each delay, as a fraction in `0.0..=1.0` (0.2 = ±20 %).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// A child that stayed up this long starts again from the initial delay.
    pub fn reset_after(mut self, uptime: Duration) -> Self {
        self.reset_after = uptime;
        self
    }

    /// The first delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap no delay exceeds, jitter included.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The uptime after which the sequence resets.
    pub fn reset_uptime(&self) -> Duration {
        self.reset_after
    }

    fn is_none(&self) -> bool {
        self.initial.is_zero()
    }
}

impl Default for BackoffPolicy {
    /// Exponential from 10 ms to 10 s.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(10), Duration::from_secs(10))
    }
}

/// The backoff state of one child, or of anything else retried under a [`BackoffPolicy`]
/// (a stream that is re-requested when it ends).
#[derive(Debug)]
pub struct ChildBackoff {
    policy: BackoffPolicy,
    inner: Option<backoff::ExponentialBackoff>,
}

impl ChildBackoff {
    /// A fresh sequence: the next delay is the policy's initial one.
    pub fn new(policy: BackoffPolicy) -> Self {
        let inner = (!policy.is_none()).then(|| {
            backoff::ExponentialBackoffBuilder::new()
                .with_initial_interval(policy.initial)
                .with_max_interval(policy.max)
                .with_multiplier(policy.multiplier)
                .with_randomization_factor(policy.jitter)
                .with_max_elapsed_time(None)
                .build()
        });
        Self { policy, inner }
    }

    /// The delay before the next restart of a child that was up for `uptime` (an uptime of
    /// at least the policy's reset uptime starts the sequence again).
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        let Some(inner) = self.inner.as_mut() else {
            return Duration::ZERO;
        };
        if uptime >= self.policy.reset_after {
            inner.reset();
        }
        // With no elapsed-time limit the crate always yields a delay; the cap is applied
        // after jitter so `max` is a hard bound.
        inner
            .next_backoff()
            .unwrap_or(self.policy.max)
            .min(self.policy.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_reset_after_stable_uptime() {
        let policy = BackoffPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1))
            .jitter(0.0)
            .reset_after(Duration::from_secs(10));
        let mut backoff = ChildBackoff::new(policy);
        let short = Duration::from_millis(1);
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay(short)).collect();
        let ms: Vec<u128> = delays.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.next_delay(Duration::from_secs(11)).as_millis(), 100);
    }

    #[test]
    fn jittered_delays_stay_within_the_cap() {
        let policy =
            BackoffPolicy::exponential(Duration::from_millis(50), Duration::from_millis(300))
                .jitter(0.5);
        let mut backoff = ChildBackoff::new(policy);
        for _ in 0..50 {
            assert!(backoff.next_delay(Duration::ZERO) <= Duration::from_millis(300));
        }
    }

    #[test]
    fn none_policy_restarts_immediately() {
        let mut backoff = ChildBackoff::new(BackoffPolicy::none());
        assert_eq!(backoff.next_delay(Duration::ZERO), Duration::ZERO);
    }
}
