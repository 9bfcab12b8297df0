import type { Notification } from '../api/types';
import { timeLeft } from '../time';
import { backoff, currencyInData, describe as describeNotification, knownCurrency, rememberCurrency } from './notify';

const at = '2026-01-01T00:00:00Z';
const item_id = 'lot';

describe('notifications', () => {
  it('read as sentences with the amounts formatted', () => {
    const cases: [Notification, string][] = [
      [{ type: 'outbid', data: { item_id, current_price: 13000, minimum_next_bid: 13500 }, at }, 'You were outbid: the price is now $130.00.'],
      [{ type: 'auto_raised', data: { item_id, effective: 15500, remaining_budget: 4500 }, at }, 'Your poison raised your bid to $155.00; $45.00 of budget left.'],
      [{ type: 'exhausted', data: { item_id, effective: 20000, current_price: 21000 }, at }, 'Your poison is spent: the price $210.00 is above your budget.'],
      [{ type: 'won', data: { item_id, final_price: 30500 }, at }, 'You won! You pay $305.00.'],
      [{ type: 'lost', data: { item_id, final_price: 30500 }, at }, 'The auction closed at $305.00; another bid won.'],
    ];
    for (const [notification, text] of cases) expect(describeNotification(notification)).toBe(text);
  });

  it("read in the item's currency with the server's decimals when it is known", () => {
    const huf = { code: 'huf', decimals: 2 };
    const outbid: Notification = { type: 'outbid', data: { item_id, current_price: 12_345 }, at };
    expect(describeNotification(outbid, huf)).toBe('You were outbid: the price is now HUF\u00a0123.45.');
    expect(describeNotification({ ...outbid, data: { item_id, current_price: 700 } }, { code: 'jpy', decimals: 0 })).toBe(
      'You were outbid: the price is now ¥700.',
    );
    // A stored one says its currency; the socket's does not.
    expect(currencyInData({ item_id, currency: 'huf', currency_decimals: 2 })).toEqual(huf);
    expect(currencyInData({ item_id })).toBeNull();
    expect(currencyInData({ item_id, currency: 'huf' })).toBeNull();
    // An item seen before lends its currency to a later toast; another is usd.
    rememberCurrency('stove', huf);
    expect(knownCurrency('stove')).toEqual(huf);
    expect(knownCurrency('never-seen')).toEqual({ code: 'usd', decimals: 2 });
  });

  it('reconnect after a growing pause, capped at ten seconds', () => {
    expect([0, 1, 2, 3, 10].map(backoff)).toEqual([500, 1000, 2000, 4000, 10_000]);
  });
});

describe('the countdown', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const plus = (s: number) => new Date(now.getTime() + s * 1000);
  it('shows the two largest units left', () => {
    expect(timeLeft(plus(2 * 86400 + 3 * 3600), now)).toBe('2 d 3 h');
    expect(timeLeft(plus(3600 + 120), now)).toBe('1 h 2 min');
    expect(timeLeft(plus(125), now)).toBe('2 min 5 s');
    expect(timeLeft(plus(9), now)).toBe('9 s');
    expect(timeLeft(plus(0), now)).toBe('closing…');
  });
});
