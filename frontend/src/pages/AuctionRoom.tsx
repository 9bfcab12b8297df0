// One auction, live: the price from the item's event stream (and its chart),
// the soft-close rule and each extension as it happens, your bid and its
// budget bar kept current by price events and your notifications, the bid
// form with its poison, and after close the outcome and every bid, checked
// against the bid ledger's head this browser saw while the auction ran.
import { zodResolver } from '@hookform/resolvers/zod';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { useForm, useWatch } from 'react-hook-form';
import { Link, useLocation, useParams } from 'react-router-dom';

import { ApiError } from '../api/client';
import * as endpoints from '../api/endpoints';
import type { Item, OwnBid, RevealedBid, SoftClose } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { BudgetBar } from '../components/BudgetBar';
import { Countdown } from '../components/Countdown';
import { Field } from '../components/Field';
import { Gallery } from '../components/Gallery';
import { ProblemAlert } from '../components/ProblemAlert';
import { afterAutoRaise, afterLosingLead, afterPrice, budgetOf, type Budget } from '../budget';
import { recalledHeads, rememberHead, verifyLedger, type LedgerVerdict } from '../ledger';
import { useItemStream, type PricePoint } from '../live/itemStream';
import { useNotifications } from '../live/useNotifications';
import { placeFieldErrors } from '../forms';
import { currencyOf, formatMoney, parseMoney, toMajorText, type Currency } from '../money';
import { pricesAfter } from '../replay';
import { bidSchema, type BidFormInput, type BidFormOutput } from '../schemas';
import { duration } from '../time';

// The chart library is large: it loads with the first chart, not the app.
const PriceChart = lazy(() => import('../components/PriceChart'));

const STATE_TEXT: Record<string, string> = {
  leading: 'Leading',
  outbid: 'Outbid',
  exhausted: 'Exhausted: your whole budget is spent',
  won: 'Won',
  lost: 'Lost',
};

/** The slider's upper end: room for several raises above the amount. */
function budgetCeiling(amount: number, minIncrement: number): number {
  return Math.max(amount * 3, amount + 50 * minIncrement);
}

export function BidForm({ item, onPlaced }: { item: Item; onPlaced: (bid: OwnBid, item: Item) => void }) {
  const schema = useMemo(() => bidSchema(item), [item]);
  // Amounts read and written with the server's decimals for the item's currency.
  const currency = currencyOf(item);
  const decimals = item.currency_decimals;
  const [failure, setFailure] = useState<unknown>(null);
  const { register, handleSubmit, control, setValue, setError, formState } = useForm<BidFormInput, unknown, BidFormOutput>({
    resolver: zodResolver(schema),
    defaultValues: {
      amount: toMajorText(item.minimum_next_bid, decimals),
      poisoned: false,
      budget: toMajorText(item.minimum_next_bid * 2, decimals),
      step: toMajorText(item.min_increment, decimals),
    },
  });
  const [poisoned, amountText, budgetText] = useWatch({ control, name: ['poisoned', 'amount', 'budget'] });
  const amount = Math.max(item.minimum_next_bid, parseMoney(amountText, decimals) ?? 0);
  const sliderMax = budgetCeiling(amount, item.min_increment);
  const budgetMinor = parseMoney(budgetText, decimals) ?? amount;

  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      const placed = await endpoints.placeBid(item.id, form.amount, form.poison);
      onPlaced(placed.bid, placed.item);
    } catch (error) {
      if (error instanceof ApiError) {
        if (error.code === 'bid_too_low') {
          const minimum = Number(error.problem.minimum_next_bid);
          setError('amount', { type: 'server', message: `Bid at least ${formatMoney(minimum, currency)}` });
          return;
        }
      }
      const fields = { amount: 'amount', 'poison.budget': 'budget', 'poison.step': 'step' } as const;
      if (placeFieldErrors(error, setError, fields)) return;
      setFailure(error);
    }
  });

  return (
    <form onSubmit={(event) => void submit(event)} noValidate aria-labelledby="bid-title" className="bid-form">
      <h2 id="bid-title">Place your one sealed bid</h2>
      <p className="hint">You can bid once; a bid cannot be changed. Nobody sees it before the auction closes.</p>
      <Field
        label={`Amount (${item.currency.toUpperCase()})`}
        inputMode="decimal"
        hint={`At least ${formatMoney(item.minimum_next_bid, currency)}`}
        registration={register('amount')}
        error={formState.errors.amount?.message}
      />
      <div className="field checkbox">
        <input id="poisoned" type="checkbox" {...register('poisoned')} />
        <label htmlFor="poisoned">Poison: raise my bid automatically when outbid</label>
      </div>
      {poisoned && (
        <fieldset>
          <legend>Poison</legend>
          <div className="field">
            <label htmlFor="budget">Budget: the most you will ever pay</label>
            <input
              id="budget"
              type="range"
              min={amount}
              max={sliderMax}
              step={item.min_increment}
              value={Math.min(Math.max(budgetMinor, amount), sliderMax)}
              aria-valuetext={formatMoney(budgetMinor, currency)}
              aria-describedby="budget-value"
              onChange={(event) =>
                setValue('budget', toMajorText(Number(event.target.value), decimals), { shouldValidate: true })
              }
            />
            <output id="budget-value" htmlFor="budget">
              {formatMoney(budgetMinor, currency)}
            </output>
            {formState.errors.budget?.message && (
              <p className="error" role="alert">
                {formState.errors.budget.message}
              </p>
            )}
          </div>
          <Field
            label={`Step (${item.currency.toUpperCase()})`}
            inputMode="decimal"
            hint={`How much to raise by; at least ${formatMoney(item.min_increment, currency)}`}
            registration={register('step')}
            error={formState.errors.step?.message}
          />
        </fieldset>
      )}
      <ProblemAlert error={failure} />
      <button type="submit" disabled={formState.isSubmitting}>
        Place bid
      </button>
    </form>
  );
}

