// How much of a poisoned bid's budget is left, as a meter.
import type { Budget } from '../budget';
import { formatMoney, type Currency } from '../money';

export function BudgetBar({ budget, currency }: { budget: Budget; currency: Currency }) {
  const percent = Math.round(budget.fraction * 100);
  return (
    <div className="budget">
      <div
        className="budget-bar"
        role="meter"
        aria-label="Poison budget left"
        aria-valuemin={0}
        aria-valuemax={budget.reserve}
        aria-valuenow={budget.remaining}
        aria-valuetext={`${formatMoney(budget.remaining, currency)} left of ${formatMoney(budget.reserve, currency)}`}
        data-testid="budget-bar"
      >
        <div className="budget-fill" style={{ width: `${percent}%` }} />
      </div>
      <p className="hint" data-testid="budget-left">
        {formatMoney(budget.remaining, currency)} of {formatMoney(budget.reserve, currency)} poison left
      </p>
    </div>
  );
}
