import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import type { Item } from '../api/types';
import { admin, anItem, ann, mockApi, problem, renderApp, signedIn } from '../test/app';

/** The server's decimals by ISO 4217 (2 for a code it does not list). */
const ISO: Record<string, number> = { usd: 2, eur: 2, huf: 2, jpy: 0 };
const currencies = http.get('*/api/v1/currencies/:code', ({ params }) => {
  const code = String(params.code);
  return HttpResponse.json({ code, decimals: ISO[code] ?? 2 });
});

/** No accounts beyond the admin, unless a test serves others. */
const users = http.get('*/api/v1/users', () => HttpResponse.json({ items: [admin], next_cursor: null, has_more: false }));

const server = mockApi(...signedIn(admin), currencies, users);

/** Serves `items` as the open list; returns how often it was read. */
function openItems(items: () => Item[]) {
  const reads = { count: 0 };
  server.use(
    http.get('*/api/v1/items', () => {
      reads.count += 1;
      return HttpResponse.json({ items: items(), next_cursor: null, has_more: false });
    }),
  );
  return reads;
}

describe('the admin page', () => {
  it('is for admins only', async () => {
    server.use(...signedIn(ann));
    renderApp('/admin');
    expect(await screen.findByRole('alert')).toHaveTextContent('This page is for admins.');
    expect(screen.queryByRole('heading', { name: 'List an item' })).not.toBeInTheDocument();
  });

  it('lists an item in minor units, closing an hour ahead by default, then clears the form', async () => {
    const reads = openItems(() => []);
    let body: Record<string, unknown> = {};
    server.use(
      http.post('*/api/v1/items', async ({ request }) => {
        body = (await request.json()) as Record<string, unknown>;
        return HttpResponse.json(
          anItem({ id: 'new', title: String(body.title), base_price: Number(body.base_price), min_increment: Number(body.min_increment) }),
          { status: 201 },
        );
      }),
    );
    renderApp('/admin');
    await userEvent.type(await screen.findByLabelText('Title'), '  Chair ');
    await userEvent.type(screen.getByLabelText('Description'), 'Oak, four legs');
    await userEvent.clear(screen.getByLabelText('Base price'));
    await userEvent.type(screen.getByLabelText('Base price'), '15.50');
    await userEvent.clear(screen.getByLabelText('Minimum increment'));
    await userEvent.type(screen.getByLabelText('Minimum increment'), '0.50');
    const readsBefore = reads.count;
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));

    expect(await screen.findByText('Listed "Chair": opens at $15.50, raised by at least $0.50.')).toBeInTheDocument();
    expect(body).toMatchObject({ title: 'Chair', description: 'Oak, four legs', currency: 'usd', base_price: 1550, min_increment: 50 });
    const ahead = Date.parse(String(body.close_at)) - Date.now();
    expect(ahead).toBeGreaterThan(58 * 60_000);
    expect(ahead).toBeLessThanOrEqual(60 * 60_000);
    expect(screen.getByLabelText('Title')).toHaveValue('');
    expect(screen.getByLabelText('Base price')).toHaveValue('1.00');
    await waitFor(() => expect(reads.count).toBeGreaterThan(readsBefore));
  });

  it("reads the amounts with the server's decimals for the typed currency, not the browser's", async () => {
    openItems(() => []);
    let body: Record<string, unknown> = {};
    server.use(
      http.post('*/api/v1/items', async ({ request }) => {
        body = (await request.json()) as Record<string, unknown>;
        const listed = { currency: 'huf', currency_decimals: 2, base_price: Number(body.base_price), min_increment: Number(body.min_increment) };
        return HttpResponse.json(anItem({ id: 'new', title: String(body.title), ...listed }), { status: 201 });
      }),
    );
    renderApp('/admin');
    await userEvent.type(await screen.findByLabelText('Title'), 'Stove');
    const currency = screen.getByLabelText('Currency');
    expect(await screen.findByText('Amounts in USD have 2 decimals: 1000 is $1,000.00.')).toBeInTheDocument();
    await userEvent.clear(currency);
    await userEvent.type(currency, 'HUF');
    // The forint has 2 decimals by ISO 4217 and the server; Intl says 0.
    expect(await screen.findByText('Amounts in HUF have 2 decimals: 1000 is HUF 1,000.00.')).toBeInTheDocument();
    expect(currency).toHaveAccessibleDescription(/^Amounts in HUF have 2 decimals: 1000 is HUF\s1,000\.00\.$/);
    await userEvent.clear(screen.getByLabelText('Base price'));
    await userEvent.type(screen.getByLabelText('Base price'), '1000');
    await userEvent.clear(screen.getByLabelText('Minimum increment'));
    await userEvent.type(screen.getByLabelText('Minimum increment'), '10.50');
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    expect(await screen.findByText('Listed "Stove": opens at HUF 1,000.00, raised by at least HUF 10.50.')).toBeInTheDocument();
    expect(body).toMatchObject({ currency: 'huf', base_price: 100_000, min_increment: 1_050 });

    await userEvent.clear(currency);
    await userEvent.type(currency, 'jpy');
    expect(await screen.findByText('Amounts in JPY are whole numbers.')).toBeInTheDocument();
  });

  it('lists nothing until the currency is looked up: it waits for the answer, and asks again after a failure', async () => {
    openItems(() => []);
    let posted: Record<string, unknown> | null = null;
    server.use(
      http.post('*/api/v1/items', async ({ request }) => {
        posted = (await request.json()) as Record<string, unknown>;
        return HttpResponse.json(anItem({ id: 'new', title: 'Stove', currency: 'huf', currency_decimals: 2 }), { status: 201 });
      }),
    );
    let lookups = 0;
    let answer: (response: Response) => void = () => {};
    server.use(
      http.get('*/api/v1/currencies/:code', ({ params }) => {
        if (params.code !== 'huf') return HttpResponse.json({ code: params.code, decimals: 2 });
        lookups += 1;
        if (lookups === 1) return problem(503, 'service_unavailable');
        return new Promise<Response>((resolve) => {
          answer = resolve;
        });
      }),
    );
    renderApp('/admin');
    await userEvent.type(await screen.findByLabelText('Title'), 'Stove');
    await userEvent.clear(screen.getByLabelText('Currency'));
    await userEvent.type(screen.getByLabelText('Currency'), 'HUF');
    await userEvent.clear(screen.getByLabelText('Base price'));
    await userEvent.type(screen.getByLabelText('Base price'), '1000');
    expect(await screen.findByText('Could not look up how amounts in HUF are written; List item tries again.')).toBeInTheDocument();
    expect(lookups).toBe(1);

    // Submitting asks again and waits for the answer before reading the amounts.
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    await waitFor(() => expect(lookups).toBe(2));
    expect(screen.getByText('Looking up how amounts in HUF are written…')).toBeInTheDocument();
    expect(posted).toBeNull();
    answer(HttpResponse.json({ code: 'huf', decimals: 2 }));
    expect(await screen.findByText(/^Listed "Stove"/)).toBeInTheDocument();
    expect(posted).toMatchObject({ currency: 'huf', base_price: 100_000 });
  });

  it('says on the currency when its lookup failed, and sends nothing', async () => {
    openItems(() => []);
    let posts = 0;
    server.use(
      http.get('*/api/v1/currencies/:code', () => problem(503, 'service_unavailable')),
      http.post('*/api/v1/items', () => {
        posts += 1;
        return problem(500, 'internal');
      }),
    );
    renderApp('/admin');
    await userEvent.type(await screen.findByLabelText('Title'), 'Stove');
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    expect(await screen.findByText('Could not look up how amounts in USD are written; try again')).toBeInTheDocument();
    expect(screen.getByLabelText('Currency')).toHaveAttribute('aria-invalid', 'true');
    expect(posts).toBe(0);
  });

  it('checks the form before sending, and puts the server’s objections on their fields', async () => {
    openItems(() => []);
    let posts = 0;
    server.use(
      http.post('*/api/v1/items', () => {
        posts += 1;
        return problem(422, 'validation_failed', { errors: [{ field: 'title', message: 'a lot with this title is open' }] });
      }),
    );
    renderApp('/admin');
    await userEvent.clear(await screen.findByLabelText('Currency'));
    await userEvent.type(screen.getByLabelText('Currency'), 'dollars');
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    expect(await screen.findByText('Enter a title')).toBeInTheDocument();
    expect(screen.getByText('Use a three-letter currency code, like USD')).toBeInTheDocument();
    expect(posts).toBe(0);

    await userEvent.type(screen.getByLabelText('Title'), 'Chair');
    await userEvent.clear(screen.getByLabelText('Currency'));
    await userEvent.type(screen.getByLabelText('Currency'), 'EUR');
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    expect(await screen.findByText('a lot with this title is open')).toBeInTheDocument();
    expect(screen.getByLabelText('Title')).toHaveAttribute('aria-invalid', 'true');
    expect(posts).toBe(1);

    server.use(http.post('*/api/v1/items', () => problem(503, 'service_unavailable')));
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    expect(await screen.findByText(/the server said service_unavailable/)).toBeInTheDocument();
  });

  it('shows every item with its status, and cancels one nobody has bid on', async () => {
    let cancelled = false;
    const chair = anItem({ id: 'chair', title: 'Chair', bid_count: 0, current_price: null });
    const lamp = anItem({ id: 'lamp', title: 'Lamp', bid_count: 2, current_price: 12_000 });
    const stove = anItem({ id: 'stove', title: 'Stove', bid_count: 1, current_price: 12_345, currency: 'huf', currency_decimals: 2 });
    const sold = anItem({ id: 'sold', title: 'Sold lamp', status: 'closed', final_price: 15_000, bid_count: 3 });
    let asked: string | null = null;
    server.use(
      http.get('*/api/v1/items', ({ request }) => {
        asked = new URL(request.url).searchParams.get('status');
        const all = cancelled ? [{ ...chair, status: 'cancelled' as const }, lamp, stove, sold] : [chair, lamp, stove, sold];
        return HttpResponse.json({ items: asked ? all.filter((item) => item.status === asked) : all, next_cursor: null, has_more: false });
      }),
      http.post('*/api/v1/items/chair/cancel', () => {
        cancelled = true;
        return HttpResponse.json({ ...chair, status: 'cancelled' });
      }),
    );
    renderApp('/admin');
    const list = await screen.findByRole('region', { name: 'Item list' });
    const cancelChair = await within(list).findByRole('button', { name: 'Cancel Chair' });
    const rows = () =>
      within(list)
        .getAllByTestId('admin-item')
        .map((row) => within(row).getAllByRole('cell').slice(0, 4).map((cell) => cell.textContent));
    expect(rows()).toEqual([
      ['Chair', 'Open', '0', '$100.00'],
      ['Lamp', 'Open', '2', '$120.00'],
      ['Stove', 'Open', '1', expect.stringMatching(/HUF\s123\.45/)],
      ['Sold lamp', 'Closed', '3', '$150.00'],
    ]);
    // Only an open item nobody bid on can be changed.
    expect(within(list).queryByRole('button', { name: 'Cancel Lamp' })).not.toBeInTheDocument();
    expect(within(list).getAllByText('Has bids')).toHaveLength(2);

    // Asked first; keeping it brings focus back.
    await userEvent.click(cancelChair);
    expect(within(list).getByRole('button', { name: 'Yes, cancel Chair' })).toHaveFocus();
    await userEvent.click(within(list).getByRole('button', { name: 'Keep it' }));
    expect(within(list).getByRole('button', { name: 'Cancel Chair' })).toHaveFocus();
    expect(cancelled).toBe(false);
    await userEvent.click(within(list).getByRole('button', { name: 'Cancel Chair' }));
    await userEvent.click(within(list).getByRole('button', { name: 'Yes, cancel Chair' }));
    expect(await screen.findByText('Cancelled "Chair".')).toBeInTheDocument();
    await waitFor(() => expect(within(list).queryByRole('button', { name: 'Cancel Chair' })).not.toBeInTheDocument());
    expect(within(list).getByRole('link', { name: 'Lamp' })).toHaveAttribute('href', '/items/lamp');

    await userEvent.selectOptions(screen.getByLabelText('Show'), 'closed');
    await waitFor(() => expect(asked).toBe('closed'));
    await waitFor(() => expect(rows()).toEqual([['Sold lamp', 'Closed', '3', '$150.00']]));
  });

  it('edits an item before its first bid, sending the close only when it changed', async () => {
    // Closing in a week, at 30 s past a minute the form shows without them.
    const week = new Date(Date.now() + 7 * 24 * 3600_000);
    week.setSeconds(30, 0);
    const chair = anItem({ id: 'chair', title: 'Chair', description: 'Oak', bid_count: 0, current_price: null, close_at: week.toISOString() });
    openItems(() => [chair]);
    const bodies: Record<string, unknown>[] = [];
    server.use(
      http.patch('*/api/v1/items/chair', async ({ request }) => {
        const body = (await request.json()) as Record<string, unknown>;
        bodies.push(body);
        if (bodies.length === 2) return problem(409, 'item_has_bids', { detail: 'an item with bids cannot be edited' });
        return HttpResponse.json({ ...chair, ...body });
      }),
    );
    renderApp('/admin');
    await userEvent.click(await screen.findByRole('button', { name: 'Edit Chair' }));
    const form = screen.getByRole('form', { name: 'Edit “Chair”' });
    expect(within(form).getByRole('heading', { name: 'Edit “Chair”' })).toHaveFocus();
    const title = within(form).getByLabelText('Title');
    await userEvent.clear(title);
    await userEvent.type(title, 'Oak chair');
    await userEvent.click(within(form).getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText('Saved "Oak chair".')).toBeInTheDocument();
    expect(bodies[0]).toEqual({ title: 'Oak chair', description: 'Oak' });

    await userEvent.click(await screen.findByRole('button', { name: 'Edit Chair' }));
    const again = screen.getByRole('form', { name: 'Edit “Chair”' });
    const close = within(again).getByLabelText('Closes at');
    const later = new Date(week.getTime() + 24 * 3600_000);
    const typed = new Date(later.getTime() - later.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    fireEvent.change(close, { target: { value: typed } });
    await userEvent.click(within(again).getByRole('button', { name: 'Save changes' }));
    expect(await within(again).findByRole('alert')).toHaveTextContent('an item with bids cannot be edited');
    expect(bodies[1]).toMatchObject({ close_at: new Date(typed).toISOString() });
  });

  it('lists with a soft-close rule when asked', async () => {
    openItems(() => []);
    let body: Record<string, unknown> = {};
    server.use(
      http.post('*/api/v1/items', async ({ request }) => {
        body = (await request.json()) as Record<string, unknown>;
        return HttpResponse.json(anItem({ id: 'new', title: String(body.title) }), { status: 201 });
      }),
    );
    renderApp('/admin');
    await userEvent.type(await screen.findByLabelText('Title'), 'Clock');
    await userEvent.click(screen.getByLabelText(/^Soft close/));
    const window = screen.getByLabelText('Window (seconds)');
    await userEvent.clear(window);
    await userEvent.type(window, '600');
    await userEvent.click(screen.getByRole('button', { name: 'List item' }));
    await screen.findByText(/Listed "Clock"/);
    expect(body.soft_close).toEqual({ window_secs: 600, extend_by_secs: 120, max_extensions: 10 });
  });

  it('finds accounts by address, changes roles and deactivates and reactivates them', async () => {
    openItems(() => []);
    const rae = { ...ann, id: 'user-rae-0001', email: 'rae@example.com', display_name: 'Rae' };
    let current = [admin, rae];
    let searched: string | null = null;
    const changes: Record<string, unknown>[] = [];
    server.use(
      http.get('*/api/v1/users', ({ request }) => {
        searched = new URL(request.url).searchParams.get('email');
        const shown = searched ? current.filter((user) => user.email.includes(searched ?? '')) : current;
        return HttpResponse.json({ items: shown, next_cursor: null, has_more: false });
      }),
      http.patch('*/api/v1/users/user-rae-0001', async ({ request }) => {
        const change = (await request.json()) as Record<string, unknown>;
        changes.push(change);
        current = current.map((user) => (user.id === rae.id ? { ...user, ...change } : user));
        return HttpResponse.json(current[1]);
      }),
    );
    renderApp('/admin');
    expect(await screen.findAllByTestId('admin-user')).toHaveLength(2);
    const accounts = screen.getByRole('region', { name: 'Account list' });
    // You cannot demote or deactivate yourself here.
    expect(within(within(accounts).getAllByTestId('admin-user')[0] as HTMLElement).queryAllByRole('button')).toEqual([]);
    await userEvent.type(screen.getByLabelText('E-mail contains'), 'rae');
    await userEvent.click(screen.getByRole('button', { name: 'Find' }));
    await waitFor(() => expect(searched).toBe('rae'));
    await waitFor(() => expect(within(accounts).getAllByTestId('admin-user')).toHaveLength(1));

    await userEvent.click(within(accounts).getByRole('button', { name: 'Deactivate rae@example.com' }));
    await userEvent.click(within(accounts).getByRole('button', { name: 'Yes, deactivate rae@example.com' }));
    expect(await within(accounts).findByRole('button', { name: 'Reactivate rae@example.com' })).toBeInTheDocument();
    expect(within(accounts).getByText('Deactivated')).toBeInTheDocument();
    await userEvent.click(within(accounts).getByRole('button', { name: 'Make admin: rae@example.com' }));
    await userEvent.click(within(accounts).getByRole('button', { name: 'Yes, make rae@example.com an admin' }));
    await waitFor(() => expect(changes).toEqual([{ is_active: false }, { role: 'admin' }]));
    await userEvent.click(await within(accounts).findByRole('button', { name: 'Reactivate rae@example.com' }));
    await userEvent.click(within(accounts).getByRole('button', { name: 'Yes, reactivate rae@example.com' }));
    await waitFor(() => expect(changes.at(-1)).toEqual({ is_active: true }));
  });

  it('pages through long lists of items and accounts', async () => {
    const item = (n: number) => anItem({ id: `lot-${n}`, title: `Lot ${n}`, bid_count: 1 });
    const account = (n: number) => ({ ...ann, id: `user-${n}`, email: `user${n}@example.com` });
    server.use(
      http.get('*/api/v1/items', ({ request }) => {
        const second = new URL(request.url).searchParams.get('cursor') === 'next';
        return HttpResponse.json({ items: second ? [item(3)] : [item(1), item(2)], next_cursor: second ? null : 'next', has_more: !second });
      }),
      http.get('*/api/v1/users', ({ request }) => {
        const second = new URL(request.url).searchParams.get('cursor') === 'next';
        return HttpResponse.json({ items: second ? [account(3)] : [account(1), account(2)], next_cursor: second ? null : 'next', has_more: !second });
      }),
    );
    renderApp('/admin');
    expect(await screen.findAllByTestId('admin-item')).toHaveLength(2);
    await userEvent.click(screen.getByRole('button', { name: 'Show more items' }));
    await waitFor(() => expect(screen.getAllByTestId('admin-item')).toHaveLength(3));
    expect(screen.queryByRole('button', { name: 'Show more items' })).not.toBeInTheDocument();
    expect(screen.getAllByTestId('admin-user')).toHaveLength(2);
    await userEvent.click(screen.getByRole('button', { name: 'Show more accounts' }));
    await waitFor(() => expect(screen.getAllByTestId('admin-user')).toHaveLength(3));
  });
});
