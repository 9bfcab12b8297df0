import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import type { Item } from '../api/types';
import { anItem, anonymous, mockApi, problem, renderApp } from '../test/app';

const server = mockApi(...anonymous);

/** Answers GET /items from `pages[status][cursor ?? '']`, recording each query. */
function listing(pages: Record<string, Record<string, { items: Item[]; next_cursor: string | null }>>) {
  const asked: string[] = [];
  server.use(
    http.get('*/api/v1/items', ({ request }) => {
      const url = new URL(request.url);
      asked.push(url.search);
      const page = pages[url.searchParams.get('status') ?? '']?.[url.searchParams.get('cursor') ?? ''];
      if (!page) return problem(404, 'not_found');
      return HttpResponse.json({ ...page, has_more: page.next_cursor !== null });
    }),
  );
  return asked;
}

describe('the auctions page', () => {
  it('lists open auctions with their price, and loads more by cursor', async () => {
    const asked = listing({
      open: {
        '': {
          items: [
            anItem({ id: 'a', title: 'Lamp', current_price: null, base_price: 10_000, bid_count: 0, cover_thumb_url: '/media/lamp.jpg' }),
            anItem({ id: 'b', title: 'Chair', current_price: 12_000, bid_count: 1 }),
          ],
          next_cursor: 'page-2',
        },
        'page-2': {
          items: [
            anItem({ id: 'c', title: 'Desk', current_price: 30_000, bid_count: 3 }),
            // The server's decimals, not the browser's: huf has 2 by ISO 4217 (Intl says 0).
            anItem({ id: 'd', title: 'Stove', currency: 'huf', currency_decimals: 2, current_price: 12_345, bid_count: 2 }),
            anItem({ id: 'e', title: 'Kettle', currency: 'jpy', currency_decimals: 0, current_price: null, base_price: 700, bid_count: 0 }),
          ],
          next_cursor: null,
        },
      },
    });
    renderApp('/');
    const lamp = (await screen.findByRole('link', { name: 'Lamp' })).closest('li')!;
    expect(lamp).toHaveTextContent('Opens at $100.00');
    // The first photo's thumbnail, decorative beside the title's link.
    expect(lamp.querySelector('img.cover')).toHaveAttribute('src', '/media/lamp.jpg');
    expect(screen.getByRole('link', { name: 'Chair' }).closest('li')!.querySelector('img')).toBeNull();
    expect(lamp).toHaveTextContent(/Closes in \d+ d \d+ h/);
    expect(screen.getByRole('link', { name: 'Chair' })).toHaveAttribute('href', '/items/b');
    expect(screen.getByRole('link', { name: 'Chair' }).closest('li')).toHaveTextContent('$120.00 · 1 bid');
    expect(screen.getByRole('button', { name: 'Open' })).toHaveAttribute('aria-pressed', 'true');

    await userEvent.click(screen.getByRole('button', { name: 'Load more' }));
    expect((await screen.findByRole('link', { name: 'Desk' })).closest('li')).toHaveTextContent('$300.00 · 3 bids');
    expect(screen.getByRole('link', { name: 'Stove' }).closest('li')).toHaveTextContent('HUF 123.45 · 2 bids');
    expect(screen.getByRole('link', { name: 'Kettle' }).closest('li')).toHaveTextContent('Opens at ¥700');
    expect(screen.getAllByRole('listitem')).toHaveLength(5);
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();
    expect(asked).toEqual(['?limit=20&status=open', '?limit=20&status=open&cursor=page-2']);
  });

  it('shows how closed auctions ended, and says when there are none', async () => {
    listing({
      open: { '': { items: [], next_cursor: null } },
      closed: {
        '': {
          items: [
            anItem({ id: 'a', title: 'Sold lamp', status: 'closed', final_price: 13_000, winner_id: 'someone' }),
            anItem({ id: 'b', title: 'Unsold chair', status: 'closed', current_price: null, final_price: null, winner_id: null }),
            anItem({ id: 'c', title: 'Withdrawn desk', status: 'cancelled', current_price: null }),
          ],
          next_cursor: null,
        },
      },
    });
    renderApp('/');
    expect(await screen.findByText('No open auctions.')).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Closed' }));
    const cards = await screen.findAllByRole('listitem');
    expect(screen.getByRole('button', { name: 'Closed' })).toHaveAttribute('aria-pressed', 'true');
    expect(within(cards[0]!).getByText('Sold for $130.00')).toBeInTheDocument();
    expect(within(cards[1]!).getByText('Closed without bids')).toBeInTheDocument();
    expect(within(cards[2]!).getByText('Cancelled')).toBeInTheDocument();
  });

  it('orders the list as the URL says, and keeps the order chosen when the status changes', async () => {
    const asked: string[] = [];
    server.use(
      http.get('*/api/v1/items', ({ request }) => {
        const url = new URL(request.url);
        asked.push(url.search);
        const title = `${url.searchParams.get('status')} by ${url.searchParams.get('sort') ?? 'newest'}`;
        return HttpResponse.json({ items: [anItem({ id: title, title })], next_cursor: null, has_more: false });
      }),
    );
    // A shared or reloaded link opens the list in its order.
    renderApp('/?sort=closing_soon');
    expect(await screen.findByRole('link', { name: 'open by closing_soon' })).toBeInTheDocument();
    const menu = screen.getByRole('combobox', { name: 'Sort by' });
    expect(menu).toHaveValue('closing_soon');

    await userEvent.selectOptions(menu, 'Price: high to low');
    expect(await screen.findByRole('link', { name: 'open by price_desc' })).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Closed' }));
    expect(await screen.findByRole('link', { name: 'closed by price_desc' })).toBeInTheDocument();
    expect(screen.getByRole('combobox', { name: 'Sort by' })).toHaveValue('price_desc');
    expect(asked).toEqual([
      '?limit=20&status=open&sort=closing_soon',
      '?limit=20&status=open&sort=price_desc',
      '?limit=20&status=closed&sort=price_desc',
    ]);
  });

  it('reads an unknown order in the URL as newest first', async () => {
    const asked = listing({ open: { '': { items: [anItem({ id: 'a', title: 'Lamp' })], next_cursor: null } } });
    renderApp('/?sort=cheapest');
    expect(await screen.findByRole('link', { name: 'Lamp' })).toBeInTheDocument();
    expect(screen.getByRole('combobox', { name: 'Sort by' })).toHaveValue('newest');
    expect(asked).toEqual(['?limit=20&status=open']);
  });

  it('searches from the box, best match first, and keeps the search in the URL', async () => {
    const asked: string[] = [];
    server.use(
      http.get('*/api/v1/items', ({ request }) => {
        const url = new URL(request.url);
        asked.push(url.search);
        const q = url.searchParams.get('q');
        const title = `${q ?? 'all'} by ${url.searchParams.get('sort') ?? 'default'}`;
        const items = q === 'nothing here' ? [] : [anItem({ id: title, title })];
        return HttpResponse.json({ items, next_cursor: null, has_more: false });
      }),
    );
    renderApp('/');
    expect(await screen.findByRole('link', { name: 'all by default' })).toBeInTheDocument();
    const box = screen.getByRole('searchbox', { name: 'Search' });
    await userEvent.type(box, '  brass lamp {Enter}');
    expect(await screen.findByRole('link', { name: 'brass lamp by default' })).toBeInTheDocument();
    const menu = screen.getByRole('combobox', { name: 'Sort by' });
    expect(menu).toHaveValue('best_match');
    // Another order keeps the search; best match again drops the order.
    await userEvent.selectOptions(menu, 'Price: low to high');
    expect(await screen.findByRole('link', { name: 'brass lamp by price_asc' })).toBeInTheDocument();
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Sort by' }), 'Best match');
    expect(await screen.findByRole('link', { name: 'brass lamp by default' })).toBeInTheDocument();
    // Newest first must be asked for by name while searching.
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Sort by' }), 'Newest');
    expect(await screen.findByRole('link', { name: 'brass lamp by newest' })).toBeInTheDocument();
    // A cleared box lists everything again, and best match leaves the menu.
    await userEvent.clear(screen.getByRole('searchbox', { name: 'Search' }));
    await userEvent.click(screen.getByRole('button', { name: 'Search' }));
    expect(await screen.findByRole('link', { name: 'all by default' })).toBeInTheDocument();
    expect(screen.queryByRole('option', { name: 'Best match' })).not.toBeInTheDocument();
    expect(asked).toEqual([
      '?limit=20&status=open',
      '?limit=20&status=open&q=brass+lamp',
      '?limit=20&status=open&q=brass+lamp&sort=price_asc',
      '?limit=20&status=open&q=brass+lamp', // best match again, refreshed
      '?limit=20&status=open&q=brass+lamp&sort=newest',
      '?limit=20&status=open',
    ]);
  });

  it('opens a shared search as it was, and says when nothing matches', async () => {
    const asked = listing({ closed: { '': { items: [], next_cursor: null } } });
    renderApp('/?status=closed&q=nothing%20here&sort=price_desc');
    expect(await screen.findByText('No closed auctions match “nothing here”.')).toBeInTheDocument();
    expect(screen.getByRole('searchbox', { name: 'Search' })).toHaveValue('nothing here');
    expect(screen.getByRole('combobox', { name: 'Sort by' })).toHaveValue('price_desc');
    expect(asked).toEqual(['?limit=20&status=closed&q=nothing+here&sort=price_desc']);
  });

  it('shows a failed listing as a problem', async () => {
    server.use(http.get('*/api/v1/items', () => problem(503, 'service_unavailable')));
    renderApp('/');
    expect(await screen.findByRole('alert')).toHaveTextContent('Problem: the server said service_unavailable');
  });
});
