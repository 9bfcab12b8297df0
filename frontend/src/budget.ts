// The budget bar: how much of a poisoned bid's reserve (budget − amount)
// is still unspent, kept live from price events and notifications.
import type { BidState, OwnBid } from './api/types';

export interface Budget {
  /** The bid's state now. */
  state: BidState;
  /** What the bid would pay now (the price while leading). */
  effective: number;
  /** Budget left above the price: budget − price while leading, else 0. */
  remaining: number;
  /** The poison's whole reserve: budget − amount. */
  reserve: number;
  /** remaining ÷ reserve, 0..1 (0 when there is no reserve). */
  fraction: number;
}

function of(bid: OwnBid, state: BidState, effective: number, remaining: number): Budget {
  const reserve = bid.poison ? Math.max(0, bid.poison.budget - bid.amount) : 0;
  const clamped = Math.max(0, Math.min(remaining, reserve));
  return {
    state,
    effective,
    remaining: clamped,
    reserve,
    fraction: reserve > 0 ? clamped / reserve : 0,
  };
}

/** The bar as the server last described the bid. */
export function budgetOf(bid: OwnBid): Budget {
  return of(bid, bid.state, bid.effective, bid.remaining_budget);
}

/**
 * The bar after the public price moved to `price`. A leading bid still
 * leads while the price stays within its ceiling: any higher ceiling would
 * have pushed the price above it. So a poisoned leader's remaining budget is
 * budget − price, and a price above the budget means it is exhausted; a
 * plain leader is outbid as soon as the price passes its amount.
 */
export function afterPrice(bid: OwnBid, current: Budget, price: number): Budget {
  // Prices never fall: a lower one is an old event arriving late.
  if (current.state !== 'leading' || price < current.effective) return current;
  const ceiling = bid.poison ? bid.poison.budget : bid.amount;
  if (price > ceiling) {
    return bid.poison ? of(bid, 'exhausted', ceiling, 0) : of(bid, 'outbid', bid.amount, 0);
  }
  return of(bid, 'leading', price, ceiling - price);
}

/**
 * The bar after the server raised a poisoned leader (`auto_raised`). The
 * WebSocket and the price stream are separate: a raise that arrives after
 * a price which already displaced the bid, or below what is known, is old.
 */
export function afterAutoRaise(bid: OwnBid, current: Budget, effective: number, remaining: number): Budget {
  if (current.state !== 'leading' || effective < current.effective) return current;
  return of(bid, 'leading', effective, remaining);
}

/** The bar after the bid stopped leading (`outbid` / `exhausted`). */
export function afterLosingLead(bid: OwnBid): Budget {
  return bid.poison
    ? of(bid, 'exhausted', bid.poison.budget, 0)
    : of(bid, 'outbid', bid.amount, 0);
}
