// Money in the app: integers of minor units, as the API has them. People
// type and read major units ("12.50"), in the item's currency.

/** Digits after the decimal point of `currency` (2 for usd, 0 for jpy). */
export function fractionDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() })
      .resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** `minor` units of `currency`, formatted for people. */
export function formatMoney(minor: number, currency: string): string {
  const digits = fractionDigits(currency);
  const major = minor / 10 ** digits;
  try {
    return new Intl.NumberFormat('en', {
      style: 'currency',
      currency: currency.toUpperCase(),
    }).format(major);
  } catch {
    return `${major.toFixed(digits)} ${currency.toUpperCase()}`;
  }
}

/** The largest amount the server accepts, in minor units. */
export const MAX_MINOR = 1_000_000_000_000;

/**
 * Parses what a person typed ("12", "12.5", "12.50") into minor units of
 * `currency`; `null` when it is not an amount (too many decimals, signs,
 * letters). Never rounds: "1.005" in usd is refused, not guessed.
 */
export function parseMoney(text: string, currency: string): number | null {
  const digits = fractionDigits(currency);
  const trimmed = text.trim().replace(/,/g, '');
  const pattern = digits > 0 ? new RegExp(`^(\\d+)(?:\\.(\\d{1,${digits}}))?$`) : /^(\d+)$/;
  const match = pattern.exec(trimmed);
  if (!match) return null;
  const whole = match[1] ?? '0';
  const fraction = (match[2] ?? '').padEnd(digits, '0');
  const minor = Number(whole + fraction);
  return Number.isSafeInteger(minor) ? minor : null;
}

/** Minor units back to what a person would type. */
export function toMajorText(minor: number, currency: string): string {
  const digits = fractionDigits(currency);
  return (minor / 10 ** digits).toFixed(digits);
}
