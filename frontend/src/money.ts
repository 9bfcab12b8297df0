// Money in the app: integers of minor units, as the API has them. People
// type and read major units ("12.50"), in the item's currency.
//
// How many decimals a currency has is the server's word (ISO 4217's minor
// unit: every item and own bid carries it as `currency_decimals`, and
// GET /currencies/{code} tells it for an item being listed), not the browser's:
// Intl's tables (CLDR) differ for about twenty currencies (HUF, IDR, …), and
// reading 12345 minor units of huf as 12,345 would put the page 100× off
// the server and its mails. Intl only draws the symbol and the grouping.

/** A currency as the server describes an item's: its code and its decimals. */
export interface Currency {
  /** Three letters, any case. */
  code: string;
  /** Digits after the decimal point of an amount in minor units (2 for usd, 0 for jpy). */
  decimals: number;
}

/** The currency of an item (or anything carrying the server's two fields). */
export function currencyOf(item: { currency: string; currency_decimals: number }): Currency {
  return { code: item.currency, decimals: item.currency_decimals };
}

/** `minor` units of `currency`, formatted for people with the currency's own decimals. */
export function formatMoney(minor: number, currency: Currency): string {
  const { decimals } = currency;
  const major = minor / 10 ** decimals;
  try {
    return new Intl.NumberFormat('en', {
      style: 'currency',
      currency: currency.code.toUpperCase(),
      minimumFractionDigits: decimals,
      maximumFractionDigits: decimals,
    }).format(major);
  } catch {
    return `${major.toFixed(decimals)} ${currency.code.toUpperCase()}`;
  }
}

/** The largest amount the server accepts, in minor units. */
export const MAX_MINOR = 1_000_000_000_000;

/**
 * Parses what a person typed ("12", "12.5", "12.50") into minor units of a
 * currency with `decimals` decimals; `null` when it is not an amount (too
 * many decimals, signs, letters). Never rounds: "1.005" in usd is refused,
 * not guessed.
 */
export function parseMoney(text: string, decimals: number): number | null {
  const trimmed = text.trim().replace(/,/g, '');
  const pattern = decimals > 0 ? new RegExp(`^(\\d+)(?:\\.(\\d{1,${decimals}}))?$`) : /^(\d+)$/;
  const match = pattern.exec(trimmed);
  if (!match) return null;
  const whole = match[1] ?? '0';
  const fraction = (match[2] ?? '').padEnd(decimals, '0');
  const minor = Number(whole + fraction);
  return Number.isSafeInteger(minor) ? minor : null;
}

/** Minor units back to what a person would type, with `decimals` decimals. */
export function toMajorText(minor: number, decimals: number): string {
  return (minor / 10 ** decimals).toFixed(decimals);
}