function YourBid({ bid, budget, currency }: { bid: OwnBid; budget: Budget; currency: Currency }) {
  return (
    <section aria-labelledby="yours-title" className="yours">
      <h2 id="yours-title">Your bid</h2>
      <p>
        {formatMoney(bid.amount, currency)}
        {bid.poison &&
          ` with poison up to ${formatMoney(bid.poison.budget, currency)} in steps of ${formatMoney(bid.poison.step, currency)}`}
      </p>
      <p data-testid="bid-state" className={`state state-${budget.state}`}>
        {STATE_TEXT[budget.state]}
        {(budget.state === 'leading' || budget.state === 'won') && ` at ${formatMoney(budget.effective, currency)}`}
      </p>
      {bid.poison && <BudgetBar budget={budget} currency={currency} />}
    </section>
  );
}

/** A bidder as others may name them after close: you, or a short id. */
function bidderName(id: string, me: string | undefined): string {
  return id === me ? 'you' : `bidder ${id.slice(-6)}`;
}

/** The rule in words: when a late bid moves the close, and how often. */
function softCloseText(rule: SoftClose, used: number): string {
  return `Soft close: a bid that changes the leader in the last ${duration(rule.window_secs)} moves the close to ${duration(
    rule.extend_by_secs,
  )} after it, up to ${rule.max_extensions} time${rule.max_extensions === 1 ? '' : 's'} (${used} used).`;
}

const shortHash = (hash: string) => `${hash.slice(0, 12)}…`;

/** A revealed bid's time (microseconds, which `Date.parse` need not take) as milliseconds. */
function instant(text: string): number {
  const at = Date.parse(text.replace(/(\.\d{3})\d+Z$/, '$1Z'));
  return Number.isFinite(at) ? at : 0;
}

/**
 * The revealed bids checked against the ledger: each bid's hash recomputed
 * here, every head this browser saw while the auction ran, and the item's
 * own head after all its bids. With no head seen here, the check only shows
 * that the server's data agree with themselves, and says so.
 */
