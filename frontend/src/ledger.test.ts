import { afterEach, describe, expect, it } from 'vitest';

import type { RevealedBid } from './api/types';
import { chainOf, recalledHeads, recordOf, rememberHead, verifyLedger } from './ledger';
import { pricesAfter } from './replay';

// The vector the server's own tests use (crates/domain/src/ledger/tests.rs),
// computed there with Python's hashlib.
const ITEM = '01939a6e-7f00-7000-8000-000000000001';
const H0 = '01a5dffeffef9800171ee242a205e8f8034d8cb2ee859a47fd89fe9aefacaff4';
const H1 = '1e6dcaaf56544cf86a00e6c69157ad0a487a0f6173fe8f5733284e173110298a';
const H2 = 'fbfd6b1bc35e2a482295c036288497eb7939a88e8a11648775ee1f27b035f22d';

function bids(): RevealedBid[] {
  return [
    {
      seq: 1,
      bidder_id: '01939a6e-7f00-7000-8000-0000000000b1',
      amount: 12_500,
      poison: { budget: 20_000, step: 500 },
      state: 'won',
      effective: 13_500,
      created_at: '2026-12-05T10:00:00.123456Z',
      salt: '000102030405060708090a0b0c0d0e0f',
      hash: H1,
    },
    {
      seq: 2,
      bidder_id: '01939a6e-7f00-7000-8000-0000000000b2',
      amount: 13_000,
      poison: null,
      state: 'lost',
      effective: 13_000,
      created_at: '2026-12-05T10:00:01.000000Z',
      salt: '0'.repeat(32),
      hash: H2,
    },
  ];
}

describe('the ledger in the browser', () => {
  afterEach(() => localStorage.clear());
  const expected = (seen: { head: string; count: number }[], count = 2, head: string | null = H2) => ({ seen, count, head });

  it('recomputes the chain the server computed', async () => {
    const [, second] = bids() as [RevealedBid, RevealedBid];
    expect(recordOf(second)).toBe(
      '2|01939a6e-7f00-7000-8000-0000000000b2|13000|0|0|2026-12-05T10:00:01.000000Z|00000000000000000000000000000000',
    );
    expect(await chainOf(ITEM, bids())).toEqual([H0, H1, H2]);
    expect(await verifyLedger(ITEM, bids(), expected([{ head: H1, count: 1 }, { head: H2, count: 2 }]))).toEqual({
      ok: true,
      count: 2,
      witnessed: { head: H2, count: 2 },
    });
    // Nothing seen here: consistent with the item's own head, no witness.
    expect(await verifyLedger(ITEM, bids(), expected([]))).toEqual({ ok: true, count: 2, witnessed: null });
    expect((await verifyLedger(ITEM, [], expected([{ head: H0, count: 0 }], 0, H0))).ok).toBe(true);
  });

  it('says where a changed bid, a gap, a fork or a shortened list breaks it', async () => {
    const [first, second] = bids() as [RevealedBid, RevealedBid];
    const seen = [{ head: H2, count: 2 }];
    expect(await verifyLedger(ITEM, [{ ...first, amount: 12_400 }, second], expected(seen))).toEqual({ ok: false, seq: 1, why: 'hash' });
    expect(await verifyLedger(ITEM, [second], expected(seen))).toEqual({ ok: false, seq: 1, why: 'order' });
    expect(await verifyLedger(ITEM, [first, { ...second, hash: null }], expected(seen))).toEqual({ ok: false, seq: 2, why: 'unchained' });
    // A head seen here that the chain does not reach: a fork.
    expect(await verifyLedger(ITEM, bids(), expected([{ head: H2, count: 1 }]))).toEqual({ ok: false, seq: 2, why: 'seen', expected: H2 });
    expect(await verifyLedger(ITEM, bids(), expected([{ head: H2, count: 5 }]))).toMatchObject({ ok: false, seq: 3, why: 'seen' });
    // Bids held back: the head seen after bid 1 matches, but the item has two.
    expect(await verifyLedger(ITEM, [first], expected([{ head: H1, count: 1 }]))).toEqual({ ok: false, seq: 2, why: 'head', expected: H2 });
    expect(await verifyLedger(ITEM, bids(), expected([], 2, H1))).toMatchObject({ ok: false, seq: 3, why: 'head' });
    expect(await verifyLedger(ITEM, bids(), expected([], 2, null))).toMatchObject({ ok: false, why: 'head' });
    await expect(chainOf('not-a-uuid', [])).rejects.toThrow('not a UUID');
  });

  it('keeps every head seen of an item, the first value of each count, for that listing only', () => {
    const listed = '2026-01-01T00:00:00Z';
    expect(recalledHeads('lot', listed)).toEqual([]);
    rememberHead('lot', listed, { head: H2, count: 2 });
    rememberHead('lot', listed, { head: H1, count: 1 });
    rememberHead('lot', listed, { head: H0, count: 2 }); // a different head for a count already seen: kept as first seen
    expect(recalledHeads('lot', listed)).toEqual([
      { head: H1, count: 1 },
      { head: H2, count: 2 },
    ]);
    // The same id in another database (another listing time) is another item.
    expect(recalledHeads('lot', '2027-01-01T00:00:00Z')).toEqual([]);
    rememberHead('lot', '2027-01-01T00:00:00Z', { head: H0, count: 0 });
    expect(recalledHeads('lot', '2027-01-01T00:00:00Z')).toEqual([{ head: H0, count: 0 }]);
    localStorage.setItem('pp:ledger:bad', '{"listed": 1}');
    expect(recalledHeads('bad', listed)).toEqual([]);
    localStorage.setItem('pp:ledger:worse', 'not json');
    expect(recalledHeads('worse', listed)).toEqual([]);
  });

  it('keeps heads of the 200 items written last', () => {
    for (let n = 0; n < 205; n += 1) rememberHead(`item-${n}`, 'listed', { head: H0, count: 0 });
    const kept = Object.keys(localStorage).filter((key) => key.startsWith('pp:ledger:'));
    expect(kept).toHaveLength(200);
  });
});

describe('the poison rule replayed', () => {
  it('gives the worked example of auction-rules.md', () => {
    const [, plain] = bids() as [RevealedBid, RevealedBid];
    const bid = (seq: number, amount: number, poison: [number, number] | null = null): RevealedBid => ({
      ...plain,
      seq,
      amount,
      poison: poison && { budget: poison[0], step: poison[1] },
    });
    const prices = pricesAfter([
      bid(1, 120),
      bid(2, 125, [200, 5]),
      bid(3, 150),
      bid(4, 160, [300, 10]),
      bid(5, 215, [300, 5]),
      bid(6, 305),
    ]);
    expect(prices).toEqual([120, 125, 155, 210, 300, 305]);
  });
});
