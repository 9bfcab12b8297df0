import type { OwnBid } from './api/types';
import { afterAutoRaise, afterLosingLead, afterPrice, budgetOf } from './budget';

const poisoned: OwnBid = {
  id: 'b',
  item_id: 'i',
  currency: 'usd',
  currency_decimals: 2,
  amount: 125,
  poison: { budget: 200, step: 5 },
  state: 'leading',
  effective: 125,
  remaining_budget: 75,
  created_at: '2026-01-01T00:00:00Z',
};

describe('the budget bar', () => {
  it('starts full when the poison has spent nothing', () => {
    const bar = budgetOf(poisoned);
    expect(bar).toEqual({ state: 'leading', effective: 125, remaining: 75, reserve: 75, fraction: 1 });
  });

  it('shrinks as the price climbs within the budget (the worked example)', () => {
    // carol 150: bob's poison raises to 155.
    const after = afterPrice(poisoned, budgetOf(poisoned), 155);
    expect(after.state).toBe('leading');
    expect(after.effective).toBe(155);
    expect(after.remaining).toBe(45);
    expect(after.fraction).toBeCloseTo(45 / 75);
    // Exactly the budget: still leading, nothing left.
    const spent = afterPrice(poisoned, after, 200);
    expect([spent.state, spent.remaining, spent.fraction]).toEqual(['leading', 0, 0]);
  });

  it('is exhausted once the price passes the budget', () => {
    const after = afterPrice(poisoned, budgetOf(poisoned), 210);
    expect(after).toMatchObject({ state: 'exhausted', effective: 200, remaining: 0, fraction: 0 });
    // Later prices change nothing any more.
    expect(afterPrice(poisoned, after, 300)).toBe(after);
  });

  it('follows the server on auto-raise and on losing the lead', () => {
    const leading = budgetOf(poisoned);
    expect(afterAutoRaise(poisoned, leading, 155, 45)).toMatchObject({ effective: 155, remaining: 45 });
    expect(afterLosingLead(poisoned)).toMatchObject({ state: 'exhausted', remaining: 0 });
    const plain: OwnBid = { ...poisoned, poison: null, remaining_budget: 0 };
    expect(afterLosingLead(plain)).toMatchObject({ state: 'outbid', effective: 125, reserve: 0, fraction: 0 });
    expect(afterPrice(plain, budgetOf(plain), 130).state).toBe('outbid');
    expect(afterPrice(plain, budgetOf(plain), 125).state).toBe('leading');
  });

  it('ignores news that arrives late on the other channel', () => {
    const raised = afterPrice(poisoned, budgetOf(poisoned), 160);
    // An older price, replayed or overtaken, moves nothing back.
    expect(afterPrice(poisoned, raised, 130)).toBe(raised);
    // An auto-raise announced after the price already displaced the bid.
    const exhausted = afterPrice(poisoned, raised, 210);
    expect(afterAutoRaise(poisoned, exhausted, 190, 10)).toBe(exhausted);
    // An auto-raise below the known price is old too.
    expect(afterAutoRaise(poisoned, raised, 140, 60)).toBe(raised);
  });

  it('never goes outside its bounds', () => {
    const leading = budgetOf(poisoned);
    expect(afterAutoRaise(poisoned, leading, 130, 500).fraction).toBe(1);
    expect(afterAutoRaise(poisoned, leading, 130, -5).fraction).toBe(0);
    const noReserve: OwnBid = { ...poisoned, poison: { budget: 125, step: 5 } };
    expect(budgetOf(noReserve).fraction).toBe(0);
  });
});
