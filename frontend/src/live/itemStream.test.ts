import type { Item } from '../api/types';
import { initialStreamState, parseStreamEvent, reduceStream, type StreamEvent } from './itemStream';

const item: Item = {
  id: 'item-1',
  title: 'Lamp',
  description: '',
  currency: 'usd',
  base_price: 100,
  min_increment: 5,
  current_price: null,
  minimum_next_bid: 100,
  bid_count: 0,
  close_at: '2030-01-01T00:00:00Z',
  status: 'open',
  created_at: '2026-01-01T00:00:00Z',
};

const price = (id: number, current_price: number): StreamEvent => ({
  type: 'price',
  id,
  data: { item_id: 'item-1', current_price, minimum_next_bid: current_price + 5, bid_count: id, at: '' },
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
