//! Harness-owned virtual time.
//!
//! [`VirtualClock`] starts at a fixed epoch and moves only when someone calls
//! [`VirtualClock::advance`]. Sleepers registered with [`VirtualClock::sleep`] wake when an advance
//! reaches their deadline. The backend (token lifetimes, Retry-After) and the reference client (retry
//! backoff, caches) both run on such clocks, so rules about hours or years run in milliseconds and
//! the same seed gives the same verdicts. Real time is only used for safety timeouts.
//!
//! We never use tokio's paused time: with real sockets in flight its auto-advance fires every
//! timeout at once.
//!
//! Must not import: anything else of the crate (a leaf).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Unix seconds of the epoch every clock starts at: 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX_SECS: u64 = 1_767_225_600;

/// A point in virtual time: milliseconds since [`EPOCH_UNIX_SECS`].
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(transparent)]
pub struct VirtualInstant(u64);

impl VirtualInstant {
    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// The instant `ms` milliseconds after the epoch.
    pub fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// The instant of a Unix time in whole seconds (a JWT claim).
    pub fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_sub(EPOCH_UNIX_SECS) * 1000)
    }

    /// Unix time in whole seconds (for JWT claims).
    pub fn unix_secs(self) -> u64 {
        EPOCH_UNIX_SECS + self.0 / 1000
    }

    /// This instant plus `d`.
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_ms(d)))
    }

    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 rendering, as the REST resources carry it.
    pub fn rfc3339(self) -> String {
        let secs = self.unix_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

impl fmt::Display for VirtualInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A clock that moves only when told to. Cheap to clone; clones share time.
#[derive(Clone, Default)]
pub struct VirtualClock {
    inner: Arc<Mutex<ClockState>>,
}

#[derive(Default)]
struct ClockState {
    now: VirtualInstant,
    next_id: u64,
    sleepers: BTreeMap<(VirtualInstant, u64), oneshot::Sender<()>>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtualClock({})", self.now())
    }
}

impl VirtualClock {
    /// A clock at the epoch with no sleepers.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // A panic while holding this lock cannot leave the state half-written.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current virtual time.
    pub fn now(&self) -> VirtualInstant {
        self.state().now
    }

    /// Moves time forward by `d` and wakes every sleeper whose deadline is reached, earliest first.
    pub fn advance(&self, d: Duration) {
        let due = {
            let mut st = self.state();
            st.now = st.now.plus(d);
            let now = st.now;
            let later = st
                .sleepers
                .split_off(&(now.plus(Duration::from_millis(1)), 0));
            std::mem::replace(&mut st.sleepers, later)
        };
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// Number of sleepers waiting (for tests and quiescence diagnostics).
    pub fn pending_sleepers(&self) -> usize {
        let mut st = self.state();
        st.sleepers.retain(|_, tx| !tx.is_closed());
        st.sleepers.len()
    }

    /// A future that completes once virtual time reaches `deadline`.
    pub fn sleep_until(
        &self,
        deadline: VirtualInstant,
    ) -> impl Future<Output = ()> + Send + 'static {
        let rx = {
            let mut st = self.state();
            if deadline <= st.now {
                None
            } else {
                let (tx, rx) = oneshot::channel();
                let id = st.next_id;
                st.next_id += 1;
                st.sleepers.insert((deadline, id), tx);
                Some(rx)
            }
        };
        async move {
            if let Some(rx) = rx {
                // A dropped clock never wakes anyone: wait forever rather than fire early.
                if rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// A future that completes after `d` of virtual time.
    pub fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.sleep_until(self.now().plus(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleepers_wake_only_when_time_reaches_them() {
        let clock = VirtualClock::new();
        let mut short = Box::pin(clock.sleep(Duration::from_secs(5)));
        let mut long = Box::pin(clock.sleep(Duration::from_secs(60)));
        assert!(futures::poll!(&mut short).is_pending());
        clock.advance(Duration::from_secs(5));
        assert!(futures::poll!(&mut short).is_ready());
        assert!(futures::poll!(&mut long).is_pending());
        assert_eq!(clock.pending_sleepers(), 1);
        clock.advance(Duration::from_secs(55));
        assert!(futures::poll!(&mut long).is_ready());
    }

    #[test]
    fn time_starts_at_the_fixed_epoch() {
        let clock = VirtualClock::new();
        assert_eq!(clock.now().rfc3339(), "2026-01-01T00:00:00Z");
        clock.advance(Duration::from_secs(86_400 + 61));
        assert_eq!(clock.now().rfc3339(), "2026-01-02T00:01:01Z");
    }
}
