// The auction list: open or closed, in the order chosen (newest first by
// default), "load more" by cursor. The status and order live in the URL, so
// a list can be shared and reloaded as it was.
import { useInfiniteQuery } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router-dom';

import { listItems } from '../api/endpoints';
import type { Item, ItemSort, ItemStatus } from '../api/types';
import { Countdown } from '../components/Countdown';
import { ProblemAlert } from '../components/ProblemAlert';
import { currencyOf, formatMoney } from '../money';

function ItemCard({ item }: { item: Item }) {
  const currency = currencyOf(item);
  return (
    <li className="card">
      <h2>
        <Link to={`/items/${item.id}`}>{item.title}</Link>
      </h2>
      <p>
        {item.current_price === null
          ? `Opens at ${formatMoney(item.base_price, currency)}`
          : `${formatMoney(item.current_price, currency)} · ${item.bid_count} bid${item.bid_count === 1 ? '' : 's'}`}
      </p>
      <p className="hint">
        {item.status === 'open' ? (
          <>
            Closes in <Countdown until={item.close_at} />
          </>
        ) : item.status === 'closed' ? (
          item.winner_id ? `Sold for ${formatMoney(item.final_price ?? 0, currency)}` : 'Closed without bids'
        ) : (
          'Cancelled'
        )}
      </p>
    </li>
  );
}

/** The orders offered, as the menu names them. */
const SORTS: readonly (readonly [ItemSort, string])[] = [
  ['newest', 'Newest'],
  ['closing_soon', 'Closing soon'],
  ['price_asc', 'Price: low to high'],
  ['price_desc', 'Price: high to low'],
];

function sortOf(value: string | null): ItemSort {
  return SORTS.find(([sort]) => sort === value)?.[0] ?? 'newest';
}

export function AuctionsPage() {
  const [params, setParams] = useSearchParams();
  const status: ItemStatus = params.get('status') === 'closed' ? 'closed' : 'open';
  const sort = sortOf(params.get('sort'));
  // Defaults stay out of the URL: `/` is the open auctions, newest first.
  const choose = (next: { status?: ItemStatus; sort?: ItemSort }) => {
    const chosen = { status, sort, ...next };
    const search = new URLSearchParams();
    if (chosen.status !== 'open') search.set('status', chosen.status);
    if (chosen.sort !== 'newest') search.set('sort', chosen.sort);
    setParams(search);
  };
  const query = useInfiniteQuery({
    queryKey: ['items', status, sort],
    queryFn: ({ pageParam }) => listItems(status, pageParam, sort),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = query.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section aria-labelledby="auctions-title">
      <h1 id="auctions-title">Auctions</h1>
      <div role="group" aria-label="Show" className="tabs">
        {(['open', 'closed'] as const).map((choice) => (
          <button key={choice} type="button" aria-pressed={status === choice} onClick={() => choose({ status: choice })}>
            {choice === 'open' ? 'Open' : 'Closed'}
          </button>
        ))}
      </div>
      <label className="sort">
        Sort by{' '}
        <select value={sort} onChange={(event) => choose({ sort: sortOf(event.target.value) })}>
          {SORTS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <ProblemAlert error={query.error} />
      {query.isPending ? (
        <p>Loading…</p>
      ) : items.length === 0 ? (
        <p>No {status} auctions.</p>
      ) : (
        <ul className="cards">
          {items.map((item) => (
            <ItemCard key={item.id} item={item} />
          ))}
        </ul>
      )}
      {query.hasNextPage && (
        <button type="button" className="secondary" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
          Load more
        </button>
      )}
    </section>
  );
}
