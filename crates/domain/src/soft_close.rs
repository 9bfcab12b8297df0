//! Soft close (anti-sniping), opt-in per item: a bid that changes who leads
//! in the last `window` before the close moves the close to `extend_by`
//! after the bid, at most `max_extensions` times (docs/spec/auction-rules.md,
//! "Soft close"). Decided by the engine inside the bid's transaction, so the
//! closer, under the same row lock, sees the moved close.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::Effect;
use crate::item::Timestamp;

/// An item's soft-close rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftClose {
    window: Duration,
    extend_by: Duration,
    max_extensions: u32,
}

/// Why a soft-close rule was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SoftCloseProblem {
    /// `window_secs` out of 1..=3600.
    #[error("window_secs must be 1 to 3600")]
    Window,
    /// `extend_by_secs` out of 1..=3600.
    #[error("extend_by_secs must be 1 to 3600")]
    ExtendBy,
    /// `max_extensions` out of 1..=100.
    #[error("max_extensions must be 1 to 100")]
    MaxExtensions,
}

/// Where an item's close stands: when, and how many extensions moved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    /// The current closing time.
    pub close_at: Timestamp,
    /// Extensions used so far.
    pub extensions_used: u32,
}

impl SoftClose {
    /// The longest window or extension, in seconds.
    pub const MAX_SECS: i64 = 3_600;
    /// The most extensions an item may allow.
    pub const MAX_EXTENSIONS: u32 = 100;

    /// Checks a rule as listed: each duration 1..=3600 s, 1..=100 extensions.
    ///
    /// # Errors
    /// The first [`SoftCloseProblem`] that applies.
    pub fn new(
        window_secs: i64,
        extend_by_secs: i64,
        max_extensions: i64,
    ) -> Result<Self, SoftCloseProblem> {
        let seconds = 1..=Self::MAX_SECS;
        if !seconds.contains(&window_secs) {
            return Err(SoftCloseProblem::Window);
        }
        if !seconds.contains(&extend_by_secs) {
            return Err(SoftCloseProblem::ExtendBy);
        }
        let max_extensions = u32::try_from(max_extensions)
            .ok()
            .filter(|n| (1..=Self::MAX_EXTENSIONS).contains(n))
            .ok_or(SoftCloseProblem::MaxExtensions)?;
        Ok(SoftClose {
            window: Duration::seconds(window_secs),
            extend_by: Duration::seconds(extend_by_secs),
            max_extensions,
        })
    }

    /// The window before the close in which a change of leader extends it.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How far past the bid the close moves.
    #[must_use]
    pub fn extend_by(&self) -> Duration {
        self.extend_by
    }

    /// How many times the close may move.
    #[must_use]
    pub fn max_extensions(&self) -> u32 {
        self.max_extensions
    }

