import { currencyOf, formatMoney, parseMoney, toMajorText } from './money';

const usd = { code: 'usd', decimals: 2 };
const jpy = { code: 'jpy', decimals: 0 };
const kwd = { code: 'kwd', decimals: 3 };
// ISO 4217 gives the forint 2 decimals, as the server does; browsers' Intl says 0.
const huf = { code: 'huf', decimals: 2 };
// Intl puts a no-break space between a code and the amount.

describe('money', () => {
  it("takes an item's currency and decimals as the server gives them", () => {
    expect(currencyOf({ currency: 'huf', currency_decimals: 2 })).toEqual(huf);
  });

  it('parses what people type into minor units without rounding', () => {
    expect(parseMoney('12', 2)).toBe(1200);
    expect(parseMoney('12.5', 2)).toBe(1250);
    expect(parseMoney(' 1,234.05 ', 2)).toBe(123405);
    expect(parseMoney('700', 0)).toBe(700);
    expect(parseMoney('1.5', 3)).toBe(1500);
    expect(parseMoney('1.005', 3)).toBe(1005);
    for (const bad of ['', '-1', '1.005', '1.2.3', 'ten', '1e3', '12.']) {
      expect(parseMoney(bad, 2)).toBeNull();
    }
    expect(parseMoney('7.5', 0)).toBeNull();
    expect(parseMoney('9'.repeat(20), 2)).toBeNull();
  });

  it("reads and writes a currency with the server's decimals where Intl disagrees (huf: 2, not 0)", () => {
    expect(new Intl.NumberFormat('en', { style: 'currency', currency: 'HUF' }).resolvedOptions().maximumFractionDigits).toBe(0);
    expect(formatMoney(12345, huf)).toBe('HUF\u00a0123.45');
    expect(parseMoney('123.45', huf.decimals)).toBe(12345);
    expect(parseMoney('123', huf.decimals)).toBe(12300);
    expect(toMajorText(12345, huf.decimals)).toBe('123.45');
  });

  it('formats and round-trips', () => {
    expect(formatMoney(12500, usd)).toBe('$125.00');
    expect(formatMoney(123456789, usd)).toBe('$1,234,567.89');
    expect(formatMoney(700, jpy)).toBe('¥700');
    expect(formatMoney(1500, kwd)).toBe('KWD\u00a01.500');
    expect(formatMoney(1250, { code: 'USD', decimals: 2 })).toBe('$12.50');
    expect(toMajorText(12550, 2)).toBe('125.50');
    expect(toMajorText(700, 0)).toBe('700');
    expect(parseMoney(toMajorText(98765, 2), 2)).toBe(98765);
    expect(parseMoney(toMajorText(98765, 3), 3)).toBe(98765);
  });

  it('writes a code Intl refuses plainly', () => {
    expect(formatMoney(1250, { code: 'us dollars', decimals: 2 })).toBe('12.50 US DOLLARS');
  });
});
