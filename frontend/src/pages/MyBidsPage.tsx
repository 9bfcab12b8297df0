// Your bids, newest first, each with where it stands.
import { useInfiniteQuery } from '@tanstack/react-query';
import { Link } from 'react-router-dom';

import { myBids } from '../api/endpoints';
import { ProblemAlert } from '../components/ProblemAlert';
import type { OwnBid } from '../api/types';
import { currencyOf, formatMoney } from '../money';

// Each bid carries its item's currency and the server's decimals for it
// (reading every item would spend the rate limit).
const money = (bid: OwnBid, minor: number) => formatMoney(minor, currencyOf(bid));

export function MyBidsPage() {
  const query = useInfiniteQuery({
    queryKey: ['my-bids'],
    queryFn: ({ pageParam }) => myBids(pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const bids = query.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section aria-labelledby="my-bids-title">
      <h1 id="my-bids-title">My bids</h1>
      <ProblemAlert error={query.error} />
      {query.isPending ? (
        <p>Loading…</p>
      ) : bids.length === 0 ? (
        <p>
          You have not bid yet. <Link to="/">Find an auction</Link>
        </p>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Your bids">
          <table>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Your bid</th>
                <th scope="col">State</th>
                <th scope="col">Budget left</th>
              </tr>
            </thead>
            <tbody>
              {bids.map((bid) => (
                <tr key={bid.id}>
                  <td>
                    <Link to={`/items/${encodeURIComponent(bid.item_id)}`}>Open the auction</Link>
                  </td>
                  <td>
                    {money(bid, bid.amount)}
                    {bid.poison && ` (poison up to ${money(bid, bid.poison.budget)})`}
                  </td>
                  <td>{bid.state}</td>
                  <td>{bid.poison ? money(bid, bid.remaining_budget) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {query.hasNextPage && (
        <button type="button" className="secondary" onClick={() => void query.fetchNextPage()}>
          Load more
        </button>
      )}
    </section>
  );
}