function LedgerCheck({ bids, item }: { bids: RevealedBid[]; item: Item }) {
  const [result, setResult] = useState<LedgerVerdict | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    const seen = recalledHeads(item.id, item.created_at);
    let current = true;
    verifyLedger(item.id, bids, { seen, count: item.bid_count, head: item.ledger_head }).then(
      (verdict) => current && setResult(verdict),
      (error: unknown) => current && setFailure(error instanceof Error ? error.message : String(error)),
    );
    return () => {
      current = false;
    };
  }, [bids, item.id, item.created_at, item.ledger_head, item.bid_count]);
  let text: string;
  let className = '';
  if (failure) {
    text = `The ledger could not be checked here: ${failure}`;
  } else if (!item.ledger_head) {
    text = 'This item has no ledger head yet: its bids from before the ledger wait to be chained.';
  } else if (!result) {
    text = 'Checking the bid ledger…';
  } else if (result.ok && result.witnessed) {
    text = `Verified: these ${bids.length} bids hash to every head this browser saw while the auction ran, the last after bid ${result.witnessed.count} (${shortHash(result.witnessed.head)}), and to the item's head.`;
    className = 'ledger-ok';
  } else if (result.ok) {
    text = `Consistent: these ${bids.length} bids hash to the item's head (${shortHash(item.ledger_head)}). This browser saw no head while the auction ran, so this shows only that the server's data agree with themselves.`;
  } else {
    const why = {
      order: 'a bid is missing or out of order there',
      unchained: 'that bid is not chained yet',
      hash: "that bid's shown hash is not what its data hash to",
      seen: `the chain does not reach a head this browser saw before the close (${shortHash(result.expected ?? '')})`,
      head: `the bids shown do not reach the item's head (${shortHash(result.expected ?? '')}) after all ${item.bid_count} bids`,
    }[result.why];
    text = `The ledger breaks at bid #${result.seq}: ${why}.`;
    className = 'ledger-bad';
  }
  return (
    <p role="status" data-testid="ledger-check" className={className}>
      {className === 'ledger-bad' && <strong>Warning: </strong>}
      {text}
    </p>
  );
}

