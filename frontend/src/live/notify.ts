// What the notifications socket needs besides React: the toast text of a
// notification and the pause before reconnecting.
import type { Notification } from '../api/types';
import { formatMoney } from '../money';

/** The toast text of a notification. */
export function describe(notification: Notification, currency = 'usd'): string {
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

/** A reconnect pause that grows to 10 s. */
export function backoff(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** attempt);
}
