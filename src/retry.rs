//! The one retry schedule: exponential backoff with jitter, from `backon`.
//!
//! Connecting, polling for the migration lock, retrying after a lock timeout and delivering a
//! webhook all wait the same way: a delay that doubles from `start` up to `max`, each drawn
//! from `[d/2, d)` so that many replicas do not retry in step. The loops themselves stay with
//! their callers: each bounds the schedule by its own configured wait or count, logs in its own
//! terms and is interruptible by a signal, which a generic retry wrapper cannot express.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays doubling from `start` to `max`, each jittered into `[d/2, d)`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    start: Duration,
    max: Duration,
}

impl Backoff {
    /// A schedule starting at `start` and growing to at most `max`.
    pub const fn new(start: Duration, max: Duration) -> Backoff {
        Backoff { start, max }
    }

    /// The delays, without end: the caller stops on its own bound.
    pub fn delays(&self) -> ExponentialBackoff {
        // backon's jitter adds up to one more delay: half the bounds give `[d/2, d)`.
        ExponentialBuilder::new()
            .with_min_delay(self.start / 2)
            .with_max_delay(self.max / 2)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The longest the first `n` delays can add up to.
    pub fn longest(&self, n: u32) -> Duration {
        let mut total = Duration::ZERO;
        let mut delay = self.start;
        for _ in 0..n {
            total += delay;
            delay = (delay * 2).min(self.max);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_each_within_half_to_whole() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_millis(1000));
        let ceilings = [200, 400, 800, 1000, 1000, 1000];
        for (delay, ceiling) in b.delays().zip(ceilings) {
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                delay >= ceiling / 2 && delay < ceiling,
                "{delay:?} not in [{:?}, {ceiling:?})",
                ceiling / 2
            );
        }
        assert_eq!(b.delays().take(1000).count(), 1000, "no end of its own");
        assert_eq!(b.longest(4), Duration::from_millis(2400));
    }
}
