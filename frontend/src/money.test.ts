import { formatMoney, fractionDigits, parseMoney, toMajorText } from './money';

describe('money', () => {
  it('knows how many decimals a currency has', () => {
    expect(fractionDigits('usd')).toBe(2);
    expect(fractionDigits('jpy')).toBe(0);
    expect(fractionDigits('xyz')).toBe(2);
  });

  it('parses what people type into minor units without rounding', () => {
    expect(parseMoney('12', 'usd')).toBe(1200);
    expect(parseMoney('12.5', 'usd')).toBe(1250);
    expect(parseMoney(' 1,234.05 ', 'usd')).toBe(123405);
    expect(parseMoney('700', 'jpy')).toBe(700);
    for (const bad of ['', '-1', '1.005', '1.2.3', 'ten', '1e3', '12.']) {
      expect(parseMoney(bad, 'usd')).toBeNull();
    }
    expect(parseMoney('7.5', 'jpy')).toBeNull();
  });

  it('formats and round-trips', () => {
    expect(formatMoney(12500, 'usd')).toBe('$125.00');
    expect(formatMoney(700, 'jpy')).toBe('¥700');
    expect(toMajorText(12550, 'usd')).toBe('125.50');
    expect(parseMoney(toMajorText(98765, 'eur'), 'eur')).toBe(98765);
  });
});
