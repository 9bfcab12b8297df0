// The live view of one item from its Server-Sent Events: a pure reducer
// (tested on its own) and the hook that feeds it from an EventSource.
//
// Event ids are the item's bid count, so the reducer ignores anything it
// has already seen: after a reconnect EventSource sends Last-Event-ID and
// the server replays exactly what was missed; a fresh snapshot replaces
// the state whole. The close only ever moves later (soft close): a close
// is taken when it comes with more extensions than the one shown.
import { useEffect, useEffectEvent, useReducer, useRef } from 'react';

import type { ClosedEvent, ExtendedEvent, Item, PriceEvent } from '../api/types';
import { currencyOf } from '../money';
import { rememberCurrency } from './notify';

export type StreamEvent =
  | { type: 'snapshot'; id: number; data: Item }
  | { type: 'price'; id: number; data: PriceEvent }
  | { type: 'extended'; id: number; data: ExtendedEvent }
  | { type: 'closed'; id: number; data: ClosedEvent };

/** A price on the chart: when, and at how much. */
export interface PricePoint {
  at: number;
  price: number;
}

export interface ItemStreamState {
  item: Item | null;
  /** The id of the last event applied. */
  lastId: number;
  /** Bidding ended: nothing more will come. */
  ended: boolean;
  connected: boolean;
  /** The prices seen while watching, oldest first. */
  prices: PricePoint[];
  /** The last extension seen live: why the countdown jumped. */
  extended: ExtendedEvent | null;
}

export const initialStreamState: ItemStreamState = {
  item: null,
  lastId: -1,
  ended: false,
  connected: false,
  prices: [],
  extended: null,
};

/** `item` with the close of `moved` when it is newer than its own. */
function withClose(item: Item, moved: { close_at: string; extensions_used: number }): Item {
  if (moved.extensions_used <= item.extensions_used) return item;
  return { ...item, close_at: moved.close_at, extensions_used: moved.extensions_used };
}

/** A server time (six fractional digits, which `Date.parse` need not take) in milliseconds. */
const time = (text: string) => Date.parse(text.replace(/(\.\d{3})\d+Z$/, '$1Z'));

/** Points in time order: the browser's clock (a snapshot's) and the server's may disagree. */
const sorted = (points: PricePoint[]) => [...points].sort((a, b) => a.at - b.at);

export type StreamAction = StreamEvent | { type: 'connection'; connected: boolean };

export function reduceStream(state: ItemStreamState, action: StreamAction): ItemStreamState {
  switch (action.type) {
    case 'connection':
      return { ...state, connected: action.connected };
    case 'snapshot': {
      const snapshot = action.data;
      const same = state.item?.id === snapshot.id;
      // Its price joins the chart when it is news: the first one, or one
      // after bids this page missed (a stream reopened after a gap). It has
      // no time of its own: it is placed when it arrived.
      const news = snapshot.current_price !== null && (!same || snapshot.bid_count > (state.item?.bid_count ?? 0));
      const point = news && snapshot.current_price !== null ? [{ at: Date.now(), price: snapshot.current_price }] : [];
      const prices = sorted([...(same ? state.prices : []), ...point]);
      // An extension notice stays only while it still tells the close.
      const extended = same && state.extended?.extensions_used === snapshot.extensions_used ? state.extended : null;
      return {
        ...state,
        item: snapshot,
        lastId: action.id,
        ended: snapshot.status !== 'open',
        prices,
        extended,
      };
    }
    case 'price': {
      if (!state.item || action.id <= state.lastId) return state;
      const { current_price, minimum_next_bid, bid_count, ledger_head } = action.data;
      const item = withClose({ ...state.item, current_price, minimum_next_bid, bid_count, ledger_head }, action.data);
      const at = time(action.data.at);
      return {
        ...state,
        item,
        lastId: action.id,
        prices: sorted([...state.prices, { at: Number.isFinite(at) ? at : Date.now(), price: current_price }]),
      };
    }
    case 'extended': {
      if (!state.item) return state;
      const item = withClose(state.item, action.data);
      // News when it moves the close now, or when it follows the price of
      // its own bid (same id), which already carried the moved close.
      const news = item !== state.item || action.id === state.lastId;
      return news ? { ...state, item, extended: action.data } : state;
    }
    case 'closed': {
      if (!state.item || action.id <= state.lastId) return state;
      const item: Item = { ...state.item, status: action.data.status };
      if (action.data.status === 'closed') item.final_price = action.data.final_price;
      return { ...state, item, lastId: action.id, ended: true };
    }
  }
}

/** Parses one MessageEvent of the stream; `null` for anything unexpected. */
export function parseStreamEvent(type: string, message: MessageEvent<string>): StreamEvent | null {
  const id = Number.parseInt(message.lastEventId, 10);
  if (!Number.isFinite(id)) return null;
  try {
    const data: unknown = JSON.parse(message.data);
    if (type === 'snapshot') return { type, id, data: data as Item };
    if (type === 'price') return { type, id, data: data as PriceEvent };
    if (type === 'extended') return { type, id, data: data as ExtendedEvent };
    if (type === 'closed') return { type, id, data: data as ClosedEvent };
  } catch {
    return null;
  }
  return null;
}

/**
 * The live state of item `id`, and a callback for every new price (each
 * applied price event, and the price of every snapshot: a stream reopened
 * after a gap starts with one). EventSource reconnects by itself with Last-Event-ID; if it gives up
 * (the server went away for longer), the hook opens a new stream after a
 * pause, which starts with a fresh snapshot.
 */
export function useItemStream(id: string, onPrice?: (price: PriceEvent) => void): ItemStreamState {
  const [state, dispatch] = useReducer(reduceStream, initialStreamState);
  // Always the callback of the latest render, without reopening the stream.
  const onPriceEvent = useEffectEvent((price: PriceEvent) => onPrice?.(price));
  const lastApplied = useRef(-1);

  useEffect(() => {
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let ended = false;

    const open = () => {
      source = new EventSource(`/events/${id}`);
      source.onopen = () => dispatch({ type: 'connection', connected: true });
      for (const type of ['snapshot', 'price', 'extended', 'closed'] as const) {
        source.addEventListener(type, (message) => {
          const event = parseStreamEvent(type, message as MessageEvent<string>);
          if (!event) return;
          if (event.type === 'snapshot') {
            lastApplied.current = event.id;
            // The notifications' toasts about this item speak its currency.
            rememberCurrency(event.data.id, currencyOf(event.data));
            if (event.data.current_price !== null) {
              onPriceEvent({ ...event.data, item_id: event.data.id, current_price: event.data.current_price, at: '' });
            }
          } else if (event.type !== 'extended' && event.id > lastApplied.current) {
            lastApplied.current = event.id;
            if (event.type === 'price') onPriceEvent(event.data);
          }
          if (event.type === 'closed' || (event.type === 'snapshot' && event.data.status !== 'open')) {
            ended = true;
          }
          dispatch(event);
        });
      }
      source.onerror = () => {
        dispatch({ type: 'connection', connected: false });
        if (source?.readyState === EventSource.CLOSED && !stopped && !ended) {
          retry = setTimeout(open, 3000);
        }
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      source?.close();
    };
  }, [id]);

  return state;
}
