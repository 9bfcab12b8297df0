// The price over time, drawn with Recharts (SVG, so it scales on a phone and
// its keyboard layer reads each point). A caption says in words what the
// line shows, for anyone who cannot see it.
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

import type { PricePoint } from '../live/itemStream';
import { formatMoney, type Currency } from '../money';

const clock = (at: number) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export default function PriceChart({ points, currency, title }: { points: PricePoint[]; currency: Currency; title: string }) {
  const [first] = points;
  const last = points.at(-1);
  if (!first || !last) return null;
  // One moment only (a single price, or several in one millisecond) still
  // needs an axis with some width.
  const times = points.map((point) => point.at);
  const [earliest, latest] = [Math.min(...times), Math.max(...times)];
  const domain = earliest === latest ? [earliest - 60_000, latest + 60_000] : [earliest, latest];
  // Within a couple of minutes the clock reads the same on every tick:
  // seconds after the first price say more.
  const short = latest - earliest < 120_000;
  const tick = short ? (at: number) => `+${((at - earliest) / 1000).toFixed(latest - earliest < 10_000 ? 1 : 0)} s` : clock;
  const summary =
    points.length === 1
      ? `One price so far: ${formatMoney(last.price, currency)}.`
      : `${points.length} prices, from ${formatMoney(first.price, currency)} at ${clock(first.at)} to ${formatMoney(last.price, currency)} at ${clock(last.at)}.`;
  return (
    <figure className="chart" aria-labelledby="chart-title" data-testid="price-chart">
      <figcaption>
        <h2 id="chart-title">{title}</h2>
        <p className="hint">{summary}</p>
      </figcaption>
      <div className="chart-area">
        <ResponsiveContainer width="100%" height="100%" initialDimension={{ width: 600, height: 240 }}>
          <LineChart data={points} margin={{ top: 8, right: 16, bottom: 8, left: 8 }} accessibilityLayer>
            <CartesianGrid stroke="#e4e1da" strokeDasharray="3 3" />
            <XAxis
              dataKey="at"
              type="number"
              domain={domain} tickFormatter={tick}
              minTickGap={40}
              label={short ? { value: `seconds after ${clock(earliest)}`, position: 'insideBottom', offset: -4 } : undefined}
              height={short ? 44 : 30}
            />
            <YAxis dataKey="price" width={80} tickFormatter={(value: number) => formatMoney(value, currency)} domain={['auto', 'auto']} />
            <Tooltip
              labelFormatter={(at) => clock(Number(at))}
              formatter={(value) => [formatMoney(Number(value), currency), 'Price']}
            />
            <Line type="stepAfter" dataKey="price" name="Price" stroke="#6a1b9a" strokeWidth={2} dot={{ r: 3 }} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
