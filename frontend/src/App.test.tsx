import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import { accessToken } from './api/client';
import { aBid, admin, ann, anonymous, mockApi, problem, renderApp, signedIn, tokens } from './test/app';

const server = mockApi(...anonymous, http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })));

const nav = () => screen.getByRole('navigation', { name: 'Main' });

describe('the app frame', () => {
  it('sends a visitor to the login for a private page, and back there once logged in', async () => {
    let sent: unknown = null;
    server.use(
      http.post('*/api/v1/auth/login', async ({ request }) => {
        sent = await request.json();
        return tokens('after-login');
      }),
      http.get('*/api/v1/users/me', ({ request }) =>
        request.headers.get('authorization') === 'Bearer after-login' ? HttpResponse.json(ann) : problem(401, 'invalid_token'),
      ),
      http.post('*/api/v1/ws-ticket', () => problem(503, 'service_unavailable')),
      http.get('*/api/v1/me/bids', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })),
      http.get('*/api/v1/me/notifications', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })),
    );
    renderApp('/me/bids');
    expect(await screen.findByRole('heading', { name: 'Log in' })).toBeInTheDocument();
    expect(within(nav()).getByRole('link', { name: 'Register' })).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Log in' }));

    expect(await screen.findByRole('heading', { name: 'My bids' })).toBeInTheDocument();
    expect(await screen.findByText(/You have not bid yet/)).toBeInTheDocument();
    expect(sent).toEqual({ email: 'ann@example.com', password: 'violet kettle drums at dawn' });
    expect(within(nav()).getByRole('link', { name: 'Ann, your account' })).toHaveAttribute('href', '/account');
    expect(within(nav()).getByRole('button', { name: 'Notifications' })).toBeInTheDocument();
    expect(within(nav()).getByRole('button', { name: 'Log out' })).toBeInTheDocument();
    expect(within(nav()).queryByRole('link', { name: 'Admin' })).not.toBeInTheDocument();
  });

  it('logs out: the server forgets the session, the token goes, nothing read for the user stays, the login page shows', async () => {
    let loggedOut = 0;
    server.use(
      ...signedIn(admin),
      http.post('*/api/v1/auth/logout', () => {
        loggedOut += 1;
        return new HttpResponse(null, { status: 204 });
      }),
    );
    const { queryClient } = renderApp('/');
    const logOut = await screen.findByRole('button', { name: 'Log out' });
    const notifications = () => queryClient.getQueryCache().findAll({ queryKey: ['notifications'] });
    await waitFor(() => expect(notifications()).toHaveLength(1));
    expect(within(nav()).getByRole('link', { name: 'Root, your account' })).toBeInTheDocument();
    expect(within(nav()).getByRole('link', { name: 'Admin' })).toHaveAttribute('href', '/admin');
    expect(within(nav()).getByRole('link', { name: 'My bids' })).toBeInTheDocument();
    expect(accessToken.get()).toBe(`token-of-${admin.id}`);

    await userEvent.click(logOut);
    expect(await screen.findByRole('heading', { name: 'Log in' })).toBeInTheDocument();
    expect(loggedOut).toBe(1);
    expect(accessToken.get()).toBeNull();
    expect(within(nav()).queryByRole('link', { name: 'My bids' })).not.toBeInTheDocument();
    expect(within(nav()).queryByRole('button', { name: /Notifications/ })).not.toBeInTheDocument();
    await waitFor(() => expect(notifications()).toHaveLength(0));
  });

  it('says so when there is no such page', async () => {
    renderApp('/no/such/page');
    expect(await screen.findByText(/There is no such page/)).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'See the auctions' })).toHaveAttribute('href', '/');
  });

  it('asks for patience while the server slows us down, then carries on', async () => {
    let calls = 0;
    server.use(
      http.get('*/api/v1/items', () => {
        calls += 1;
        return calls === 1
          ? HttpResponse.json(
              { type: '/problems/rate_limited', title: 'Too Many Requests', status: 429, detail: 'slow', error_code: 'rate_limited' },
              { status: 429, headers: { 'retry-after': '1' } },
            )
          : HttpResponse.json({ items: [], next_cursor: null, has_more: false });
      }),
    );
    renderApp('/');
    expect(await screen.findByText('Slow down a little — retrying in 1 s.')).toBeInTheDocument();
    expect(await screen.findByText('No open auctions.', undefined, { timeout: 3000 })).toBeInTheDocument();
    expect(screen.queryByText(/Slow down a little/)).not.toBeInTheDocument();
    expect(calls).toBe(2);
  });
});

describe('my bids', () => {
  it("lists each bid with its state and poison in its item's currency, page by page", async () => {
    server.use(
      ...signedIn(ann),
      http.get('*/api/v1/me/bids', ({ request }) => {
        const cursor = new URL(request.url).searchParams.get('cursor');
        return cursor === 'next'
          ? HttpResponse.json({
              items: [aBid({ id: 'b3', item_id: 'desk/7', currency: 'jpy', currency_decimals: 0, amount: 5_000, state: 'won' })],
              next_cursor: null,
              has_more: false,
            })
          : HttpResponse.json({
              items: [
                aBid({ id: 'b1', item_id: 'lamp', amount: 12_500, state: 'leading' }),
                // The forint: 2 decimals by ISO 4217 and the server; Intl says 0.
                aBid({
                  id: 'b2',
                  item_id: 'chair',
                  currency: 'huf',
                  currency_decimals: 2,
                  amount: 20_000,
                  poison: { budget: 30_050, step: 500 },
                  remaining_budget: 8_000,
                  state: 'outbid',
                }),
              ],
              next_cursor: 'next',
              has_more: true,
            });
      }),
    );
    renderApp('/me/bids');
    const table = await screen.findByRole('region', { name: 'Your bids' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((row) => row.textContent)).toEqual([
      'Open the auction$125.00leading—',
      'Open the auctionHUF\u00a0200.00 (poison up to HUF\u00a0300.50)outbidHUF\u00a080.00',
    ]);
    expect(within(rows[1]!).getByRole('link')).toHaveAttribute('href', '/items/chair');

    await userEvent.click(screen.getByRole('button', { name: 'Load more' }));
    expect(await screen.findByText('won')).toBeInTheDocument();
    const won = within(table).getAllByRole('row').at(-1)!;
    expect(won).toHaveTextContent('¥5,000');
    expect(within(won).getByRole('link')).toHaveAttribute('href', '/items/desk%2F7');
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();
  });

  it('invites a first bid when there is none', async () => {
    server.use(...signedIn(ann), http.get('*/api/v1/me/bids', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })));
    renderApp('/me/bids');
    expect(await screen.findByText(/You have not bid yet/)).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Find an auction' })).toHaveAttribute('href', '/');
  });
});
