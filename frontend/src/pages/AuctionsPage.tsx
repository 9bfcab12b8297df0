// The auction list: open or closed, optionally searched, in the order
// chosen (newest first by default, the best match first for a search), "load
// more" by cursor. The status, search and order live in the URL, so a list
// can be shared and reloaded as it was.
import { useInfiniteQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
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
      {item.cover_thumb_url && <img className="cover" src={item.cover_thumb_url} alt="" loading="lazy" width={480} height={360} />}
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

/** The search box: holds what is typed until it is submitted. */
function SearchBox({ initial, onSearch }: { initial: string; onSearch: (words: string) => void }) {
  const [draft, setDraft] = useState(initial);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSearch(draft.trim());
  };
  return (
    <form role="search" className="search" onSubmit={submit}>
      <label>
        Search{' '}
        <input type="search" value={draft} maxLength={200} placeholder="Words in the title or description" onChange={(event) => setDraft(event.target.value)} />
      </label>{' '}
      <button type="submit">Search</button>
    </form>
  );
}

/** The list's order: one the API names, or a search's best match first. */
type Order = ItemSort | 'best_match';

/** The orders offered, as the menu names them. */
const SORTS: readonly (readonly [ItemSort, string])[] = [
  ['newest', 'Newest'],
  ['closing_soon', 'Closing soon'],
  ['price_asc', 'Price: low to high'],
  ['price_desc', 'Price: high to low'],
];

/** The order `value` names, or the default: a search's best match, else newest. */
function orderOf(value: string | null, searching: boolean): Order {
  const named = SORTS.find(([sort]) => sort === value)?.[0];
  return named ?? (searching ? 'best_match' : 'newest');
}

export function AuctionsPage() {
  const [params, setParams] = useSearchParams();
  const status: ItemStatus = params.get('status') === 'closed' ? 'closed' : 'open';
  const q = (params.get('q') ?? '').trim();
  const order = orderOf(params.get('sort'), q !== '');
  // Defaults stay out of the URL: `/` is the open auctions, newest first,
  // and `/?q=lamp` the best matches first.
  const choose = (next: { status?: ItemStatus; order?: Order; q?: string }) => {
    const chosen = { status, order, q, ...next };
    const search = new URLSearchParams();
    if (chosen.status !== 'open') search.set('status', chosen.status);
    if (chosen.q) search.set('q', chosen.q);
    if (chosen.order !== orderOf(null, chosen.q !== '')) search.set('sort', chosen.order);
    setParams(search);
  };
  // A new search starts with its best match, unless an order was chosen.
  const search = (words: string) => choose({ q: words, order: params.has('sort') ? order : orderOf(null, words !== '') });
  const sort = order === 'best_match' ? undefined : order;
  const query = useInfiniteQuery({
    queryKey: ['items', status, order, q],
    queryFn: ({ pageParam }) => listItems(status, pageParam, sort === 'newest' && !q ? undefined : sort, q || undefined),
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
      {/* Keyed by the search, so the box follows the URL (back, forward, a followed link). */}
      <SearchBox key={q} initial={q} onSearch={search} />
      <label className="sort">
        Sort by{' '}
        <select value={order} onChange={(event) => choose({ order: orderOf(event.target.value, q !== '') })}>
          {q !== '' && <option value="best_match">Best match</option>}
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
        <p>{q ? `No ${status} auctions match “${q}”.` : `No ${status} auctions.`}</p>
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
