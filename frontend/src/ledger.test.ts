import { afterEach, describe, expect, it } from 'vitest';

import type { RevealedBid } from './api/types';
import { chainOf, recalledHead, recordOf, rememberHead, verifyLedger } from './ledger';
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

  it('recomputes the chain the server computed', async () => {
    const [, second] = bids() as [RevealedBid, RevealedBid];
    expect(recordOf(second)).toBe(
      '2|01939a6e-7f00-7000-8000-0000000000b2|13000|0|0|2026-12-05T10:00:01.000000Z|00000000000000000000000000000000',
    );
    expect(await chainOf(ITEM, bids())).toEqual([H0, H1, H2]);
    expect(await verifyLedger(ITEM, bids(), { head: H2, count: 2 })).toEqual({
      ok: true,
      count: 2,
      matched: { head: H2, count: 2 },
    });
    // A head seen after the first bid matches the chain there.
    expect((await verifyLedger(ITEM, bids(), { head: H1, count: 1 })).ok).toBe(true);
    expect((await verifyLedger(ITEM, [], { head: H0, count: 0 })).ok).toBe(true);
  });

  it('says where a changed bid, a gap or another head breaks it', async () => {
    const [first, second] = bids() as [RevealedBid, RevealedBid];
    const changed = [{ ...first, amount: 12_400 }, second];
    expect(await verifyLedger(ITEM, changed, { head: H2, count: 2 })).toEqual({ ok: false, seq: 1, why: 'hash' });
    const gap = bids().slice(1);
    expect(await verifyLedger(ITEM, gap, { head: H2, count: 2 })).toEqual({ ok: false, seq: 1, why: 'order' });
    expect(await verifyLedger(ITEM, bids(), { head: H1, count: 2 })).toEqual({ ok: false, seq: 3, why: 'head' });
    expect(await verifyLedger(ITEM, bids(), { head: H2, count: 5 })).toEqual({ ok: false, seq: 3, why: 'head' });
    await expect(chainOf('not-a-uuid', [])).rejects.toThrow('not a UUID');
  });

  it('remembers the newest head seen of an item', () => {
    expect(recalledHead('lot')).toBeNull();
    rememberHead('lot', { head: H1, count: 1 });
    rememberHead('lot', { head: H2, count: 2 });
    rememberHead('lot', { head: H0, count: 0 });
    expect(recalledHead('lot')).toEqual({ head: H2, count: 2 });
    localStorage.setItem('pp:ledger-head:bad', '{"head": 1}');
    expect(recalledHead('bad')).toBeNull();
    localStorage.setItem('pp:ledger-head:worse', 'not json');
    expect(recalledHead('worse')).toBeNull();
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
