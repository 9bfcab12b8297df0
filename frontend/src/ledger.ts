// The bid ledger checked in the browser (docs/spec/auction-rules.md,
// "Ledger"): the chain recomputed with Web Crypto's SHA-256 from the
// revealed bids' public fields, compared with each bid's shown hash and
// with a head seen before the close. Nothing here trusts the server's
// arithmetic: only its data.
import type { RevealedBid } from './api/types';

const LABEL = new TextEncoder().encode('poison-pill ledger v1');

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** A UUID's 16 bytes in RFC 4122 (big-endian) order. */
function uuidBytes(id: string): Uint8Array {
  const digits = id.replaceAll('-', '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(digits)) throw new Error(`not a UUID: ${id}`);
  return fromHex(digits);
}

async function sha256(...parts: Uint8Array[]): Promise<ArrayBuffer> {
  const joined = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return crypto.subtle.digest('SHA-256', joined);
}

/** `record(n)` exactly as the server hashed it. */
export function recordOf(bid: RevealedBid): string {
  const budget = bid.poison?.budget ?? 0;
  const step = bid.poison?.step ?? 0;
  return `${bid.seq}|${bid.bidder_id.toLowerCase()}|${bid.amount}|${budget}|${step}|${bid.created_at}|${bid.salt}`;
}

/** `[h0, h1, …, hn]` of an item over its revealed bids, in lower-case hex. */
export async function chainOf(itemId: string, bids: RevealedBid[]): Promise<string[]> {
  let value = await sha256(LABEL, uuidBytes(itemId));
  const chain = [hex(value)];
  const encoder = new TextEncoder();
  for (const bid of bids) {
    value = await sha256(new Uint8Array(value), encoder.encode(recordOf(bid)));
    chain.push(hex(value));
  }
  return chain;
}

/** A head seen while the auction ran: after `count` bids. */
export interface SeenHead {
  head: string;
  count: number;
}

/** What the revealed bids are checked against. */
export interface Expected {
  /** The heads this browser saw while the auction ran (oldest first). */
  seen: SeenHead[];
  /** The item as the server shows it now: its bid count and head. */
  count: number;
  head: string | null;
}

export type LedgerVerdict =
  /** The chain reaches every head seen and the item's own; `witnessed` when this browser saw any. */
  | { ok: true; count: number; witnessed: SeenHead | null }
  /**
   * Where the chain stops matching: a bid's `seq`, or one past the last for
   * a head. `order`: a bid missing or out of place; `unchained`: a bid the
   * server has not chained yet; `hash`: a shown hash its data do not hash
   * to; `seen`: a head this browser saw is not on the chain; `head`: the
   * chain does not end at the item's head, or not all its bids are shown.
   */
  | { ok: false; seq: number; why: 'order' | 'unchained' | 'hash' | 'seen' | 'head'; expected?: string };

/**
 * Recomputes the chain over `bids` (all of them, in `seq` order) and checks
 * each bid's shown hash, every head this browser saw, and that the chain
 * ends, after the item's whole bid count, at the item's head.
 */
export async function verifyLedger(itemId: string, bids: RevealedBid[], expected: Expected): Promise<LedgerVerdict> {
  for (const [n, bid] of bids.entries()) {
    if (bid.seq !== n + 1) return { ok: false, seq: n + 1, why: 'order' };
  }
  const chain = await chainOf(itemId, bids);
  for (const bid of bids) {
    if (bid.hash === null) return { ok: false, seq: bid.seq, why: 'unchained' };
    if (bid.hash !== chain[bid.seq]) return { ok: false, seq: bid.seq, why: 'hash' };
  }
  for (const seen of expected.seen) {
    if (seen.count > bids.length || chain[seen.count] !== seen.head) {
      return { ok: false, seq: Math.min(seen.count, bids.length) + 1, why: 'seen', expected: seen.head };
    }
  }
  if (bids.length !== expected.count || chain[bids.length] !== expected.head) {
    return { ok: false, seq: Math.min(bids.length, expected.count) + 1, why: 'head', expected: expected.head ?? undefined };
  }
  return { ok: true, count: bids.length, witnessed: expected.seen.at(-1) ?? null };
}

const KEY = 'pp:ledger:';
/** Items whose heads are kept; the oldest written go first. */
const MAX_ITEMS = 200;
/** Heads kept per item (the first ones, then the newest). */
const MAX_HEADS = 500;

interface Kept {
  /** The item's listing time: the same id in another database is another item. */
  listed: string;
  /** Every head seen, by bid count: the first value seen for a count stays. */
  heads: Record<string, string>;
  written: number;
}

function read(itemId: string): Kept | null {
  try {
    const raw = localStorage.getItem(KEY + itemId);
    if (!raw) return null;
    const kept = JSON.parse(raw) as Partial<Kept>;
    if (typeof kept.listed !== 'string' || typeof kept.heads !== 'object' || kept.heads === null) return null;
    return { listed: kept.listed, heads: kept.heads, written: Number(kept.written) || 0 };
  } catch {
    return null;
  }
}

/** Drops the items written longest ago, past `MAX_ITEMS`. */
function prune() {
  const keys = Object.keys(localStorage).filter((key) => key.startsWith(KEY));
  if (keys.length <= MAX_ITEMS) return;
  const byAge = keys.map((key) => ({ key, written: read(key.slice(KEY.length))?.written ?? 0 })).sort((a, b) => a.written - b.written);
  for (const { key } of byAge.slice(0, keys.length - MAX_ITEMS)) localStorage.removeItem(key);
}

/**
 * Keeps a head this browser saw of an open item listed at `listed`. The
 * first value seen for a bid count stays: a different one later is a fork
 * the check after close must see, not overwrite.
 */
export function rememberHead(itemId: string, listed: string, seen: SeenHead) {
  try {
    const known = read(itemId);
    const kept: Kept = known && known.listed === listed ? known : { listed, heads: {}, written: 0 };
    const key = String(seen.count);
    if (kept.heads[key] !== undefined) return;
    kept.heads[key] = seen.head;
    const counts = Object.keys(kept.heads).map(Number).sort((a, b) => a - b);
    for (const count of counts.slice(MAX_HEADS / 2, counts.length - MAX_HEADS / 2)) delete kept.heads[String(count)];
    kept.written = Date.now();
    localStorage.setItem(KEY + itemId, JSON.stringify(kept));
    prune();
  } catch {
    // Storage full or refused: the check falls back to the server's head.
  }
}

/** The heads this browser saw of the item listed at `listed`, by bid count. */
export function recalledHeads(itemId: string, listed: string): SeenHead[] {
  const kept = read(itemId);
  if (!kept || kept.listed !== listed) return [];
  return Object.entries(kept.heads)
    .map(([count, head]) => ({ count: Number(count), head }))
    .filter((seen) => Number.isInteger(seen.count) && typeof seen.head === 'string')
    .sort((a, b) => a.count - b.count);
}
