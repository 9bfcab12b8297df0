import { renderHook } from '@testing-library/react';

import type { Item } from '../api/types';
import { FakeEventSource } from '../test/app';
import { initialStreamState, parseStreamEvent, reduceStream, useItemStream, type StreamEvent } from './itemStream';

const item: Item = {
  id: 'item-1',
  title: 'Lamp',
  description: '',
  currency: 'usd',
  currency_decimals: 2,
  base_price: 100,
  min_increment: 5,
  current_price: null,
  minimum_next_bid: 100,
  bid_count: 0,
  close_at: '2030-01-01T00:00:00Z',
  status: 'open',
  created_at: '2026-01-01T00:00:00Z',
  soft_close: null,
  extensions_used: 0,
  ledger_head: null,
};

const price = (id: number, current_price: number): StreamEvent => ({
  type: 'price',
  id,
  data: { item_id: 'item-1', current_price, minimum_next_bid: current_price + 5, bid_count: id, at: '', close_at: '2030-01-01T00:00:00Z', extensions_used: 0, ledger_head: null },
});

function run(events: StreamEvent[]) {
  return events.reduce(reduceStream, initialStreamState);
}

describe('the item stream', () => {
  it('applies the snapshot, then each price in order', () => {
    const state = run([{ type: 'snapshot', id: 0, data: item }, price(1, 120), price(2, 125)]);
    expect(state.item).toMatchObject({ current_price: 125, minimum_next_bid: 130, bid_count: 2 });
    expect(state.lastId).toBe(2);
    expect(state.ended).toBe(false);
  });

  it('ignores what it has seen already, so a resume never applies an event twice', () => {
    const live = run([{ type: 'snapshot', id: 0, data: item }, price(1, 120), price(2, 125)]);
    // The reconnect replays from Last-Event-ID 2; a duplicate or stale event changes nothing.
    const replayed = [price(2, 125), price(1, 120), price(3, 155)].reduce(reduceStream, live);
    expect(replayed.item?.current_price).toBe(155);
    expect(replayed.lastId).toBe(3);
    expect(reduceStream(replayed, price(3, 999))).toBe(replayed);
  });

  it('ends with the closed event and takes its final price', () => {
    const state = run([
      { type: 'snapshot', id: 1, data: { ...item, current_price: 120, bid_count: 1 } },
      { type: 'closed', id: 2, data: { item_id: 'item-1', final_price: 120, has_winner: true, status: 'closed' } },
    ]);
    expect(state.ended).toBe(true);
    expect(state.item).toMatchObject({ status: 'closed', final_price: 120 });
  });

  it('takes a fresh snapshot whole, even with a lower id (a new stream)', () => {
    const state = run([{ type: 'snapshot', id: 5, data: { ...item, bid_count: 5 } }, { type: 'snapshot', id: 0, data: item }]);
    expect(state.lastId).toBe(0);
    expect(state.item?.bid_count).toBe(0);
  });

  it('knows a closed item from its snapshot and needs an item before prices', () => {
    expect(run([{ type: 'snapshot', id: 3, data: { ...item, status: 'cancelled' } }]).ended).toBe(true);
    expect(run([price(1, 120)]).item).toBeNull();
  });

  it('parses only well-formed events with numeric ids', () => {
    const message = (data: string, lastEventId: string) => new MessageEvent('price', { data, lastEventId });
    expect(parseStreamEvent('price', message('{"current_price":1}', '4'))).toMatchObject({ type: 'price', id: 4 });
    expect(parseStreamEvent('price', message('{', '4'))).toBeNull();
    expect(parseStreamEvent('price', message('{}', ''))).toBeNull();
    expect(parseStreamEvent('other', message('{}', '1'))).toBeNull();
  });
});

describe('the item stream hook', () => {
  beforeEach(() => {
    FakeEventSource.install();
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('follows the stream and hands each new price to the latest callback once', () => {
    const first = vi.fn();
    const latest = vi.fn();
    const { result, rerender } = renderHook(({ onPrice }) => useItemStream('item-1', onPrice), { initialProps: { onPrice: first } });
    const source = FakeEventSource.latest();
    expect(source.url).toBe('/events/item-1');
    expect(result.current.connected).toBe(false);
    source.open();
    expect(result.current.connected).toBe(true);

    source.emit('snapshot', 1, { ...item, current_price: 110, bid_count: 1 });
    expect(first).toHaveBeenCalledWith(expect.objectContaining({ item_id: 'item-1', current_price: 110 }));
    rerender({ onPrice: latest });
    source.emit('price', 2, price(2, 120).data);
    source.emit('price', 2, price(2, 120).data);
    source.emit('price', 1, price(1, 999).data);
    expect(latest.mock.calls).toEqual([[expect.objectContaining({ current_price: 120 })]]);
    expect(first).toHaveBeenCalledTimes(1);
    expect(result.current.item?.current_price).toBe(120);
  });

  it('opens a new stream a while after the browser gave up, but not once bidding ended', () => {
    const { result, unmount } = renderHook(() => useItemStream('item-1'));
    FakeEventSource.latest().emit('snapshot', 0, item);
    FakeEventSource.latest().fail(false); // the browser reconnects by itself
    expect(result.current.connected).toBe(false);
    vi.advanceTimersByTime(5000);
    expect(FakeEventSource.instances).toHaveLength(1);

    FakeEventSource.latest().fail(true); // it gave up
    vi.advanceTimersByTime(2999);
    expect(FakeEventSource.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeEventSource.instances).toHaveLength(2);

    const second = FakeEventSource.latest();
    second.emit('snapshot', 3, { ...item, status: 'closed', final_price: 150 });
    expect(result.current.ended).toBe(true);
    second.fail(true);
    vi.advanceTimersByTime(10_000);
    expect(FakeEventSource.instances).toHaveLength(2);
    unmount();
    expect(second.readyState).toBe(FakeEventSource.CLOSED);
  });

  it('stops for good when unmounted, even with a reconnect pending', () => {
    const { unmount } = renderHook(() => useItemStream('item-1'));
    FakeEventSource.latest().fail(true);
    unmount();
    vi.advanceTimersByTime(10_000);
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('ignores messages it cannot read', () => {
    const { result } = renderHook(() => useItemStream('item-1'));
    FakeEventSource.latest().emit('snapshot', Number.NaN, item);
    expect(result.current.item).toBeNull();
  });
});
