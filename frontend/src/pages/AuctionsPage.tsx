// The auction list: open or closed, newest first, "load more" by cursor.
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router-dom';

import { listItems } from '../api/endpoints';
import type { Item, ItemStatus } from '../api/types';
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

export function AuctionsPage() {
  const [status, setStatus] = useState<ItemStatus>('open');
  const query = useInfiniteQuery({
    queryKey: ['items', status],
    queryFn: ({ pageParam }) => listItems(status, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = query.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section aria-labelledby="auctions-title">
      <h1 id="auctions-title">Auctions</h1>
      <div role="group" aria-label="Show" className="tabs">
        {(['open', 'closed'] as const).map((choice) => (
          <button key={choice} type="button" aria-pressed={status === choice} onClick={() => setStatus(choice)}>
            {choice === 'open' ? 'Open' : 'Closed'}
          </button>
        ))}
      </div>
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
