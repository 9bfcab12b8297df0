// What the notifications socket needs besides React: the toast text of a
// notification, the currencies of items seen so far (the socket's message
// names only the item) and the pause before reconnecting.
import type { Notification } from '../api/types';
import { formatMoney, type Currency } from '../money';

/** What a notification's amounts are read in when its item's currency is unknown. */
export const FALLBACK_CURRENCY: Currency = { code: 'usd', decimals: 2 };

/**
 * The currency of a notification's item when the notification says it (a
 * stored one carries `currency` and `currency_decimals`); `null` when it
 * does not (the socket's).
 */
export function currencyInData(data: Notification['data']): Currency | null {
  return data.currency !== undefined && data.currency_decimals !== undefined
    ? { code: data.currency, decimals: data.currency_decimals }
    : null;
}

/** The toast text of a notification, its amounts in `currency`. */
export function describe(notification: Notification, currency: Currency = FALLBACK_CURRENCY): string {
  const money = (value: number | undefined) => (value === undefined ? '' : formatMoney(value, currency));
  const { data } = notification;
  switch (notification.type) {
    case 'outbid':
      return `You were outbid: the price is now ${money(data.current_price)}.`;
    case 'auto_raised':
      return `Your poison raised your bid to ${money(data.effective)}; ${money(data.remaining_budget)} of budget left.`;
    case 'exhausted':
      return `Your poison is spent: the price ${money(data.current_price)} is above your budget.`;
    case 'won':
      return `You won! You pay ${money(data.final_price)}.`;
    case 'lost':
      return `The auction closed at ${money(data.final_price)}; another bid won.`;
  }
}

// Items' currencies as the server described them, by item id: the auction
// room's stream and the stored notifications tell them, and a live toast
// about the same item is then worded in its currency.
const known = new Map<string, Currency>();

/** Keeps the server's `currency` of item `itemId` for the toasts. */
export function rememberCurrency(itemId: string, currency: Currency) {
  known.set(itemId, currency);
}

/** The currency of item `itemId` if one was seen; else the fallback (usd, 2 decimals). */
export function knownCurrency(itemId: string): Currency {
  return known.get(itemId) ?? FALLBACK_CURRENCY;
}

/** A reconnect pause that grows to 10 s. */
export function backoff(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** attempt);
}
