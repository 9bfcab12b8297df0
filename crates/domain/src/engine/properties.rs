//! Property tests: every invariant of docs/spec/auction-rules.md over random bid sequences.
//!
//! The incremental O(1) engine is checked against an independent oracle: the
//! closed form of the poison rule over the whole history (the leader is the
//! earliest of the highest ceilings; the price is the leader's amount, raised
//! to one leader step over the best other ceiling, capped by the leader's
//! ceiling). Expected rejections are computed from the oracle too.

use proptest::prelude::*;

use super::tests::{item, money};
use super::*;
use crate::bid::{BidOffer, BidState};

#[derive(Clone, Debug)]
struct Attempt {
    bidder: usize,
    amount: i64,
    poison: Option<(i64, i64)>,
}

fn attempt(max_amount: i64) -> impl Strategy<Value = Attempt> {
    (
        0usize..14,
        1i64..=max_amount,
        prop::option::of((-50i64..=400, 1i64..=40)),
    )
        .prop_map(|(bidder, amount, poison)| Attempt {
            bidder,
            amount,
            poison: poison.map(|(extra, step)| ((amount + extra).max(1), step)),
        })
}

fn offer(a: &Attempt) -> BidOffer {
    match a.poison {
        None => BidOffer::plain(money(a.amount)),
        Some((budget, step)) => BidOffer::poisoned(money(a.amount), money(budget), money(step)),
    }
}

/// The closed form: (leader index, price) of a non-empty history.
fn oracle(bids: &[(UserId, BidOffer)]) -> Option<(usize, i64)> {
    let top = bids.iter().map(|(_, o)| o.ceiling()).max()?;
    let lead = bids.iter().position(|(_, o)| o.ceiling() == top)?;
    let leader = bids[lead].1;
    let best_other = bids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lead)
        .map(|(_, (_, o))| o.ceiling().minor_units())
        .max();
    let amount = leader.amount.minor_units();
    let price = best_other.map_or(amount, |other| {
        let step = leader.step().map_or(0, Money::minor_units);
        amount.max(top.minor_units().min(other + step))
    });
    Some((lead, price))
}