    /// Where the close stands after a bid accepted at `now` with `effect`:
    /// `Some` only when it moved (a change of leader inside the window,
    /// extensions left, and `now + extend_by` later than the close).
    #[must_use]
    pub fn after_bid(&self, closing: Closing, effect: &Effect, now: Timestamp) -> Option<Closing> {
        let changes_leader = matches!(effect, Effect::Opened | Effect::TookLead { .. });
        let late = closing.close_at - now < self.window;
        if !changes_leader || !late || closing.extensions_used >= self.max_extensions {
            return None;
        }
        let moved = now + self.extend_by;
        (moved > closing.close_at).then_some(Closing {
            close_at: moved,
            extensions_used: closing.extensions_used + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::engine::Leader;
    use crate::ids::UserId;
    use crate::money::Money;

    fn at(seconds: i64) -> Timestamp {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn took_lead() -> Effect {
        Effect::TookLead {
            displaced: Leader {
                bidder: UserId::generate(),
                ceiling: Money::new(1_000).unwrap(),
                step: None,
                price: Money::new(1_000).unwrap(),
            },
        }
    }

    fn rule() -> SoftClose {
        // Last 5 minutes; moves the close to 2 minutes after the bid; twice.
        SoftClose::new(300, 120, 2).unwrap()
    }

    fn closing(close_at: i64, extensions_used: u32) -> Closing {
        Closing {
            close_at: at(close_at),
            extensions_used,
        }
    }

    #[test]
    fn a_rule_is_checked_value_by_value() {
        assert_eq!(SoftClose::new(0, 60, 1), Err(SoftCloseProblem::Window));
        assert_eq!(SoftClose::new(3_601, 60, 1), Err(SoftCloseProblem::Window));
        assert_eq!(SoftClose::new(60, 0, 1), Err(SoftCloseProblem::ExtendBy));
        assert_eq!(
            SoftClose::new(60, 3_601, 1),
            Err(SoftCloseProblem::ExtendBy)
        );
        assert_eq!(
            SoftClose::new(60, 60, 0),
            Err(SoftCloseProblem::MaxExtensions)
        );
        assert_eq!(
            SoftClose::new(60, 60, 101),
            Err(SoftCloseProblem::MaxExtensions)
        );
        assert_eq!(
            SoftClose::new(60, 60, -1),
            Err(SoftCloseProblem::MaxExtensions)
        );
        let rule = SoftClose::new(3_600, 1, 100).unwrap();
        assert_eq!(
            (rule.window(), rule.extend_by(), rule.max_extensions()),
            (Duration::hours(1), Duration::seconds(1), 100)
        );
    }

    #[test]
    fn a_late_change_of_leader_moves_the_close_to_extend_by_after_the_bid() {
        // The close at 1000 s; a new leader at 950 s (inside 300 s).
        assert_eq!(
            rule().after_bid(closing(1_000, 0), &took_lead(), at(950)),
            Some(closing(1_070, 1))
        );
        // The first bid makes the first leader: it counts too.
        assert_eq!(
            rule().after_bid(closing(1_000, 1), &Effect::Opened, at(999)),
            Some(closing(1_119, 2))
        );
    }

    #[test]
    fn nothing_moves_early_without_a_new_leader_past_the_limit_or_backwards() {
        // Before the window (exactly 300 s left is not inside it).
        assert_eq!(
            rule().after_bid(closing(1_000, 0), &took_lead(), at(700)),
            None
        );
        // The leader kept the lead, raised or not.
        for raised in [true, false] {
            let defended = Effect::Defended { raised };
            assert_eq!(
                rule().after_bid(closing(1_000, 0), &defended, at(990)),
                None
            );
        }
        // Every extension used.
        assert_eq!(
            rule().after_bid(closing(1_000, 2), &took_lead(), at(990)),
            None
        );
        // `now + extend_by` is not later than the close: no move, no count.
        assert_eq!(
            rule().after_bid(closing(1_000, 0), &took_lead(), at(800)),
            None
        );
    }

    proptest! {
        /// Over any run of bids, the close only moves later, only on a
        /// change of leader inside the window, never more than allowed, and
        /// each move counts one extension.
        #[test]
        fn the_close_never_moves_earlier_and_extensions_stay_within_the_rule(
            window in 1i64..=3_600,
            extend_by in 1i64..=3_600,
            max in 1i64..=100,
            bids in proptest::collection::vec((0i64..4_000, any::<bool>()), 0..60),
        ) {
            let rule = SoftClose::new(window, extend_by, max).unwrap();
            let mut current = closing(3_000, 0);
            let mut now = 0;
            for (gap, changes_leader) in bids {
                now += gap % 200;
                if at(now) >= current.close_at {
                    break; // closed: a bid now is `auction_closed`
                }
                let effect = if changes_leader { took_lead() } else { Effect::Defended { raised: true } };
                match rule.after_bid(current, &effect, at(now)) {
                    Some(next) => {
                        prop_assert!(changes_leader);
                        prop_assert!(current.close_at - at(now) < rule.window());
                        prop_assert!(next.close_at > current.close_at);
                        prop_assert_eq!(next.close_at, at(now) + rule.extend_by());
                        prop_assert_eq!(next.extensions_used, current.extensions_used + 1);
                        current = next;
                    }
                    None => {
                        prop_assert!(
                            !changes_leader
                                || current.close_at - at(now) >= rule.window()
                                || current.extensions_used == rule.max_extensions()
                                || at(now) + rule.extend_by() <= current.close_at
                        );
                    }
                }
                prop_assert!(current.extensions_used <= rule.max_extensions());
            }
        }
    }
}
