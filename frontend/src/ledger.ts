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

export type LedgerVerdict =
  | { ok: true; count: number; matched: SeenHead }
  /** Where the chain stops matching: a bid's `seq`, or one past the last for the head. */
  | { ok: false; seq: number; why: 'order' | 'hash' | 'head' };

/**
 * Recomputes the chain over `bids` (all of them, in `seq` order) and checks
 * each bid's shown hash, then `seen`: the head after `seen.count` bids.
 */
export async function verifyLedger(itemId: string, bids: RevealedBid[], seen: SeenHead): Promise<LedgerVerdict> {
  for (const [n, bid] of bids.entries()) {
    if (bid.seq !== n + 1) return { ok: false, seq: n + 1, why: 'order' };
  }
  const chain = await chainOf(itemId, bids);
  for (const bid of bids) {
    if (bid.hash !== chain[bid.seq]) return { ok: false, seq: bid.seq, why: 'hash' };
  }
  if (seen.count > bids.length || chain[seen.count] !== seen.head) {
    return { ok: false, seq: Math.min(seen.count, bids.length) + 1, why: 'head' };
  }
  return { ok: true, count: bids.length, matched: seen };
}

const KEY = 'pp:ledger-head:';

/** Keeps the newest head this browser saw of an open item. */
export function rememberHead(itemId: string, seen: SeenHead) {
  try {
    const known = recalledHead(itemId);
    if (known && known.count > seen.count) return;
    localStorage.setItem(KEY + itemId, JSON.stringify(seen));
  } catch {
    // Storage full or refused: the check falls back to the server's head.
  }
}

/** The newest head this browser saw of the item while it was open. */
export function recalledHead(itemId: string): SeenHead | null {
  try {
    const raw = localStorage.getItem(KEY + itemId);
    if (!raw) return null;
    const seen = JSON.parse(raw) as Partial<SeenHead>;
    return typeof seen.head === 'string' && typeof seen.count === 'number' ? { head: seen.head, count: seen.count } : null;
  } catch {
    return null;
  }
}