/// Runs the attempts against the engine, checking every invariant after each one.
fn run(base: i64, increment: i64, attempts: &[Attempt]) -> Result<(), TestCaseError> {
    let item = item(base, increment);
    let bidders: Vec<UserId> = (0..14)
        .map(|i| {
            if i == 13 {
                item.seller
            } else {
                UserId::generate()
            }
        })
        .collect();
    let mut standing = Standing::EMPTY;
    let mut accepted: Vec<(UserId, BidOffer)> = Vec::new();
    let mut last_price = 0;

    for a in attempts {
        let bidder = bidders[a.bidder];
        let offer = offer(a);
        let minimum = oracle(&accepted).map_or(base, |(_, price)| price + increment);
        let expected = if bidder == item.seller {
            Err(BidRejection::OwnItem)
        } else if accepted.iter().any(|(b, _)| *b == bidder) {
            Err(BidRejection::AlreadyPlaced)
        } else if matches!(a.poison, Some((budget, _)) if budget < a.amount) {
            Err(BidRejection::InvalidPoison(
                PoisonProblem::BudgetBelowAmount,
            ))
        } else if matches!(a.poison, Some((_, step)) if step < increment) {
            Err(BidRejection::InvalidPoison(
                PoisonProblem::StepBelowIncrement {
                    min_increment: money(increment),
                },
            ))
        } else if a.amount < minimum {
            Err(BidRejection::TooLow {
                minimum_next_bid: minimum,
            })
        } else {
            Ok(())
        };

        let locked = LockedItem {
            item: item.clone(),
            standing,
            bidder_has_bid: accepted.iter().any(|(b, _)| *b == bidder),
        };
        let command = BidCommand {
            item: item.id,
            bidder,
            bidder_may_bid: true,
            offer,
        };
        let result = place(&locked, &command, item.created_at);
        prop_assert_eq!(result.map(|_| ()), expected);
        let Ok(placement) = result else { continue };

        accepted.push((bidder, offer));
        standing = placement.standing;
        prop_assert_eq!(placement.seq, accepted.len() as u64);
        prop_assert_eq!(standing.bid_count(), accepted.len() as u64);

        let leader = standing.leader().copied();
        prop_assert!(leader.is_some(), "a bid was accepted but nobody leads");
        let Some(leader) = leader else { continue };
        let price = leader.price.minor_units();

        // The O(1) resolution equals the from-scratch closed form.
        let (lead, oracle_price) = oracle(&accepted).unwrap_or((usize::MAX, -1));
        prop_assert_eq!(leader.bidder, accepted[lead].0);
        prop_assert_eq!(price, oracle_price);
        // …and a sequential replay of the accepted bids.
        prop_assert_eq!(replay(accepted.iter().map(|(b, o)| (*b, o))), standing);

        // The leader's ceiling is the highest, the earliest breaking ties.
        let top = accepted.iter().map(|(_, o)| o.ceiling()).max();
        prop_assert_eq!(Some(leader.ceiling), top);
        prop_assert_eq!(
            accepted.iter().position(|(_, o)| Some(o.ceiling()) == top),
            Some(lead)
        );

        // The price never decreases, never exceeds the leader's ceiling,
        // is at least the leader's own amount and every loser's ceiling.
        prop_assert!(price >= last_price);
        prop_assert!(leader.price <= leader.ceiling);
        prop_assert!(leader.price >= accepted[lead].1.amount);
        for (i, (bidder, offer)) in accepted.iter().enumerate() {
            let view = view_of(*bidder, offer, &standing, &item.status);
            if i == lead {
                prop_assert_eq!(view.state, BidState::Leading);
                prop_assert_eq!(view.effective, leader.price);
                prop_assert!(view.remaining_budget >= 0);
            } else {
                prop_assert!(offer.ceiling() <= leader.price);
                let state = if offer.poison.is_some() {
                    BidState::Exhausted
                } else {
                    BidState::Outbid
                };
                prop_assert_eq!(view.state, state);
                prop_assert_eq!(view.effective, offer.ceiling());
                prop_assert_eq!(view.remaining_budget, 0);
            }
        }
        last_price = price;
    }

    // At close, the leader wins and pays the price; nobody else does.
    let outcome = close(&item, &standing, item.close_at);
    let expected = standing
        .leader()
        .map_or(CloseOutcome::Unsold, |l| CloseOutcome::Sold {
            winner: l.bidder,
            price: l.price,
        });
    prop_assert_eq!(outcome, Ok(expected));
    // After close every bid is revealed with the same view its bidder sees.
    let closed = ItemStatus::Closed(expected);
    for (bidder, offer) in &accepted {
        prop_assert_eq!(
            revealed_view(*bidder, offer, &expected),
            view_of(*bidder, offer, &standing, &closed)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_invariant_holds_over_random_bid_sequences(
        base in 1i64..=200,
        increment in 1i64..=20,
        attempts in prop::collection::vec(attempt(600), 1..40),
    ) {
        run(base, increment, &attempts)?;
    }

    #[test]
    fn every_invariant_holds_near_the_largest_amount(
        attempts in prop::collection::vec(attempt(400), 1..25),
    ) {
        // Shift every amount to the top of the range, where sums overflow 10^12.
        let top = Money::MAX.minor_units() - 1_000;
        let shifted: Vec<Attempt> = attempts
            .into_iter()
            .map(|a| Attempt {
                amount: top + a.amount,
                poison: a.poison.map(|(budget, step)| {
                    ((top + budget).min(Money::MAX.minor_units()), step * 10_000_000)
                }),
                ..a
            })
            .collect();
        run(top, 1, &shifted)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Soft close through the engine, over random timed bid sequences: the
    /// close moves only on an accepted bid that changes the leader inside the
    /// window, never earlier, never more than `max_extensions` times; and a
    /// bid at or after the (possibly moved) close is `auction_closed`.
    #[test]
    fn soft_close_moves_the_close_only_as_the_rule_allows(
        window in 1i64..=600,
        extend_by in 1i64..=600,
        max in 1i64..=5,
        attempts in prop::collection::vec((attempt(600), 0i64..120), 1..40),
    ) {
        let rule = crate::soft_close::SoftClose::new(window, extend_by, max).unwrap();
        let mut lot = Item { soft_close: Some(rule), ..item(1, 1) };
        // Start ten minutes before the close: most bids land late.
        let mut now = lot.close_at - chrono::Duration::minutes(10);
        let mut standing = Standing::EMPTY;
        let bidders: Vec<UserId> = (0..14).map(|_| UserId::generate()).collect();
        let mut has_bid = std::collections::HashSet::new();
        for (a, gap) in &attempts {
            now += chrono::Duration::seconds(*gap);
            let before = lot.closing();
            let command = BidCommand {
                item: lot.id,
                bidder: bidders[a.bidder],
                bidder_may_bid: true,
                offer: offer(a),
            };
            let locked = LockedItem {
                item: lot.clone(),
                standing,
                bidder_has_bid: has_bid.contains(&a.bidder),
            };
            match place(&locked, &command, now) {
                Ok(placement) => {
                    prop_assert!(now < before.close_at);
                    let new_leader = placement.standing.leader().map(|l| l.bidder)
                        != standing.leader().map(|l| l.bidder);
                    let after = placement.closing;
                    prop_assert!(after.close_at >= before.close_at);
                    prop_assert!(after.extensions_used <= rule.max_extensions());
                    if placement.extended {
                        prop_assert!(new_leader);
                        prop_assert!(before.close_at - now < rule.window());
                        prop_assert_eq!(after.close_at, now + rule.extend_by());
                        prop_assert!(after.close_at > before.close_at);
                        prop_assert_eq!(after.extensions_used, before.extensions_used + 1);
                    } else {
                        prop_assert_eq!(after, before);
                        // And the reverse: nothing held back that the rule allows.
                        prop_assert!(
                            !new_leader
                                || before.close_at - now >= rule.window()
                                || before.extensions_used >= rule.max_extensions()
                                || now + rule.extend_by() <= before.close_at
                        );
                    }
                    standing = placement.standing;
                    has_bid.insert(a.bidder);
                    lot.extend_to(after);
                }
                Err(BidRejection::AuctionClosed) => prop_assert!(now >= before.close_at),
                Err(_) => prop_assert!(now < before.close_at),
            }
        }
    }
}