function Revealed({ bids, item, me }: { bids: RevealedBid[]; item: Item; me: string | undefined }) {
  const currency = currencyOf(item);
  return (
    <section aria-labelledby="revealed-title">
      <h2 id="revealed-title">Every bid, in arrival order</h2>
      <LedgerCheck bids={bids} item={item} />
      {bids.length === 0 ? (
        <p>Nobody bid.</p>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Every bid">
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Bidder</th>
                <th scope="col">Amount</th>
                <th scope="col">Poison</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {bids.map((bid) => (
                <tr key={bid.seq} data-testid="revealed-bid">
                  <td>{bid.seq}</td>
                  <td>{bidderName(bid.bidder_id, me)}</td>
                  <td>{formatMoney(bid.amount, currency)}</td>
                  <td>
                    {bid.poison
                      ? `up to ${formatMoney(bid.poison.budget, currency)}, step ${formatMoney(bid.poison.step, currency)}`
                      : '—'}
                  </td>
                  <td>
                    {bid.state === 'won' ? 'Won' : 'Lost'} at {formatMoney(bid.effective, currency)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function AuctionRoom() {
  const { id = '' } = useParams();
  const { status, user } = useAuth();
  const location = useLocation();
  const queryClient = useQueryClient();
  const [bid, setBid] = useState<OwnBid | null>(null);
  const [budget, setBudget] = useState<Budget | null>(null);

  const stream = useItemStream(id, (price) => {
    setBudget((current) => (bid && current ? afterPrice(bid, current, price.current_price) : current));
  });
  const item = stream.item;
  const ended = item ? item.status !== 'open' : false;

  const own = useQuery({
    queryKey: ['own-bid', id, status, ended],
    queryFn: () => endpoints.ownBid(id),
    enabled: status === 'authenticated',
  });
  // Each new answer of the read replaces your bid, its bar brought up to the
  // stream's price (which may be newer than the read). Adjusted while
  // rendering, when the answer changes, rather than in an effect a frame later.
  const [ownRead, setOwnRead] = useState<OwnBid | null | undefined>(undefined);
  if (own.data !== ownRead) {
    setOwnRead(own.data);
    if (own.data !== undefined) {
      setBid(own.data);
      const loaded = own.data ? budgetOf(own.data) : null;
      const price = item?.current_price ?? null;
      setBudget(own.data && loaded && price !== null ? afterPrice(own.data, loaded, price) : loaded);
    }
  }

  useNotifications((notification) => {
    if (notification.data.item_id !== id || !bid) return;
    if (notification.type === 'auto_raised') {
      setBudget((current) =>
        current
          ? afterAutoRaise(bid, current, notification.data.effective ?? current.effective, notification.data.remaining_budget ?? 0)
          : current,
      );
    } else if (notification.type === 'outbid' || notification.type === 'exhausted') {
      setBudget(afterLosingLead(bid));
    } else {
      void queryClient.invalidateQueries({ queryKey: ['own-bid', id] });
    }
  });

  const revealed = useQuery({
    queryKey: ['revealed', id],
    queryFn: () => endpoints.revealedBids(id),
    enabled: item?.status === 'closed',
  });
  // The closed event says whether there is a winner, not who: read it once.
  const closedItem = useQuery({
    queryKey: ['item', id, 'closed'],
    queryFn: () => endpoints.getItem(id),
    enabled: item?.status === 'closed' && item.winner_id === undefined,
  });
  const winner = item?.winner_id ?? closedItem.data?.winner_id;
  // The live stream is about the price; the photos come with the item.
  const photos = useQuery({ queryKey: ['item', id, 'photos'], queryFn: () => endpoints.getItem(id) });

  // Every head seen while the auction runs, kept for the check after close.
  const openHead = item?.status === 'open' && item.id === id ? item.ledger_head : null;
  const openCount = item?.bid_count ?? 0;
  const listed = item?.created_at ?? '';
  useEffect(() => {
    if (openHead) rememberHead(id, listed, { head: openHead, count: openCount });
  }, [id, listed, openHead, openCount]);

  // After close the revealed bids give the whole history; before, what was watched.
  const chartPoints: PricePoint[] = useMemo(() => {
    if (!revealed.data) return stream.prices;
    const prices = pricesAfter(revealed.data);
    return revealed.data.map((bid, n) => ({ at: instant(bid.created_at), price: prices[n] ?? bid.amount }));
  }, [revealed.data, stream.prices]);

  if (!item) {
    return <p>{stream.connected ? 'Loading…' : 'Connecting…'}</p>;
  }
  const price = item.current_price;
  const currency = currencyOf(item);
  return (
    <article aria-labelledby="item-title" className="room">
      <h1 id="item-title">{item.title}</h1>
      <Gallery title={item.title} photos={photos.data?.photos ?? []} />
      {item.description && <p className="description">{item.description}</p>}
      <dl className="facts">
        <div>
          <dt>Current price</dt>
          <dd aria-live="polite" aria-atomic="true" data-testid="current-price">
            {price === null ? 'No bids yet' : formatMoney(price, currency)}
          </dd>
        </div>
        <div>
          <dt>Minimum next bid</dt>
          <dd data-testid="minimum-next-bid">{formatMoney(item.minimum_next_bid, currency)}</dd>
        </div>
        <div>
          <dt>Bids</dt>
          <dd data-testid="bid-count">{item.bid_count}</dd>
        </div>
        <div>
          <dt>{item.status === 'open' ? 'Time left' : 'Status'}</dt>
          <dd data-testid="status">
            {item.status === 'open' ? <Countdown until={item.close_at} /> : item.status === 'closed' ? 'Closed' : 'Cancelled'}
          </dd>
        </div>
      </dl>
      {item.soft_close && (
        <p className="hint" data-testid="soft-close-rule">
          {softCloseText(item.soft_close, item.extensions_used)}
        </p>
      )}
      {/* Always there, so a screen reader hears an extension when it comes. */}
      <div role="status" className="status">
        {stream.extended && item.status === 'open' && (
          <p className="extended" data-testid="extended">
            Extended: a bid changed the leader near the close, so bidding now ends at{' '}
            {new Date(stream.extended.close_at).toLocaleTimeString()} ({stream.extended.extensions_used} of{' '}
            {item.soft_close?.max_extensions ?? stream.extended.extensions_used} extensions used).
          </p>
        )}
      </div>
      <Suspense fallback={<p className="hint">Loading the price chart…</p>}>
        <PriceChart
          points={chartPoints}
          currency={currency}
          title={item.status === 'closed' && revealed.data ? 'Price over the auction' : 'Price while you watch'}
        />
      </Suspense>

      {item.status === 'closed' && (
        <section aria-labelledby="outcome-title" className="outcome" data-testid="outcome">
          <h2 id="outcome-title">Result</h2>
          <p>
            {item.final_price === null || item.final_price === undefined
              ? 'Closed without a winner.'
              : `Sold for ${formatMoney(item.final_price, currency)}${
                  winner ? ` to ${bidderName(winner, user?.id)}` : ''
                }.`}
          </p>
          {budget?.state === 'won' && <p className="state state-won">You won.</p>}
        </section>
      )}

      {bid && budget && <YourBid bid={bid} budget={budget} currency={currency} />}

      {item.status === 'open' && !bid && status === 'authenticated' && user?.id !== undefined && own.isFetched && (
        <BidForm
          item={item}
          onPlaced={(placed) => {
            setBid(placed);
            setBudget(budgetOf(placed));
          }}
        />
      )}
      {item.status === 'open' && status === 'anonymous' && (
        <p>
          <Link to="/login" state={{ from: location.pathname }}>
            Log in
          </Link>{' '}
          to bid.
        </p>
      )}
      {revealed.data && <Revealed bids={revealed.data} item={item} me={user?.id} />}
      <ProblemAlert error={own.error ?? revealed.error} />
    </article>
  );
}
