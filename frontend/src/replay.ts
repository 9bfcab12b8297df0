// The poison rule of docs/spec/auction-rules.md replayed over revealed bids:
// the public price after each bid, for the price chart after close. The
// server's engine is the authority; this reads what anyone can recompute.
import type { RevealedBid } from './api/types';

interface Leader {
  ceiling: number;
  step: number;
  price: number;
}

/** The price after each bid, in `seq` order. */
export function pricesAfter(bids: RevealedBid[]): number[] {
  let leader: Leader | null = null;
  return bids.map((bid) => {
    const ceiling = bid.poison?.budget ?? bid.amount;
    const step = bid.poison?.step ?? 0;
    if (!leader) {
      // Rule 1: the first bid leads at its amount.
      leader = { ceiling, step, price: bid.amount };
    } else if (ceiling > leader.ceiling) {
      // Rule 2: a higher ceiling leads, one of its steps over the old one.
      leader = { ceiling, step, price: Math.max(bid.amount, Math.min(ceiling, leader.ceiling + step)) };
    } else {
      // Rule 3: the leader keeps it, raised one of its steps over the challenger.
      leader = { ...leader, price: Math.max(leader.price, Math.min(leader.ceiling, ceiling + leader.step)) };
    }
    return leader.price;
  });
}
